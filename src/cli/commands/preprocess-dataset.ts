/**
 * `blastwatch preprocess-dataset --data DIR --out DIR`: turns a class-per-folder image set into
 * the tensor cache the training pipeline reads, through prepareImage() (the daemon's own path),
 * so Python never re-implements preprocessing.
 *
 * Output (written under temporary names and renamed at the end, so a reader never sees a
 * half-written cache):
 *   original.u8, segmented.u8  raw uint8, N×3×size×size (NCHW, C order); model input = byte / 255
 *   manifest.json              format, classes, segmentation params, items (path, label, sha256,
 *                              source size, foreground fraction), failed files with their error
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
import { parseArgs } from 'node:util';
import type { Command } from '../command.js';
import { UsageError, UserError } from '../command.js';
import { DEFAULT_LIMIT_INPUT_PIXELS, IMAGE_EXTENSIONS } from '../../decode/index.js';

export const DATASET_CLASSES = ['Benign', 'Early', 'Pre', 'Pro'] as const;
export const CACHE_FORMAT = 'blastwatch-cache/1';
const PREFETCH = 3; // decodes in flight (libuv threadpool) while the main thread segments

const usage = `usage: blastwatch preprocess-dataset --data DIR --out DIR [--limit N] [--size 224]
                                     [--limit-input-pixels N]

  --data DIR   class-per-folder image set: DIR/{${DATASET_CLASSES.join(',')}}/<images>
  --out DIR    cache folder to write (original.u8, segmented.u8, manifest.json)
  --limit N    only the first N files (sorted) of each class, for quick runs
  --size S     working resolution, S×S (default 224, the data set's size)
  --limit-input-pixels N   refuse images whose header claims more pixels (default ${DEFAULT_LIMIT_INPUT_PIXELS})`;

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
  count: number;
  items: CacheItem[];
  failed: { path: string; error: string }[];
}

function positiveInt(name: string, raw: string | undefined, fallback: number): number {
  if (raw === undefined) return fallback;
  const v = Number(raw);
  if (!Number.isInteger(v) || v <= 0)
    throw new UsageError(`--${name} must be a positive integer, got '${raw}'`);
  return v;
}

/** Files of one class folder, sorted by code point, images only, not recursive. */
function listClassFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isFile() && IMAGE_EXTENSIONS.has(path.extname(e.name).toLowerCase()))
    .map((e) => e.name)
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

const command: Command = {
  name: 'preprocess-dataset',
  summary: 'turn a class-per-folder image set into the tensor cache the training pipeline reads',
  usage,
  async run(argv) {
    let values;
    try {
      ({ values } = parseArgs({
        args: argv,
        options: {
          data: { type: 'string' },
          out: { type: 'string' },
          limit: { type: 'string' },
          size: { type: 'string' },
          'limit-input-pixels': { type: 'string' },
        },
        strict: true,
        allowPositionals: false,
      }));
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
    if (!values.data) throw new UsageError('--data DIR is required');
    if (!values.out) throw new UsageError('--out DIR is required');
    const size = positiveInt('size', values.size, 224);
    const limit = positiveInt('limit', values.limit, Number.POSITIVE_INFINITY);
    const limitInputPixels = positiveInt(
      'limit-input-pixels',
      values['limit-input-pixels'],
      DEFAULT_LIMIT_INPUT_PIXELS,
    );
    const dataDir = path.resolve(values.data);
    const outDir = path.resolve(values.out);

    const jobs: { rel: string; abs: string; label: number; cls: string }[] = [];
    for (const [label, cls] of DATASET_CLASSES.entries()) {
      const dir = path.join(dataDir, cls);
      let isDir = false;
      try {
        isDir = statSync(dir).isDirectory();
      } catch {
        isDir = false;
      }
      if (!isDir)
        throw new UserError(
          `class folder missing: ${dir} (expected ${DATASET_CLASSES.join(', ')} under --data)`,
        );
      for (const name of listClassFiles(dir).slice(0, limit)) {
        jobs.push({ rel: `${cls}/${name}`, abs: path.join(dir, name), label, cls });
      }
    }
    if (jobs.length === 0) throw new UserError(`no images found under ${dataDir}`);

    // Loaded lazily so that `--help` and usage errors do not pay for sharp.
    const { prepareImage } = await import('../../preprocess/index.js');
    const { DecodeError } = await import('../../decode/index.js');
    const { resolveSegmentParams } = await import('../../segment/index.js');
    const segmentParams = resolveSegmentParams();

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

    const load = async (job: (typeof jobs)[number]) => {
      try {
        const bytes = await readFile(job.abs);
        const sha256 = createHash('sha256').update(bytes).digest('hex');
        const prepared = await prepareImage(bytes, { size, limitInputPixels });
        return { ok: true as const, sha256, prepared };
      } catch (err) {
        if (err instanceof DecodeError)
          return { ok: false as const, error: `${err.kind}: ${err.message.replace('image buffer: ', '')}` };
        const code = (err as NodeJS.ErrnoException).code;
        if (code) return { ok: false as const, error: `unreadable: ${code}` };
        throw err;
      }
    };

    try {
      const inflight: ReturnType<typeof load>[] = [];
      let next = 0;
      while (inflight.length < PREFETCH && next < jobs.length) inflight.push(load(jobs[next++]!));
      for (let i = 0; i < jobs.length; i++) {
        const result = await inflight.shift()!;
        if (next < jobs.length) inflight.push(load(jobs[next++]!));
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
        if ((i + 1) % 200 === 0 || i + 1 === jobs.length) {
          const s = (performance.now() - started) / 1000;
          process.stderr.write(
            `preprocess-dataset: ${i + 1}/${jobs.length} images, ${failed.length} failed, ${s.toFixed(1)} s\n`,
          );
        }
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
      segmentation: { ...segmentParams },
      count: items.length,
      items,
      failed,
    };
    writeFileSync(tmp('manifest.json'), `${JSON.stringify(manifest, null, 1)}\n`);
    // Tensors first, manifest last: a manifest always describes complete tensor files.
    renameSync(tmp('original.u8'), path.join(outDir, 'original.u8'));
    renameSync(tmp('segmented.u8'), path.join(outDir, 'segmented.u8'));
    renameSync(tmp('manifest.json'), path.join(outDir, 'manifest.json'));
    const seconds = (performance.now() - started) / 1000;
    process.stdout.write(
      `${JSON.stringify({ out: outDir, count: items.length, failed: failed.length, size, seconds: Number(seconds.toFixed(2)) })}\n`,
    );
    return failed.length > 0 && items.length === 0 ? 1 : 0;
  },
};

/** float32 byte/255 values back to their bytes (exact: round(b/255 × 255) = b for every b). */
function unitToBytes(tensor: Float32Array, out: Uint8Array): void {
  for (let i = 0; i < out.length; i++) out[i] = Math.round(tensor[i]! * 255);
}

function writeAll(fd: number, bytes: Uint8Array): void {
  let offset = 0;
  while (offset < bytes.length) offset += writeSync(fd, bytes, offset, bytes.length - offset);
}

export default command;
