import type { Command } from '../command.js';
import { parseCommandArgs, UserError } from '../command.js';
import { checkConfigRules, ConfigError, loadConfig } from '../../config/load.js';
import { createLogger } from '../../log.js';

const command: Command = {
  name: 'run',
  summary: 'run the daemon: watch the capture folder, classify, store, publish, serve',
  usage: `usage: blastwatch run [--config FILE]

Runs the daemon in the foreground (systemd/Docker keep it running): watches capture.dir,
classifies each new image, stores results in data.dir/blastwatch.db, publishes over MQTT when
mqtt.url is set, and serves the ops API (and dashboard) on http.host:http.port.
SIGTERM/SIGINT stop it cleanly (in-flight images finish, the outbox is flushed).
  --config FILE   config file (default: $BLASTWATCH_CONFIG, else only config/default.yaml)`,
  async run(argv) {
    const parsed = parseCommandArgs(argv, { options: { config: { type: 'string', short: 'c' } } });
    let config;
    try {
      ({ config } = loadConfig(parsed.values.config));
      checkConfigRules(config);
    } catch (err) {
      if (err instanceof ConfigError) throw new UserError(err.message);
      throw err;
    }
    const log = createLogger({ level: config.log.level, pretty: config.log.pretty });
    const { createApp } = await import('../../app.js');
    const { ModelError } = await import('../../infer/index.js');
    const { DatabaseCorruptError, DataDirInUseError, DataDirLockError } =
      await import('../../store/index.js');

    let app;
    try {
      app = await createApp(config, log);
    } catch (err) {
      if (err instanceof ModelError) {
        const msg = err.message.startsWith('no model')
          ? err.message
          : `no usable model in ${config.model.dir}: ${err.message}`;
        throw new UserError(msg);
      }
      // Each already one line that names the file and what to do.
      if (
        err instanceof DatabaseCorruptError ||
        err instanceof DataDirInUseError ||
        err instanceof DataDirLockError
      )
        throw new UserError(err.message);
      if (
        (err as NodeJS.ErrnoException).code === 'SQLITE_CANTOPEN' ||
        (err as NodeJS.ErrnoException).code === 'EACCES'
      )
        throw new UserError(`cannot open the database in ${config.data.dir}: ${(err as Error).message}`);
      throw err;
    }

    let stopping: Promise<void> | null = null;
    const stop = (signal: string) => {
      if (stopping) {
        log.warn({ signal }, 'second signal: exiting now');
        process.exit(1);
      }
      log.info({ signal }, 'signal received');
      stopping = app.stop();
      return stopping;
    };
    let exitCode = 0;
    const finished = new Promise<void>((resolve) => {
      process.on('SIGTERM', () => void stop('SIGTERM').then(resolve));
      process.on('SIGINT', () => void stop('SIGINT').then(resolve));
      // Cannot recover in-process: stop cleanly and exit non-zero so the supervisor restarts us.
      app.onFatal(() => {
        exitCode = 1;
        void stop('fatal').then(resolve);
      });
    });
    try {
      await app.start();
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      await app.stop().catch(() => undefined);
      if (code === 'EADDRINUSE' || code === 'EACCES' || code === 'EADDRNOTAVAIL')
        throw new UserError(`cannot listen on ${config.http.host}:${config.http.port}: ${code}`);
      throw err;
    }
    await finished;
    // Let pino flush; then leave even if a library keeps a handle open.
    setTimeout(() => process.exit(exitCode), 200).unref();
    return exitCode;
  },
};
export default command;
