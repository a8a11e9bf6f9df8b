import { existsSync, renameSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { deflateSync } from 'node:zlib';
import Database from 'better-sqlite3';
import sharp from 'sharp';
import type { Logger } from '../log.js';
import { isCorruption } from './integrity.js';

/**
 * The small pictures the dashboard shows of each result (thumbnail, cell mask, segmented image:
 * about 20 KB together) live in their own SQLite file beside the database, `media.db`, one row
 * per result. One row, not three new files: creating a file costs the kernel an inode each time
 * (0.3-1.1 ms of CPU per file on an ext4 that has freed many inodes, measured with `perf` on the
 * daemon: docs/benchmark.md), and thousands of small files a day wear an SD card's metadata
 * blocks. Not in blastwatch.db: that file is quick-checked page by page at every start and
 * backed up with the results, and a year of pictures would make both slow. Nothing in media.db
 * is a record: a damaged file is moved aside and started afresh (the results keep their
 * verdicts; the dashboard shows the originals where they still are).
 *
 * Results stored before media.db existed have their pictures as files,
 * `<data.dir>/media/<id / 1000>/<id>.<kind>.<ext>`: still read, and removed with their results.
 * The full-size original stays where the camera wrote it (results.path).
 */
export type MediaKind = 'thumb' | 'mask' | 'segmented';

export const MEDIA_DB_FILE = 'media.db';
const EXT: Record<MediaKind, string> = { thumb: 'jpg', mask: 'png', segmented: 'jpg' };
export const MEDIA_TYPES: Record<MediaKind, string> = {
  thumb: 'image/jpeg',
  mask: 'image/png',
  segmented: 'image/jpeg',
};

/** Where a result stored before media.db kept its picture of `kind`. */
export function legacyMediaPath(dataDir: string, id: number, kind: MediaKind): string {
  if (!Number.isSafeInteger(id) || id < 0) throw new Error(`bad result id ${id}`);
  return join(dataDir, 'media', String(Math.floor(id / 1000)), `${id}.${kind}.${EXT[kind]}`);
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

/** The encoded pictures of one result. */
export type MediaParts = Record<MediaKind, Buffer>;

const THUMB_PX = 256;

/** Encodes thumbnail (JPEG, at most 256 px), mask (1-bit PNG) and segmented image (JPEG). */
export async function encodeMedia(src: MediaSource): Promise<MediaParts> {
  const raw = (buf: Uint8Array, width: number, height: number) =>
    sharp(Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength), { raw: { width, height, channels: 3 } });
  // These encodes run for every image, so they use the cheap settings: no second Huffman pass for
  // the JPEGs (about 10 % larger, about 40 % less encode time). The mask is a 1-bit PNG encoded
  // here (encodeMaskPng): 0.1 ms of CPU where a libvips PNG encode took 1.2-1.6 ms.
  const jpeg = { quality: 80, optimiseCoding: false };
  const thumb =
    src.width <= THUMB_PX && src.height <= THUMB_PX
      ? raw(src.rgb, src.width, src.height) // already thumbnail-sized (the model's input): no resize
      : raw(src.rgb, src.width, src.height).resize(THUMB_PX, THUMB_PX, { fit: 'inside' });
  const [thumbJpeg, segmentedJpeg] = await Promise.all([
    thumb.jpeg(jpeg).toBuffer(),
    raw(src.segmented, src.maskSize, src.maskSize).jpeg(jpeg).toBuffer(),
  ]);
  return {
    thumb: thumbJpeg,
    mask: encodeMaskPng(src.mask, src.maskSize, src.maskSize),
    segmented: segmentedJpeg,
  };
}

/** One picture of a result as stored: its bytes and content type. */
export interface MediaRead {
  bytes: Buffer;
  type: string;
  /** Where it was read from (media.db, or the file of a result from before it). */
  path: string;
}

/** The dashboard pictures of every result, in `<data.dir>/media.db` (see the top of this file). */
export class MediaStore {
  readonly path: string;
  private readonly db: Database.Database;
  private readonly insert: Database.Statement<[number, Buffer, Buffer, Buffer]>;
  private readonly select: Record<MediaKind, Database.Statement<[number], { bytes: Buffer }>>;
  private readonly removeRow: Database.Statement<[number]>;
  /**
   * Whether pictures stored as files (before media.db) may be there: looked for once, since the
   * daemon writes no such files any more. A new data folder then never touches the file system
   * for a missing picture or a removed result.
   */
  private readonly legacyFiles: boolean;

  constructor(
    private readonly dataDir: string,
    log?: Logger,
  ) {
    this.legacyFiles = existsSync(join(dataDir, 'media'));
    this.path = join(dataDir, MEDIA_DB_FILE);
    this.db = openMediaDb(this.path, log);
    this.insert = this.db.prepare(
      'INSERT OR REPLACE INTO media (result_id, thumb, mask, segmented) VALUES (?, ?, ?, ?)',
    );
    const select = (kind: MediaKind) =>
      this.db.prepare<[number], { bytes: Buffer }>(`SELECT ${kind} AS bytes FROM media WHERE result_id = ?`);
    this.select = { thumb: select('thumb'), mask: select('mask'), segmented: select('segmented') };
    this.removeRow = this.db.prepare('DELETE FROM media WHERE result_id = ?');
  }

  /** Stores a result's pictures (replacing any it had). */
  put(id: number, parts: MediaParts): void {
    this.insert.run(id, parts.thumb, parts.mask, parts.segmented);
  }

  /** A result's picture of `kind`; null when it has none. */
  async read(id: number, kind: MediaKind): Promise<MediaRead | null> {
    let row: { bytes: Buffer } | undefined;
    try {
      row = this.select[kind].get(id);
    } catch (err) {
      if (!isCorruption(err)) throw err; // a damaged page: no picture, as for a missing one
    }
    if (row) return { bytes: row.bytes, type: MEDIA_TYPES[kind], path: this.path };
    if (!this.legacyFiles) return null;
    const legacy = legacyMediaPath(this.dataDir, id, kind);
    try {
      return { bytes: await readFile(legacy), type: MEDIA_TYPES[kind], path: legacy };
    } catch {
      return null;
    }
  }

  /** Drops the pictures of results that are gone (rows here, files of older results). */
  remove(ids: readonly number[]): void {
    this.db.transaction(() => {
      for (const id of ids) this.removeRow.run(id);
    })();
    if (!this.legacyFiles) return;
    for (const id of ids)
      for (const kind of Object.keys(EXT) as MediaKind[])
        void rm(legacyMediaPath(this.dataDir, id, kind), { force: true });
  }

  /**
   * Periodic upkeep: folds the WAL into the file and hands back up to 8 MB of the space that
   * removed rows freed (new rows reuse the rest), so the file follows the retention settings.
   */
  upkeep(): void {
    this.db.pragma('wal_checkpoint(TRUNCATE)');
    this.db.pragma('incremental_vacuum(2048)');
  }

  close(): void {
    if (!this.db.open) return;
    try {
      this.db.pragma('wal_checkpoint(TRUNCATE)');
    } finally {
      this.db.close();
    }
  }
}

function openMediaDb(path: string, log?: Logger): Database.Database {
  try {
    return openMediaFile(path);
  } catch (err) {
    if (!isCorruption(err)) throw err;
    // Pictures only, nothing a result depends on: keep the damaged file for a look, start afresh.
    const aside = `${path}.damaged-${new Date().toISOString().replace(/[:.]/g, '-')}`;
    for (const suffix of ['', '-wal', '-shm'])
      if (existsSync(path + suffix)) renameSync(path + suffix, aside + suffix);
    log?.warn(
      { err, movedTo: aside },
      'media.db was damaged: moved aside, pictures of older results are gone',
    );
    return openMediaFile(path);
  }
}

function openMediaFile(path: string): Database.Database {
  const db = new Database(path);
  try {
    // On a new file only (before its first table): lets upkeep() give freed pages back.
    db.pragma('auto_vacuum = INCREMENTAL');
    db.pragma('journal_mode = WAL');
    // A picture lost to a power cut costs nothing but its display; no fsync per image.
    db.pragma('synchronous = NORMAL');
    db.pragma('journal_size_limit = 16777216');
    // Written once, read when someone looks: a small page cache keeps the daemon's RSS down.
    db.pragma('cache_size = -1024');
    db.exec(
      'CREATE TABLE IF NOT EXISTS media (result_id INTEGER PRIMARY KEY, thumb BLOB NOT NULL, mask BLOB NOT NULL, segmented BLOB NOT NULL)',
    );
    return db;
  } catch (err) {
    db.close();
    throw err;
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
