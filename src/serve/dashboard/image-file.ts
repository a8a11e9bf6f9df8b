import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import { lstat, open, realpath } from 'node:fs/promises';
import { relative, resolve, sep } from 'node:path';

/**
 * Reading a result's image from disk for the dashboard and the review export.
 *
 * A capture folder is written by other programs (the camera, a network share): a path the daemon
 * recorded may since hold other bytes (the camera reused the name), or be a symlink or a hard link
 * to any file the daemon can read (its config, with the token and password hashes). So a path's
 * content is never served on the strength of the path alone: the file is opened without following
 * a link, read from that one descriptor, and the original is handed out only when those very bytes
 * hash to the sha256 that was classified. The hash is the proof; the link checks refuse early and
 * say why.
 */

export type ImageRead =
  /** `type`: the content type when the path's extension does not tell it (pictures in media.db). */
  { ok: true; path: string; bytes: Buffer; type?: string } | { ok: false; status: 404 | 410; error: string };

export interface ReadImageOptions {
  /**
   * Folders the path is expected under (capture folder, processed folder, uploads, data.dir).
   * No folder between the deepest matching one and the file may be a symlink. A path under none
   * of them (a capture folder the config no longer names) gets no folder check; the hash still
   * applies.
   */
  roots: readonly string[];
  /** The sha256 the bytes must have; null for the daemon's own media files. */
  sha256: string | null;
  /** Larger files are not read (nothing that large was classified). */
  maxBytes: number;
}

const GONE: ImageRead = { ok: false, status: 404, error: 'image no longer on disk' };
export const CHANGED_ON_DISK = 'the original changed on disk after it was classified';
const changed = (why: string): ImageRead => ({
  ok: false,
  status: 410,
  error: `${CHANGED_ON_DISK} (${why})`,
});

// O_NOFOLLOW: a symlink as the last component fails with ELOOP instead of being followed.
// O_NONBLOCK: a FIFO put in the file's place cannot hang the request in open().
const OPEN_FLAGS = constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0) | (constants.O_NONBLOCK ?? 0);

/** Each root as configured and as its real path (the watcher records paths under the real one). */
async function bothForms(roots: readonly string[]): Promise<string[]> {
  const real = await Promise.all(roots.map((r) => realpath(r).catch(() => null)));
  return [...roots.map((r) => resolve(r)), ...real.filter((r): r is string => r !== null)];
}

/** The first folder on the way from the deepest root to `path` that is a symlink; null when none. */
async function linkedFolder(path: string, roots: readonly string[]): Promise<string | null> {
  const abs = resolve(path);
  const root = (await bothForms(roots))
    .filter((r) => abs.startsWith(r + sep))
    .sort((a, b) => b.length - a.length)[0];
  if (!root) return null;
  const parts = relative(root, abs).split(sep).slice(0, -1);
  let dir = root;
  for (const part of parts) {
    dir = resolve(dir, part);
    if ((await lstat(dir)).isSymbolicLink()) return dir;
  }
  return null;
}

function errnoOf(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException).code;
}

/** Reads an image as described above; never follows a link, never returns unproven bytes. */
export async function readImageFile(path: string, o: ReadImageOptions): Promise<ImageRead> {
  try {
    if (await linkedFolder(path, o.roots)) return changed('a folder on its path is now a link');
  } catch (err) {
    return errnoOf(err) === 'ENOENT' ? GONE : changed('a folder on its path cannot be read');
  }
  let handle;
  try {
    handle = await open(path, OPEN_FLAGS);
  } catch (err) {
    const code = errnoOf(err);
    if (code === 'ENOENT' || code === 'ENOTDIR') return GONE;
    if (code === 'ELOOP') return changed('the file is now a link');
    return changed(`it cannot be opened: ${code ?? 'error'}`);
  }
  try {
    const st = await handle.stat();
    if (!st.isFile()) return changed('it is no longer a regular file');
    if (st.size > o.maxBytes) return changed('it is larger than any image the daemon reads');
    // The bytes checked are the bytes sent: read once from this descriptor, never reopened.
    const bytes = await handle.readFile();
    if (o.sha256 !== null && createHash('sha256').update(bytes).digest('hex') !== o.sha256)
      return changed('its bytes differ');
    return { ok: true, path, bytes };
  } catch (err) {
    return changed(`it cannot be read: ${errnoOf(err) ?? 'error'}`);
  } finally {
    await handle.close();
  }
}
