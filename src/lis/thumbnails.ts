import type { MediaStore } from '../store/media.js';

/** The stored thumbnail of a result, or null when there is none. */
export type ThumbnailSource = (resultId: number) => Promise<Buffer | null>;

/** Thumbnails from the daemon's own pictures (src/store/media.ts). */
export function mediaThumbnails(media: Pick<MediaStore, 'read'>): ThumbnailSource {
  return async (resultId) => (await media.read(resultId, 'thumb'))?.bytes ?? null;
}
