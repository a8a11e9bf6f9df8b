/**
 * Fits the model's colour normalisation (model.json `preprocessing.colour`) on the TRAINING split
 * only: the background colour of every training image, decoded exactly as prepareImage decodes
 * it, and the per-channel range those backgrounds span.
 *
 *   npx tsx scripts/colour-reference.ts --data ../shared/data/all-smears --split training/split.json \
 *     --out colour.json [--background-share 0.05] [--low-quantile 0.10] [--high-quantile 0.90] [--max-gain 1.5]
 *
 * The output is the `colour` object (method, background_share, background_low/high, max_gain and
 * its provenance under `reference`). `blastwatch preprocess-dataset --colour colour.json` applies
 * it to a training cache, and the training report copies it from the cache into model.json.
 * The defaults are the values measured for the shipped model (models/MODEL_CARD.md, "Colour
 * constancy and camera shifts"): the 10th-90th percentile range leaves images from the training
 * camera (almost) unchanged, which the shipped weights need, while a shifted camera is moved back
 * to the edge of that range.
 */
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { decodeImage, DEFAULT_LIMIT_INPUT_PIXELS } from '../src/decode/index.js';
import {
  createColourScratch,
  estimateBackground,
  fitColourNormalisation,
  type Rgb,
} from '../src/preprocess/colour.js';

interface SplitFile {
  splits: Record<string, { path: string }[]>;
}

function numberOption(
  raw: string | undefined,
  fallback: number,
  name: string,
  lo: number,
  hi: number,
): number {
  if (raw === undefined) return fallback;
  const v = Number(raw);
  if (!Number.isFinite(v) || v < lo || v > hi)
    throw new Error(`--${name} must be a number in [${lo}, ${hi}], got ${raw}`);
  return v;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      data: { type: 'string' },
      split: { type: 'string' },
      subset: { type: 'string', default: 'train' },
      out: { type: 'string' },
      size: { type: 'string', default: '224' },
      'background-share': { type: 'string' },
      'low-quantile': { type: 'string' },
      'high-quantile': { type: 'string' },
      'max-gain': { type: 'string' },
    },
  });
  if (!values.data || !values.split || !values.out)
    throw new Error('usage: colour-reference.ts --data DIR --split SPLIT.json --out FILE [options]');
  const size = Number(values.size);
  const backgroundShare = numberOption(values['background-share'], 0.05, 'background-share', 0.001, 1);
  const lowQuantile = numberOption(values['low-quantile'], 0.1, 'low-quantile', 0, 1);
  const highQuantile = numberOption(values['high-quantile'], 0.9, 'high-quantile', lowQuantile, 1);
  const maxGain = numberOption(values['max-gain'], 1.5, 'max-gain', 1, 10);
  const splitText = readFileSync(values.split);
  const split = JSON.parse(splitText.toString('utf8')) as SplitFile;
  const items = split.splits[values.subset!];
  if (!items || items.length === 0) throw new Error(`${values.split}: no '${values.subset}' split`);

  const scratch = createColourScratch();
  const backgrounds: Rgb[] = [];
  for (const item of items) {
    const decoded = await decodeImage(join(values.data, item.path), {
      size,
      limitInputPixels: DEFAULT_LIMIT_INPUT_PIXELS,
    });
    backgrounds.push(
      estimateBackground(decoded.rgb, decoded.width * decoded.height, backgroundShare, scratch),
    );
  }
  const colour = fitColourNormalisation(backgrounds, { backgroundShare, lowQuantile, highQuantile, maxGain });
  colour.reference = {
    ...colour.reference,
    split: values.split,
    split_sha256: createHash('sha256').update(splitText).digest('hex'),
    subset: values.subset,
    command: 'scripts/colour-reference.ts',
  };
  writeFileSync(values.out, `${JSON.stringify(colour, null, 1)}\n`);
  process.stdout.write(`${JSON.stringify({ out: values.out, ...colour })}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`colour-reference: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
