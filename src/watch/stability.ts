import { stat } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import type { Logger } from '../log.js';
import type { CandidateFile } from './types.js';

/** One stat of a file the watcher or the scan has seen. */
export interface Observation {
  /** Real absolute path: the key, and what is re-stat'ed. */
  path: string;
  relPath: string;
  size: number;
  mtimeMs: number;
  ino: number;
  /** Change time: a tool that restores the mtime (cp -p, rsync -t) cannot restore this. */
  ctimeMs: number;
}

/** Where an observation came from: a scan always re-emits; an event for unchanged bytes does not. */
export type ObservationSource = 'scan' | 'event';

interface Pending extends Observation {
  dueAt: number;
  source: ObservationSource;
}

interface Signature {
  size: number;
  mtimeMs: number;
  ino: number;
  ctimeMs: number;
}

export interface StabilityTrackerOptions {
  stabilityMs: number;
  /** Scans wait (backpressure) while this many files are pending; events beyond it are dropped. */
  maxPending: number;
  /** Re-stats in flight at once when many files fall due together (a start-up backlog). */
  statConcurrency: number;
  /** How many emitted signatures are remembered to swallow duplicate events (bounded, oldest dropped). */
  rememberEmitted: number;
}

/**
 * Emits a file once its size, mtime, inode and ctime are the same at two stats `stabilityMs` apart.
 *
 * Every pending file gets the same window, so insertion order in the Map is due-time order: one
 * timer at the head of the queue serves all of them (no timer per file, no polling loop), and a
 * file that changed is re-inserted at the tail with a fresh window. Times come from the monotonic
 * clock so a wall-clock jump cannot emit early or stall the queue.
 */
export class StabilityTracker {
  private readonly pending = new Map<string, Pending>();
  private readonly emitted = new Map<string, Signature>();
  private timer: NodeJS.Timeout | null = null;
  private timerDueAt = Number.POSITIVE_INFINITY;
  /** A run already due (no window, or a window that has passed): setImmediate, not a 1 ms timer. */
  private immediate: NodeJS.Immediate | null = null;
  private processing = false;
  private closed = false;
  private roomWaiters: Array<() => void> = [];

  constructor(
    private readonly opts: StabilityTrackerOptions,
    private readonly emit: (file: CandidateFile) => void,
    private readonly log: Logger,
  ) {}

  get size(): number {
    return this.pending.size;
  }

  has(path: string): boolean {
    return this.pending.has(path);
  }

  get full(): boolean {
    return this.pending.size >= this.opts.maxPending;
  }

  /**
   * Starts (or joins) the stability window of a file. A file already pending keeps its window:
   * its re-stat at the end of the window sees any change and restarts it then.
   * Returns false when the tracker is full and the observation was dropped.
   */
  observe(o: Observation, source: ObservationSource): boolean {
    if (this.closed) return false;
    const existing = this.pending.get(o.path);
    if (existing) {
      if (source === 'scan') existing.source = 'scan';
      return true;
    }
    if (this.full) return false;
    this.pending.set(o.path, { ...o, source, dueAt: performance.now() + this.opts.stabilityMs });
    this.schedule();
    return true;
  }

  /** Resolves once the queue has drained to half of maxPending (or the tracker closed). */
  waitForRoom(): Promise<void> {
    if (this.closed || !this.full) return Promise.resolve();
    return new Promise((resolve) => this.roomWaiters.push(resolve));
  }

  /** Drops a file from the queue (deleted). */
  forget(path: string): void {
    this.pending.delete(path);
    this.emitted.delete(path);
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.immediate) clearImmediate(this.immediate);
    this.immediate = null;
    this.pending.clear();
    this.emitted.clear();
    this.releaseWaiters(true);
  }

  private releaseWaiters(force: boolean): void {
    if (this.roomWaiters.length === 0) return;
    if (!force && this.pending.size > this.opts.maxPending / 2) return;
    const waiters = this.roomWaiters;
    this.roomWaiters = [];
    for (const w of waiters) w();
  }

  private schedule(): void {
    if (this.closed || this.processing || this.immediate) return;
    const head = this.pending.values().next();
    if (head.done) return;
    const dueAt = head.value.dueAt;
    const delay = Math.max(0, Math.ceil(dueAt - performance.now()));
    if (delay === 0) {
      // setTimeout(0) waits at least 1 ms; with stability_ms 0 (files renamed into place) that
      // would be added to every image's latency.
      if (this.timer) clearTimeout(this.timer);
      this.timer = null;
      this.timerDueAt = Number.POSITIVE_INFINITY;
      this.immediate = setImmediate(() => {
        this.immediate = null;
        void this.processDue();
      });
      this.immediate.unref();
      return;
    }
    if (this.timer && this.timerDueAt <= dueAt) return;
    if (this.timer) clearTimeout(this.timer);
    this.timerDueAt = dueAt;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.timerDueAt = Number.POSITIVE_INFINITY;
      void this.processDue();
    }, delay);
    // The daemon's server and chokidar keep the process alive; this timer alone must not.
    this.timer.unref();
  }

  private async processDue(): Promise<void> {
    if (this.processing || this.closed) return;
    this.processing = true;
    try {
      for (;;) {
        const now = performance.now();
        const batch: Pending[] = [];
        for (const entry of this.pending.values()) {
          if (entry.dueAt > now || batch.length >= this.opts.statConcurrency) break;
          batch.push(entry);
        }
        if (batch.length === 0 || this.closed) break;
        await Promise.all(batch.map((entry) => this.check(entry)));
      }
    } finally {
      this.processing = false;
      this.releaseWaiters(false);
      this.schedule();
    }
  }

  /**
   * The file's signature now, or null when it is gone or no longer a regular file. With a window
   * of 0 (files renamed into place complete) the observation's own stat, just taken, is the
   * second one: a re-stat microseconds later would prove nothing more, and the pipeline takes
   * the identity of the bytes it reads from their descriptor anyway.
   */
  private async current(entry: Pending): Promise<Signature | null> {
    if (this.opts.stabilityMs === 0) {
      if (this.closed || this.pending.get(entry.path) !== entry) return null;
      this.pending.delete(entry.path);
      return entry;
    }
    let st;
    try {
      st = await stat(entry.path);
    } catch (err) {
      // Deleted or renamed while being written (a temp file renamed into place arrives as a new path).
      this.log.debug({ path: entry.path, err: (err as Error).message }, 'pending file vanished');
      if (this.pending.get(entry.path) === entry) this.pending.delete(entry.path);
      return null;
    }
    if (this.closed || this.pending.get(entry.path) !== entry) return null;
    this.pending.delete(entry.path);
    return st.isFile() ? st : null;
  }

  private async check(entry: Pending): Promise<void> {
    const st = await this.current(entry);
    if (!st) return;
    if (
      st.size !== entry.size ||
      st.mtimeMs !== entry.mtimeMs ||
      st.ino !== entry.ino ||
      st.ctimeMs !== entry.ctimeMs
    ) {
      // Still being written: a new window from this stat, at the tail of the queue.
      this.pending.set(entry.path, {
        ...entry,
        size: st.size,
        mtimeMs: st.mtimeMs,
        ino: st.ino,
        ctimeMs: st.ctimeMs,
        dueAt: performance.now() + this.opts.stabilityMs,
      });
      return;
    }
    const previous = this.emitted.get(entry.path);
    const unchangedSinceEmit =
      previous !== undefined &&
      previous.size === st.size &&
      previous.mtimeMs === st.mtimeMs &&
      previous.ino === st.ino &&
      previous.ctimeMs === st.ctimeMs;
    if (entry.source === 'event' && unchangedSinceEmit) return;
    this.remember(entry.path, { size: st.size, mtimeMs: st.mtimeMs, ino: st.ino, ctimeMs: st.ctimeMs });
    try {
      this.emit({
        path: entry.path,
        relPath: entry.relPath,
        size: st.size,
        mtimeMs: st.mtimeMs,
        ino: st.ino,
        ctimeMs: st.ctimeMs,
      });
    } catch (err) {
      this.log.error({ path: entry.path, err }, 'candidate sink threw; the next scan offers the file again');
    }
  }

  private remember(path: string, sig: Signature): void {
    this.emitted.delete(path);
    this.emitted.set(path, sig);
    if (this.emitted.size > this.opts.rememberEmitted) {
      const oldest = this.emitted.keys().next();
      if (!oldest.done) this.emitted.delete(oldest.value);
    }
  }
}
