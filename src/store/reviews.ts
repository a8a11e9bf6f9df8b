import type Database from 'better-sqlite3';
import type { Review } from '../domain/result.js';

/** A review as SQLite returns it. */
export interface ReviewRow {
  id: number;
  result_id: number;
  reviewer: string;
  class: string;
  agrees: number;
  note: string | null;
  created_at: number;
  model_version: string | null;
  threshold: number | null;
}

export function toReview(r: ReviewRow): Review {
  return {
    id: r.id,
    resultId: r.result_id,
    reviewer: r.reviewer,
    className: r.class,
    agrees: r.agrees !== 0,
    note: r.note,
    createdAt: r.created_at,
    modelVersion: r.model_version,
    threshold: r.threshold,
  };
}

/** A review with the result it is about, for the export. */
export interface ReviewWithResult extends Review {
  file: string;
  sha256: string | null;
  modelClass: string | null;
  path: string;
  pBall: number | null;
}

/** The `reviews` table: an append-only audit history (earlier reviews are kept). */
export class ReviewsTable {
  private readonly stmts;

  constructor(db: Database.Database) {
    this.stmts = {
      resultModel: db.prepare<
        [number],
        { class: string | null; model_version: string | null; threshold: number | null }
      >('SELECT class, model_version, threshold FROM results WHERE id = ?'),
      insert: db.prepare(
        `INSERT INTO reviews (result_id, reviewer, class, agrees, note, created_at, model_version, threshold)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      forResult: db.prepare<[number], ReviewRow>('SELECT * FROM reviews WHERE result_id = ? ORDER BY id'),
      all: db.prepare<[], ReviewRow & Omit<ReviewWithResult, keyof Review>>(
        `SELECT v.*, r.file, r.sha256, r.class AS modelClass, r.path, r.p_ball AS pBall FROM reviews v
         JOIN results r ON r.id = v.result_id ORDER BY v.id`,
      ),
    };
  }

  /**
   * Appends a review; `agrees` compares with the model's class, and the result's model version and
   * threshold are copied onto the review (what the reviewer signed). Throws for an unknown result.
   */
  add(r: { resultId: number; reviewer: string; className: string; note?: string | null }): Review {
    const result = this.stmts.resultModel.get(r.resultId);
    if (!result) throw new Error(`no result ${r.resultId}`);
    const now = Date.now();
    const agrees = result.class === r.className;
    const note = r.note ?? null;
    const { model_version: modelVersion, threshold } = result;
    const info = this.stmts.insert.run(
      r.resultId,
      r.reviewer,
      r.className,
      agrees ? 1 : 0,
      note,
      now,
      modelVersion,
      threshold,
    );
    const id = Number(info.lastInsertRowid);
    return {
      id,
      resultId: r.resultId,
      reviewer: r.reviewer,
      className: r.className,
      agrees,
      note,
      createdAt: now,
      modelVersion,
      threshold,
    };
  }

  /** Every review of a result, oldest first. */
  forResult(resultId: number): Review[] {
    return this.stmts.forResult.all(resultId).map(toReview);
  }

  /** Every review with its result (for CSV/JSON export), oldest first. */
  all(): ReviewWithResult[] {
    return this.stmts.all.all().map((r) => ({
      ...toReview(r),
      file: r.file,
      sha256: r.sha256,
      modelClass: r.modelClass,
      path: r.path,
      pBall: r.pBall,
    }));
  }
}
