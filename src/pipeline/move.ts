import { copyFile, mkdir, rename, stat, unlink } from 'node:fs/promises';
import { basename, dirname, extname, join } from 'node:path';

/**
 * Moves a processed or quarantined capture file to `targetRoot`, keeping its path relative to the
 * capture folder. Never overwrites: a name the camera reuses keeps both images (the second gets
 * the result id). Returns where the file went. Works across file systems (EXDEV: copy + unlink).
 */
export async function moveFile(
  from: string,
  relPath: string,
  targetRoot: string,
  resultId: number,
): Promise<string> {
  let dest = join(targetRoot, relPath);
  await mkdir(dirname(dest), { recursive: true });
  try {
    await stat(dest);
    dest = join(dirname(dest), `${basename(dest, extname(dest))}.${resultId}${extname(dest)}`);
  } catch {
    /* free */
  }
  try {
    await rename(from, dest);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
    await copyFile(from, dest);
    await unlink(from);
  }
  return dest;
}
