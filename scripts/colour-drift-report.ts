/**
 * How the daemon's green-balance watch (src/gate/colour-drift.ts) sees the data set as recorded
 * and under each camera shift: per picture, the share above the model's reference
 * (model.json `gate.colour_drift.high`); per window of consecutive pictures, the median health
 * would judge and how many windows it would call a changed white balance.
 *
 *   nice -n 10 node --import tsx scripts/colour-drift-report.ts [--data ../shared/data/all-smears]
 *     [--model models] [--window 50] [--shifts "KIND:P KIND:P"] [--markdown]
 *
 * Every picture of every class folder, in file-name order within its class: the data set has no
 * slide or patient identifiers, and consecutive numbers within a class are the nearest it has to
 * the fields of one slide, which is what one window of captures is at a microscope. The figure
 * is the gate's own (backgroundColour on the colour-normalised pixels, as prepareImage makes
 * them); unlike the daemon, which leaves out pictures refused for other reasons than their green,
 * every picture counts, since the segmentation and the model that judge them are not run here.
 * Default shifts: none and RANGE_SHIFTS, plus milder green gains.
 */
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { decodeImage, DEFAULT_LIMIT_INPUT_PIXELS } from '../src/decode/index.js';
import { colourDrift } from '../src/gate/colour-drift.js';
import { backgroundColour, measureImage } from '../src/gate/image-measures.js';
import { loadModelManifest } from '../src/infer/manifest.js';
import { normaliseForModel } from '../src/preprocess/colour.js';
import { parseCameraShift, RANGE_SHIFTS } from './camera-shifts.js';
import { listImages } from './gate/sets.js';

const AS_RECORDED = 'none';
const DEFAULT_SHIFTS = [AS_RECORDED, 'gains:1,1.06,1', 'gains:1,1.1,1', ...RANGE_SHIFTS];

interface ShiftFigures {
  shift: string;
  pictures: number;
  measured: number;
  above: number;
  median: number | null;
  windows: number;
  windowMedianLow: number | null;
  windowMedianHigh: number | null;
  windowsAbove: number;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      data: { type: 'string', default: '../shared/data/all-smears' },
      model: { type: 'string', default: 'models' },
      window: { type: 'string', default: '50' },
      shifts: { type: 'string' },
      markdown: { type: 'boolean', default: false },
    },
  });
  const window = Number(values.window);
  if (!Number.isInteger(window) || window < 2) throw new Error('--window must be an integer >= 2');
  const manifest = await loadModelManifest(resolve(values.model));
  const reference = manifest.gate?.colour_drift;
  const colour = manifest.preprocessing?.colour;
  if (!reference || !colour)
    throw new Error(`${values.model}/model.json has no gate.colour_drift or preprocessing.colour`);
  const size = manifest.imageSize.width;
  // Each class's pictures in file-name order (listImages sorts by relative path).
  const images = await listImages(values.data, manifest.folders);
  const byClass = manifest.folders.map((_, c) =>
    images.filter((i) => i.truth === c).map((i) => i.input as string),
  );
  const shifts = values.shifts ? values.shifts.split(/\s+/).filter(Boolean) : DEFAULT_SHIFTS;
  const rows: ShiftFigures[] = [];
  for (const name of shifts) {
    const shift = name === AS_RECORDED ? null : parseCameraShift(name);
    const row: ShiftFigures = {
      shift: name,
      pictures: 0,
      measured: 0,
      above: 0,
      median: null,
      windows: 0,
      windowMedianLow: null,
      windowMedianHigh: null,
      windowsAbove: 0,
    };
    const all: number[] = [];
    for (const files of byClass) {
      const balances: (number | null)[] = [];
      for (const file of files) {
        let bytes: Buffer = await readFile(file);
        if (shift) bytes = (await shift.apply(bytes, file)).bytes;
        const decoded = await decodeImage(bytes, { size, limitInputPixels: DEFAULT_LIMIT_INPUT_PIXELS });
        const pixels = decoded.width * decoded.height;
        const { modelRgb } = normaliseForModel(decoded.rgb, pixels, colour);
        const luma = measureImage(decoded.rgb, decoded.width, decoded.height).meanLuma;
        const balance = backgroundColour(modelRgb, pixels, luma).greenBalance;
        balances.push(balance);
        row.pictures++;
        if (balance === null) continue;
        row.measured++;
        all.push(balance);
        if (balance > reference.high) row.above++;
      }
      for (let i = 0; i + window <= balances.length; i++) {
        const judged = colourDrift(balances.slice(i, i + window), window, reference);
        if (judged.median === null) continue;
        row.windows++;
        if (judged.drifting) row.windowsAbove++;
        row.windowMedianLow = Math.min(row.windowMedianLow ?? Infinity, judged.median);
        row.windowMedianHigh = Math.max(row.windowMedianHigh ?? -Infinity, judged.median);
      }
    }
    row.median = colourDrift(all, all.length, reference).median;
    rows.push(row);
    process.stderr.write(`colour-drift-report: ${name} done\n`);
  }
  const out = { model: manifest.version, high: reference.high, window, data: values.data, rows };
  if (!values.markdown) {
    process.stdout.write(`${JSON.stringify(out, null, 1)}\n`);
    return;
  }
  const f = (v: number | null): string => (v === null ? '–' : v.toFixed(3));
  const pct = (n: number, of: number): string => (of === 0 ? '–' : `${((100 * n) / of).toFixed(1)} %`);
  const lines = [
    `| shift | pictures measured | above ${reference.high} | median | windows of ${window}: lowest and highest median | windows called a changed white balance |`,
    '|---|---|---|---|---|---|',
    ...rows.map(
      (r) =>
        `| ${r.shift === AS_RECORDED ? 'as recorded' : `\`${r.shift}\``} | ${r.measured} of ${r.pictures} | ` +
        `${pct(r.above, r.measured)} | ${f(r.median)} | ${f(r.windowMedianLow)}–${f(r.windowMedianHigh)} | ` +
        `${pct(r.windowsAbove, r.windows)} |`,
    ),
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`colour-drift-report: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
