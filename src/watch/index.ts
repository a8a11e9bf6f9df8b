import { constants } from 'node:fs';
import { access, realpath, stat } from 'node:fs/promises';
import { basename, relative, resolve, sep } from 'node:path';
import { watch } from 'chokidar';
import type { Logger } from '../log.js';
import { createNameFilter, type NameFilter } from './filter.js';
import { FolderEvents } from './folder-events.js';
import { isMountPoint } from './mount.js';
import { inspectPath, isInside, OnceLog, scanTree, type InspectContext } from './scan.js';
import { StabilityTracker } from './stability.js';
import type {
  CandidateFile,
  CandidateSink,
  CaptureWatcher,
  CaptureWatcherOptions,
  WatchStatus,
} from './types.js';

export type {
  CandidateFile,
  CandidateSink,
  CaptureWatcher,
  CaptureWatcherOptions,
  WatchStatus,
} from './types.js';
export { createNameFilter, globToRegExp } from './filter.js';

/** Pending files before a scan pauses for the queue to drain: bounds memory on huge backlogs. */
const MAX_PENDING = 4096;
const STAT_CONCURRENCY = 16;
const REMEMBER_EMITTED = 20_000;
const DEFAULT_PROBE_CAP_MS = 5000;

type ProbeOutcome = 'unavailable' | 'same' | 'rearmed';

/** A folder that is there but is not the mounted share: its message is the whole story. */
class NotMountedError extends Error {}

/**
 * What makes "the same folder". ext4 hands a folder deleted and recreated at once the same inode
 * number, so the birth time (statx; 0 where the filesystem has none) is part of it.
 */
interface FolderIdentity {
  dev: number;
  ino: number;
  birthtimeMs: number;
}

/**
 * Watches the capture folder and offers stable image files to the pipeline.
 *
 * Events (fs.watch per folder through FolderEvents, or chokidar when polling) are only a hint
 * (they miss events under load, after the folder is recreated, and on shares without inotify).
 * The truth is the reconciliation scan at start, every rescanIntervalS and on demand; both feed
 * one stability tracker. A cheap probe (stat + access of the folder) runs more often to notice
 * the folder disappearing, coming back or being replaced, and then re-creates the watcher and
 * scans at once. All folder work (probe, re-arm, scan) runs on
 * one serial chain so two of them never race on the watcher.
 */
export function createCaptureWatcher(
  opts: CaptureWatcherOptions,
  sink: CandidateSink,
  log: Logger,
): CaptureWatcher {
  return new CaptureWatcherImpl(opts, sink, log.child({ module: 'watch' }));
}

class CaptureWatcherImpl implements CaptureWatcher {
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
  private hints: { close(): Promise<void> } | null = null;
  private abortReady: (() => void) | null = null;

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
    this.abortReady?.();
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
      real = await realpath(this.dir);
      const st = await stat(real);
      if (!st.isDirectory()) {
        throw Object.assign(new Error(`not a directory: ${real}`), { code: 'ENOTDIR' });
      }
      // As root this always passes; for the daemon's own user it catches "permissions removed".
      await access(real, constants.R_OK | constants.X_OK);
      if (this.opts.requireMount && !(await (this.opts.isMountPoint ?? isMountPoint)(real))) {
        throw new NotMountedError(`capture.dir ${this.dir} is not a mount point (share not mounted?)`);
      }
      id = { dev: st.dev, ino: st.ino, birthtimeMs: st.birthtimeMs };
    } catch (err) {
      await this.markUnavailable(err as Error);
      return 'unavailable';
    }
    const same =
      this.dirAvailable &&
      this.hints !== null &&
      this.root === real &&
      this.rootId?.dev === id.dev &&
      this.rootId.ino === id.ino &&
      this.rootId.birthtimeMs === id.birthtimeMs;
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
    if (this.opts.usePolling) await this.armChokidar(root);
    else await this.armFolderEvents(root);
  }

  /** inotify through fs.watch: each event costs a stat or two, whatever the folder holds. */
  private async armFolderEvents(root: string): Promise<void> {
    const watcherErrors = new OnceLog(100);
    const events: FolderEvents = new FolderEvents(root, this.opts.recursive, this.filter, {
      onPath: (path) => {
        if (this.hints === hints) void this.onEvent(root, path);
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
  private async armChokidar(root: string): Promise<void> {
    const filter = this.filter;
    const recursive = this.opts.recursive;
    const fsw = watch(root, {
      // The scan reports what is already there; chokidar only reports what changes.
      ignoreInitial: true,
      persistent: true,
      followSymlinks: false,
      depth: recursive ? undefined : 0,
      usePolling: this.opts.usePolling,
      interval: this.opts.pollIntervalMs,
      // Images are "binary" to chokidar, which would otherwise poll them every 300 ms.
      binaryInterval: this.opts.pollIntervalMs,
      ignorePermissionErrors: true,
      // Our own stability tracker decides when a file is complete (awaitWriteFinish ignores the
      // initial scan, #594/#1100).
      awaitWriteFinish: false,
      ignored: (path: string, stats) => {
        if (path === root) return false;
        const rel = relative(root, path);
        if (rel.startsWith('..')) return true;
        const parts = rel.split(sep);
        const name = parts.pop() ?? '';
        if (!parts.every((p) => filter.acceptsDir(p))) return true;
        if (!recursive && parts.length > 0) return true;
        if (stats?.isDirectory()) return !filter.acceptsDir(name);
        if (stats?.isFile()) return !filter.acceptsFile(name);
        // Without stats chokidar cannot tell a folder from a file: only hidden names are certain.
        return name.startsWith('.');
      },
    });
    const hints = { close: () => fsw.close() };
    this.hints = hints;
    const watcherErrors = new OnceLog(100);
    const onPath = (path: string): void => {
      if (this.hints !== hints) return;
      void this.onEvent(root, path);
    };
    fsw.on('add', onPath);
    fsw.on('change', onPath);
    fsw.on('unlink', (path: string) => {
      if (this.hints === hints) this.tracker?.forget(path);
    });
    fsw.on('unlinkDir', (path: string) => {
      // The folder itself vanished: probe now instead of at the next tick.
      if (this.hints === hints && path === root) this.requestProbe();
    });
    fsw.on('raw', (event: string, name: string, details: unknown) => {
      // inotify reports the watched folder's own deletion only as a raw 'rename' of its name;
      // chokidar emits nothing and its watcher is dead from then on.
      const watchedPath = (details as { watchedPath?: string } | undefined)?.watchedPath;
      if (this.hints === hints && event === 'rename' && watchedPath === root && name === basename(root)) {
        this.requestProbe();
      }
    });
    fsw.on('error', (err: unknown) => {
      if (this.hints === hints) this.onWatcherError(err as NodeJS.ErrnoException, watcherErrors);
    });
    // Events before 'ready' are swallowed by ignoreInitial, so the scan that follows must start
    // after it. Bounded wait: a watcher that never gets ready (a hung share) must not stall the
    // scans, which work without it.
    await new Promise<void>((resolveReady) => {
      const timeout = setTimeout(() => {
        this.log.warn({ dir: root }, 'file watcher not ready after 60 s; continuing with scans');
        done();
      }, 60_000);
      timeout.unref();
      const done = (): void => {
        clearTimeout(timeout);
        this.abortReady = null;
        resolveReady();
      };
      this.abortReady = done;
      fsw.once('ready', done);
    });
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
    this.abortReady?.();
    if (!hints) return;
    try {
      await hints.close();
    } catch (err) {
      this.log.debug({ err: (err as Error).message }, 'closing the file watcher failed');
    }
  }

  private async onEvent(root: string, path: string): Promise<void> {
    if (!this.running || !isInside(root, path)) return;
    // A file being written fires a change per chunk; while it is pending its re-stat covers them.
    if (this.tracker?.has(path)) return;
    const o = await inspectPath(this.inspectContext(root), path);
    const tracker = this.tracker;
    if (!o || !tracker || !this.running) return;
    // Full only during a huge backlog scan, which will reach this file anyway.
    if (!tracker.observe(o, 'event'))
      this.log.debug({ path }, 'stability queue full; the scan will pick it up');
  }
}
