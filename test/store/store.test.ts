import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import t from 'tap';
import { classifiedResult } from '../helpers/results.js';
import { openStore, Store } from '../../src/store/index.js';
import { MIGRATIONS } from '../../src/store/migrations.js';

function tempDir(t: { teardown(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'bw-store-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const done = classifiedResult;

t.test('opens with WAL, synchronous=FULL and the current schema version', async (t) => {
  const dir = tempDir(t);
  const store = openStore({ dataDir: dir });
  t.teardown(() => store.close());
  t.equal(store.db.pragma('journal_mode', { simple: true }), 'wal');
  t.equal(store.db.pragma('synchronous', { simple: true }), 2, 'FULL = 2');
  t.equal(store.db.pragma('user_version', { simple: true }), Store.schemaVersion);
  t.equal(store.integrityCheck(), 'ok');
});

t.test('migrations are idempotent: reopening keeps data and does not re-run', async (t) => {
  const dir = tempDir(t);
  const a = openStore({ dataDir: dir });
  a.results.commit(done('aa'), null, () => []);
  a.close();
  const b = openStore({ dataDir: dir });
  t.teardown(() => b.close());
  t.equal(b.results.list().length, 1, 'row survived reopening');
  t.equal(b.db.pragma('user_version', { simple: true }), Store.schemaVersion);
});

t.test('schema 1 → 2 keeps file rows (no inode/ctime) and later records both', async (t) => {
  const dir = tempDir(t);
  // A database as the previous version left it: schema 1 and a processed file.
  const raw = new Database(join(dir, 'blastwatch.db'));
  raw.exec(MIGRATIONS[0] as string);
  raw.pragma('user_version = 1');
  raw
    .prepare(
      "INSERT INTO files (path, size, mtime_ms, sha256, status, attempts, updated_at) VALUES ('/c/a.jpg', 10, 1000.5, 'aa', 'done', 1, 1)",
    )
    .run();
  raw.close();
  const store = openStore({ dataDir: dir });
  t.equal(store.db.pragma('user_version', { simple: true }), Store.schemaVersion);
  const row = store.files.get('/c/a.jpg');
  t.match(row, { size: 10, mtime_ms: 1000.5, status: 'done', ino: null, ctime_ms: null }, 'row kept');
  store.files.adoptIdentity('/c/a.jpg', 10, 1000.5, 42, 2000.25);
  // A row that no longer matches on size + mtime is left alone (the file changed: reprocess it).
  store.files.adoptIdentity('/c/a.jpg', 11, 1000.5, 43, 3000);
  store.close();
  const again = openStore({ dataDir: dir });
  t.teardown(() => again.close());
  t.match(again.files.get('/c/a.jpg'), { ino: 42, ctime_ms: 2000.25 }, 'adopted, flushed on close');
  again.files.put({
    path: '/c/b.jpg',
    size: 5,
    mtimeMs: 7,
    ino: 9,
    ctimeMs: 8.5,
    sha256: null,
    status: 'failed',
    attempts: 1,
  });
  t.match(again.files.get('/c/b.jpg'), { ino: 9, ctime_ms: 8.5 });
});

t.test('schema 2 → 3: reviews keep their rows and record the model version and threshold', async (t) => {
  const dir = tempDir(t);
  const path = join(dir, 'blastwatch.db');
  // A database file as the previous schema (2) left it, with a reviewed result.
  const raw = new Database(path);
  raw.exec(MIGRATIONS[0] as string);
  raw.exec(MIGRATIONS[1] as string);
  raw.pragma('user_version = 2');
  raw
    .prepare(
      `INSERT INTO results (id, status, sha256, path, file, class, p_ball, flag, model_name, model_version,
         threshold, processed_at) VALUES (7, 'done', 'old', '/c/old.jpg', 'old.jpg', 'Pro-B', 0.9, 1, 'm',
         '2026.11.27', 0.069, 1)`,
    )
    .run();
  raw
    .prepare(
      `INSERT INTO reviews (id, result_id, reviewer, class, agrees, note, created_at)
       VALUES (3, 7, 'dr-old', 'Benign', 0, 'hematogones', 1000)`,
    )
    .run();
  raw.close();

  const store = openStore({ dataDir: dir });
  t.teardown(() => store.close());
  t.equal(store.db.pragma('user_version', { simple: true }), Store.schemaVersion);
  t.ok(Store.schemaVersion >= 3);
  t.match(
    store.reviews.forResult(7),
    [
      {
        id: 3,
        reviewer: 'dr-old',
        className: 'Benign',
        agrees: false,
        note: 'hematogones',
        createdAt: 1000,
        // Filled from the reviewed result, whose model columns are never rewritten.
        modelVersion: '2026.11.27',
        threshold: 0.069,
      },
    ],
    'the old review is kept as it was, with the model of the result it signed',
  );

  const { id } = store.results.commit(
    done('new', { modelVersion: '2026.11.27+58f4004b', threshold: 0.45723962783813477 }),
    null,
    () => [],
  );
  const added = store.reviews.add({ resultId: id, reviewer: 'dr-new', className: 'Pro-B' });
  t.match(added, { modelVersion: '2026.11.27+58f4004b', threshold: 0.45723962783813477 });
  t.match(store.reviews.forResult(id), [
    { modelVersion: '2026.11.27+58f4004b', threshold: 0.45723962783813477 },
  ]);
  t.match(store.results.get(id)?.review, { reviewer: 'dr-new', modelVersion: '2026.11.27+58f4004b' });
  t.same(
    store.reviews.all().map((r) => [r.reviewer, r.modelVersion, r.threshold]),
    [
      ['dr-old', '2026.11.27', 0.069],
      ['dr-new', '2026.11.27+58f4004b', 0.45723962783813477],
    ],
    'the export query carries both',
  );
  const columns = store.db.prepare<[], { name: string }>('PRAGMA table_info(reviews)').all();
  t.ok(columns.some((c) => c.name === 'model_version') && columns.some((c) => c.name === 'threshold'));
});

t.test('a database from a newer blastwatch is refused with a clear message', async (t) => {
  const dir = tempDir(t);
  openStore({ dataDir: dir }).close();
  const raw = new Database(join(dir, 'blastwatch.db'));
  raw.pragma(`user_version = ${Store.schemaVersion + 5}`);
  raw.close();
  t.throws(() => openStore({ dataDir: dir }), /newer than this blastwatch/);
});

t.test('same bytes twice are recorded once; same name with new bytes is a new result', async (t) => {
  const store = openStore({ dataDir: tempDir(t) });
  t.teardown(() => store.close());
  const outbox = () => [{ eventId: 'e', topic: 'result', payload: '{}' }];
  const first = store.results.commit(
    done('sha-1'),
    { path: '/c/a.jpg', size: 1, mtimeMs: 1, sha256: 'sha-1', status: 'done', attempts: 1 },
    outbox,
  );
  const again = store.results.commit(
    done('sha-1', { path: '/c/copy.jpg', file: 'copy.jpg' }),
    { path: '/c/copy.jpg', size: 1, mtimeMs: 2, sha256: 'sha-1', status: 'done', attempts: 1 },
    outbox,
  );
  t.equal(first.created, true);
  t.equal(again.created, false);
  t.equal(again.id, first.id, 'the existing result is returned');
  t.equal(store.files.get('/c/copy.jpg')?.result_id, first.id, 'the copy is linked to it');
  t.equal(store.outbox.backlog().count, 1, 'no second outbox message for known bytes');
  const renamed = store.results.commit(
    done('sha-2', { path: '/c/a.jpg', file: 'a.jpg' }),
    { path: '/c/a.jpg', size: 2, mtimeMs: 3, sha256: 'sha-2', status: 'done', attempts: 1 },
    outbox,
  );
  t.not(renamed.id, first.id, 'reused name with new bytes → new result');
  t.equal(store.results.list().length, 2);
  t.equal(store.files.get('/c/a.jpg')?.sha256, 'sha-2');
});

t.test('failed rows keep their reason and do not block a later success for the same bytes', async (t) => {
  const store = openStore({ dataDir: tempDir(t) });
  t.teardown(() => store.close());
  store.results.commit(
    {
      status: 'failed',
      sha256: 'x',
      path: '/c/x',
      file: 'x',
      origin: 'capture',
      size: 0,
      errorKind: 'empty',
      error: 'zero bytes',
      capturedAt: null,
      processedAt: 1,
    },
    null,
    () => [],
  );
  store.results.commit(
    {
      status: 'quarantined',
      sha256: 'x',
      path: '/c/x',
      file: 'x',
      origin: 'capture',
      size: 0,
      errorKind: 'truncated',
      error: 't',
      capturedAt: null,
      processedAt: 2,
    },
    null,
    () => [],
  );
  const ok = store.results.commit(done('x'), null, () => []);
  t.equal(ok.created, true);
  const rows = store.results.list();
  t.same(
    rows.map((r) => r.status),
    ['done', 'quarantined', 'failed'],
    'newest first',
  );
  t.equal(rows[2]?.errorKind, 'empty');
  t.equal(store.results.doneIdBySha('x'), ok.id);
});

t.test('outbox is read in insertion order and marked sent in a batch', async (t) => {
  const store = openStore({ dataDir: tempDir(t) });
  t.teardown(() => store.close());
  for (let i = 0; i < 5; i++) {
    store.results.commit(done(`s${i}`), null, ({ id }) => [
      { eventId: `r${i}`, topic: 'result', payload: JSON.stringify({ id }) },
      { eventId: `a${i}`, topic: 'alert', payload: JSON.stringify({ id }) },
    ]);
  }
  const all = store.outbox.pending(0, 100);
  t.same(
    all.map((r) => r.event_id),
    ['r0', 'a0', 'r1', 'a1', 'r2', 'a2', 'r3', 'a3', 'r4', 'a4'],
  );
  t.same(
    store.outbox.pending(all[3]!.id, 2).map((r) => r.event_id),
    ['r2', 'a2'],
    'after a cursor',
  );
  store.outbox.markSent([all[0]!.id, all[1]!.id, all[2]!.id]);
  t.equal(store.outbox.backlog().count, 7);
  t.equal(store.outbox.pending(0, 1)[0]?.event_id, 'a1', 'oldest unsent first');
  const r0 = store.results.get(Number(JSON.parse(all[0]!.payload).id));
  t.same(r0?.delivery, { queued: 2, sent: 2 });
});

t.test(
  'sent marks and the media flag are committed (another connection sees them) and leave synchronous=FULL',
  async (t) => {
    const dir = tempDir(t);
    const store = openStore({ dataDir: dir });
    t.teardown(() => store.close());
    const { id } = store.results.commit(done('m1'), null, ({ id: rid }) => [
      { eventId: 'e1', topic: 'result', payload: JSON.stringify({ id: rid }) },
    ]);
    const [row] = store.outbox.pending(0, 10);
    store.outbox.markSent([row!.id]);
    store.results.setMedia(id, true);
    t.equal(store.db.pragma('synchronous', { simple: true }), 2, 'back to FULL for the next result');
    const other = new Database(join(dir, 'blastwatch.db'), { readonly: true });
    t.teardown(() => other.close());
    t.equal(
      (other.prepare('SELECT sent_at FROM outbox WHERE id = ?').get(row!.id) as { sent_at: number | null })
        .sent_at !== null,
      true,
      'sent mark committed',
    );
    t.equal((other.prepare('SELECT media FROM results WHERE id = ?').get(id) as { media: number }).media, 1);
  },
);

t.test('a failing outbox builder rolls the result back (one transaction)', async (t) => {
  const store = openStore({ dataDir: tempDir(t) });
  t.teardown(() => store.close());
  t.throws(() =>
    store.results.commit(
      done('boom'),
      { path: '/c/b', size: 1, mtimeMs: 1, sha256: 'boom', status: 'done', attempts: 1 },
      () => {
        throw new Error('payload bug');
      },
    ),
  );
  t.equal(store.results.list().length, 0, 'no result without its outbox rows');
  t.equal(store.files.get('/c/b'), undefined, 'file not marked done');
});

t.test('retention by age and by rows keeps unsent messages and file rows', async (t) => {
  const store = openStore({ dataDir: tempDir(t) });
  t.teardown(() => store.close());
  const now = Date.now();
  const old = store.results.commit(
    done('old', { processedAt: now - 40 * 86_400_000 }),
    { path: '/c/old', size: 1, mtimeMs: 1, sha256: 'old', status: 'done', attempts: 1 },
    () => [{ eventId: 'o', topic: 'result', payload: '{}' }],
  );
  store.reviews.add({ resultId: old.id, reviewer: 'dr', className: 'Benign' });
  const ids: number[] = [];
  for (let i = 0; i < 4; i++)
    ids.push(store.results.commit(done(`n${i}`, { processedAt: now - i }), null, () => []).id);
  const removed = store.retention.apply({ days: 30, maxRows: 0, now }).ids;
  t.same(removed, [old.id]);
  t.equal(store.results.get(old.id), undefined);
  t.equal(store.outbox.backlog().count, 1, 'unsent message survives retention');
  t.equal(store.files.get('/c/old')?.status, 'done', 'file row stays: the image is not classified again');
  t.equal(store.files.get('/c/old')?.result_id, null);
  t.equal(store.reviews.forResult(old.id).length, 0, 'reviews go with the result');
  const removed2 = store.retention.apply({ days: 0, maxRows: 2, now }).ids;
  t.same(removed2.sort(), ids.slice(0, 2).sort(), 'oldest rows beyond the limit');
  t.equal(store.results.list().length, 2);
});

t.test('reviews are an audit history', async (t) => {
  const store = openStore({ dataDir: tempDir(t) });
  t.teardown(() => store.close());
  const { id } = store.results.commit(done('r'), null, () => []);
  store.reviews.add({ resultId: id, reviewer: 'dr-a', className: 'Pro-B' });
  store.reviews.add({ resultId: id, reviewer: 'dr-b', className: 'Benign', note: 'hematogone' });
  const hist = store.reviews.forResult(id);
  t.same(
    hist.map((r) => [r.reviewer, r.className, r.agrees]),
    [
      ['dr-a', 'Pro-B', true],
      ['dr-b', 'Benign', false],
    ],
  );
  t.equal(store.results.get(id)?.review?.reviewer, 'dr-b', 'latest review is current');
  t.throws(() => store.reviews.add({ resultId: 9999, reviewer: 'x', className: 'Benign' }), /no result/);
  t.equal(store.reviews.all().length, 2);
});

t.test('checkpoint truncates the WAL', async (t) => {
  const store = openStore({ dataDir: tempDir(t) });
  t.teardown(() => store.close());
  for (let i = 0; i < 50; i++) store.results.commit(done(`w${i}`), null, () => []);
  t.ok(store.fileSizes().wal > 0);
  store.checkpoint();
  t.equal(store.fileSizes().wal, 0);
});
