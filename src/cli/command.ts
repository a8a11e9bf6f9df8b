import { parseArgs, type ParseArgsConfig } from 'node:util';

/** One `blastwatch <name>` subcommand. Each lives in its own module under `src/cli/commands/`. */
export interface Command {
  readonly name: string;
  /** One line for `blastwatch help`. */
  readonly summary: string;
  /** Usage text printed for `blastwatch <name> --help` and on a usage error. */
  readonly usage: string;
  /** Runs the command; resolves to the process exit code. */
  run(argv: string[]): Promise<number>;
}

/** Thrown for a wrong invocation: the CLI prints the message and the usage, exit code 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/**
 * node:util's parseArgs on a command's arguments: what it refuses (an unknown option, a missing
 * value) is a UsageError, so the CLI prints the message with the command's usage.
 */
export function parseCommandArgs<const T extends Omit<ParseArgsConfig, 'args'>>(
  argv: string[],
  config: T,
): ReturnType<typeof parseArgs<T & { args: string[] }>> {
  try {
    return parseArgs({ ...config, args: argv });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

/**
 * Thrown for an expected, user-facing failure (bad config, missing model, unreadable file):
 * the CLI prints the one-line message, no stack trace, and exits with `exitCode`.
 */
export class UserError extends Error {
  override readonly name = 'UserError';
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

/**
 * data.dir of the config a data command names (`--config`, else $BLASTWATCH_CONFIG, else the
 * defaults): the same folder the daemon uses. A bad config is one line naming the key.
 */
export async function configuredDataDir(configFile: string | undefined): Promise<string> {
  const { ConfigError, loadConfig } = await import('../config/load.js');
  try {
    return loadConfig(configFile).config.data.dir;
  } catch (err) {
    if (err instanceof ConfigError) throw new UserError(err.message);
    throw err;
  }
}
