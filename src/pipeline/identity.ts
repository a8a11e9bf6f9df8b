import type { FileRow, FileUpdate } from '../store/index.js';

/** How a file on disk is recognised: size + mtime, and inode + ctime where known. */
export interface FileIdentity {
  size: number;
  mtimeMs: number;
  ino?: number | undefined;
  ctimeMs?: number | undefined;
}

/**
 * Whether a files row still describes the file on disk. Path + size + mtime is not enough: a copy
 * tool that keeps the timestamp (rsync -t, cp -p) can put new bytes of the same size in place; the
 * inode (new on a rename into place) and the ctime (which utimes cannot set) tell. Rows written
 * before schema 2 have neither and match on size + mtime, so an upgrade reprocesses nothing.
 */
export function sameFile(row: FileRow, f: FileIdentity): boolean {
  if (row.size !== f.size || row.mtime_ms !== f.mtimeMs) return false;
  if (row.ino === null || row.ctime_ms === null || f.ino === undefined || f.ctimeMs === undefined)
    return true;
  return row.ino === f.ino && row.ctime_ms === f.ctimeMs;
}

/**
 * The identity a row written before schema 2 (no inode/ctime) should adopt from a file it still
 * matches, or null when there is nothing to adopt.
 */
export function identityToAdopt(row: FileRow, f: FileIdentity): { ino: number; ctimeMs: number } | null {
  if (row.ino !== null || f.ino === undefined || f.ctimeMs === undefined) return null;
  return { ino: f.ino, ctimeMs: f.ctimeMs };
}

/** The files-table columns that say which file on disk a row is about. */
export function fileColumns(
  path: string,
  f: Required<FileIdentity>,
): Pick<FileUpdate, 'path' | 'size' | 'mtimeMs' | 'ino' | 'ctimeMs'> {
  return { path, size: f.size, mtimeMs: f.mtimeMs, ino: f.ino, ctimeMs: f.ctimeMs };
}
