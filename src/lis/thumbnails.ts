import { readFile } from 'node:fs/promises';
import { mediaPath } from '../store/media.js';

/** The stored thumbnail of a result, or null when there is none. */
export type ThumbnailSource = (resultId: number) => Promise<Buffer | null>;

/** Thumbnails from the media folder beside the database (src/store/media.ts). */
export function mediaThumbnails(dataDir: string): ThumbnailSource {
  return async (resultId) => {
    try {
      return await readFile(mediaPath(dataDir, resultId, 'thumb'));
    } catch {
      return null;
    }
  };
}
