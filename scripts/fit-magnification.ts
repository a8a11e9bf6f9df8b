/**
 * Records how large the training images draw red cells, so that `blastwatch evaluate` can tell a
 * microscope whose magnification differs from the training camera's (src/gate/red-cell-size.ts,
 * docs/new-microscope.md): model.json `acquisition.red_cell_radius`.
 *
 *   nice -n 10 node --import tsx scripts/fit-magnification.ts [--data ../shared/data/all-smears]
 *     [--split training/split.json] [--model models] [--window 50] [--dry-run]
 *
 * Every training-split image goes through the daemon's preprocessing (decode, colour
 * normalisation) and its red-cell radius is measured on the picture the model sees. The data set
 * has no slide identifiers; consecutive file numbers of one class are the nearest it has to one
 * slide's fields, so the images of each class in file-name order are cut into every window of
 * --window consecutive fields, and the smallest and largest window median are the range, over
 * all classes and per class (the training camera drew the classes at different magnifications). The
 * validation and test splits are left for measuring what the check does. Changes no result the
 * daemon gives, so the model keeps its version.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { isAbsolute, join, relative, resolve, sep } from 'node:path';
import { parseArgs } from 'node:util';
import { fitRedCellReference, redCellRadiusOf } from '../src/gate/red-cell-size.js';
import { sensorNoiseSigma } from '../src/gate/sensor-noise.js';
import { openModelQuietly } from './gate/measure.js';
import { SPLIT_OPTIONS } from './gate/sets.js';

interface SplitEntry {
  path: string;
  label: number;
}

/**
 * The split file as model.json names it: relative to the working directory (the repository, where
 * training/reproduce.sh runs this) when it lies inside, so that the same data give the same
 * model.json on any machine and in any clone.
 */
function splitAsRecorded(path: string): string {
  const inside = relative(process.cwd(), resolve(path));
  return inside.startsWith('..') || isAbsolute(inside) ? path : inside.split(sep).join('/');
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      ...SPLIT_OPTIONS,
      window: { type: 'string', default: '50' },
      'dry-run': { type: 'boolean', default: false },
    },
  });
  const window = Number(values.window);
  if (!Number.isInteger(window) || window < 2) throw new Error('--window must be an integer of at least 2');
  const modelDir = resolve(values.model);
  const started = performance.now();
  const split = JSON.parse(await readFile(values.split, 'utf8')) as { splits: Record<string, SplitEntry[]> };
  const train = split.splits.train;
  if (!train?.length) throw new Error(`${values.split}: no training split`);
  const manifestPath = join(modelDir, 'model.json');
  const manifest = JSON.parse(await readFile(manifestPath, 'utf8')) as { [key: string]: unknown };
  const opened = await openModelQuietly(modelDir);
  const byClass = new Map<number, { path: string; radius: number | null }[]>();
  let measuringMs = 0;
  let noiseHigh = 0;
  try {
    for (const entry of train) {
      const prepared = await opened.prepareImage(
        await readFile(join(values.data, entry.path)),
        opened.prepareOptions,
      );
      const { width, height } = prepared.decoded;
      const t0 = performance.now();
      const rgb = prepared.modelRgb ?? prepared.decoded.rgb;
      // Measured as they are: no training field is noisier than the noisiest of them.
      const radius = redCellRadiusOf(rgb, width, height);
      measuringMs += performance.now() - t0;
      noiseHigh = Math.max(noiseHigh, sensorNoiseSigma(rgb, width, height));
      const list = byClass.get(entry.label) ?? [];
      list.push({ path: entry.path, radius });
      byClass.set(entry.label, list);
    }
  } finally {
    await opened.classifier.close();
  }
  const classes = manifest.classes as string[];
  const groups = new Map<string, (number | null)[]>();
  for (const label of [...byClass.keys()].sort((a, b) => a - b)) {
    const name = classes[label];
    if (name === undefined)
      throw new Error(`${values.split}: label ${label} is not one of model.json's classes`);
    groups.set(
      name,
      byClass
        .get(label)!
        .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
        .map((r) => r.radius),
    );
  }
  const measured = [...groups.values()].flat().filter((r) => r !== null).length;
  const reference = {
    ...fitRedCellReference(groups, window),
    noise_high: Number(noiseHigh.toFixed(4)),
    fitted: `training split of ${splitAsRecorded(values.split)}: ${measured} of ${train.length} images measured; medians of every ${window} consecutive images of one class in file-name order; noise_high: the highest sensor noise among them`,
  };
  const seconds = (performance.now() - started) / 1000;
  process.stderr.write(
    `fit-magnification: ${train.length} images, the red-cell size ${(measuringMs / train.length).toFixed(1)} ms per image (decode and normalisation apart)\n`,
  );
  if (values['dry-run']) {
    process.stdout.write(`${JSON.stringify({ acquisition: { red_cell_radius: reference } }, null, 1)}\n`);
    return;
  }
  manifest.acquisition = {
    ...(manifest.acquisition as { [key: string]: unknown } | undefined),
    red_cell_radius: reference,
  };
  await writeFile(manifestPath, `${JSON.stringify(manifest, null, 1)}\n`);
  process.stdout.write(
    `fit-magnification: red-cell radius ${reference.low}-${reference.high} px; wrote ${manifestPath} (${seconds.toFixed(0)} s)\n`,
  );
}

main().catch((err: unknown) => {
  process.stderr.write(`fit-magnification: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
