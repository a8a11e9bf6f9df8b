import type { Origin } from './result.js';

/** A file to process: what the watcher reports, plus where it came from. */
export interface WorkItem {
  path: string;
  relPath: string;
  size: number;
  mtimeMs: number;
  /** Inode and change time from the watcher's stat; without them a hint matches on size + mtime. */
  ino?: number;
  ctimeMs?: number;
  origin?: Origin;
  /** An upload's accession number: the image belongs to that specimen. */
  accession?: string;
  /** Called once the item is settled (uploads wait for their result). */
  settle?: (outcome: { resultId: number | null; duplicate: boolean; error?: string }) => void;
}
