import { mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { Logger } from '../log.js';
import { MIGRATIONS } from './migrations.js';

export type ResultStatus = 'done' | 'failed' | 'quarantined';
export type FileStatus = 'pending' | ResultStatus;

/** Stage timings in milliseconds, as recorded per result. */
export interface StageTimings {
  queueMs?: number;
  readMs?: number;
  decodeMs?: number;
  segmentMs?: number;
  tensorMs?: number;
  inferMs?: number;
  storeMs?: number;
  totalMs?: number;
}

export interface NewResult {
  status: ResultStatus;
  sha256: string | null;
  path: string;
  file: string;
  origin: 'capture' | 'upload';
  size: number | null;
  className?: string | null;
  classIndex?: number | null;
  pBall?: number | null;
  flag?: boolean | null;
  needsReview?: boolean | null;
  probabilities?: Record<string, number> | null;
  modelName?: string | null;
  modelVersion?: string | null;
  threshold?: number | null;
  errorKind?: string | null;
  error?: string | null;
  attempts?: number;
  capturedAt: number | null;
  processedAt: number;
  timings?: StageTimings | null;
  image?: Record<string, unknown> | null;
  maskStats?: Record<string, unknown> | null;
}

/** A result as read back (API, dashboard, payloads). */
export interface ResultRow {
  id: number;
  status: ResultStatus;
  sha256: string | null;
  path: string;
  file: string;
  origin: string;
  size: number | null;
  class: string | null;
  class_index: number | null;
  p_ball: number | null;
  flag: boolean | null;
  needs_review: boolean | null;
  probabilities: Record<string, number> | null;
  model_name: string | null;
  model_version: string | null;
  threshold: number | null;
  error_kind: string | null;
  error: string | null;
  attempts: number;
  captured_at: number | null;
  processed_at: number;
  timings: StageTimings | null;
  image: Record<string, unknown> | null;
  mask_stats: Record<string, unknown> | null;
  media: boolean;
  /** Latest review, when one exists. */
  review: ReviewRow | null;
  /** MQTT delivery: messages queued for this result and how many a broker acknowledged. */
  delivery: { queued: number; sent: number };
}

export interface FileRow {
  path: string;
  size: number;
  mtime_ms: number;
  /** NULL on rows written before schema 2 (see migrations). */
  ino: number | null;
  ctime_ms: number | null;
  sha256: string | null;
  status: FileStatus;
  attempts: number;
  next_attempt_at: number | null;
  error_kind: string | null;
  error: string | null;
  result_id: number | null;
}

export interface FileUpdate {
  path: string;
  size: number;
  mtimeMs: number;
  /** Absent for uploads' bookkeeping paths and old callers: stored as NULL (matched on size + mtime). */
  ino?: number | null;
  ctimeMs?: number | null;
  sha256: string | null;
  status: FileStatus;
  attempts: number;
  nextAttemptAt?: number | null;
  errorKind?: string | null;
  error?: string | null;
  resultId?: number | null;
}

export interface OutboxDraft {
  eventId: string;
  topic: string;
  payload: string;
  qos?: 0 | 1 | 2;
  retain?: boolean;
}

export interface OutboxRow {
  id: number;
  event_id: string;
  result_id: number | null;
  topic: string;
  payload: string;
  qos: 0 | 1 | 2;
  retain: number;
  created_at: number;
}

export interface ReviewRow {
  id: number;
  result_id: number;
  reviewer: string;
  class: string;
  agrees: boolean;
  note: string | null;
  created_at: number;
}

type RawReview = Omit<ReviewRow, 'agrees'> & { agrees: number };

export interface ResultQuery {
  limit?: number;
  /** Only rows with id < before (keyset paging, newest first). */
  before?: number;
  status?: ResultStatus;
  flagged?: boolean;
  /** Needs review and not yet reviewed. */
  needsReview?: boolean;
  /** The dashboard's review queue: classified, flagged or uncertain, not yet reviewed. */
  reviewQueue?: boolean;
  className?: string;
  from?: number;
  to?: number;
  /** Substring of the file name. */
  search?: string;
}

/**
 * A result row as SQLite returns it: the same columns as ResultRow, with booleans as 0/1, JSON
 * as text, and the latest review and the outbox counts as joined columns.
 */
type RawResult = Omit<
  ResultRow,
  | 'flag'
  | 'needs_review'
  | 'probabilities'
  | 'timings'
  | 'image'
  | 'mask_stats'
  | 'media'
  | 'review'
  | 'delivery'
> & {
  flag: number | null;
  needs_review: number | null;
  probabilities: string | null;
  timings: string | null;
  image: string | null;
  mask_stats: string | null;
  media: number;
  review_id: number | null;
  review_reviewer: string | null;
  review_class: string | null;
  review_agrees: number | null;
  review_note: string | null;
  review_created_at: number | null;
  outbox_queued: number;
  outbox_sent: number;
};

const json = <T>(text: string | null): T | null => (text === null ? null : (JSON.parse(text) as T));
const bool = (v: number | null): boolean | null => (v === null ? null : v !== 0);

function toResultRow(r: RawResult): ResultRow {
  return {
    id: r.id,
    status: r.status,
    sha256: r.sha256,
    path: r.path,
    file: r.file,
    origin: r.origin,
    size: r.size,
    class: r.class,
    class_index: r.class_index,
    p_ball: r.p_ball,
    flag: bool(r.flag),
    needs_review: bool(r.needs_review),
    probabilities: json(r.probabilities),
    model_name: r.model_name,
    model_version: r.model_version,
    threshold: r.threshold,
    error_kind: r.error_kind,
    error: r.error,
    attempts: r.attempts,
    captured_at: r.captured_at,
    processed_at: r.processed_at,
    timings: json(r.timings),
    image: json(r.image),
    mask_stats: json(r.mask_stats),
    media: r.media !== 0,
    review:
      r.review_id === null
        ? null
        : {
            id: r.review_id,
            result_id: r.id,
            reviewer: r.review_reviewer ?? '',
            class: r.review_class ?? '',
            agrees: r.review_agrees === 1,
            note: r.review_note,
            created_at: r.review_created_at ?? 0,
          },
    delivery: { queued: r.outbox_queued, sent: r.outbox_sent },
  };
}

const RESULT_SELECT = `
  SELECT r.*,
    v.id AS review_id, v.reviewer AS review_reviewer, v.class AS review_class, v.agrees AS review_agrees,
    v.note AS review_note, v.created_at AS review_created_at,
    (SELECT count(*) FROM outbox o WHERE o.result_id = r.id) AS outbox_queued,
    (SELECT count(*) FROM outbox o WHERE o.result_id = r.id AND o.sent_at IS NOT NULL) AS outbox_sent
  FROM results r
  LEFT JOIN reviews v ON v.id = (SELECT max(id) FROM reviews WHERE result_id = r.id)`;

/** Name of the database file inside data.dir. */
export const DB_FILE = 'blastwatch.db';

export interface StoreOptions {
  dataDir: string;
  log?: Logger;
  /** busy_timeout: how long a writer waits for another process's lock before failing. */
  busyTimeoutMs?: number;
}

/**
 * The daemon's SQLite store. One connection, synchronous calls (better-sqlite3): every write is
 * a short transaction; images never enter the database (media files live beside it).
 */
export class Store {
  readonly db: Database.Database;
  readonly path: string;
  readonly dataDir: string;
  private readonly stmts;
  private readonly log: Logger | undefined;
  private identityBacklog: [number, number, string, number, number][] = [];

  constructor(opts: StoreOptions) {
    this.dataDir = opts.dataDir;
    this.log = opts.log;
    mkdirSync(opts.dataDir, { recursive: true });
    this.path = join(opts.dataDir, DB_FILE);
    this.db = new Database(this.path);
    // WAL lets the dashboard read while the pipeline writes; FULL makes a committed transaction
    // survive power loss (better-sqlite3's WAL default NORMAL may roll the last one back).
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = FULL');
    this.db.pragma(`busy_timeout = ${opts.busyTimeoutMs ?? 5000}`);
    this.db.pragma('foreign_keys = ON');
    // Keep the WAL file from growing without bound on a small SD card after a big checkpoint.
    this.db.pragma('journal_size_limit = 16777216');
    // A 4 MB page cache, not better-sqlite3's 16 MB build default: the hot pages (outbox, recent
    // results, indexes) fit, the kernel caches the rest, and the daemon's RSS stays flat instead
    // of climbing by the cache's size as the database grows past it (docs/benchmark.md).
    this.db.pragma('cache_size = -4096');
    this.migrate();
    this.stmts = this.prepare();
  }

  /** The schema version this build writes (= number of migrations). */
  static get schemaVersion(): number {
    return MIGRATIONS.length;
  }

  private migrate(): void {
    const current = this.db.pragma('user_version', { simple: true }) as number;
    if (current > MIGRATIONS.length) {
      throw new Error(
        `${this.path}: database schema version ${current} is newer than this blastwatch (${MIGRATIONS.length}); ` +
          'upgrade blastwatch or restore an older database',
      );
    }
    for (let v = current; v < MIGRATIONS.length; v++) {
      const step = MIGRATIONS[v] as string;
      this.db.transaction(() => {
        this.db.exec(step);
        this.db.pragma(`user_version = ${v + 1}`);
      })();
      this.log?.info({ version: v + 1 }, 'database migrated');
    }
  }

  private prepare() {
    const db = this.db;
    return {
      fileGet: db.prepare<[string], FileRow>('SELECT * FROM files WHERE path = ?'),
      fileUpsert: db.prepare(
        `INSERT INTO files (path, size, mtime_ms, ino, ctime_ms, sha256, status, attempts, next_attempt_at, error_kind, error, result_id, updated_at)
         VALUES (@path, @size, @mtimeMs, @ino, @ctimeMs, @sha256, @status, @attempts, @nextAttemptAt, @errorKind, @error, @resultId, @now)
         ON CONFLICT (path) DO UPDATE SET size = excluded.size, mtime_ms = excluded.mtime_ms, ino = excluded.ino,
           ctime_ms = excluded.ctime_ms, sha256 = excluded.sha256,
           status = excluded.status, attempts = excluded.attempts, next_attempt_at = excluded.next_attempt_at,
           error_kind = excluded.error_kind, error = excluded.error, result_id = excluded.result_id,
           updated_at = excluded.updated_at`,
      ),
      fileDelete: db.prepare('DELETE FROM files WHERE path = ?'),
      fileAdoptIdentity: db.prepare(
        'UPDATE files SET ino = ?, ctime_ms = ? WHERE path = ? AND ino IS NULL AND size = ? AND mtime_ms = ?',
      ),
      filesPending: db.prepare<[], FileRow>(
        "SELECT * FROM files WHERE status = 'pending' ORDER BY next_attempt_at",
      ),
      doneBySha: db.prepare<[string], { id: number }>(
        "SELECT id FROM results WHERE sha256 = ? AND status = 'done'",
      ),
      resultInsert: db.prepare(
        `INSERT INTO results (status, sha256, path, file, origin, size, class, class_index, p_ball, flag, needs_review,
           probabilities, model_name, model_version, threshold, error_kind, error, attempts, captured_at, processed_at,
           timings, image, mask_stats)
         VALUES (@status, @sha256, @path, @file, @origin, @size, @className, @classIndex, @pBall, @flag, @needsReview,
           @probabilities, @modelName, @modelVersion, @threshold, @errorKind, @error, @attempts, @capturedAt,
           @processedAt, @timings, @image, @maskStats)`,
      ),
      resultGet: db.prepare<[number], RawResult>(`${RESULT_SELECT} WHERE r.id = ?`),
      resultSetMedia: db.prepare('UPDATE results SET media = ? WHERE id = ?'),
      resultSetPath: db.prepare('UPDATE results SET path = ? WHERE id = ?'),
      outboxInsert: db.prepare(
        `INSERT INTO outbox (event_id, result_id, topic, payload, qos, retain, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?)`,
      ),
      outboxPending: db.prepare<[number, number], OutboxRow>(
        `SELECT id, event_id, result_id, topic, payload, qos, retain, created_at FROM outbox
         WHERE sent_at IS NULL AND id > ? ORDER BY id LIMIT ?`,
      ),
      outboxMarkSent: db.prepare('UPDATE outbox SET sent_at = ?, attempts = attempts + 1 WHERE id = ?'),
      outboxBacklog: db.prepare<[], { n: number; oldest: number | null }>(
        'SELECT count(*) AS n, min(created_at) AS oldest FROM outbox WHERE sent_at IS NULL',
      ),
      outboxPruneSent: db.prepare('DELETE FROM outbox WHERE sent_at IS NOT NULL AND sent_at < ?'),
      reviewInsert: db.prepare(
        `INSERT INTO reviews (result_id, reviewer, class, agrees, note, created_at) VALUES (?, ?, ?, ?, ?, ?)`,
      ),
      reviewsFor: db.prepare<[number], RawReview>('SELECT * FROM reviews WHERE result_id = ? ORDER BY id'),
      counts: db.prepare<[], { status: string; n: number; flagged: number }>(
        'SELECT status, count(*) AS n, sum(flag = 1) AS flagged FROM results GROUP BY status',
      ),
      lastProcessed: db.prepare<[], { t: number | null }>('SELECT max(processed_at) AS t FROM results'),
      syncNormal: db.prepare('PRAGMA synchronous = NORMAL'),
      syncFull: db.prepare('PRAGMA synchronous = FULL'),
    };
  }

  // ---- files --------------------------------------------------------------------------------

  /** What is known about a capture path (one indexed lookup). */
  fileState(path: string): FileRow | undefined {
    return this.stmts.fileGet.get(path);
  }

  /** Records a file's state (retry scheduled, failure, link to an existing result). */
  putFile(update: FileUpdate): void {
    this.stmts.fileUpsert.run(this.fileParams(update));
  }

  /**
   * Gives a row written before schema 2 (no inode/ctime) the identity of the file it still
   * matches on size + mtime. Batched into one transaction per tick: the first scan after an
   * upgrade meets every old file at once, and a commit each would fsync thousands of times.
   */
  adoptFileIdentity(path: string, size: number, mtimeMs: number, ino: number, ctimeMs: number): void {
    this.identityBacklog.push([ino, ctimeMs, path, size, mtimeMs]);
    if (this.identityBacklog.length === 1) setImmediate(() => this.flushIdentities());
  }

  private flushIdentities(): void {
    const batch = this.identityBacklog;
    this.identityBacklog = [];
    if (batch.length === 0 || !this.db.open) return;
    try {
      this.db.transaction(() => {
        for (const args of batch) this.stmts.fileAdoptIdentity.run(...args);
      })();
    } catch (err) {
      // Harmless: the rows stay without identity and are adopted at the next sighting.
      this.log?.warn({ err: (err as Error).message }, 'could not record file identities');
    }
  }

  forgetFile(path: string): void {
    this.stmts.fileDelete.run(path);
  }

  /** Files waiting for a retry, soonest first (to re-arm timers after a restart). */
  pendingFiles(): FileRow[] {
    return this.stmts.filesPending.all();
  }

  private fileParams(u: FileUpdate) {
    return {
      path: u.path,
      size: u.size,
      mtimeMs: u.mtimeMs,
      ino: u.ino ?? null,
      ctimeMs: u.ctimeMs ?? null,
      sha256: u.sha256,
      status: u.status,
      attempts: u.attempts,
      nextAttemptAt: u.nextAttemptAt ?? null,
      errorKind: u.errorKind ?? null,
      error: u.error ?? null,
      resultId: u.resultId ?? null,
      now: Date.now(),
    };
  }

  // ---- results ------------------------------------------------------------------------------

  /** The id of the successful result for these bytes, if any. */
  doneResultBySha(sha256: string): number | undefined {
    return this.stmts.doneBySha.get(sha256)?.id;
  }

  /**
   * Writes a result, its outbox messages and the file's state in ONE transaction: either all of
   * them survive a crash or none does, so a stored result is always published eventually.
   * `outbox` gets the new id (payloads carry it). A `done` result whose bytes are already known
   * is not inserted again: the existing id is returned with `created: false`.
   */
  commitResult(
    result: NewResult,
    file: Omit<FileUpdate, 'resultId'> | null,
    outbox: (id: number) => OutboxDraft[],
  ): { id: number; created: boolean } {
    return this.db.transaction(() => {
      if (result.status === 'done' && result.sha256) {
        const existing = this.stmts.doneBySha.get(result.sha256);
        if (existing) {
          if (file) this.stmts.fileUpsert.run(this.fileParams({ ...file, resultId: existing.id }));
          return { id: existing.id, created: false };
        }
      }
      const info = this.stmts.resultInsert.run({
        status: result.status,
        sha256: result.sha256,
        path: result.path,
        file: result.file,
        origin: result.origin,
        size: result.size,
        className: result.className ?? null,
        classIndex: result.classIndex ?? null,
        pBall: result.pBall ?? null,
        flag: result.flag === undefined || result.flag === null ? null : result.flag ? 1 : 0,
        needsReview:
          result.needsReview === undefined || result.needsReview === null ? null : result.needsReview ? 1 : 0,
        probabilities: result.probabilities ? JSON.stringify(result.probabilities) : null,
        modelName: result.modelName ?? null,
        modelVersion: result.modelVersion ?? null,
        threshold: result.threshold ?? null,
        errorKind: result.errorKind ?? null,
        error: result.error ?? null,
        attempts: result.attempts ?? 1,
        capturedAt: result.capturedAt,
        processedAt: result.processedAt,
        timings: result.timings ? JSON.stringify(result.timings) : null,
        image: result.image ? JSON.stringify(result.image) : null,
        maskStats: result.maskStats ? JSON.stringify(result.maskStats) : null,
      });
      const id = Number(info.lastInsertRowid);
      const now = Date.now();
      for (const m of outbox(id)) {
        this.stmts.outboxInsert.run(m.eventId, id, m.topic, m.payload, m.qos ?? 1, m.retain ? 1 : 0, now);
      }
      if (file) this.stmts.fileUpsert.run(this.fileParams({ ...file, resultId: id }));
      return { id, created: true };
    })();
  }

  /** Updates the timings JSON after the fact (the store stage's own duration is known only then). */
  setTimings(id: number, timings: StageTimings): void {
    this.db.prepare('UPDATE results SET timings = ? WHERE id = ?').run(JSON.stringify(timings), id);
  }

  setMedia(id: number, present: boolean): void {
    // The media files themselves are written without fsync: the flag needs no more durability.
    this.withoutWaitingForDisk(() => this.stmts.resultSetMedia.run(present ? 1 : 0, id));
  }

  /**
   * Runs `write` in a transaction committed with synchronous=NORMAL: written to the WAL, but with
   * no fsync of its own. Only for bookkeeping whose loss on power failure is harmless (a "sent"
   * mark: the message goes out again with the same event_id; the media flag). Every later FULL
   * commit (each result) fsyncs the WAL and with it this write, and the order of writes is kept,
   * so it can never outlive a result it depends on. A daemon crash (not a power loss) loses
   * nothing: the WAL is in the page cache. Saves an fsync per image on the event loop, where
   * better-sqlite3 waits for it.
   */
  private withoutWaitingForDisk<T>(write: () => T): T {
    this.stmts.syncNormal.run();
    try {
      return this.db.transaction(write)();
    } finally {
      this.stmts.syncFull.run();
    }
  }

  /** After a processed file was moved out of the capture folder. */
  setResultPath(id: number, path: string): void {
    this.stmts.resultSetPath.run(path, id);
  }

  getResult(id: number): ResultRow | undefined {
    const raw = this.stmts.resultGet.get(id);
    return raw ? toResultRow(raw) : undefined;
  }

  /** Newest first, with optional filters (keyset paging with `before`). */
  listResults(q: ResultQuery = {}): ResultRow[] {
    const where: string[] = [];
    const params: unknown[] = [];
    if (q.before !== undefined) {
      where.push('r.id < ?');
      params.push(q.before);
    }
    if (q.status) {
      where.push('r.status = ?');
      params.push(q.status);
    }
    if (q.flagged !== undefined) where.push(q.flagged ? 'r.flag = 1' : '(r.flag = 0 OR r.flag IS NULL)');
    if (q.needsReview) where.push('r.needs_review = 1 AND v.id IS NULL');
    if (q.reviewQueue)
      where.push("r.status = 'done' AND (r.flag = 1 OR r.needs_review = 1) AND v.id IS NULL");
    if (q.className) {
      where.push('r.class = ?');
      params.push(q.className);
    }
    if (q.from !== undefined) {
      where.push('r.processed_at >= ?');
      params.push(q.from);
    }
    if (q.to !== undefined) {
      where.push('r.processed_at < ?');
      params.push(q.to);
    }
    if (q.search) {
      where.push("r.file LIKE ? ESCAPE '\\'");
      params.push(`%${q.search.replace(/[\\%_]/g, '\\$&')}%`);
    }
    const limit = Math.max(1, Math.min(q.limit ?? 50, 1000));
    const sql = `${RESULT_SELECT} ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY r.id DESC LIMIT ${limit}`;
    return (this.db.prepare(sql).all(...params) as RawResult[]).map(toResultRow);
  }

  /** Results per status (and flagged count), for metrics and health. */
  counts(): { done: number; failed: number; quarantined: number; flagged: number } {
    const out = { done: 0, failed: 0, quarantined: 0, flagged: 0 };
    for (const row of this.stmts.counts.all()) {
      if (row.status === 'done' || row.status === 'failed' || row.status === 'quarantined')
        out[row.status] = row.n;
      out.flagged += row.flagged ?? 0;
    }
    return out;
  }

  lastProcessedAt(): number | null {
    return this.stmts.lastProcessed.get()?.t ?? null;
  }

  /** Results per day (UTC) and class over the last `days` days, for the dashboard's chart. */
  dailyCounts(days: number): { day: string; class: string; n: number }[] {
    const since = Date.now() - days * 86_400_000;
    return this.db
      .prepare(
        `SELECT strftime('%Y-%m-%d', processed_at / 1000, 'unixepoch') AS day, coalesce(class, status) AS class,
           count(*) AS n FROM results WHERE processed_at >= ? GROUP BY day, class ORDER BY day`,
      )
      .all(since) as { day: string; class: string; n: number }[];
  }

  // ---- reviews ------------------------------------------------------------------------------

  /** Appends a review (audit history: earlier reviews are kept). */
  addReview(r: { resultId: number; reviewer: string; className: string; note?: string | null }): ReviewRow {
    const result = this.stmts.resultGet.get(r.resultId);
    if (!result) throw new Error(`no result ${r.resultId}`);
    const now = Date.now();
    const agrees = result.class === r.className;
    const info = this.stmts.reviewInsert.run(
      r.resultId,
      r.reviewer,
      r.className,
      agrees ? 1 : 0,
      r.note ?? null,
      now,
    );
    return {
      id: Number(info.lastInsertRowid),
      result_id: r.resultId,
      reviewer: r.reviewer,
      class: r.className,
      agrees,
      note: r.note ?? null,
      created_at: now,
    };
  }

  reviewsFor(resultId: number): ReviewRow[] {
    return this.stmts.reviewsFor.all(resultId).map((r) => ({ ...r, agrees: Boolean(r.agrees) }));
  }

  /** Every review with its result (for CSV/JSON export), oldest first. */
  allReviews(): (ReviewRow & {
    file: string;
    sha256: string | null;
    model_class: string | null;
    path: string;
  })[] {
    return (
      this.db
        .prepare(
          `SELECT v.*, r.file, r.sha256, r.class AS model_class, r.path FROM reviews v
           JOIN results r ON r.id = v.result_id ORDER BY v.id`,
        )
        .all() as (RawReview & {
        file: string;
        sha256: string | null;
        model_class: string | null;
        path: string;
      })[]
    ).map((r) => ({ ...r, agrees: Boolean(r.agrees) }));
  }

  // ---- outbox -------------------------------------------------------------------------------

  /** Unsent messages in order, after `afterId`. */
  pendingOutbox(afterId: number, limit: number): OutboxRow[] {
    return this.stmts.outboxPending.all(afterId, limit);
  }

  /** Marks messages acknowledged by the broker, in one transaction (fewer SD card writes). */
  markSent(ids: readonly number[], at = Date.now()): void {
    if (ids.length === 0) return;
    // A mark lost to a power cut means one more delivery of the same event_id (at-least-once, as
    // after any crash between PUBACK and this write), never a lost message: no fsync of its own.
    this.withoutWaitingForDisk(() => {
      for (const id of ids) this.stmts.outboxMarkSent.run(at, id);
    });
  }

  outboxBacklog(): { count: number; oldestCreatedAt: number | null } {
    const row = this.stmts.outboxBacklog.get();
    return { count: row?.n ?? 0, oldestCreatedAt: row?.oldest ?? null };
  }

  // ---- maintenance --------------------------------------------------------------------------

  /**
   * Deletes results older than `days` and beyond `maxRows` (0 = no limit for either), their
   * reviews and sent outbox rows (file rows stay, unlinked, so old images are not re-classified). Unsent outbox rows are kept: delivery beats
   * retention. Returns the deleted result ids (to remove their media files) and the uploaded
   * images that expired with them.
   */
  applyRetention(opts: { days: number; maxRows: number; now?: number }): {
    ids: number[];
    uploadPaths: string[];
  } {
    const now = opts.now ?? Date.now();
    return this.db.transaction(() => {
      const ids: number[] = [];
      if (opts.days > 0) {
        const cutoff = now - opts.days * 86_400_000;
        for (const r of this.db.prepare('SELECT id FROM results WHERE processed_at < ?').all(cutoff) as {
          id: number;
        }[])
          ids.push(r.id);
      }
      if (opts.maxRows > 0) {
        for (const r of this.db
          .prepare('SELECT id FROM results ORDER BY id DESC LIMIT -1 OFFSET ?')
          .all(opts.maxRows) as { id: number }[])
          ids.push(r.id);
      }
      const unique = [...new Set(ids)];
      const uploadPaths: string[] = [];
      const getUpload = this.db.prepare<[number], { path: string }>(
        "SELECT path FROM results WHERE id = ? AND origin = 'upload'",
      );
      const delOutbox = this.db.prepare('DELETE FROM outbox WHERE result_id = ? AND sent_at IS NOT NULL');
      const delResult = this.db.prepare('DELETE FROM results WHERE id = ?');
      const detachOutbox = this.db.prepare('UPDATE outbox SET result_id = NULL WHERE result_id = ?');
      for (const id of unique) {
        // The file row stays (result_id becomes NULL through the foreign key): an old image still
        // in the capture folder must not be classified again after its result expired.
        const upload = getUpload.get(id);
        // Uploaded images live in data.dir/uploads (ours): they expire with their result.
        if (upload && upload.path.startsWith(join(this.dataDir, 'uploads'))) uploadPaths.push(upload.path);
        delOutbox.run(id);
        detachOutbox.run(id);
        delResult.run(id);
      }
      // Sent messages are kept a week for the dashboard's delivery state, then dropped.
      this.stmts.outboxPruneSent.run(now - 7 * 86_400_000);
      return { ids: unique, uploadPaths };
    })();
  }

  /** Truncating checkpoint: folds the WAL into the database and shrinks the WAL file. */
  checkpoint(): { busy: number; log: number; checkpointed: number } {
    const row = this.db.pragma('wal_checkpoint(TRUNCATE)') as {
      busy: number;
      log: number;
      checkpointed: number;
    }[];
    return row[0] ?? { busy: 0, log: 0, checkpointed: 0 };
  }

  /** Sizes of the database and its WAL, in bytes. */
  fileSizes(): { db: number; wal: number } {
    const size = (p: string) => {
      try {
        return statSync(p).size;
      } catch {
        return 0;
      }
    };
    return { db: size(this.path), wal: size(`${this.path}-wal`) };
  }

  integrityCheck(): string {
    return this.db.pragma('integrity_check', { simple: true }) as string;
  }

  get open(): boolean {
    return this.db.open;
  }

  close(): void {
    if (!this.db.open) return;
    this.flushIdentities();
    try {
      this.checkpoint();
    } catch (err) {
      this.log?.warn({ err }, 'checkpoint on close failed');
    }
    this.db.close();
  }
}

export function openStore(opts: StoreOptions): Store {
  return new Store(opts);
}
