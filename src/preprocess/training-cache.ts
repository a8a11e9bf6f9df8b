/**
 * The training cache: a class-per-folder image set run through prepareImage() (the daemon's
 * own path) and stored as the tensors' bytes, so Python never re-implements preprocessing.
 * training/blastwatch_train/cache.py reads it; test/parity proves the tensors it yields equal
 * prepareImage's bit for bit.
 *
 * Format `blastwatch-cache/1`, in the output folder (written under temporary names and renamed
 * at the end, so a reader never sees a half-written cache):
 *   original.u8, segmented.u8  raw uint8, N×3×size×size (NCHW, C order); model input = byte / 255
 *   manifest.json              format, classes, segmentation params, colour normalisation (null:
 *                              none), items (path, label, sha256, source size, foreground
 *                              fraction), failed files with their error
 * The training report copies `colour` into model.json, so the daemon normalises as training did.
 */
import { createHash } from 'node:crypto';
import {
  closeSync,
  mkdirSync,
  openSync,
  readdirSync,
  renameSync,
  statSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { DecodeError, IMAGE_EXTENSIONS } from '../decode/index.js';
import { resolveSegmentParams } from '../segment/index.js';
import { prepareImage } from './index.js';
import type { ColourNormalisation } from './colour.js';

/** The data set's class folders, in label order. */
export const DATASET_CLASSES = ['Benign', 'Early', 'Pre', 'Pro'] as const;
export const CACHE_FORMAT = 'blastwatch-cache/1';
const PREFETCH = 3; // decodes in flight (libuv threadpool) while the main thread segments

export interface CacheItem {
  index: number;
  path: string;
  label: number;
  class: string;
  sha256: string;
  source_width: number;
  source_height: number;
  foreground_fraction: number;
}

export interface CacheManifest {
  format: typeof CACHE_FORMAT;
  size: number;
  layout: string;
  classes: string[];
  segmentation: Record<string, unknown>;
  /** The colour normalisation applied before segmentation (model.json preprocessing.colour). */
  colour: ColourNormalisation | null;
  count: number;
  items: CacheItem[];
  failed: { path: string; error: string }[];
}

/** One image of the set: its path relative to the data folder (the manifest's `path`) and label. */
export interface CacheJob {
  rel: string;
  abs: string;
  label: number;
  cls: string;
}

/** The data folder is not class-per-folder (a class folder is missing). */
export class DatasetLayoutError extends Error {
  override readonly name = 'DatasetLayoutError';
}

/** Files of one class folder, sorted by code point, images only, not recursive. */
function listClassFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isFile() && IMAGE_EXTENSIONS.has(path.extname(e.name).toLowerCase()))
    .map((e) => e.name)
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/**
 * The images of `dataDir/{Benign,Early,Pre,Pro}/`, at most `limit` (the first, sorted) per
 * class, in label order. Throws DatasetLayoutError when a class folder is missing.
 */
export function listDatasetImages(dataDir: string, limit = Number.POSITIVE_INFINITY): CacheJob[] {
  const jobs: CacheJob[] = [];
  for (const [label, cls] of DATASET_CLASSES.entries()) {
    const dir = path.join(dataDir, cls);
    let isDir = false;
    try {
      isDir = statSync(dir).isDirectory();
    } catch {
      isDir = false;
    }
    if (!isDir)
      throw new DatasetLayoutError(
        `class folder missing: ${dir} (expected ${DATASET_CLASSES.join(', ')} under --data)`,
      );
    for (const name of listClassFiles(dir).slice(0, limit)) {
      jobs.push({ rel: `${cls}/${name}`, abs: path.join(dir, name), label, cls });
    }
  }
  return jobs;
}

export interface WriteCacheOptions {
  /** Working resolution, size×size. */
  size: number;
  /** Images whose header claims more pixels are refused (recorded as failed). */
  limitInputPixels: number;
  /** Colour normalisation to apply (the model's `preprocessing.colour`); null or absent: none. */
  colour?: ColourNormalisation | null;
  /** Called after each image: how many are done and failed, and the seconds since the start. */
  onProgress?: (done: number, failed: number, seconds: number) => void;
}

export interface WrittenCache {
  manifest: CacheManifest;
  seconds: number;
}

type Loaded =
  | { ok: true; sha256: string; prepared: Awaited<ReturnType<typeof prepareImage>> }
  | { ok: false; error: string };

/** Reads and prepares one image; decode and read failures become a failed entry. */
async function load(job: CacheJob, opts: WriteCacheOptions): Promise<Loaded> {
  try {
    const bytes = await readFile(job.abs);
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    const prepared = await prepareImage(bytes, {
      size: opts.size,
      limitInputPixels: opts.limitInputPixels,
      colour: opts.colour ?? null,
    });
    return { ok: true, sha256, prepared };
  } catch (err) {
    if (err instanceof DecodeError)
      return { ok: false, error: `${err.kind}: ${err.message.replace('image buffer: ', '')}` };
    const code = (err as NodeJS.ErrnoException).code;
    if (code) return { ok: false, error: `unreadable: ${code}` };
    throw err;
  }
}

/** Writes the cache of `jobs` into `outDir` (created if missing); returns its manifest. */
export async function writeTrainingCache(
  jobs: readonly CacheJob[],
  outDir: string,
  opts: WriteCacheOptions,
): Promise<WrittenCache> {
  const { size } = opts;
  mkdirSync(outDir, { recursive: true });
  const tmp = (name: string): string => path.join(outDir, `.${name}.tmp-${process.pid}`);
  const originalFd = openSync(tmp('original.u8'), 'w');
  const segmentedFd = openSync(tmp('segmented.u8'), 'w');
  const plane = size * size;
  const originalBytes = new Uint8Array(plane * 3);
  const segmentedBytes = new Uint8Array(plane * 3);
  const items: CacheItem[] = [];
  const failed: { path: string; error: string }[] = [];
  const started = performance.now();

  try {
    const inflight: Promise<Loaded>[] = [];
    let next = 0;
    while (inflight.length < PREFETCH && next < jobs.length) inflight.push(load(jobs[next++]!, opts));
    for (let i = 0; i < jobs.length; i++) {
      const result = await inflight.shift()!;
      if (next < jobs.length) inflight.push(load(jobs[next++]!, opts));
      const job = jobs[i]!;
      if (!result.ok) {
        failed.push({ path: job.rel, error: result.error });
      } else {
        const { prepared, sha256 } = result;
        // The cache stores the tensors' bytes: original = round(tensor × 255) exactly, since
        // the tensors are byte / 255. Written from the same PreparedImage the daemon uses.
        unitToBytes(prepared.original, originalBytes);
        unitToBytes(prepared.segmented, segmentedBytes);
        writeAll(originalFd, originalBytes);
        writeAll(segmentedFd, segmentedBytes);
        items.push({
          index: items.length,
          path: job.rel,
          label: job.label,
          class: job.cls,
          sha256,
          source_width: prepared.decoded.source.width,
          source_height: prepared.decoded.source.height,
          foreground_fraction: prepared.segmentation.stats.foregroundFraction,
        });
      }
      opts.onProgress?.(i + 1, failed.length, (performance.now() - started) / 1000);
    }
  } finally {
    closeSync(originalFd);
    closeSync(segmentedFd);
  }

  const manifest: CacheManifest = {
    format: CACHE_FORMAT,
    size,
    layout: 'NCHW uint8; model input = value / 255',
    classes: [...DATASET_CLASSES],
    segmentation: { ...resolveSegmentParams() },
    colour: opts.colour ?? null,
    count: items.length,
    items,
    failed,
  };
  writeFileSync(tmp('manifest.json'), `${JSON.stringify(manifest, null, 1)}\n`);
  // Tensors first, manifest last: a manifest always describes complete tensor files.
  renameSync(tmp('original.u8'), path.join(outDir, 'original.u8'));
  renameSync(tmp('segmented.u8'), path.join(outDir, 'segmented.u8'));
  renameSync(tmp('manifest.json'), path.join(outDir, 'manifest.json'));
  return { manifest, seconds: (performance.now() - started) / 1000 };
}

/** float32 byte/255 values back to their bytes (exact: round(b/255 × 255) = b for every b). */
function unitToBytes(tensor: Float32Array, out: Uint8Array): void {
  for (let i = 0; i < out.length; i++) out[i] = Math.round(tensor[i]! * 255);
}

function writeAll(fd: number, bytes: Uint8Array): void {
  let offset = 0;
  while (offset < bytes.length) offset += writeSync(fd, bytes, offset, bytes.length - offset);
}
