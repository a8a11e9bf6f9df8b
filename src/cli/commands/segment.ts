/**
 * `blastwatch segment <image|dir>... --out DIR`: runs the daemon's decode + segmentation on
 * files and writes, per image, `<stem>.mask.png` (8-bit 0/255 at the working resolution) and
 * `<stem>.segmented.png`, printing one JSON line per image. Handles folders of hundreds of
 * images in one process (one scratch buffer, images processed one at a time).
 */
import { mkdirSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import type { Command } from '../command.js';
import { parseCommandArgs, UsageError, UserError } from '../command.js';
import { DEFAULT_LIMIT_INPUT_PIXELS, IMAGE_EXTENSIONS } from '../../decode/index.js';
import type { ColourNormalisation, PreparedImage } from '../../preprocess/index.js';

const usage = `usage: blastwatch segment <image|dir>... --out DIR [--size 224] [--limit-input-pixels N]
                         [--as-model [--model DIR]]

  Writes <stem>.mask.png (0/255) and <stem>.segmented.png for each image (folders: their image
  files, not recursive, sorted) and prints one JSON line per image:
  {"file", "ok", "stats" | "error", "ms"}. Exit code 1 if any image failed.

  By default the paper's algorithm runs on the image as recorded. --as-model first applies the
  model's colour normalisation (model.json preprocessing.colour of --model DIR, default the
  bundled model), as the daemon does, and also writes <stem>.model.png: what the model is fed.`;

function expandInputs(inputs: string[]): string[] {
  const files: string[] = [];
  for (const input of inputs) {
    let st;
    try {
      st = statSync(input);
    } catch {
      throw new UserError(`no such file or directory: ${input}`);
    }
    if (st.isDirectory()) {
      const names = readdirSync(input, { withFileTypes: true })
        .filter((e) => e.isFile() && IMAGE_EXTENSIONS.has(path.extname(e.name).toLowerCase()))
        .map((e) => e.name)
        .sort();
      files.push(...names.map((n) => path.join(input, n)));
    } else {
      files.push(input);
    }
  }
  return files;
}

function parseSegmentArgs(argv: string[]) {
  const parsed = parseCommandArgs(argv, {
    options: {
      out: { type: 'string' },
      size: { type: 'string' },
      'limit-input-pixels': { type: 'string' },
      'as-model': { type: 'boolean', default: false },
      model: { type: 'string' },
    },
    strict: true,
    allowPositionals: true,
  });
  const { values, positionals } = parsed;
  if (positionals.length === 0) throw new UsageError('give at least one image or folder');
  if (!values.out) throw new UsageError('--out DIR is required');
  const size = values.size === undefined ? 224 : Number(values.size);
  if (!Number.isInteger(size) || size <= 0)
    throw new UsageError(`--size must be a positive integer, got '${values.size}'`);
  const limitRaw = values['limit-input-pixels'];
  const limitInputPixels = limitRaw === undefined ? DEFAULT_LIMIT_INPUT_PIXELS : Number(limitRaw);
  if (!Number.isInteger(limitInputPixels) || limitInputPixels <= 0) {
    throw new UsageError(`--limit-input-pixels must be a positive integer, got '${limitRaw}'`);
  }
  if (values.model !== undefined && !values['as-model'])
    throw new UsageError('--model only applies with --as-model');
  return {
    inputs: positionals,
    out: values.out,
    size,
    limitInputPixels,
    asModel: values['as-model'] === true,
    modelDir: values.model,
  };
}

/** The colour normalisation the model in `modelDir` (default: the bundled one) asks for. */
async function modelColour(modelDir: string | undefined): Promise<ColourNormalisation | null> {
  // manifest.ts and errors.ts only: `segment` never loads onnxruntime.
  const { BUNDLED_MODEL_DIR } = await import('../../config/load.js');
  const { loadModelManifest } = await import('../../infer/manifest.js');
  const { ModelError } = await import('../../infer/errors.js');
  try {
    const manifest = await loadModelManifest(modelDir ?? BUNDLED_MODEL_DIR);
    return manifest.preprocessing?.colour ?? null;
  } catch (err) {
    if (err instanceof ModelError) throw new UserError(err.message);
    throw err;
  }
}

/** Writes the pixels the model is fed (after colour normalisation) as `<stem>.model.png`. */
async function writeModelPng(prepared: PreparedImage, outDir: string, stem: string): Promise<string> {
  const { default: sharp } = await import('sharp');
  const { modelRgb, decoded } = prepared;
  const modelPath = path.join(outDir, `${stem}.model.png`);
  await sharp(Buffer.from(modelRgb.buffer, modelRgb.byteOffset, modelRgb.length), {
    raw: { width: decoded.width, height: decoded.height, channels: 3 },
  })
    .png()
    .toFile(modelPath);
  return modelPath;
}

/** Writes `<stem>.mask.png` (1-channel 0/255) and `<stem>.segmented.png` (RGB) into `outDir`. */
async function writePngs(
  prepared: PreparedImage,
  outDir: string,
  stem: string,
): Promise<{ maskPath: string; segmentedPath: string }> {
  const { default: sharp } = await import('sharp');
  const { segmentation, decoded } = prepared;
  const maskPath = path.join(outDir, `${stem}.mask.png`);
  const segmentedPath = path.join(outDir, `${stem}.segmented.png`);
  await sharp(Buffer.from(segmentation.mask.buffer, segmentation.mask.byteOffset, segmentation.mask.length), {
    raw: { width: decoded.width, height: decoded.height, channels: 1 },
  })
    .toColourspace('b-w') // stay a 1-channel 8-bit PNG (sharp would otherwise write RGB)
    .png()
    .toFile(maskPath);
  await sharp(
    Buffer.from(
      segmentation.segmented.buffer,
      segmentation.segmented.byteOffset,
      segmentation.segmented.length,
    ),
    {
      raw: { width: decoded.width, height: decoded.height, channels: 3 },
    },
  )
    .png()
    .toFile(segmentedPath);
  return { maskPath, segmentedPath };
}

const command: Command = {
  name: 'segment',
  summary: 'segment images (LAB a* K-means) and write masks and segmented images',
  usage,
  async run(argv) {
    const { inputs, out, size, limitInputPixels, asModel, modelDir } = parseSegmentArgs(argv);
    const files = expandInputs(inputs);
    if (files.length === 0) throw new UserError('no image files found in the given folders');
    const outDir = path.resolve(out);
    mkdirSync(outDir, { recursive: true });

    const colour = asModel ? await modelColour(modelDir) : null;
    const { prepareImage } = await import('../../preprocess/index.js');
    const { DecodeError } = await import('../../decode/index.js');

    let failures = 0;
    const usedStems = new Map<string, number>();
    for (const file of files) {
      const started = performance.now();
      try {
        const prepared = await prepareImage(file, { size, limitInputPixels, colour });
        // Two inputs with the same stem (a.jpg, a.png) must not overwrite each other.
        let stem = path.parse(file).name;
        const seen = usedStems.get(stem) ?? 0;
        usedStems.set(stem, seen + 1);
        if (seen > 0) stem = `${stem}-${seen + 1}`;
        const { maskPath, segmentedPath } = await writePngs(prepared, outDir, stem);
        const modelInput = asModel ? { model_input: await writeModelPng(prepared, outDir, stem) } : {};
        const ms = performance.now() - started;
        process.stdout.write(
          `${JSON.stringify({
            file,
            ok: true,
            mask: maskPath,
            segmented: segmentedPath,
            ...modelInput,
            ...(asModel ? { colour: prepared.colour } : {}),
            stats: prepared.segmentation.stats,
            ms: Number(ms.toFixed(2)),
            timings: prepared.timings,
          })}\n`,
        );
      } catch (err) {
        if (!(err instanceof DecodeError)) throw err;
        failures++;
        const ms = performance.now() - started;
        process.stdout.write(
          `${JSON.stringify({ file, ok: false, error: { kind: err.kind, retryable: err.retryable, message: err.message }, ms: Number(ms.toFixed(2)) })}\n`,
        );
      }
    }
    return failures > 0 ? 1 : 0;
  },
};

export default command;
