import { mkdir, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { deflateSync } from 'node:zlib';
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

/** Media folders already created by this process: one mkdir per 1 000 results, not per result. */
const madeDirs = new Set<string>();

/** Writes thumbnail, mask and segmented image for a result. */
export async function writeMedia(dataDir: string, id: number, src: MediaSource): Promise<void> {
  const raw = (buf: Uint8Array, width: number, height: number) =>
    sharp(Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength), { raw: { width, height, channels: 3 } });
  // These encodes run for every image, so they use the cheap settings: no second Huffman pass for
  // the JPEGs (about 10 % larger, about 40 % less encode time). The mask is a 1-bit PNG encoded
  // here (encodeMaskPng): 0.1 ms of CPU where a libvips PNG encode took 1.2-1.6 ms.
  const jpeg = { quality: 80, optimiseCoding: false };
  // Built afresh for each attempt: a sharp instance runs once, and clone() copies its input.
  const thumb = () =>
    (src.width <= THUMB_PX && src.height <= THUMB_PX
      ? raw(src.rgb, src.width, src.height) // already thumbnail-sized (the model's input): no resize
      : raw(src.rgb, src.width, src.height).resize(THUMB_PX, THUMB_PX, { fit: 'inside' })
    ).jpeg(jpeg);
  const segmented = () => raw(src.segmented, src.maskSize, src.maskSize).jpeg(jpeg);
  const mask = encodeMaskPng(src.mask, src.maskSize, src.maskSize);
  // Off the event loop: creating a file costs 0.3-1.1 ms of kernel time on an ext4 that has freed
  // many inodes lately, which the event loop must not wait for (docs/benchmark.md, "Daemon
  // overhead and memory"). The JPEGs go through sharp's toFile: encode, create and write are one
  // task on the thread pool, where toBuffer + writeFile took four (encode, open, write, close).
  const dir = mediaDir(dataDir, id);
  const writeAll = () =>
    Promise.all([
      thumb().toFile(mediaPath(dataDir, id, 'thumb')),
      writeFile(mediaPath(dataDir, id, 'mask'), mask),
      segmented().toFile(mediaPath(dataDir, id, 'segmented')),
    ]);
  if (!madeDirs.has(dir)) {
    await mkdir(dir, { recursive: true });
    madeDirs.add(dir);
  }
  try {
    await writeAll();
  } catch (err) {
    // The folder went away under us (data dir wiped, media pruned by hand): make it again. libvips
    // reports a missing folder in words, not as ENOENT, so the folder itself is checked.
    if (await folderExists(dir)) throw err;
    await mkdir(dir, { recursive: true });
    await writeAll();
  }
}

async function folderExists(dir: string): Promise<boolean> {
  try {
    return (await stat(dir)).isDirectory();
  } catch {
    return false;
  }
}

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32(buf: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < buf.length; i++) c = CRC_TABLE[(c ^ buf[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function pngChunk(type: string, data: Uint8Array): Buffer {
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, 'latin1');
  out.set(data, 8);
  out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
  return out;
}

/**
 * A 0/255 mask as a 1-bit greyscale PNG (any non-zero pixel is white): what the dashboard shows,
 * and what any PNG decoder reads back as 0/255. Packing the bits and deflating ~6 KB in zlib is
 * an order of magnitude cheaper than a libvips pipeline for the same picture.
 */
export function encodeMaskPng(mask: Uint8Array, width: number, height: number): Buffer {
  if (mask.length !== width * height)
    throw new RangeError(`mask has ${mask.length} pixels, expected ${width}x${height}`);
  const stride = Math.ceil(width / 8);
  const rows = new Uint8Array((stride + 1) * height); // each row: filter byte 0 (none), then bits
  for (let y = 0; y < height; y++) {
    const row = y * (stride + 1) + 1;
    const src = y * width;
    for (let x = 0; x < width; x++) if (mask[src + x] !== 0) rows[row + (x >> 3)]! |= 0x80 >> (x & 7);
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 1; // bit depth
  ihdr[9] = 0; // greyscale
  // bytes 10-12: deflate, adaptive filtering, no interlace
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', ihdr),
    pngChunk('IDAT', deflateSync(rows, { level: 6 })),
    pngChunk('IEND', new Uint8Array(0)),
  ]);
}

export async function removeMedia(dataDir: string, id: number): Promise<void> {
  await Promise.all(
    (Object.keys(EXT) as MediaKind[]).map((k) => rm(mediaPath(dataDir, id, k), { force: true })),
  );
}
