import { pino, type Logger, type LoggerOptions } from 'pino';

export type { Logger };

/**
 * JSON lines on stdout (journald keeps them; `journalctl -o cat | pino-pretty` reads them), or
 * pino-pretty's coloured lines when a person is watching a terminal.
 */
export function createLogger(opts: { level: string; pretty: boolean | 'auto'; name?: string }): Logger {
  const pretty = opts.pretty === 'auto' ? Boolean(process.stdout.isTTY) : opts.pretty;
  const base: LoggerOptions = {
    name: opts.name ?? 'blastwatch',
    level: opts.level,
    timestamp: pino.stdTimeFunctions.isoTime,
    // Never log secrets that may ride along in config objects.
    redact: { paths: ['*.password', '*.auth_token', 'password', 'auth_token'], censor: '[redacted]' },
  };
  if (pretty) {
    return pino({
      ...base,
      transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'SYS:HH:MM:ss.l' } },
    });
  }
  return pino(base);
}
