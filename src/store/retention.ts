import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type Database from 'better-sqlite3';
import type { MediaStore } from './media.js';

/** Sent messages are kept this long for the dashboard's delivery state, then dropped. */
const SENT_KEEP_MS = 7 * 86_400_000;

/**
 * Deletes old results with their reviews, sent outbox rows, media files and uploaded images.
 * A specimen goes whole or not at all: its results are deleted only when every one of them is due
 * (so `retention_max_rows` may be exceeded by the specimens that straddle it). An unsigned
 * specimen then goes with its audit trail and sessions; a signed one keeps its row, sign-offs and
 * audit trail for good (the lab's record of what was signed), only its images' results go.
 */
export class Retention {
  private readonly stmts;

  constructor(
    private readonly db: Database.Database,
    private readonly dataDir: string,
    private readonly media: Pick<MediaStore, 'remove'>,
  ) {
    this.stmts = {
      olderThan: db.prepare<[number], { id: number }>('SELECT id FROM results WHERE processed_at < ?'),
      beyond: db.prepare<[number], { id: number }>(
        'SELECT id FROM results ORDER BY id DESC LIMIT -1 OFFSET ?',
      ),
      upload: db.prepare<[number], { path: string }>(
        "SELECT path FROM results WHERE id = ? AND origin = 'upload'",
      ),
      deleteSentOutbox: db.prepare('DELETE FROM outbox WHERE result_id = ? AND sent_at IS NOT NULL'),
      detachOutbox: db.prepare('UPDATE outbox SET result_id = NULL WHERE result_id = ?'),
      deleteResult: db.prepare('DELETE FROM results WHERE id = ?'),
      pruneSent: db.prepare('DELETE FROM outbox WHERE sent_at IS NOT NULL AND sent_at < ?'),
      specimenOf: db.prepare<[number], { specimen_id: number }>(
        'SELECT specimen_id FROM specimen_images WHERE result_id = ?',
      ),
      members: db.prepare<[number], { result_id: number }>(
        'SELECT result_id FROM specimen_images WHERE specimen_id = ?',
      ),
      unsigned: db.prepare<[number], { id: number }>(
        "SELECT id FROM specimens WHERE id = ? AND status IN ('open', 'awaiting_signoff')",
      ),
      deleteAudit: db.prepare('DELETE FROM specimen_audit WHERE specimen_id = ?'),
      deleteSessions: db.prepare('DELETE FROM specimen_sessions WHERE specimen_id = ?'),
      deleteMembers: db.prepare('DELETE FROM specimen_images WHERE specimen_id = ?'),
      deleteSpecimen: db.prepare('DELETE FROM specimens WHERE id = ?'),
    };
  }

  /**
   * Deletes results older than `days` and beyond `maxRows` (0 = no limit for either), their
   * reviews and sent outbox rows (file rows stay, unlinked, so old images are not re-classified).
   * Unsent outbox rows are kept: delivery beats retention. Returns the deleted result ids (to
   * remove their pictures) and the uploaded images that expired with them.
   */
  apply(opts: { days: number; maxRows: number; now?: number }): { ids: number[]; uploadPaths: string[] } {
    const now = opts.now ?? Date.now();
    return this.db.transaction(() => {
      const ids: number[] = [];
      if (opts.days > 0)
        for (const r of this.stmts.olderThan.all(now - opts.days * 86_400_000)) ids.push(r.id);
      if (opts.maxRows > 0) for (const r of this.stmts.beyond.all(opts.maxRows)) ids.push(r.id);
      const { unique, unsignedSpecimens } = this.wholeSpecimens(new Set(ids));
      const uploadPaths: string[] = [];
      const uploads = join(this.dataDir, 'uploads');
      for (const id of unique) {
        // The file row stays (result_id becomes NULL through the foreign key): an old image still
        // in the capture folder must not be classified again after its result expired.
        const upload = this.stmts.upload.get(id);
        // Uploaded images live in data.dir/uploads (ours): they expire with their result.
        if (upload && upload.path.startsWith(uploads)) uploadPaths.push(upload.path);
        this.stmts.deleteSentOutbox.run(id);
        this.stmts.detachOutbox.run(id);
        this.stmts.deleteResult.run(id);
      }
      for (const specimenId of unsignedSpecimens) {
        // Audit first: its trigger lets rows go only while the specimen exists unsigned.
        this.stmts.deleteAudit.run(specimenId);
        this.stmts.deleteSessions.run(specimenId);
        this.stmts.deleteMembers.run(specimenId);
        this.stmts.deleteSpecimen.run(specimenId);
      }
      this.stmts.pruneSent.run(now - SENT_KEEP_MS);
      return { ids: unique, uploadPaths };
    })();
  }

  /**
   * The due results without any that would split a specimen (one of its results not due), and the
   * unsigned specimens all of whose results are due (they go with them).
   */
  private wholeSpecimens(due: Set<number>): { unique: number[]; unsignedSpecimens: number[] } {
    const verdicts = new Map<number, boolean>();
    for (const id of due) {
      const specimenId = this.stmts.specimenOf.get(id)?.specimen_id;
      if (specimenId === undefined || verdicts.has(specimenId)) continue;
      verdicts.set(
        specimenId,
        this.stmts.members.all(specimenId).every((m) => due.has(m.result_id)),
      );
    }
    const unsignedSpecimens: number[] = [];
    for (const [specimenId, whole] of verdicts) {
      if (!whole) {
        for (const m of this.stmts.members.all(specimenId)) due.delete(m.result_id);
      } else if (this.stmts.unsigned.get(specimenId)) unsignedSpecimens.push(specimenId);
    }
    return { unique: [...due], unsignedSpecimens };
  }

  /** `apply`, then deletes the pictures and uploaded images of the removed results. */
  run(opts: { days: number; maxRows: number }): number {
    const removed = this.apply(opts);
    if (removed.ids.length > 0) this.media.remove(removed.ids);
    for (const path of removed.uploadPaths) void rm(path, { force: true });
    return removed.ids.length;
  }
}
