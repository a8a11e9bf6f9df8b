import { readFile, stat } from 'node:fs/promises';
import { dirname } from 'node:path';

/** Decodes the octal escapes mountinfo uses for space, tab, newline and backslash in paths. */
function unescapeMountPath(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

/** Mount points listed in /proc/self/mountinfo (field 5), or null where there is no such file. */
async function mountPoints(): Promise<Set<string> | null> {
  let text: string;
  try {
    text = await readFile('/proc/self/mountinfo', 'utf8');
  } catch {
    return null;
  }
  const points = new Set<string>();
  for (const line of text.split('\n')) {
    const field = line.split(' ')[4];
    if (field) points.add(unescapeMountPath(field));
  }
  return points;
}

/**
 * Whether `realDir` (a real, absolute path) is a mount point. After `umount` a share's mount point
 * is an ordinary empty folder on the parent file system, which a plain existence check takes for
 * "no images yet". A different device than the parent is certain; a bind mount of a folder on the
 * same file system has the parent's device, so /proc/self/mountinfo is asked too.
 */
export async function isMountPoint(realDir: string): Promise<boolean> {
  const parent = dirname(realDir);
  if (parent === realDir) return true; // "/"
  const [own, up] = await Promise.all([stat(realDir), stat(parent)]);
  if (own.dev !== up.dev) return true;
  return (await mountPoints())?.has(realDir) ?? false;
}
