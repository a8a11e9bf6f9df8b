/**
 * The `out_of_domain` status in the store: the upgrade of a schema-3 database file (the table
 * rebuild keeps ids, rows, reviews, file links and indexes), the gate's judgement round-tripped,
 * one result per content hash whatever the gate said, and which results wait in the review queue
 * (a withheld benign call does; a black frame does not).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import t from 'tap';
import { classifiedResult } from '../helpers/results.js';
import type { DomainCheck } from '../../src/domain/applicability.js';
import type { NewResult } from '../../src/domain/result.js';
import { asksForReview } from '../../src/domain/review.js';
import { openStore, Store } from '../../src/store/index.js';
import { applyMigrations } from '../../src/store/migrations.js';

function tempDir(t: { teardown(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'bw-store-ood-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const blackFrame: DomainCheck = {
  in: false,
  reasons: ['underexposed', 'clipping'],
  scores: { meanLuma: 3.5, clippedShare: 0.97 },
};

const classified = (sha: string, over: Partial<NewResult> = {}): NewResult =>
  classifiedResult(sha, { domain: { in: true, reasons: [], scores: { meanLuma: 180 } }, ...over });

/** No verdict: what the pipeline writes for an image the gate refused. */
const outOfDomain = (sha: string, over: Partial<NewResult> = {}): NewResult =>
  classified(sha, {
    status: 'out_of_domain',
    className: null,
    classIndex: null,
    pBall: null,
    flag: null,
    needsReview: null,
    domain: blackFrame,
    ...over,
  });

const indexNames = (db: Database.Database): string[] =>
  (
    db
      .prepare(
        "SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'results' AND sql IS NOT NULL",
      )
      .all() as { name: string }[]
  )
    .map((r) => r.name)
    .sort();

/** A database file as schema 3 left it: a reviewed result linked from its file row, a failure, an outbox row. */
function schema3Database(path: string, extra?: (db: Database.Database) => void): void {
  const raw = new Database(path);
  raw.pragma('foreign_keys = ON');
  applyMigrations(raw, 0, 3);
  raw.exec(`
    INSERT INTO results (id, status, sha256, path, file, class, p_ball, flag, needs_review, model_name,
      model_version, threshold, processed_at)
      VALUES (7, 'done', 'aa', '/c/a.jpg', 'a.jpg', 'Pro-B', 0.9, 1, 0, 'm', '2026.11.27+58f4004b', 0.457, 1000);
    INSERT INTO results (id, status, sha256, path, file, error_kind, error, processed_at)
      VALUES (12, 'failed', NULL, '/c/b.jpg', 'b.jpg', 'unsupported', 'not an image', 2000);
    INSERT INTO reviews (id, result_id, reviewer, class, agrees, note, created_at, model_version, threshold)
      VALUES (3, 7, 'dr-lee', 'Pro-B', 1, NULL, 1500, '2026.11.27+58f4004b', 0.457);
    INSERT INTO files (path, size, mtime_ms, sha256, status, attempts, result_id, updated_at)
      VALUES ('/c/a.jpg', 10, 1.5, 'aa', 'done', 1, 7, 1);
    INSERT INTO outbox (event_id, result_id, topic, payload, created_at) VALUES ('e1', 7, 'result', '{}', 1000);
  `);
  extra?.(raw);
  raw.close();
}

t.test(
  'schema 3 → current: the results rebuild keeps ids, rows, reviews, file links and indexes',
  async (t) => {
    const dir = tempDir(t);
    const path = join(dir, 'blastwatch.db');
    schema3Database(path);
    const before = new Database(path);
    const indexesBefore = indexNames(before);
    before.close();

    const store = openStore({ dataDir: dir });
    t.teardown(() => store.close());
    t.equal(store.db.pragma('user_version', { simple: true }), Store.schemaVersion);
    t.ok(Store.schemaVersion >= 4);
    t.match(store.results.get(7), {
      id: 7,
      status: 'done',
      sha256: 'aa',
      className: 'Pro-B',
      flag: true,
      modelVersion: '2026.11.27+58f4004b',
      domain: null,
      review: { id: 3, reviewer: 'dr-lee' },
      delivery: { queued: 1, sent: 0 },
    });
    t.match(store.results.get(12), { id: 12, status: 'failed', errorKind: 'unsupported', domain: null });
    t.equal(store.reviews.forResult(7).length, 1, 'the drop did not cascade to the reviews');
    t.equal(store.files.get('/c/a.jpg')?.result_id, 7, 'the drop did not unlink the file row');
    t.same(
      indexNames(store.db),
      indexesBefore
        .filter((n) => n !== 'results_sha256_done')
        .concat('results_sha256_classified')
        .sort(),
      'every index is back; the hash uniqueness now covers out_of_domain',
    );
    t.equal(store.integrityCheck(), 'ok');
    t.same(store.db.pragma('foreign_key_check'), []);
    t.equal(store.db.pragma('foreign_keys', { simple: true }), 1, 'foreign keys are on again');

    // The references still point at the rebuilt table: deleting a result cascades and unlinks.
    const id = store.results.commit(outOfDomain('bb'), null, () => []).id;
    t.ok(id > 12, 'new ids continue after the kept ones');
    store.db.prepare('DELETE FROM results WHERE id = 7').run();
    t.equal(store.reviews.forResult(7).length, 0, 'ON DELETE CASCADE still works');
    t.equal(store.files.get('/c/a.jpg')?.result_id, null, 'ON DELETE SET NULL still works');
  },
);

t.test('the rebuild carries over a column another migration added to results first', async (t) => {
  const dir = tempDir(t);
  schema3Database(join(dir, 'blastwatch.db'), (db) => {
    db.exec('ALTER TABLE results ADD COLUMN specimen_id INTEGER');
    db.exec('CREATE INDEX results_specimen ON results (specimen_id)');
    db.exec('UPDATE results SET specimen_id = 41 WHERE id = 7');
  });
  const store = openStore({ dataDir: dir });
  t.teardown(() => store.close());
  t.same(store.db.prepare('SELECT id, specimen_id FROM results ORDER BY id').all(), [
    { id: 7, specimen_id: 41 },
    { id: 12, specimen_id: null },
  ]);
  t.ok(indexNames(store.db).includes('results_specimen'), 'its index too');
});

t.test('out_of_domain results: stored with the judgement, no verdict, one per content hash', async (t) => {
  const store = openStore({ dataDir: tempDir(t) });
  t.teardown(() => store.close());
  const first = store.results.commit(outOfDomain('cc'), null, () => []);
  t.ok(first.created);
  const stored = store.results.get(first.id);
  t.match(stored, { status: 'out_of_domain', className: null, pBall: null, flag: null, needsReview: null });
  t.same(stored?.domain, blackFrame, 'the gate judgement round-trips');

  // The same bytes again, judged either way: one result.
  t.same(
    store.results.commit(outOfDomain('cc'), null, () => []),
    { id: first.id, created: false },
  );
  t.same(
    store.results.commit(classified('cc'), null, () => []),
    { id: first.id, created: false },
  );
  t.equal(store.results.doneIdBySha('cc'), first.id, 'the stage links a copy of these bytes to it');
  t.throws(
    () =>
      store.db
        .prepare(
          "INSERT INTO results (status, sha256, path, file, processed_at) VALUES ('out_of_domain', 'cc', 'p', 'f', 1)",
        )
        .run(),
    /UNIQUE/,
    'the database itself refuses a second row for the bytes',
  );
  t.throws(
    () =>
      store.db
        .prepare(
          "INSERT INTO results (status, sha256, path, file, processed_at) VALUES ('bogus', 'dd', 'p', 'f', 1)",
        )
        .run(),
    /CHECK/,
    'the status is still checked',
  );

  store.results.commit(classified('ee'), null, () => []);
  store.results.commit(classified('ff', { origin: 'upload' }), null, () => []);
  store.results.commit(outOfDomain('gg', { origin: 'upload' }), null, () => []);
  t.same(store.results.counts(), { done: 2, out_of_domain: 2, failed: 0, quarantined: 0, flagged: 2 });
  t.same(
    store.results
      .list({ status: 'out_of_domain' })
      .map((r) => r.sha256)
      .sort(),
    ['cc', 'gg'],
  );
  t.same(
    store.results.recentJudgements(10).map((j) => [j.inDomain, j.domain?.reasons ?? null]),
    [
      [true, []],
      [false, ['underexposed', 'clipping']],
    ],
    'captures only, newest first',
  );
  t.equal(store.results.recentJudgements(1).length, 1);
});

t.test('the review queue: what asks for a person, in SQL as in asksForReview', async (t) => {
  const store = openStore({ dataDir: tempDir(t) });
  t.teardown(() => store.close());
  const disagree: DomainCheck = { in: false, reasons: ['features_disagree'], scores: { featureMargin: 0.4 } };
  const rows: Record<string, NewResult> = {
    flagged: classified('q1'),
    uncertain: classified('q2', { flag: false, needsReview: true, pBall: 0.3 }),
    benign: classified('q3', { flag: false, className: 'Benign', classIndex: 0, pBall: 0.01 }),
    withheldBenignCall: outOfDomain('q4', { domain: disagree }),
    withheldWithOtherReasons: outOfDomain('q5', {
      domain: { in: false, reasons: ['features', 'features_disagree'], scores: {} },
    }),
    blackFrame: outOfDomain('q6'),
    neverJudged: outOfDomain('q7', { domain: null }),
    failed: classified('q8', {
      status: 'failed',
      className: null,
      classIndex: null,
      pBall: null,
      flag: null,
      needsReview: null,
      errorKind: 'decode',
      error: 'truncated',
    }),
  };
  const ids: Record<string, number> = {};
  for (const [name, r] of Object.entries(rows)) ids[name] = store.results.commit(r, null, () => []).id;
  const nameOf = (id: number) => Object.keys(ids).find((k) => ids[k] === id);
  const queued = () =>
    store.results
      .list({ reviewQueue: true, limit: 100 })
      .map((r) => nameOf(r.id))
      .sort();

  t.same(queued(), ['flagged', 'uncertain', 'withheldBenignCall', 'withheldWithOtherReasons'].sort());
  t.same(
    queued(),
    store.results
      .list({ limit: 100 })
      .filter(asksForReview)
      .map((r) => nameOf(r.id))
      .sort(),
    'the query and the rule agree on every row',
  );

  // A person's reading of a withheld field: kept like any review, leaves the queue.
  const reading = store.reviews.add({
    resultId: ids.withheldBenignCall!,
    reviewer: 'dr-lee',
    className: 'Pre-B',
  });
  t.match(reading, { className: 'Pre-B', agrees: false, modelVersion: '1', threshold: 0.5 });
  t.notOk(queued().includes('withheldBenignCall'), 'reviewed: out of the queue');
  t.match(store.results.get(ids.withheldBenignCall!), {
    status: 'out_of_domain',
    className: null,
    review: { reviewer: 'dr-lee', className: 'Pre-B', agrees: false },
  });
  t.match(store.reviews.all().at(-1), { modelClass: null, className: 'Pre-B', file: 'q4.jpg' });
});
