/**
 * Retention never splits a specimen and never deletes a signed specimen's audit trail; a
 * version-3 database file (before specimens) upgrades with its results unassigned.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import t from 'tap';
import { landInFolder } from '../helpers/results.js';
import { openStore, Store } from '../../src/store/index.js';
import { MIGRATIONS } from '../../src/store/migrations.js';

const DAY = 86_400_000;

function tempDir(t: { teardown(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'bw-specimen-retention-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const land = (store: Store, file: string, at: number): number => landInFolder(store, file, at).id;

const count = (store: Store, sql: string, ...params: unknown[]) =>
  (store.db.prepare(sql).get(...params) as { n: number }).n;

t.test(
  'retention keeps a specimen whole, drops an unsigned one whole, keeps a signed audit trail',
  async (t) => {
    const store = openStore({ dataDir: tempDir(t) });
    t.teardown(() => store.close());
    const now = Date.now();
    const old = now - 40 * DAY;
    // SPLIT: one old image and one recent one: nothing of it may go.
    land(store, 'SPLIT/old.jpg', old);
    land(store, 'SPLIT/new.jpg', now);
    // GONE: all old, never signed: goes whole, audit included.
    land(store, 'GONE/1.jpg', old);
    land(store, 'GONE/2.jpg', old);
    // SIGNED: all old, signed: its images go, its record (row, sign-off, audit) stays.
    land(store, 'SIGNED/1.jpg', old);
    const signedId = store.specimens.byAccession('SIGNED')!.id;
    store.signOffs.sign(signedId, { verdict: 'insufficient', comment: null }, 'dr-lee');
    const loose = land(store, 'loose.jpg', old);
    const gone = store.specimens.byAccession('GONE')!.id;

    const removed = store.retention.apply({ days: 30, maxRows: 0, now }).ids;
    t.ok(removed.includes(loose), 'an old unassigned image goes as before');
    const split = store.specimens.byAccession('SPLIT')!;
    t.equal(
      store.results.list({ specimen: split.id }).length,
      2,
      'a specimen with a recent image keeps its old one',
    );
    t.notOk(store.specimens.get(gone), 'an old unsigned specimen is gone');
    t.equal(
      count(store, 'SELECT count(*) AS n FROM specimen_audit WHERE specimen_id = ?', gone),
      0,
      'with its audit',
    );
    t.equal(
      count(store, 'SELECT count(*) AS n FROM results WHERE file LIKE ?', 'GONE/%'),
      0,
      'and its results',
    );
    const signed = store.specimens.get(signedId);
    t.equal(signed?.status, 'signed', 'the signed specimen stays');
    t.equal(store.results.list({ specimen: signedId }).length, 0, 'its images are gone');
    t.ok(store.specimens.audit(signedId).length >= 2, 'its audit trail is kept');
    t.equal(store.specimens.signOffs(signedId).length, 1, 'its sign-off is kept');

    // By row count: the newest 1 row would cut SPLIT in half; it stays whole.
    const byRows = store.retention.apply({ days: 0, maxRows: 1, now }).ids;
    t.equal(
      store.results.list({ specimen: split.id }).length,
      2,
      'max_rows does not split a specimen either',
    );
    t.same(byRows, [], 'nothing else was due');
    t.equal(store.integrityCheck(), 'ok');
    const fk = store.db.pragma('foreign_key_check') as unknown[];
    t.same(fk, [], 'no dangling references');
  },
);

t.test('a version-3 database upgrades: results kept, unassigned, specimens work', async (t) => {
  const dir = tempDir(t);
  const raw = new Database(join(dir, 'blastwatch.db'));
  for (const step of MIGRATIONS.slice(0, 3)) raw.exec(step as string);
  raw.pragma('user_version = 3');
  raw
    .prepare(
      `INSERT INTO results (id, status, sha256, path, file, class, p_ball, flag, processed_at)
       VALUES (5, 'done', 'old', '/c/A1/old.jpg', 'A1/old.jpg', 'Benign', 0.1, 0, 1)`,
    )
    .run();
  raw.close();
  const store = openStore({ dataDir: dir });
  t.teardown(() => store.close());
  t.equal(store.db.pragma('user_version', { simple: true }), Store.schemaVersion);
  t.same(
    store.results.list({ specimen: 'none' }).map((r) => r.id),
    [5],
    'an earlier result is unassigned (never guessed into a specimen)',
  );
  land(store, 'A1/new.jpg', Date.now());
  const a1 = store.specimens.byAccession('A1');
  t.equal(a1?.counts.images, 1, 'new images join specimens');
  store.specimens.assignImages(a1!.id, [5], 'dr-lee');
  t.equal(store.specimens.get(a1!.id)?.counts.images, 2, 'the old one can be assigned by hand');
  t.equal(store.integrityCheck(), 'ok');
});
