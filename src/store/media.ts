import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';

/**
 * Small images kept for the dashboard beside the database, named by result id (never by a path
 * from a request): `<data.dir>/media/<id / 1000>/<id>.<kind>.<ext>`. The full-size original stays
 * where the camera wrote it (results.path).
 */
export type MediaKind = 'thumb' | 'mask' | 'segmented';

const EXT: Record<MediaKind, string> = { thumb: 'jpg', mask: 'png', segmented: 'jpg' };
export const MEDIA_TYPES: Record<MediaKind, string> = {
  thumb: 'image/jpeg',
  mask: 'image/png',
  segmented: 'image/jpeg',
};

export function mediaDir(dataDir: string, id: number): string {
  return join(dataDir, 'media', String(Math.floor(id / 1000)));
}

export function mediaPath(dataDir: string, id: number, kind: MediaKind): string {
  if (!Number.isSafeInteger(id) || id < 0) throw new Error(`bad result id ${id}`);
  return join(mediaDir(dataDir, id), `${id}.${kind}.${EXT[kind]}`);
}

export interface MediaSource {
  /** Decoded RGB of the original at its own size. */
  rgb: Uint8Array | Buffer;
  width: number;
  height: number;
  /** 0/255 mask and masked RGB at the model's working size (square). */
  mask: Uint8Array | Buffer;
  segmented: Uint8Array | Buffer;
  maskSize: number;
}

const THUMB_PX = 256;

/** Writes thumbnail, mask and segmented image for a result. */
export async function writeMedia(dataDir: string, id: number, src: MediaSource): Promise<void> {
  await mkdir(mediaDir(dataDir, id), { recursive: true });
  const raw = (buf: Uint8Array, width: number, height: number, channels: 1 | 3) =>
    sharp(Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength), { raw: { width, height, channels } });
  // These encodes run for every image, so they use the cheap settings: zlib level 6 instead of 9
  // (a 224 px mask grows from about 0.8 to 1.0 KB while the encode costs 2 ms of CPU less) and no
  // second Huffman pass for the JPEGs (about 10 % larger, about 40 % less encode time). Measured
  // with `scripts/benchmark`: media took about a third of the daemon's CPU per image at level 9.
  const [thumb, mask, segmented] = await Promise.all([
    raw(src.rgb, src.width, src.height, 3)
      .resize(THUMB_PX, THUMB_PX, { fit: 'inside', withoutEnlargement: true })
      .jpeg({ quality: 80, optimiseCoding: false })
      .toBuffer(),
    raw(src.mask, src.maskSize, src.maskSize, 1).png({ compressionLevel: 6, palette: false }).toBuffer(),
    raw(src.segmented, src.maskSize, src.maskSize, 3).jpeg({ quality: 80, optimiseCoding: false }).toBuffer(),
  ]);
  await Promise.all([
    writeFile(mediaPath(dataDir, id, 'thumb'), thumb),
    writeFile(mediaPath(dataDir, id, 'mask'), mask),
    writeFile(mediaPath(dataDir, id, 'segmented'), segmented),
  ]);
}

export async function removeMedia(dataDir: string, id: number): Promise<void> {
  await Promise.all(
    (Object.keys(EXT) as MediaKind[]).map((k) => rm(mediaPath(dataDir, id, k), { force: true })),
  );
}
