import type { Command } from '../command.js';
import { configuredDataDir, parseCommandArgs, UsageError, UserError } from '../command.js';

const command: Command = {
  name: 'restore',
  summary: 'put a copy made by blastwatch backup back as the database (the daemon stopped)',
  usage: `usage: blastwatch restore --from FILE [--uploads DIR] [--config FILE]

Checks FILE (a copy blastwatch backup made) with SQLite's integrity check, renames the database
in data.dir aside with its -wal and -shm files (blastwatch.db.before-restore-<UTC time>), puts
FILE in its place, and copies back the uploaded photos data.dir lacks. Refuses while the daemon
runs: stop it first (systemctl stop blastwatch). Images the camera wrote since the copy are
still in the capture folder: the daemon classifies them again when it starts.
  --from FILE     the copy, e.g. /var/backups/blastwatch/blastwatch-20261206T023000123Z.db
  --uploads DIR   the uploads mirror (default: the uploads folder beside FILE)
  --config FILE   config file whose data.dir to restore into (default: $BLASTWATCH_CONFIG, else
                  only config/default.yaml)`,
  async run(argv) {
    const parsed = parseCommandArgs(argv, {
      options: {
        from: { type: 'string' },
        uploads: { type: 'string' },
        config: { type: 'string', short: 'c' },
      },
    });
    const { from, uploads } = parsed.values;
    if (!from) throw new UsageError('--from FILE is required');
    const dataDir = await configuredDataDir(parsed.values.config);
    const { restoreStore, BackupError } = await import('../../store/backup.js');
    const { DataDirInUseError, DataDirLockError } = await import('../../store/index.js');
    let r;
    try {
      r = restoreStore({ dataDir, from, ...(uploads ? { uploadsFrom: uploads } : {}) });
    } catch (err) {
      if (err instanceof DataDirInUseError)
        throw new UserError(
          `blastwatch is running on ${dataDir} (${err.pid === null ? 'pid unknown' : `pid ${err.pid}`}): ` +
            'stop it first (systemctl stop blastwatch), then restore',
        );
      if (err instanceof BackupError || err instanceof DataDirLockError) throw new UserError(err.message);
      throw err;
    }
    const aside = r.setAside.length
      ? `the database it replaced is kept as ${r.setAside[0]}`
      : 'there was none before';
    process.stdout.write(
      `restored ${from} into ${dataDir}: ${r.results} results, ${r.specimens} specimens, ${r.signed} ` +
        `signed; ${aside}; uploads: ${r.uploadsCopied} copied back. Start the daemon.\n`,
    );
    return 0;
  },
};
export default command;
