import { stat } from 'node:fs/promises';
import { relative } from 'node:path';
import type { FilesTable } from '../store/files.js';
import type { Origin } from '../domain/result.js';
import type { WorkItem } from '../domain/work-item.js';

/** Longest retry delay, whatever the attempt count: a file still being written is checked at least this often. */
const MAX_BACKOFF_MS = 10 * 60_000;

/**
 * How long to wait before the next attempt. File failures back off exponentially; inference
 * failures (the worker is down, not the file's fault) wait a steady few backoffs.
 */
export function retryDelayMs(attempts: number, countsTowardQuarantine: boolean, backoffMs: number): number {
  return countsTowardQuarantine
    ? Math.min(MAX_BACKOFF_MS, backoffMs * 2 ** Math.max(0, attempts - 1))
    : backoffMs * 4;
}

/** A file waiting for its next attempt. */
export interface PendingRetry {
  path: string;
  nextAttemptAt: number | null;
  relPath?: string;
  origin?: Origin | undefined;
}

/**
 * One timer per file waiting for a retry; when it fires the file is stat'ed again and offered to
 * the pipeline (or forgotten when it is gone). Retries recorded in the files table survive a
 * restart: `resume` re-arms them.
 */
export class RetryScheduler {
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private stopped = false;

  constructor(
    private readonly o: {
      files: FilesTable;
      captureDir: string;
      offer: (item: WorkItem) => unknown;
    },
  ) {}

  has(path: string): boolean {
    return this.timers.has(path);
  }

  /** Re-arms the retries recorded before a restart. */
  resume(): void {
    for (const row of this.o.files.pending())
      this.schedule({ path: row.path, nextAttemptAt: row.next_attempt_at });
  }

  schedule(r: PendingRetry): void {
    if (this.stopped) return;
    const prev = this.timers.get(r.path);
    if (prev) clearTimeout(prev);
    const delay = Math.max(0, (r.nextAttemptAt ?? 0) - Date.now());
    const timer = setTimeout(() => {
      this.timers.delete(r.path);
      void stat(r.path).then(
        (st) =>
          this.o.offer({
            path: r.path,
            relPath: r.relPath ?? relative(this.o.captureDir, r.path),
            size: st.size,
            mtimeMs: st.mtimeMs,
            ino: st.ino,
            ctimeMs: st.ctimeMs,
            origin: r.origin ?? 'capture',
          }),
        () => this.o.files.forget(r.path),
      );
    }, delay);
    this.timers.set(r.path, timer);
  }

  stop(): void {
    this.stopped = true;
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
  }
}
