import type Database from 'better-sqlite3';
import { isCameraWatch, type CameraWarning, type SpecimenCameraWarning } from '../domain/camera-warning.js';

interface WarningRow {
  watch: string;
  text: string;
  first_at: number;
  last_at: number;
  images: number;
}

/**
 * The camera warnings each specimen's images arrived under (src/domain/camera-warning.ts): one row
 * per specimen and watch, counting its images and keeping the latest words. Rows go with their
 * specimen (retention deletes an unsigned specimen whole; a signed one is kept).
 */
export class SpecimenCameraWarnings {
  private readonly upsert: Database.Statement;
  private readonly select: Database.Statement;

  constructor(db: Database.Database) {
    this.upsert = db.prepare(
      `INSERT INTO specimen_camera_warnings (specimen_id, watch, text, first_at, last_at, images)
       VALUES (?, ?, ?, ?, ?, 1)
       ON CONFLICT (specimen_id, watch) DO UPDATE SET
         text = excluded.text, last_at = excluded.last_at, images = images + 1`,
    );
    this.select = db.prepare(
      `SELECT watch, text, first_at, last_at, images FROM specimen_camera_warnings
       WHERE specimen_id = ? ORDER BY first_at, watch`,
    );
  }

  /** One more image joined `specimenId` while `warnings` were raised. */
  note(specimenId: number, warnings: readonly CameraWarning[], at: number): void {
    for (const w of warnings) this.upsert.run(specimenId, w.watch, w.text, at, at);
  }

  of(specimenId: number): SpecimenCameraWarning[] {
    return (this.select.all(specimenId) as WarningRow[])
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
