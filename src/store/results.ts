import type Database from 'better-sqlite3';
import type { DomainCheck, DomainReason } from '../domain/applicability.js';
import { resultOf, type NewResult, type Result, type ResultStatus } from '../domain/result.js';
import { REVIEW_QUEUE_REASONS } from '../domain/review.js';
import type { OutOfDomainReadings } from '../domain/specimen.js';
import type { FilesTable, FileUpdate } from './files.js';
import type { OutboxDraft, OutboxRow, OutboxTable } from './outbox.js';

export interface ResultQuery {
  limit?: number;
  /** Only rows with id < before (keyset paging, newest first). */
  before?: number;
  status?: ResultStatus;
  flagged?: boolean;
  /** Needs review and not yet reviewed. */
  needsReview?: boolean;
  /** The dashboard's review queue: results that ask for a person (src/domain/review.ts), not yet reviewed. */
  reviewQueue?: boolean;
  className?: string;
  from?: number;
  to?: number;
  /** Substring of the file name. */
  search?: string;
  /** The members of one specimen, or `none`: results in no specimen (the unassigned list). */
  specimen?: number | 'none';
  /** newest (default, id descending) or p_ball: the most suspicious first. */
  order?: 'newest' | 'p_ball';
}

/** A result row as SQLite returns it, with the latest review and the outbox counts joined. */
interface RawResult {
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
  flag: number | null;
  needs_review: number | null;
  probabilities: string | null;
  model_name: string | null;
  model_version: string | null;
  threshold: number | null;
  error_kind: string | null;
  error: string | null;
  attempts: number;
  captured_at: number | null;
  processed_at: number;
  timings: string | null;
  image: string | null;
  mask_stats: string | null;
  domain: string | null;
  media: number;
  review_id: number | null;
  review_reviewer: string | null;
  review_class: string | null;
  review_agrees: number | null;
  review_note: string | null;
  review_created_at: number | null;
  review_model_version: string | null;
  review_threshold: number | null;
  outbox_queued: number;
  outbox_sent: number;
}

const json = <T>(text: string | null): T | null => (text === null ? null : (JSON.parse(text) as T));
const bool = (v: number | null): boolean | null => (v === null ? null : v !== 0);
const bit = (v: boolean | null | undefined): number | null =>
  v === undefined || v === null ? null : v ? 1 : 0;
const text = (v: object | null | undefined): string | null => (v ? JSON.stringify(v) : null);

function toResult(r: RawResult): Result {
  return {
    id: r.id,
    status: r.status,
    sha256: r.sha256,
    path: r.path,
    file: r.file,
    origin: r.origin === 'upload' ? 'upload' : 'capture',
    size: r.size,
    className: r.class,
    classIndex: r.class_index,
    pBall: r.p_ball,
    flag: bool(r.flag),
    needsReview: bool(r.needs_review),
    probabilities: json(r.probabilities),
    modelName: r.model_name,
    modelVersion: r.model_version,
    threshold: r.threshold,
    errorKind: r.error_kind,
    error: r.error,
    attempts: r.attempts,
    capturedAt: r.captured_at,
    processedAt: r.processed_at,
    timings: json(r.timings),
    image: json(r.image),
    maskStats: json(r.mask_stats),
    domain: json<DomainCheck>(r.domain),
    media: r.media !== 0,
    review:
      r.review_id === null
        ? null
        : {
            id: r.review_id,
            resultId: r.id,
            reviewer: r.review_reviewer ?? '',
            className: r.review_class ?? '',
            agrees: r.review_agrees === 1,
            note: r.review_note,
            createdAt: r.review_created_at ?? 0,
            modelVersion: r.review_model_version,
            threshold: r.review_threshold,
          },
    delivery: { queued: r.outbox_queued, sent: r.outbox_sent },
  };
}

const RESULT_SELECT = `
  SELECT r.*,
    v.id AS review_id, v.reviewer AS review_reviewer, v.class AS review_class, v.agrees AS review_agrees,
    v.note AS review_note, v.created_at AS review_created_at, v.model_version AS review_model_version,
    v.threshold AS review_threshold,
    (SELECT count(*) FROM outbox o WHERE o.result_id = r.id) AS outbox_queued,
    (SELECT count(*) FROM outbox o WHERE o.result_id = r.id AND o.sent_at IS NOT NULL) AS outbox_sent
  FROM results r
  LEFT JOIN reviews v ON v.id = (SELECT max(id) FROM reviews WHERE result_id = r.id)`;

/**
 * An out-of-domain result `r` whose reasons ask for a person (asksForReview's out-of-domain half,
 * src/domain/review.ts); its parameters are REVIEW_QUEUE_REASONS.
 */
export const WITHHELD_FOR_REVIEW = `EXISTS (
  SELECT 1 FROM json_each(r.domain, '$.reasons') WHERE value IN (${REVIEW_QUEUE_REASONS.map(() => '?').join(', ')})
)`;

/** asksForReview (src/domain/review.ts) in SQL; its parameters are REVIEW_QUEUE_REASONS. */
const ASKS_FOR_REVIEW = `(
  (r.status = 'done' AND (r.flag = 1 OR r.needs_review = 1))
  OR (r.status = 'out_of_domain' AND ${WITHHELD_FOR_REVIEW})
)`;

/**
 * More writes in a new result's transaction (its specimen's membership, counts and change feed):
 * gets the stored Result, returns the outbox rows it wrote (they belong to no result).
 */
export type AlsoInTransaction = (result: Result) => readonly OutboxRow[];

/** What the daemon counts per status (and flagged), for metrics, health and the dashboard. */
export interface ResultCounts {
  done: number;
  out_of_domain: number;
  failed: number;
  quarantined: number;
  flagged: number;
}

/** The gate's judgements on the latest captured images, newest first (see `recentJudgements`). */
export interface RecentJudgement {
  inDomain: boolean;
  domain: DomainCheck | null;
}

/** Statuses that carry a classification (and so a content hash that is unique among them). */
export const CLASSIFIED = "('done', 'out_of_domain')";

/** What `commit` did: the new result, or the id of the one these bytes already have. */
export type Committed =
  { id: number; created: true; result: Result; outbox: OutboxRow[] } | { id: number; created: false };

/** The `results` table, keyed by content hash for successful classifications. */
export class ResultsTable {
  private readonly stmts;

  constructor(
    private readonly db: Database.Database,
    private readonly files: FilesTable,
    private readonly outbox: OutboxTable,
    private readonly withoutWaitingForDisk: (write: () => void) => void,
  ) {
    this.stmts = {
      classifiedBySha: db.prepare<[string], { id: number }>(
        `SELECT id FROM results WHERE sha256 = ? AND status IN ${CLASSIFIED}`,
      ),
      insert: db.prepare(
        `INSERT INTO results (status, sha256, path, file, origin, size, class, class_index, p_ball, flag, needs_review,
           probabilities, model_name, model_version, threshold, error_kind, error, attempts, captured_at, processed_at,
           timings, image, mask_stats, domain)
         VALUES (@status, @sha256, @path, @file, @origin, @size, @className, @classIndex, @pBall, @flag, @needsReview,
           @probabilities, @modelName, @modelVersion, @threshold, @errorKind, @error, @attempts, @capturedAt,
           @processedAt, @timings, @image, @maskStats, @domain)`,
      ),
      get: db.prepare<[number], RawResult>(`${RESULT_SELECT} WHERE r.id = ?`),
      setMedia: db.prepare('UPDATE results SET media = ? WHERE id = ?'),
      setPath: db.prepare('UPDATE results SET path = ? WHERE id = ?'),
      counts: db.prepare<[], { status: string; n: number; flagged: number }>(
        'SELECT status, count(*) AS n, sum(flag = 1) AS flagged FROM results GROUP BY status',
      ),
      lastProcessed: db.prepare<[], { t: number | null }>('SELECT max(processed_at) AS t FROM results'),
      outOfDomainReasons: db.prepare<[], { reason: DomainReason; n: number }>(
        `SELECT j.value AS reason, count(*) AS n FROM results r, json_each(r.domain, '$.reasons') j
         WHERE r.status = 'out_of_domain' GROUP BY j.value ORDER BY n DESC, reason`,
      ),
      // Each out-of-domain field of a specimen: its latest reading recorded by a given time, and
      // whether it asks for a person.
      outOfDomainReadings: db.prepare<
        unknown[],
        {
          id: number;
          file: string;
          review_id: number | null;
          class: string | null;
          reviewer: string | null;
          asks: number;
        }
      >(
        `SELECT r.id, r.file, v.id AS review_id, v.class, v.reviewer, ${WITHHELD_FOR_REVIEW} AS asks
         FROM specimen_images m JOIN results r ON r.id = m.result_id
         LEFT JOIN reviews v ON v.id = (SELECT max(id) FROM reviews WHERE result_id = r.id AND created_at <= ?)
         WHERE m.specimen_id = ? AND r.status = 'out_of_domain' ORDER BY r.id`,
      ),
      // Newest first by id; failures are skipped (never judged), uploads too (see recentJudgements).
      recentJudged: db.prepare<[number], { status: ResultStatus; domain: string | null }>(
        `SELECT status, domain FROM results WHERE status IN ${CLASSIFIED} AND origin = 'capture'
         ORDER BY id DESC LIMIT ?`,
      ),
    };
  }

  /** The id of the classified result (in domain or not) for these bytes, if any. */
  doneIdBySha(sha256: string): number | undefined {
    return this.stmts.classifiedBySha.get(sha256)?.id;
  }

  /**
   * Writes a result, its outbox messages and the file's state in ONE transaction: either all of
   * them survive a crash or none does, so a stored result is always published eventually.
   * `outbox` gets the new Result (payloads carry its id). A classified result (`done` or
   * `out_of_domain`) whose bytes are already known is not inserted again: the existing id is
   * returned with `created: false`. `alsoInTransaction` runs after the new row, in the same
   * transaction; `outbox` in the returned value holds the rows of both, in id order.
   */
  commit(
    result: NewResult,
    file: Omit<FileUpdate, 'resultId'> | null,
    outbox: (result: Result) => OutboxDraft[],
    alsoInTransaction?: AlsoInTransaction,
  ): Committed {
    return this.db.transaction((): Committed => {
      if ((result.status === 'done' || result.status === 'out_of_domain') && result.sha256) {
        const existing = this.stmts.classifiedBySha.get(result.sha256);
        if (existing) {
          if (file) this.files.put({ ...file, resultId: existing.id });
          return { id: existing.id, created: false };
        }
      }
      const id = Number(this.stmts.insert.run(insertParams(result)).lastInsertRowid);
      const stored = resultOf(id, result, 0);
      const drafts = outbox(stored);
      const rows = this.outbox.add(id, drafts);
      stored.delivery.queued = drafts.length;
      if (file) this.files.put({ ...file, resultId: id });
      if (alsoInTransaction) rows.push(...alsoInTransaction(stored));
      return { id, created: true, result: stored, outbox: rows };
    })();
  }

  setMedia(id: number, present: boolean): void {
    // The media files themselves are written without fsync: the flag needs no more durability.
    this.withoutWaitingForDisk(() => this.stmts.setMedia.run(present ? 1 : 0, id));
  }

  /** After a processed file was moved out of the capture folder. */
  setPath(id: number, path: string): void {
    this.stmts.setPath.run(path, id);
  }

  get(id: number): Result | undefined {
    const raw = this.stmts.get.get(id);
    return raw ? toResult(raw) : undefined;
  }

  /** Newest first, with optional filters (keyset paging with `before`). */
  list(q: ResultQuery = {}): Result[] {
    const where: string[] = [];
    const params: unknown[] = [];
    const add = (clause: string, ...values: unknown[]) => {
      where.push(clause);
      params.push(...values);
    };
    if (q.before !== undefined) add('r.id < ?', q.before);
    if (q.status) add('r.status = ?', q.status);
    if (q.flagged !== undefined) add(q.flagged ? 'r.flag = 1' : '(r.flag = 0 OR r.flag IS NULL)');
    if (q.needsReview) add('r.needs_review = 1 AND v.id IS NULL');
    if (q.reviewQueue) add(`${ASKS_FOR_REVIEW} AND v.id IS NULL`, ...REVIEW_QUEUE_REASONS);
    if (q.className) add('r.class = ?', q.className);
    if (q.from !== undefined) add('r.processed_at >= ?', q.from);
    if (q.to !== undefined) add('r.processed_at < ?', q.to);
    if (q.search) add("r.file LIKE ? ESCAPE '\\'", `%${q.search.replace(/[\\%_]/g, '\\$&')}%`);
    if (q.specimen === 'none') add('NOT EXISTS (SELECT 1 FROM specimen_images m WHERE m.result_id = r.id)');
    else if (q.specimen !== undefined)
      add('r.id IN (SELECT m.result_id FROM specimen_images m WHERE m.specimen_id = ?)', q.specimen);
    const limit = Math.max(1, Math.min(q.limit ?? 50, 1000));
    const order = q.order === 'p_ball' ? 'coalesce(r.p_ball, -1) DESC, r.id' : 'r.id DESC';
    const sql = `${RESULT_SELECT} ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY ${order} LIMIT ${limit}`;
    return (this.db.prepare(sql).all(...params) as RawResult[]).map(toResult);
  }

  /** Results per status (and flagged count), for metrics and health. */
  counts(): ResultCounts {
    const out: ResultCounts = { done: 0, out_of_domain: 0, failed: 0, quarantined: 0, flagged: 0 };
    for (const row of this.stmts.counts.all()) {
      if (row.status in out && row.status !== 'flagged') out[row.status as ResultStatus] = row.n;
      out.flagged += row.flagged ?? 0;
    }
    return out;
  }

  /**
   * The gate's judgement on the last `limit` captured images that were classified, newest first.
   * Uploads are left out: a picture sent from a phone says nothing about the microscope's camera.
   */
  recentJudgements(limit: number): RecentJudgement[] {
    return this.stmts.recentJudged.all(limit).map((r) => ({
      inDomain: r.status === 'done',
      domain: json<DomainCheck>(r.domain),
    }));
  }

  /** Out-of-domain results by reason (an image with several reasons counts under each), most frequent first. */
  outOfDomainReasons(): { reason: DomainReason; count: number }[] {
    return this.stmts.outOfDomainReasons.all().map((r) => ({ reason: r.reason, count: r.n }));
  }

  /**
   * What people had read of a specimen's out-of-domain fields at `asOf` (a signature's time): a
   * reading recorded after it belongs to the next signature, not to this one's report.
   */
  outOfDomainReadings(specimenId: number, asOf: number): OutOfDomainReadings {
    const out: OutOfDomainReadings = { byClass: {}, unreadWithheld: 0, images: [] };
    const read: { reviewId: number; image: OutOfDomainReadings['images'][number] }[] = [];
    for (const row of this.stmts.outOfDomainReadings.all(...REVIEW_QUEUE_REASONS, asOf, specimenId)) {
      if (row.review_id !== null && row.class !== null) {
        out.byClass[row.class] = (out.byClass[row.class] ?? 0) + 1;
        read.push({
          reviewId: row.review_id,
          image: { resultId: row.id, file: row.file, className: row.class, reviewer: row.reviewer ?? '' },
        });
      } else if (row.asks) out.unreadWithheld += 1;
    }
    out.images = read.sort((a, b) => a.reviewId - b.reviewId).map((r) => r.image);
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
}

function insertParams(r: NewResult) {
  return {
    status: r.status,
    sha256: r.sha256,
    path: r.path,
    file: r.file,
    origin: r.origin,
    size: r.size,
    className: r.className ?? null,
    classIndex: r.classIndex ?? null,
    pBall: r.pBall ?? null,
    flag: bit(r.flag),
    needsReview: bit(r.needsReview),
    probabilities: text(r.probabilities),
    modelName: r.modelName ?? null,
    modelVersion: r.modelVersion ?? null,
    threshold: r.threshold ?? null,
    errorKind: r.errorKind ?? null,
    error: r.error ?? null,
    attempts: r.attempts ?? 1,
    capturedAt: r.capturedAt,
    processedAt: r.processedAt,
    timings: text(r.timings),
    image: text(r.image),
    maskStats: text(r.maskStats),
    domain: text(r.domain),
  };
}
