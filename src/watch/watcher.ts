import type { Stats } from 'node:fs';
import { resolve } from 'node:path';
import type { Logger } from '../log.js';
import { createNameFilter, type NameFilter } from './filter.js';
import { FolderEvents } from './folder-events.js';
import { isMountPoint } from './mount.js';
import { PollingEvents } from './polling-events.js';
import { NotMountedError, probeFolder, sameFolder, type FolderIdentity } from './probe.js';
import { inspectPath, isInside, OnceLog, scanTree, type InspectContext } from './scan.js';
import { StabilityTracker } from './stability.js';
import type {
  CandidateFile,
  CandidateSink,
  CaptureWatcher,
  CaptureWatcherOptions,
  WatchStatus,
} from './types.js';

/** Pending files before a scan pauses for the queue to drain: bounds memory on huge backlogs. */
const MAX_PENDING = 4096;
const STAT_CONCURRENCY = 16;
const REMEMBER_EMITTED = 20_000;
const DEFAULT_PROBE_CAP_MS = 5000;

type ProbeOutcome = 'unavailable' | 'same' | 'rearmed';

/**
 * The watcher behind createCaptureWatcher (index.ts explains how it decides). `isMountPoint` is
 * protected so that a subclass can decide what "mounted" means: the tests unmount and remount a
 * share that way without root.
 */
export class CaptureWatcherImpl implements CaptureWatcher {
  private readonly dir: string;
  private readonly filter: NameFilter;
  private readonly escapes = new OnceLog();
  private readonly probeIntervalMs: number;
  private tracker: StabilityTracker | null = null;

  private running = false;
  private dirAvailable = false;
  private lastScanAt: number | null = null;
  private lastError: string | null = null;
  /** One warning per outage, and one "back" line when it ends. */
  private outageLogged = false;

  private root: string | null = null;
  private rootId: FolderIdentity | null = null;
  /** The event source armed on the current root: chokidar when polling, else FolderEvents. */
  private hints: { close(): Promise<void>; stopWaiting?(): void } | null = null;

  private chain: Promise<unknown> = Promise.resolve();
  private queuedScan: Promise<void> | null = null;
  private busy = 0;
  private scanTimer: NodeJS.Timeout | null = null;
  private probeTimer: NodeJS.Timeout | null = null;

  constructor(
    private readonly opts: CaptureWatcherOptions,
    private readonly sink: CandidateSink,
    private readonly log: Logger,
  ) {
    this.dir = resolve(opts.dir);
    this.filter = createNameFilter(opts.extensions, opts.ignore);
    this.probeIntervalMs =
      opts.dirProbeIntervalMs ?? Math.min(opts.rescanIntervalS * 1000, DEFAULT_PROBE_CAP_MS);
  }

  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    this.queuedScan = null;
    this.tracker = new StabilityTracker(
      {
        stabilityMs: this.opts.stabilityMs,
        maxPending: this.opts.maxPendingStability ?? MAX_PENDING,
        statConcurrency: STAT_CONCURRENCY,
        rememberEmitted: REMEMBER_EMITTED,
      },
      (file: CandidateFile) => {
        if (this.running) this.sink.onCandidate(file);
      },
      this.log,
    );
    this.log.info(
      { dir: this.dir, recursive: this.opts.recursive, usePolling: this.opts.usePolling },
      'watching the capture folder',
    );
    this.scanTimer = setInterval(() => void this.rescan(), this.opts.rescanIntervalS * 1000);
    this.scanTimer.unref();
    this.probeTimer = setInterval(() => this.requestProbe(), this.probeIntervalMs);
    this.probeTimer.unref();
    await this.rescan();
  }

  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    if (this.scanTimer) clearInterval(this.scanTimer);
    if (this.probeTimer) clearInterval(this.probeTimer);
    this.scanTimer = this.probeTimer = null;
    // Closing the tracker first releases a scan waiting for room; the scan then sees !running.
    this.tracker?.close();
    this.hints?.stopWaiting?.();
    await this.chain;
    await this.disarm();
    this.log.info({ dir: this.dir }, 'stopped watching the capture folder');
  }

  rescan(): Promise<void> {
    if (!this.running) return Promise.resolve();
    // A scan not yet started covers every request made before it starts.
    if (this.queuedScan) return this.queuedScan;
    const scan = this.enqueue(async () => {
      this.queuedScan = null;
      await this.scan();
    });
    this.queuedScan = scan;
    return scan;
  }

  status(): WatchStatus {
    return {
      running: this.running,
      dirAvailable: this.dirAvailable,
      lastScanAt: this.lastScanAt,
      lastError: this.lastError,
      pendingStability: this.tracker?.size ?? 0,
    };
  }

  /** Runs `job` after every earlier folder job; the returned promise never rejects. */
  private enqueue(job: () => Promise<void>): Promise<void> {
    this.busy++;
    const run = this.chain.then(async () => {
      try {
        if (this.running) await job();
      } catch (err) {
        this.log.error({ err }, 'capture watcher job failed');
        this.lastError = (err as Error).message;
      } finally {
        this.busy--;
      }
    });
    this.chain = run;
    return run;
  }

  /** The periodic probe: skipped while other folder work is queued (that work probes first anyway). */
  private requestProbe(): void {
    if (!this.running || this.busy > 0) return;
    void this.enqueue(async () => {
      if ((await this.probe()) === 'rearmed') void this.rescan();
    });
  }

  private async scan(): Promise<void> {
    if ((await this.probe()) === 'unavailable' || !this.root) return;
    const tracker = this.tracker;
    if (!tracker) return;
    const ctx = this.inspectContext(this.root);
    const started = Date.now();
    try {
      const result = await scanTree(
        ctx,
        async (o) => {
          if (tracker.full) await tracker.waitForRoom();
          tracker.observe(o, 'scan');
        },
        () => !this.running,
      );
      if (!this.running) return;
      this.lastScanAt = Date.now();
      this.lastError = null;
      this.log.debug({ ...result, ms: this.lastScanAt - started }, 'reconciliation scan done');
    } catch (err) {
      await this.markUnavailable(err as Error);
    }
  }

  /**
   * Checks that the folder exists, is a readable directory and is still the one being watched
   * (same real path, device and inode). Re-creates the watcher when it is not.
   */
  private async probe(): Promise<ProbeOutcome> {
    let real: string;
    let id: FolderIdentity;
    try {
      ({ real, id } = await probeFolder(this.dir, this.opts.requireMount === true, (r) =>
        this.isMountPoint(r),
      ));
    } catch (err) {
      await this.markUnavailable(err as Error);
      return 'unavailable';
    }
    const same =
      this.dirAvailable && this.hints !== null && this.root === real && sameFolder(this.rootId, id);
    if (same) return 'same';
    if (this.outageLogged) this.log.info({ dir: this.dir }, 'capture folder is available again');
    else if (this.rootId)
      this.log.warn({ dir: this.dir }, 'capture folder was replaced; re-arming the watcher');
    this.outageLogged = false;
    this.root = real;
    this.rootId = id;
    this.dirAvailable = true;
    this.lastError = null;
    await this.arm(real);
    return 'rearmed';
  }

  /** Whether the capture folder's real path is a mount point (capture.require_mount). */
  protected isMountPoint(realDir: string): Promise<boolean> {
    return isMountPoint(realDir);
  }

  private async markUnavailable(err: Error): Promise<void> {
    const code = (err as NodeJS.ErrnoException).code;
    this.lastError =
      err instanceof NotMountedError
        ? err.message
        : `capture folder ${this.dir} unavailable: ${code ? `${code} ` : ''}${err.message}`;
    this.dirAvailable = false;
    if (!this.outageLogged) {
      this.outageLogged = true;
      this.log.warn(
        { dir: this.dir, err: err.message, retryMs: this.probeIntervalMs },
        'capture folder unavailable; retrying',
      );
    }
    // A watcher on a deleted or unmounted folder reports nothing; it is re-created when it is back.
    await this.disarm();
  }

  private inspectContext(root: string): InspectContext {
    return {
      root,
      recursive: this.opts.recursive,
      filter: this.filter,
      log: this.log,
      escapes: this.escapes,
    };
  }

  private async arm(root: string): Promise<void> {
    await this.disarm();
    if (!this.running) return;
    if (this.opts.usePolling) await this.armPolling(root);
    else await this.armFolderEvents(root);
  }

  /** inotify through fs.watch: each event costs a stat or two, whatever the folder holds. */
  private async armFolderEvents(root: string): Promise<void> {
    const watcherErrors = new OnceLog(100);
    const events: FolderEvents = new FolderEvents(root, this.opts.recursive, this.filter, {
      onPath: (path, linkStat) => {
        if (this.hints === hints) void this.onEvent(root, path, linkStat);
      },
      onGone: (path) => {
        if (this.hints === hints) this.tracker?.forget(path);
      },
      onRootGone: () => {
        if (this.hints === hints) this.requestProbe();
      },
      onOverflow: () => {
        if (this.hints === hints) void this.rescan();
      },
      onError: (e) => {
        if (this.hints === hints) this.onWatcherError(e, watcherErrors);
      },
    });
    const hints = {
      close: async () => {
        events.close();
      },
    };
    this.hints = hints;
    await events.start();
  }

  /** chokidar, for polling (network shares): it stats on its own timer anyway. */
  private async armPolling(root: string): Promise<void> {
    const watcherErrors = new OnceLog(100);
    const events: PollingEvents = new PollingEvents(
      root,
      this.opts.recursive,
      this.filter,
      this.opts.pollIntervalMs,
      {
        onPath: (path) => {
          if (this.hints === events) void this.onEvent(root, path);
        },
        onGone: (path) => {
          if (this.hints === events) this.tracker?.forget(path);
        },
        onRootGone: () => {
          if (this.hints === events) this.requestProbe();
        },
        onError: (e) => {
          if (this.hints === events) this.onWatcherError(e, watcherErrors);
        },
      },
      this.log,
    );
    this.hints = events;
    await events.start();
  }

  /**
   * An error from either event source. ENOSPC means the inotify watch limit: events are partial,
   * the periodic scan still covers. It comes once per file past the limit, so one line per kind
   * of error per watcher.
   */
  private onWatcherError(e: NodeJS.ErrnoException, seen: OnceLog): void {
    if (seen.first(e.code ?? e.message)) {
      this.log.warn({ err: e.message, code: e.code }, 'file watcher error; relying on the periodic scan');
    }
    this.lastError = `watcher: ${e.message}`;
    this.requestProbe();
  }

  private async disarm(): Promise<void> {
    const hints = this.hints;
    this.hints = null;
    hints?.stopWaiting?.();
    if (!hints) return;
    try {
      await hints.close();
    } catch (err) {
      this.log.debug({ err: (err as Error).message }, 'closing the file watcher failed');
    }
  }

  private async onEvent(root: string, path: string, linkStat?: Stats): Promise<void> {
    if (!this.running || !isInside(root, path)) return;
    // A file being written fires a change per chunk; while it is pending its re-stat covers them.
    if (this.tracker?.has(path)) return;
    const o = await inspectPath(this.inspectContext(root), path, linkStat);
    const tracker = this.tracker;
    if (!o || !tracker || !this.running) return;
    // Full only during a huge backlog scan, which will reach this file anyway.
    if (!tracker.observe(o, 'event'))
      this.log.debug({ path }, 'stability queue full; the scan will pick it up');
  }
}
