import { basename, relative, sep } from 'node:path';
import { watch, type FSWatcher } from 'chokidar';
import type { Logger } from '../log.js';
import type { NameFilter } from './filter.js';
import type { FolderEventHandlers } from './folder-events.js';

/** How long start() waits for chokidar's initial walk before the scans go on without it. */
const READY_TIMEOUT_MS = 60_000;

/**
 * chokidar, for polling (network shares, which deliver no inotify events): it stats on its own
 * timer anyway. Like FolderEvents, only a hint for the reconciliation scans, and reported
 * through the same handlers (chokidar reports no overflow).
 */
export class PollingEvents {
  private readonly fsw: FSWatcher;
  private abortReady: (() => void) | null = null;

  constructor(
    private readonly root: string,
    recursive: boolean,
    filter: NameFilter,
    pollIntervalMs: number,
    on: Omit<FolderEventHandlers, 'onOverflow'>,
    private readonly log: Logger,
  ) {
    this.fsw = watch(root, {
      // The scan reports what is already there; chokidar only reports what changes.
      ignoreInitial: true,
      persistent: true,
      followSymlinks: false,
      depth: recursive ? undefined : 0,
      usePolling: true,
      interval: pollIntervalMs,
      // Images are "binary" to chokidar, which would otherwise poll them every 300 ms.
      binaryInterval: pollIntervalMs,
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
    this.fsw.on('add', (path: string) => on.onPath(path));
    this.fsw.on('change', (path: string) => on.onPath(path));
    this.fsw.on('unlink', (path: string) => on.onGone(path));
    this.fsw.on('unlinkDir', (path: string) => {
      // The folder itself vanished: probe now instead of at the next tick.
      if (path === root) on.onRootGone();
    });
    this.fsw.on('raw', (event: string, name: string, details: unknown) => {
      // inotify reports the watched folder's own deletion only as a raw 'rename' of its name;
      // chokidar emits nothing and its watcher is dead from then on.
      const watchedPath = (details as { watchedPath?: string } | undefined)?.watchedPath;
      if (event === 'rename' && watchedPath === root && name === basename(root)) on.onRootGone();
    });
    this.fsw.on('error', (err: unknown) => on.onError(err as NodeJS.ErrnoException));
  }

  /**
   * Resolves when chokidar is ready: events before 'ready' are swallowed by ignoreInitial, so the
   * scan that follows must start after it. Bounded wait: a watcher that never gets ready (a hung
   * share) must not stall the scans, which work without it.
   */
  start(): Promise<void> {
    return new Promise<void>((resolveReady) => {
      const timeout = setTimeout(() => {
        this.log.warn({ dir: this.root }, 'file watcher not ready after 60 s; continuing with scans');
        done();
      }, READY_TIMEOUT_MS);
      timeout.unref();
      const done = (): void => {
        clearTimeout(timeout);
        this.abortReady = null;
        resolveReady();
      };
      this.abortReady = done;
      this.fsw.once('ready', done);
    });
  }

  /** Ends a start() still waiting for 'ready' (stopping or re-arming must not wait 60 s). */
  stopWaiting(): void {
    this.abortReady?.();
  }

  async close(): Promise<void> {
    this.stopWaiting();
    await this.fsw.close();
  }
}
