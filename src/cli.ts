#!/usr/bin/env node
/**
 * `blastwatch <subcommand>`: the one entry point. Expected failures (UsageError, UserError)
 * print one line and exit non-zero; anything else is a bug and keeps its stack trace.
 */
import { commands } from './cli/registry.js';
import { UsageError, UserError } from './cli/command.js';

function printHelp(): void {
  const width = Math.max(...Object.keys(commands).map((n) => n.length));
  const lines = Object.entries(commands).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`);
  process.stdout.write(
    `blastwatch — B-ALL screening aid for blood smear images (screens; does not diagnose)\n\n` +
      `usage: blastwatch <command> [options]\n\ncommands:\n${lines.join('\n')}\n\n` +
      `blastwatch <command> --help shows a command's options.\n`,
  );
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
    printHelp();
    return name === undefined ? 2 : 0;
  }
  if (name === '--version' || name === '-v') {
    const { readFile } = await import('node:fs/promises');
    const pkg = JSON.parse(await readFile(new URL('../package.json', import.meta.url), 'utf8')) as {
      version: string;
    };
    process.stdout.write(`${pkg.version}\n`);
    return 0;
  }
  const entry = commands[name];
  if (!entry) {
    process.stderr.write(`blastwatch: unknown command '${name}' (try 'blastwatch help')\n`);
    return 2;
  }
  const command = await entry.load();
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(`${command.usage}\n`);
    return 0;
  }
  try {
    return await command.run(rest);
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`blastwatch ${name}: ${err.message}\n\n${command.usage}\n`);
      return 2;
    }
    if (err instanceof UserError) {
      process.stderr.write(`blastwatch ${name}: ${err.message}\n`);
      return err.exitCode;
    }
    throw err;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(
      `blastwatch: internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    );
    process.exitCode = 70;
  },
);
