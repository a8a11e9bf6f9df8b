import { extname, sep } from 'node:path';

/**
 * Decides from names alone what the watcher may look at. Cheap on purpose: it runs for every
 * directory entry of every scan and every chokidar event, before any stat.
 */
export interface NameFilter {
  /** A folder the scan may descend into (not hidden, not ignored). */
  acceptsDir(name: string): boolean;
  /** A file name that may be an image (not hidden, not ignored, a configured extension). */
  acceptsFile(name: string): boolean;
  /** Every folder segment of `relPath` is acceptable and the last segment is an acceptable file name. */
  acceptsRelFile(relPath: string, recursive: boolean): boolean;
}

/** `*.tmp` → /^[^/]*\.tmp$/i. Only `*` and `?` are special; everything else, `~` included, is literal. */
export function globToRegExp(pattern: string): RegExp {
  let source = '';
  for (const ch of pattern) {
    if (ch === '*') source += '.*';
    else if (ch === '?') source += '.';
    else source += ch.replace(/[\\^$.|+()[\]{}/]/g, '\\$&');
  }
  // Case-insensitive: camera PCs are Windows machines, where Thumbs.db and THUMBS.DB are one file.
  return new RegExp(`^${source}$`, 'is');
}

export function createNameFilter(extensions: string[], ignore: string[]): NameFilter {
  const exts = new Set(extensions.map((e) => (e.startsWith('.') ? e : `.${e}`).toLowerCase()));
  const ignored = ignore.map(globToRegExp);
  const isIgnoredName = (name: string): boolean =>
    name.length === 0 || name.startsWith('.') || ignored.some((re) => re.test(name));

  const acceptsDir = (name: string): boolean => !isIgnoredName(name);
  const acceptsFile = (name: string): boolean =>
    !isIgnoredName(name) && exts.has(extname(name).toLowerCase());
  return {
    acceptsDir,
    acceptsFile,
    acceptsRelFile(relPath, recursive) {
      const parts = relPath.split(sep);
      const name = parts.pop();
      if (name === undefined || parts.some((p) => p === '..')) return false;
      if (!recursive && parts.length > 0) return false;
      return parts.every(acceptsDir) && acceptsFile(name);
    },
  };
}
