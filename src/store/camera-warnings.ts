import type Database from 'better-sqlite3';
import {
  isCameraWatch,
  type CameraWarning,
  type RaisedCameraWarning,
  type SpecimenCameraWarning,
} from '../domain/camera-warning.js';
import { CLASSIFIED } from './results.js';

interface WarningRow {
  watch: string;
  text: string;
  first_at: number;
  last_at: number;
  images: number;
}

/** Where the counting of a window is written down (the specimens' audit trail). */
export interface CameraWarningAudit {
  addAudit(
    specimenId: number,
    actor: string,
    action: 'camera_warning_counted',
    details: object,
    at: number,
  ): void;
}

interface WindowRow {
  specimen_id: number;
  images: number;
  first_at: number;
  last_at: number;
}

/**
 * The camera warnings each specimen's images arrived under (src/domain/camera-warning.ts): one row
 * per specimen and watch, counting its images and keeping the latest words. Rows go with their
 * specimen (retention deletes an unsigned specimen whole; a signed one is kept).
 *
 * A watch judges a window of the latest captures, so it is raised some captures after the camera
 * changed. When it is first raised, the earlier captures of that window that joined a specimen are
 * counted under it too: without them the first specimen taken under a changed camera would carry
 * no warning. Which watches are raised, since which result, is kept (`camera_warning_episodes`),
 * so that a restart raises nothing anew and a window is never counted twice.
 */
export class SpecimenCameraWarnings {
  private readonly stmts;

  constructor(
    db: Database.Database,
    private readonly audit: CameraWarningAudit,
  ) {
    this.stmts = {
      upsert: db.prepare<[number, string, string, number, number, number]>(
        `INSERT INTO specimen_camera_warnings (specimen_id, watch, text, first_at, last_at, images)
         VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (specimen_id, watch) DO UPDATE SET
           text = excluded.text, first_at = min(first_at, excluded.first_at),
           last_at = max(last_at, excluded.last_at), images = images + excluded.images`,
      ),
      select: db.prepare<[number], WarningRow>(
        `SELECT watch, text, first_at, last_at, images FROM specimen_camera_warnings
         WHERE specimen_id = ? ORDER BY first_at, watch`,
      ),
      open: db.prepare<[], { id: number; watch: string }>(
        'SELECT id, watch FROM camera_warning_episodes WHERE cleared_at IS NULL',
      ),
      clear: db.prepare<[number, number, number]>(
        'UPDATE camera_warning_episodes SET cleared_at = ?, cleared_result_id = ? WHERE id = ?',
      ),
      lastCleared: db.prepare<[string], { cleared_result_id: number | null }>(
        `SELECT cleared_result_id FROM camera_warning_episodes WHERE watch = ? ORDER BY id DESC LIMIT 1`,
      ),
      raise: db.prepare<[string, number, number]>(
        'INSERT INTO camera_warning_episodes (watch, raised_at, raised_result_id) VALUES (?, ?, ?)',
      ),
      // The captures judged before `current`, newest first, as many as the window holds besides
      // it (the same captures the watches read: classified, not uploads), from `after` on.
      window: db.prepare<{ current: number; earlier: number; after: number }, WindowRow>(
        `SELECT m.specimen_id, count(*) AS images, min(r.processed_at) AS first_at,
           max(r.processed_at) AS last_at
         FROM (SELECT id, processed_at FROM results
               WHERE status IN ${CLASSIFIED} AND origin = 'capture' AND id < @current
               ORDER BY id DESC LIMIT @earlier) r
         JOIN specimen_images m ON m.result_id = r.id
         WHERE r.id >= @after
         GROUP BY m.specimen_id`,
      ),
    };
    this.raisedInTransaction = db.transaction((w, id, at) => this.applyRaised(w, id, at));
  }

  /** `applyRaised` as one transaction: an episode is never opened without its window counted. */
  private readonly raisedInTransaction: (
    warnings: readonly RaisedCameraWarning[],
    resultId: number,
    at: number,
  ) => number[];

  /** One more image joined `specimenId` while `warnings` were raised. */
  note(specimenId: number, warnings: readonly CameraWarning[], at: number): void {
    for (const w of warnings) this.stmts.upsert.run(specimenId, w.watch, w.text, at, at, 1);
  }

  /**
   * Health judged result `resultId` with `warnings` raised: each watch raised anew opens an
   * episode and counts the earlier captures of its window (since its previous episode cleared)
   * under it, in their specimens; each watch no longer raised closes its episode. Returns the
   * specimens whose warnings changed.
   */
  raised(warnings: readonly RaisedCameraWarning[], resultId: number, at: number): number[] {
    return this.raisedInTransaction(warnings, resultId, at);
  }

  private applyRaised(warnings: readonly RaisedCameraWarning[], resultId: number, at: number): number[] {
    const open = new Map(this.stmts.open.all().map((e) => [e.watch, e.id]));
    for (const [watch, id] of open)
      if (!warnings.some((w) => w.watch === watch)) this.stmts.clear.run(at, resultId, id);
    const changed = new Set<number>();
    for (const w of warnings) {
      if (open.has(w.watch)) continue;
      const after = this.stmts.lastCleared.get(w.watch)?.cleared_result_id ?? 0;
      this.stmts.raise.run(w.watch, at, resultId);
      const rows = this.stmts.window.all({ current: resultId, earlier: Math.max(0, w.window - 1), after });
      for (const r of rows) {
        this.stmts.upsert.run(r.specimen_id, w.watch, w.text, r.first_at, r.last_at, r.images);
        // Written down: it changes what a specimen says after its images arrived, maybe after
        // someone signed it (the signature's own entry keeps what the signer was told).
        this.audit.addAudit(
          r.specimen_id,
          'system',
          'camera_warning_counted',
          { watch: w.watch, images: r.images },
          at,
        );
        changed.add(r.specimen_id);
      }
    }
    return [...changed];
  }

  of(specimenId: number): SpecimenCameraWarning[] {
    return this.stmts.select
      .all(specimenId)
      .filter((r) => isCameraWatch(r.watch))
      .map((r) => ({
        watch: r.watch as SpecimenCameraWarning['watch'],
        text: r.text,
        firstAt: r.first_at,
        lastAt: r.last_at,
        images: r.images,
      }));
  }
}
