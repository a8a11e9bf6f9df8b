import type Database from 'better-sqlite3';
import type { Logger } from '../log.js';
import type { ResultStatus } from '../domain/result.js';

export type FileStatus = 'pending' | ResultStatus;

/** A row of the `files` table: what is known about one capture path. */
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

/**
 * The `files` table: one row per capture path, so a known, unchanged path costs one indexed
 * lookup (the watcher's repeated reconciliation scans rely on it), and retries survive a restart.
 */
export class FilesTable {
  private readonly stmts;
  private identityBacklog: [number, number, string, number, number][] = [];

  constructor(
    private readonly db: Database.Database,
    private readonly log: Logger | undefined,
  ) {
    this.stmts = {
      get: db.prepare<[string], FileRow>('SELECT * FROM files WHERE path = ?'),
      upsert: db.prepare(
        `INSERT INTO files (path, size, mtime_ms, ino, ctime_ms, sha256, status, attempts, next_attempt_at, error_kind, error, result_id, updated_at)
         VALUES (@path, @size, @mtimeMs, @ino, @ctimeMs, @sha256, @status, @attempts, @nextAttemptAt, @errorKind, @error, @resultId, @now)
         ON CONFLICT (path) DO UPDATE SET size = excluded.size, mtime_ms = excluded.mtime_ms, ino = excluded.ino,
           ctime_ms = excluded.ctime_ms, sha256 = excluded.sha256,
           status = excluded.status, attempts = excluded.attempts, next_attempt_at = excluded.next_attempt_at,
           error_kind = excluded.error_kind, error = excluded.error, result_id = excluded.result_id,
           updated_at = excluded.updated_at`,
      ),
      delete: db.prepare('DELETE FROM files WHERE path = ?'),
      adoptIdentity: db.prepare(
        'UPDATE files SET ino = ?, ctime_ms = ? WHERE path = ? AND ino IS NULL AND size = ? AND mtime_ms = ?',
      ),
      pending: db.prepare<[], FileRow>(
        "SELECT * FROM files WHERE status = 'pending' ORDER BY next_attempt_at",
      ),
    };
  }

  /** What is known about a capture path (one indexed lookup). */
  get(path: string): FileRow | undefined {
    return this.stmts.get.get(path);
  }

  /** Records a file's state (retry scheduled, failure, link to a result); also inside a commit. */
  put(update: FileUpdate): void {
    const u = update;
    this.stmts.upsert.run({
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
    });
  }

  /**
   * Gives a row written before schema 2 (no inode/ctime) the identity of the file it still
   * matches on size + mtime. Batched into one transaction per tick: the first scan after an
   * upgrade meets every old file at once, and a commit each would fsync thousands of times.
   */
  adoptIdentity(path: string, size: number, mtimeMs: number, ino: number, ctimeMs: number): void {
    this.identityBacklog.push([ino, ctimeMs, path, size, mtimeMs]);
    if (this.identityBacklog.length === 1) setImmediate(() => this.flushIdentities());
  }

  /** Writes the identities adopted so far (each tick, and before the connection closes). */
  flushIdentities(): void {
    const batch = this.identityBacklog;
    this.identityBacklog = [];
    if (batch.length === 0 || !this.db.open) return;
    try {
      this.db.transaction(() => {
        for (const args of batch) this.stmts.adoptIdentity.run(...args);
      })();
    } catch (err) {
      // Harmless: the rows stay without identity and are adopted at the next sighting.
      this.log?.warn({ err: (err as Error).message }, 'could not record file identities');
    }
  }

  forget(path: string): void {
    this.stmts.delete.run(path);
  }

  /** Files waiting for a retry, soonest first (to re-arm timers after a restart). */
  pending(): FileRow[] {
    return this.stmts.pending.all();
  }
}
