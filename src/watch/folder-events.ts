import { watch, type FSWatcher, type Stats } from 'node:fs';
import { lstat, opendir } from 'node:fs/promises';
import { basename, join, relative, sep } from 'node:path';
import type { NameFilter } from './filter.js';

/** What the folder events are turned into; the callbacks must not throw. */
export interface FolderEventHandlers {
  /**
   * A name inside a watched folder changed: a file (or symlink) to inspect, with the lstat taken
   * here when there was one (so it is not taken again).
   */
  onPath(path: string, linkStat?: Stats): void;
  /** A name inside a watched folder is gone. */
  onGone(path: string): void;
  /** The root itself was deleted, renamed or replaced: probe it. */
  onRootGone(): void;
  /** The kernel dropped events (queue overflow: no name given): scan. */
  onOverflow(): void;
  onError(err: NodeJS.ErrnoException): void;
}

/**
 * inotify hints through fs.watch, one watcher per folder (the root, and every accepted sub-folder
 * when recursive). Each event names the entry that changed and only that entry is looked at.
 *
 * chokidar (used for polling, where it polls anyway) answers every event in a folder by
 * listing the whole folder and lstat-ing each entry (readdirp with alwaysStat), twice per burst:
 * with the default move_processed_to null the capture folder keeps every image, so each new image
 * cost O(files in the folder). Measured (scripts/bench/watch-latency.ts 2000, load 5): 72 ms of CPU
 * and 56 ms median latency per new image with 2 000 files in the folder; here 0.9 ms and 1.8 ms,
 * a few stats whatever the folder holds.
 *
 * Like chokidar, this is only a hint: missed events (overflow, a watch that could not be added,
 * ENOSPC past the inotify limit) are covered by the reconciliation scans.
 */
export class FolderEvents {
  private readonly watchers = new Map<string, FSWatcher>();
  private closed = false;

  constructor(
    private readonly root: string,
    private readonly recursive: boolean,
    private readonly filter: NameFilter,
    private readonly on: FolderEventHandlers,
  ) {}

  /** Watches the root and, when recursive, every accepted sub-folder below it. */
  async start(): Promise<void> {
    await this.addTree(this.root, false);
  }

  close(): void {
    this.closed = true;
    for (const w of this.watchers.values()) w.close();
    this.watchers.clear();
  }

  /** Watches `dir` and its accepted sub-folders; with `announce`, offers the files found in them. */
  private async addTree(dir: string, announce: boolean): Promise<void> {
    const stack = [dir];
    while (stack.length > 0 && !this.closed) {
      const current = stack.pop() as string;
      if (!this.add(current)) continue;
      if (!this.recursive && !announce) continue;
      let handle;
      try {
        handle = await opendir(current, { bufferSize: 64 });
      } catch {
        continue; // gone or unreadable: its parent's event or the scan covers it
      }
      try {
        for await (const entry of handle) {
          if (this.closed) break;
          const full = join(current, entry.name);
          if (entry.isDirectory()) {
            if (this.recursive && this.filter.acceptsDir(entry.name)) stack.push(full);
          } else if (announce) {
            // Files moved in with a folder fire no event of their own.
            this.on.onPath(full);
          }
        }
      } catch {
        /* the folder went away while being read */
      }
    }
  }

  /** Adds a watcher for one folder; false when it is not watched (closed, already, or failed). */
  private add(dir: string): boolean {
    if (this.closed || this.watchers.has(dir)) return false;
    let w: FSWatcher;
    try {
      w = watch(dir, { persistent: true }, (event, name) => this.onEvent(dir, event, name));
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      // Gone already, or a sub-folder we may not read (the scan warns about that one, as
      // chokidar's ignorePermissionErrors did): nothing to watch. Anything else (ENOSPC: past
      // the inotify watch limit) is reported; the scans cover what events would have shown.
      const quiet = e.code === 'ENOENT' || (dir !== this.root && (e.code === 'EACCES' || e.code === 'EPERM'));
      if (!quiet) this.on.onError(e);
      return false;
    }
    w.on('error', (err: NodeJS.ErrnoException) => {
      this.drop(dir);
      this.on.onError(err);
    });
    this.watchers.set(dir, w);
    return true;
  }

  /** Stops watching `dir` and everything below it (deleted or moved away). */
  private drop(dir: string): void {
    const prefix = dir + sep;
    for (const [path, w] of this.watchers) {
      if (path === dir || path.startsWith(prefix)) {
        w.close();
        this.watchers.delete(path);
      }
    }
  }

  private onEvent(dir: string, event: string, name: string | Buffer | null): void {
    if (this.closed) return;
    if (name === null) {
      this.on.onOverflow();
      return;
    }
    const entry = typeof name === 'string' ? name : name.toString();
    // inotify reports a watched folder's own deletion or rename as an event of its own name.
    if (dir === this.root && event === 'rename' && entry === basename(this.root)) this.on.onRootGone();
    const path = join(dir, entry);
    // A write to a file in place: the stability tracker re-stats it; nothing else to learn.
    if (event === 'change') {
      this.on.onPath(path);
      return;
    }
    // A name that can be neither an image nor a folder to watch (a camera's NAME.part, a *.tmp)
    // needs no lstat: nothing would be done with it, created or gone.
    if (!this.filter.acceptsFile(entry) && !(this.recursive && this.filter.acceptsDir(entry))) return;
    void this.onRename(path);
  }

  /** Created, deleted or renamed: one lstat tells which. */
  private async onRename(path: string): Promise<void> {
    let ls: Stats;
    try {
      ls = await lstat(path);
    } catch {
      if (this.closed) return;
      this.drop(path);
      this.on.onGone(path);
      return;
    }
    if (this.closed) return;
    if (!ls.isDirectory()) {
      this.on.onPath(path, ls);
      return;
    }
    const rel = relative(this.root, path);
    if (!this.recursive || rel.startsWith('..') || !rel.split(sep).every((p) => this.filter.acceptsDir(p)))
      return;
    await this.addTree(path, true);
  }
}
