import type { Command } from '../command.js';
import { configuredDataDir, parseCommandArgs, UsageError, UserError } from '../command.js';

const command: Command = {
  name: 'backup',
  summary: 'copy the database and the uploaded photos to a backup folder, also while the daemon runs',
  usage: `usage: blastwatch backup --to DIR [--keep N] [--config FILE] [--json]

Writes a consistent copy of data.dir/blastwatch.db (results, reviews, specimens, signatures and
their audit trail) to DIR/blastwatch-<UTC time>.db, checks it with SQLite's integrity check, and
mirrors data.dir/uploads (photos uploaded from phones) into DIR/uploads, copying new files only.
Safe while the daemon runs. Thumbnails and masks (media.db) are not records and are left out.
  --to DIR        where the copies go (created if missing; a local disk or a mounted share)
  --keep N        copies to keep, the newest (default 14); older ones are removed
  --config FILE   config file whose data.dir to copy (default: $BLASTWATCH_CONFIG, else only
                  config/default.yaml)
  --json          print the result as JSON instead of one line
Restore: docs/reliability.md, "Backups".`,
  async run(argv) {
    const parsed = parseCommandArgs(argv, {
      options: {
        to: { type: 'string' },
        keep: { type: 'string', default: '14' },
        config: { type: 'string', short: 'c' },
        json: { type: 'boolean', default: false },
      },
    });
    const { to, json } = parsed.values;
    if (!to) throw new UsageError('--to DIR is required');
    const keep = Number(parsed.values.keep);
    if (!Number.isInteger(keep) || keep < 1)
      throw new UsageError('--keep must be a whole number of at least 1');
    const dataDir = await configuredDataDir(parsed.values.config);
    const { backupStore, BackupError } = await import('../../store/backup.js');
    let r;
    try {
      r = backupStore({ dataDir, toDir: to, keep });
    } catch (err) {
      if (err instanceof BackupError) throw new UserError(err.message);
      throw err;
    }
    // The copy is made; the daemon's health just will not know of it.
    if (r.statusError) process.stderr.write(`blastwatch backup: warning: ${r.statusError}\n`);
    if (json) {
      process.stdout.write(`${JSON.stringify(r)}\n`);
      return 0;
    }
    const mb = (r.bytes / 1048576).toFixed(1);
    process.stdout.write(
      `backup: ${r.file} (${mb} MB, schema ${r.schemaVersion}: ${r.results} results, ${r.specimens} ` +
        `specimens, ${r.signed} signed; integrity ok) in ${r.ms} ms; uploads: ${r.uploadsCopied} new, ` +
        `${r.uploadsTotal} in all; ${r.removed.length} older cop${r.removed.length === 1 ? 'y' : 'ies'} removed\n`,
    );
    return 0;
  },
};
export default command;
