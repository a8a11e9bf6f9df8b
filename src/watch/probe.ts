import { constants } from 'node:fs';
import { access, realpath, stat } from 'node:fs/promises';

/** A folder that is there but is not the mounted share: its message is the whole story. */
export class NotMountedError extends Error {}

/**
 * What makes "the same folder". ext4 hands a folder deleted and recreated at once the same inode
 * number, so the birth time (statx; 0 where the filesystem has none) is part of it.
 */
export interface FolderIdentity {
  dev: number;
  ino: number;
  birthtimeMs: number;
}

export function sameFolder(a: FolderIdentity | null, b: FolderIdentity): boolean {
  return a?.dev === b.dev && a.ino === b.ino && a.birthtimeMs === b.birthtimeMs;
}

/**
 * Checks that `dir` exists, is a readable directory and, with `requireMount`, a mount point
 * (`isMountPoint` of its real path). Returns its real path and identity; throws the reason when
 * it is unavailable (NotMountedError when it is only not mounted).
 */
export async function probeFolder(
  dir: string,
  requireMount: boolean,
  isMountPoint: (realDir: string) => Promise<boolean>,
): Promise<{ real: string; id: FolderIdentity }> {
  const real = await realpath(dir);
  const st = await stat(real);
  if (!st.isDirectory()) {
    throw Object.assign(new Error(`not a directory: ${real}`), { code: 'ENOTDIR' });
  }
  // As root this always passes; for the daemon's own user it catches "permissions removed".
  await access(real, constants.R_OK | constants.X_OK);
  if (requireMount && !(await isMountPoint(real))) {
    throw new NotMountedError(`capture.dir ${dir} is not a mount point (share not mounted?)`);
  }
  return { real, id: { dev: st.dev, ino: st.ino, birthtimeMs: st.birthtimeMs } };
}
