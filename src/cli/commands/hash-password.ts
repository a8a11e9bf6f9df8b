import { parseArgs } from 'node:util';
import type { Command } from '../command.js';
import { UsageError, UserError } from '../command.js';

/** Reads one line from a terminal without echoing it. */
function promptHidden(question: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const stdin = process.stdin;
    process.stderr.write(question);
    stdin.setRawMode(true);
    stdin.resume();
    stdin.setEncoding('utf8');
    let value = '';
    const onData = (chunk: string) => {
      for (const ch of chunk) {
        if (ch === '\r' || ch === '\n') {
          done();
          resolve(value);
          return;
        }
        if (ch === '\u0003') {
          done();
          reject(new UserError('cancelled', 130));
          return;
        }
        if (ch === '\u007f' || ch === '\b') value = value.slice(0, -1);
        else value += ch;
      }
    };
    const done = () => {
      stdin.off('data', onData);
      stdin.setRawMode(false);
      stdin.pause();
      process.stderr.write('\n');
    };
    stdin.on('data', onData);
  });
}

async function readStdin(): Promise<string> {
  let text = '';
  for await (const chunk of process.stdin) text += String(chunk);
  // One password per run: the first line, without its line ending.
  return text.split(/\r?\n/)[0] ?? '';
}

const command: Command = {
  name: 'hash-password',
  summary: 'make a password hash for a dashboard user (http.users in the config)',
  usage: `usage: blastwatch hash-password [--name NAME]

Asks for a password twice (not echoed) and prints its scrypt hash, ready for http.users:
  http:
    users:
      - { name: dr-lee, password_hash: "scrypt:..." }
When stdin is not a terminal, the first line of stdin is the password:
  printf '%s\\n' "$PASSWORD" | blastwatch hash-password --name dr-lee
  --name NAME   print a complete users entry for NAME`,
  async run(argv) {
    let parsed;
    try {
      parsed = parseArgs({ args: argv, options: { name: { type: 'string' } } });
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
    const name = parsed.values.name;
    if (name !== undefined && (name.length === 0 || name.length > 64))
      throw new UsageError('--name: 1 to 64 characters');
    let password: string;
    if (process.stdin.isTTY) {
      password = await promptHidden('Password: ');
      const again = await promptHidden('Again: ');
      if (password !== again) throw new UserError('the two passwords differ; nothing printed');
    } else {
      password = await readStdin();
    }
    if (password.length < 8) throw new UserError('password too short: use at least 8 characters');
    const { hashPassword } = await import('../../runtime/password.js');
    const hash = await hashPassword(password);
    process.stdout.write(
      name ? `- { name: ${JSON.stringify(name)}, password_hash: "${hash}" }\n` : `${hash}\n`,
    );
    return 0;
  },
};
export default command;
