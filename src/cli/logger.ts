/** The logger of the one-shot commands (classify, evaluate), which keep stdout for results. */
import { pino, type Logger } from 'pino';

const LEVEL_NAMES: Record<number, string> = {
  10: 'trace',
  20: 'debug',
  30: 'info',
  40: 'warning',
  50: 'error',
  60: 'fatal',
};

/**
 * Logs go to stderr so that stdout stays clean for --json, as one readable line each
 * ("blastwatch: warning: execution provider cuda unavailable; …"); warnings and errors only
 * unless BLASTWATCH_LOG_LEVEL says otherwise.
 */
export function cliLogger(): Logger {
  const stream = {
    write(line: string): void {
      try {
        const rec = JSON.parse(line) as { level: number; msg?: string };
        process.stderr.write(
          `blastwatch: ${LEVEL_NAMES[rec.level] ?? rec.level}: ${rec.msg ?? line.trim()}\n`,
        );
      } catch {
        process.stderr.write(line);
      }
    },
  };
  return pino({ name: 'blastwatch', level: process.env.BLASTWATCH_LOG_LEVEL ?? 'warn' }, stream);
}
