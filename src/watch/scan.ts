import type { Dirent, Stats } from 'node:fs';
import { lstat, opendir, realpath, stat } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import type { Logger } from '../log.js';
import type { NameFilter } from './filter.js';
import type { Observation } from './stability.js';

/** True when `target` is strictly inside `root` (both real, absolute paths). */
export function isInside(root: string, target: string): boolean {
  const prefix = root.endsWith(sep) ? root : root + sep;
  return target.startsWith(prefix) && target.length > prefix.length;
}

/**
 * Remembers which escaping symlinks were already reported, so a scan every minute does not log
 * the same link forever. Bounded: forgetting is harmless (one more log line).
 */
export class OnceLog {
  private readonly seen = new Set<string>();
  constructor(private readonly limit = 1000) {}
  first(key: string): boolean {
    if (this.seen.has(key)) return false;
    if (this.seen.size >= this.limit) this.seen.clear();
    this.seen.add(key);
    return true;
  }
}

export interface InspectContext {
  /** Real path of the capture folder. */
  root: string;
  recursive: boolean;
  filter: NameFilter;
  log: Logger;
  escapes: OnceLog;
}

function isStats(x: Dirent | Stats | undefined): x is Stats {
  return x !== undefined && 'ino' in x;
}

function observation(root: string, path: string, st: Stats): Observation {
  return {
    path,
    relPath: relative(root, path),
    size: st.size,
    mtimeMs: st.mtimeMs,
    ino: st.ino,
    ctimeMs: st.ctimeMs,
  };
}

/**
 * Turns a path under the root (from chokidar or the scan) into an observation, or null when it is
 * not something to process: filtered name, not a regular file, gone, or a symlink whose target
 * leaves the capture folder. Symlink targets are only stat'ed, never opened, and only when inside.
 */
export async function inspectPath(
  ctx: InspectContext,
  absPath: string,
  known?: Dirent | Stats,
): Promise<Observation | null> {
  const rel = relative(ctx.root, absPath);
  if (!isInside(ctx.root, absPath) || !ctx.filter.acceptsRelFile(rel, ctx.recursive)) return null;
  try {
    let isLink: boolean;
    if (known && (known.isFile() || known.isSymbolicLink())) {
      isLink = known.isSymbolicLink();
    } else {
      // Unknown dirent type (some filesystems report none) or an event without an lstat: ask lstat.
      const ls = await lstat(absPath);
      if (!ls.isFile() && !ls.isSymbolicLink()) return null;
      if (ls.isFile()) return observation(ctx.root, absPath, ls);
      isLink = true;
    }
    if (!isLink) {
      // An lstat of a regular file is its stat: no second call (a folder event hands its lstat on).
      if (isStats(known)) return observation(ctx.root, absPath, known);
      const st = await stat(absPath);
      return st.isFile() ? observation(ctx.root, absPath, st) : null;
    }
    const target = await realpath(absPath);
    if (!isInside(ctx.root, target)) {
      if (ctx.escapes.first(absPath)) {
        ctx.log.warn({ link: absPath, target }, 'ignoring a symlink that leaves the capture folder');
      }
      return null;
    }
    const st = await stat(target);
    return st.isFile() ? observation(ctx.root, target, st) : null;
  } catch (err) {
    // Vanished between readdir and stat, a dangling link, or unreadable: not a candidate now; the
    // next event or scan looks again.
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' && absPath.includes('\uFFFD') && ctx.escapes.first(absPath)) {
      // Node decodes names as UTF-8; a name with other bytes comes back with U+FFFD and no longer
      // names the file. It cannot be opened through a string path: say so once instead of silently.
      ctx.log.warn(
        { path: absPath },
        'ignoring a file whose name is not valid UTF-8 (rename it to process it)',
      );
    } else {
      ctx.log.debug(
        { path: absPath, err: (err as Error).message },
        'skipping an entry that cannot be stat-ed',
      );
    }
    return null;
  }
}

export interface ScanResult {
  files: number;
  dirs: number;
  unreadableDirs: number;
}

/**
 * Walks the capture folder with fs.opendir, streaming entries (a folder of 100,000 files never
 * becomes an array). Only the list of folders still to visit is held. Symlinked folders are not
 * descended into: inside ones are reached through their real path, outside ones must not be.
 * Throws only when the root itself cannot be opened: the caller treats that as "folder unavailable".
 */
export async function scanTree(
  ctx: InspectContext,
  visit: (o: Observation) => Promise<void>,
  isStopped: () => boolean,
): Promise<ScanResult> {
  const result: ScanResult = { files: 0, dirs: 0, unreadableDirs: 0 };
  const stack: string[] = [ctx.root];
  while (stack.length > 0 && !isStopped()) {
    const dirPath = stack.pop() as string;
    let dir;
    try {
      dir = await opendir(dirPath, { bufferSize: 64 });
    } catch (err) {
      if (dirPath === ctx.root) throw err;
      result.unreadableDirs++;
      // A sub-folder removed since it was listed is normal; one we may not read is worth a warning.
      const level = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'debug' : 'warn';
      ctx.log[level](
        { dir: dirPath, err: (err as Error).message },
        'cannot read a sub-folder of the capture folder',
      );
      continue;
    }
    result.dirs++;
    try {
      // for-await closes the handle on break or throw.
      for await (const entry of dir) {
        if (isStopped()) break;
        const full = join(dirPath, entry.name);
        if (entry.isDirectory()) {
          if (ctx.recursive && ctx.filter.acceptsDir(entry.name)) stack.push(full);
          continue;
        }
        if (!ctx.filter.acceptsFile(entry.name)) continue;
        const known = entry.isFile() || entry.isSymbolicLink() ? entry : undefined;
        if (
          !known &&
          (entry.isFIFO() || entry.isSocket() || entry.isBlockDevice() || entry.isCharacterDevice())
        ) {
          continue;
        }
        const o = await inspectPath(ctx, full, known);
        if (o) {
          result.files++;
          await visit(o);
        }
      }
    } catch (err) {
      // The folder went away mid-read (deleted, unmounted): the root case is folder trouble.
      if (dirPath === ctx.root) throw err;
      result.unreadableDirs++;
      ctx.log.warn({ dir: dirPath, err: (err as Error).message }, 'a sub-folder failed while being read');
    }
  }
  return result;
}
