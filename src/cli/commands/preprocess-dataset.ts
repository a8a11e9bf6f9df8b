/**
 * `blastwatch preprocess-dataset --data DIR --out DIR`: turns a class-per-folder image set into
 * the tensor cache the training pipeline reads. The format and its writer are in
 * src/preprocess/training-cache.ts, beside the preprocessing it serializes.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Command } from '../command.js';
import { parseCommandArgs, UsageError, UserError } from '../command.js';
import { DEFAULT_LIMIT_INPUT_PIXELS } from '../../decode/index.js';
import {
  DATASET_CLASSES,
  DatasetLayoutError,
  listDatasetImages,
  writeTrainingCache,
  type CacheJob,
} from '../../preprocess/training-cache.js';
import { colourNormalisationSchema, type ColourNormalisation } from '../../preprocess/colour.js';

const usage = `usage: blastwatch preprocess-dataset --data DIR --out DIR [--limit N] [--size 224]
                                     [--limit-input-pixels N] [--colour FILE]

  --data DIR   class-per-folder image set: DIR/{${DATASET_CLASSES.join(',')}}/<images>
  --out DIR    cache folder to write (original.u8, segmented.u8, manifest.json)
  --limit N    only the first N files (sorted) of each class, for quick runs
  --size S     working resolution, S×S (default 224, the data set's size)
  --limit-input-pixels N   refuse images whose header claims more pixels (default ${DEFAULT_LIMIT_INPUT_PIXELS})
  --colour FILE  colour-normalise every image before segmenting, as the daemon does for a model
               with preprocessing.colour: FILE is that object (scripts/colour-reference.ts writes
               it) or a model.json holding it. Recorded in the cache's manifest.`;

/** The colour normalisation in FILE: a bare `colour` object or a model.json's preprocessing.colour. */
function readColour(file: string): ColourNormalisation {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new UserError(`--colour ${file}: ${(err as Error).message}`);
  }
  const nested = (raw as { preprocessing?: { colour?: unknown } } | null)?.preprocessing?.colour;
  const parsed = colourNormalisationSchema.safeParse(nested ?? raw);
  if (!parsed.success)
    throw new UserError(
      `--colour ${file}: not a colour normalisation: ${parsed.error.issues[0]?.message ?? ''}`,
    );
  return parsed.data;
}

function positiveInt(name: string, raw: string | undefined, fallback: number): number {
  if (raw === undefined) return fallback;
  const v = Number(raw);
  if (!Number.isInteger(v) || v <= 0)
    throw new UsageError(`--${name} must be a positive integer, got '${raw}'`);
  return v;
}

function parse(argv: string[]) {
  return parseCommandArgs(argv, {
    options: {
      data: { type: 'string' },
      out: { type: 'string' },
      limit: { type: 'string' },
      size: { type: 'string' },
      'limit-input-pixels': { type: 'string' },
      colour: { type: 'string' },
    },
    strict: true,
    allowPositionals: false,
  }).values;
}

function listImages(dataDir: string, limit: number): CacheJob[] {
  try {
    return listDatasetImages(dataDir, limit);
  } catch (err) {
    if (err instanceof DatasetLayoutError) throw new UserError(err.message);
    throw err;
  }
}

const command: Command = {
  name: 'preprocess-dataset',
  summary: 'turn a class-per-folder image set into the tensor cache the training pipeline reads',
  usage,
  async run(argv) {
    const values = parse(argv);
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

    const colour = values.colour === undefined ? null : readColour(values.colour);
    const jobs = listImages(dataDir, limit);
    if (jobs.length === 0) throw new UserError(`no images found under ${dataDir}`);

    const { manifest, seconds } = await writeTrainingCache(jobs, outDir, {
      size,
      limitInputPixels,
      colour,
      onProgress(done, failed, s) {
        if (done % 200 === 0 || done === jobs.length)
          process.stderr.write(
            `preprocess-dataset: ${done}/${jobs.length} images, ${failed} failed, ${s.toFixed(1)} s\n`,
          );
      },
    });
    const failed = manifest.failed.length;
    process.stdout.write(
      `${JSON.stringify({ out: outDir, count: manifest.count, failed, size, seconds: Number(seconds.toFixed(2)) })}\n`,
    );
    return failed > 0 && manifest.count === 0 ? 1 : 0;
  },
};

export default command;
