/**
 * `blastwatch backup` against a real daemon (child process) that keeps classifying while the copy
 * is made: the copy passes SQLite's integrity check and holds every result stored before it
 * began, uploads are mirrored once, old copies are pruned, and a daemon started on a restored copy
 * serves its records. Bad invocations fail with one line.
 */
import { spawnSync } from 'node:child_process';
import {
  copyFileSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import t from 'tap';
import {
  cliEntry,
  freePort,
  jpegVariant,
  makeDirs,
  repoRoot,
  sampleImages,
  startDaemon,
  until,
  writeConfig,
} from './helpers.js';

/** `blastwatch COMMAND ARGS` as an operator or a systemd timer runs it. */
function cli(command: string, args: string[]) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', cliEntry, command, ...args], {
    cwd: repoRoot,
    env: { ...process.env, BLASTWATCH_CONFIG: '' },
    encoding: 'utf8',
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}
const backup = (args: string[]) => cli('backup', args);

const storedResults = (dbFile: string): number => {
  const db = new Database(dbFile, { readonly: true, fileMustExist: true });
  try {
    return (db.prepare('SELECT count(*) AS n FROM results').get() as { n: number }).n;
  } finally {
    db.close();
  }
};

t.test('a copy made while the daemon classifies is whole, pruned, and restores', async (t) => {
  const dirs = makeDirs('bw-backup-');
  t.teardown(() => rmSync(dirs.root, { recursive: true, force: true }));
  const port = await freePort();
  writeConfig(dirs, { mqttUrl: null, httpPort: port });
  const daemon = startDaemon(dirs.config, port);
  t.teardown(() => daemon.child.kill('SIGKILL'));
  await daemon.ready();

  const samples = sampleImages().slice(0, 4);
  const drop = (i: number) => {
    const name = `field-${String(i).padStart(3, '0')}.jpg`;
    const tmp = join(dirs.root, name);
    writeFileSync(tmp, jpegVariant(readFileSync(samples[i % samples.length]!), `backup-${i}`));
    renameSync(tmp, join(dirs.capture, name));
  };
  for (let i = 0; i < 6; i++) drop(i);
  const db = join(dirs.data, 'blastwatch.db');
  await until(() => storedResults(db) === 6, 60_000, 'six results stored');
  // A photo uploaded from a phone, where the dashboard keeps it.
  const upload = join(dirs.data, 'uploads', '2026-12-06', 'phone-1.jpg');
  mkdirSync(join(dirs.data, 'uploads', '2026-12-06'), { recursive: true });
  writeFileSync(upload, readFileSync(samples[0]!));

  // More images arrive while the copy is made.
  for (let i = 6; i < 26; i++) drop(i);
  const to = join(dirs.root, 'backups');
  const first = backup(['--config', dirs.config, '--to', to, '--keep', '2', '--json']);
  t.equal(first.code, 0, first.err);
  const r = JSON.parse(first.out) as {
    file: string;
    results: number;
    uploadsCopied: number;
    uploadsTotal: number;
    schemaVersion: number;
  };
  t.ok(
    r.results >= 6 && r.results <= 26,
    `${r.results} results in the copy: every one stored before it began`,
  );
  t.equal(storedResults(r.file), r.results, 'as the copy says');
  const copy = new Database(r.file, { readonly: true });
  t.equal(copy.pragma('integrity_check', { simple: true }), 'ok');
  const ids = copy.prepare('SELECT id FROM results ORDER BY id').all() as { id: number }[];
  t.same(
    ids.map((x) => x.id),
    Array.from({ length: r.results }, (_, i) => ids[0]!.id + i),
    'a prefix of the results with no gap: the database as it stood at one instant',
  );
  copy.close();
  t.same([r.uploadsCopied, r.uploadsTotal], [1, 1], 'the uploaded photo mirrored');
  const firstCopy = join(dirs.root, 'first-copy.db');
  copyFileSync(r.file, firstCopy);
  t.same(readFileSync(join(to, 'uploads', '2026-12-06', 'phone-1.jpg')), readFileSync(upload));

  await until(() => storedResults(db) === 26, 60_000, 'every image stored');
  const second = backup(['--config', dirs.config, '--to', to, '--keep', '2']);
  t.equal(second.code, 0, second.err);
  t.match(
    second.out,
    /^backup: .*blastwatch-\d{8}T\d{9}Z\.db \([\d.]+ MB, schema \d+: 26 results, 0 specimens, 0 signed; integrity ok\) in \d+ ms; uploads: 0 new, 1 in all; 0 older copies removed\n$/,
    'one line; the photo is not copied again',
  );
  const third = backup(['--config', dirs.config, '--to', to, '--keep', '2']);
  t.match(third.out, /; 1 older copy removed\n$/);
  const copies = readdirSync(to)
    .filter((n) => n.endsWith('.db'))
    .sort();
  t.equal(copies.length, 2, 'the newest two kept');
  t.notOk(copies.includes(r.file.split('/').pop()!), 'the oldest removed');

  // The running daemon knows how the latest backup went: in its health and its metrics.
  const health = (await (await fetch(`http://127.0.0.1:${port}/api/health`)).json()) as {
    backup?: { ok: boolean; last_ok_file: string };
  };
  t.match(health.backup, { ok: true, last_ok_file: join(to, copies.at(-1)!) });
  const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  t.match(metrics, /\nblastwatch_backup_ok 1\n/);
  t.match(metrics, /\nblastwatch_backup_last_ok_timestamp_seconds \d{10}(\.\d+)?\n/);

  // Restore the first copy, with fewer results than the daemon has now: refused while it runs.
  const restore = (args: string[]) => cli('restore', ['--config', dirs.config, ...args]);
  const refused = restore(['--from', firstCopy, '--uploads', join(to, 'uploads')]);
  t.equal(refused.code, 1);
  t.match(refused.err.trim(), /^blastwatch restore: blastwatch is running on .* \(pid \d+\): stop it first/);
  daemon.child.kill('SIGTERM');
  t.equal(await daemon.exited, 0);
  rmSync(join(dirs.data, 'uploads'), { recursive: true });
  const done = restore(['--from', firstCopy, '--uploads', join(to, 'uploads')]);
  t.equal(done.code, 0, done.err);
  t.match(
    done.out,
    new RegExp(
      `^restored .*: ${r.results} results, 0 specimens, 0 signed; the database it replaced is kept as .*blastwatch\\.db\\.before-restore-\\d{8}T\\d{9}Z; uploads: 1 copied back`,
    ),
  );
  t.equal(storedResults(db), r.results, 'the copy is the database now');
  t.ok(
    readdirSync(dirs.data).some((n) => /^blastwatch\.db\.before-restore-/.test(n)),
    'the one it replaced is kept beside it',
  );
  t.same(
    readFileSync(upload),
    readFileSync(join(to, 'uploads', '2026-12-06', 'phone-1.jpg')),
    'the photo is back',
  );

  // The daemon on the restored copy: the images captured since are still in the capture folder,
  // and it classifies those it has no result for, each once.
  const port2 = await freePort();
  writeConfig(dirs, { mqttUrl: null, httpPort: port2 });
  const again = startDaemon(dirs.config, port2);
  t.teardown(() => again.child.kill('SIGKILL'));
  await again.ready();
  await until(() => storedResults(db) === 26, 60_000, 'the later images classified again');
  const listed = (await (await fetch(`http://127.0.0.1:${port2}/api/results?limit=100`)).json()) as {
    file: string;
  }[];
  t.equal(new Set(listed.map((x) => x.file)).size, 26, 'every image once');
  again.child.kill('SIGTERM');
  t.equal(await again.exited, 0);
});

t.test('bad invocations: one line, no stack trace, no copy', async (t) => {
  const dirs = makeDirs('bw-backup-bad-');
  t.teardown(() => rmSync(dirs.root, { recursive: true, force: true }));
  writeConfig(dirs, { mqttUrl: null, httpPort: 0 });
  const to = join(dirs.root, 'backups');
  const none = backup(['--config', dirs.config, '--to', to]);
  t.equal(none.code, 1);
  t.match(
    none.err.trim(),
    /^blastwatch backup: no database at .*blastwatch\.db: is data\.dir right, and has the daemon run once\?$/,
  );
  t.notMatch(none.err, /\n\s+at /);

  const noTarget = backup(['--config', dirs.config]);
  t.equal(noTarget.code, 2, 'a usage error');
  t.match(noTarget.err, /--to DIR is required/);
  const badKeep = backup(['--config', dirs.config, '--to', to, '--keep', '0']);
  t.equal(badKeep.code, 2);
  t.match(badKeep.err, /--keep must be a whole number of at least 1/);

  const noCopy = cli('restore', ['--config', dirs.config, '--from', join(dirs.root, 'nothing.db')]);
  t.equal(noCopy.code, 1);
  t.match(noCopy.err.trim(), /^blastwatch restore: no copy at .*nothing\.db$/);
  const garbage = join(dirs.root, 'garbage.db');
  writeFileSync(garbage, Buffer.alloc(8192, 'not a database '));
  const notDb = cli('restore', ['--config', dirs.config, '--from', garbage]);
  t.equal(notDb.code, 1);
  t.match(notDb.err.trim(), /^blastwatch restore: .*garbage\.db/);
  t.notMatch(notDb.err, /\n\s+at /, 'no stack trace');

  // A file where the backup folder should be.
  writeFileSync(join(dirs.data, 'blastwatch.db'), '');
  const blocked = join(dirs.root, 'a-file');
  writeFileSync(blocked, 'x');
  const unwritable = backup(['--config', dirs.config, '--to', join(blocked, 'backups')]);
  t.equal(unwritable.code, 1);
  t.match(unwritable.err.trim(), /^blastwatch backup: cannot create .*a-file\/backups: /);
});
