/**
 * The model under another camera: accuracy and B-ALL sensitivity on the test split under each
 * camera shift (scripts/camera-shifts.ts), without and with the colour normalisation, through
 * the daemon's own prepareImage and classifier (INT8, CPU, the model's temperature and threshold).
 *
 *   nice -n 10 npx tsx scripts/robustness.ts [--model models] [--colour FILE] [--limit N] [--json OUT]
 *        [--data ../shared/data/all-smears] [--split training/split.json] [--subset test] [--shifts "A B .."]
 *
 * Shifted copies are written to a temporary folder (removed at the end) and read back as files,
 * so each goes through decoding like a camera's image. Every shift is deterministic (the noise is
 * seeded by each image's path), so two runs give the same table. --colour: the normalisation to
 * measure (a `colour` object or a model.json); default the model's own preprocessing.colour.
 * --limit N: the first N test images of each class (a seconds-long run for CI).
 * Prints a Markdown table; --json writes the figures.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, parse as parsePath } from 'node:path';
import { parseArgs } from 'node:util';
import pino from 'pino';
import { createClassifier, loadModelManifest } from '../src/infer/index.js';
import { colourNormalisationSchema, type ColourNormalisation } from '../src/preprocess/colour.js';
import { prepareImage } from '../src/preprocess/index.js';
import { parseCameraShift, RANGE_SHIFTS, type CameraShift } from './camera-shifts.js';

const DEFAULT_SHIFTS = RANGE_SHIFTS;

interface SplitItem {
  path: string;
  label: number;
}

interface Score {
  n: number;
  correct: number;
  malignant: number;
  flagged: number;
}

interface RobustnessRow {
  condition: string;
  n: number;
  without: { accuracy: number; sensitivity: number };
  with: { accuracy: number; sensitivity: number };
}

function readColour(file: string): ColourNormalisation {
  const raw = JSON.parse(readFileSync(file, 'utf8')) as { preprocessing?: { colour?: unknown } };
  return colourNormalisationSchema.parse(raw.preprocessing?.colour ?? raw);
}

function firstPerClass(items: SplitItem[], limit: number): SplitItem[] {
  const seen = new Map<number, number>();
  return items.filter((it) => {
    const n = seen.get(it.label) ?? 0;
    seen.set(it.label, n + 1);
    return n < limit;
  });
}

/** Writes every item shifted into `dir`; returns the files in item order. */
async function writeShifted(
  shift: CameraShift | null,
  items: SplitItem[],
  dataDir: string,
  dir: string,
): Promise<string[]> {
  const out: string[] = [];
  for (const it of items) {
    const src = join(dataDir, it.path);
    if (!shift) {
      out.push(src); // the clean row reads the data set's own files
      continue;
    }
    const { bytes, ext } = await shift.apply(src, it.path);
    const p = parsePath(it.path);
    const file = join(dir, p.dir, `${p.name}${ext}`);
    await mkdir(dirname(file), { recursive: true });
    await writeFile(file, bytes);
    out.push(file);
  }
  return out;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      model: { type: 'string', default: 'models' },
      colour: { type: 'string' },
      data: { type: 'string', default: '../shared/data/all-smears' },
      split: { type: 'string', default: 'training/split.json' },
      subset: { type: 'string', default: 'test' },
      shifts: { type: 'string' },
      limit: { type: 'string' },
      json: { type: 'string' },
    },
  });
  const manifest = await loadModelManifest(values.model!);
  const colour = values.colour ? readColour(values.colour) : (manifest.preprocessing?.colour ?? null);
  if (!colour) throw new Error(`${values.model}/model.json has no preprocessing.colour: give --colour FILE`);
  const split = JSON.parse(readFileSync(values.split!, 'utf8')) as { splits: Record<string, SplitItem[]> };
  let items = split.splits[values.subset!] ?? [];
  if (values.limit) items = firstPerClass(items, Number(values.limit));
  if (items.length === 0) throw new Error(`no '${values.subset}' images in ${values.split}`);
  const shifts = [null, ...(values.shifts ? values.shifts.split(' ') : DEFAULT_SHIFTS).map(parseCameraShift)];

  const classifier = await createClassifier({
    modelDir: values.model!,
    manifest,
    executionProviders: ['cpu'],
    threads: 1,
    log: pino({ level: 'silent' }),
  });
  const { threshold } = classifier.info;
  const size = manifest.imageSize.width;
  const tmp = mkdtempSync(join(tmpdir(), 'blastwatch-robustness-'));
  const rows: RobustnessRow[] = [];
  try {
    for (const [k, shift] of shifts.entries()) {
      const files = await writeShifted(shift, items, values.data!, join(tmp, String(k)));
      const scores: Score[] = [0, 1].map(() => ({ n: 0, correct: 0, malignant: 0, flagged: 0 }));
      for (const [mode, modeColour] of [null, colour].entries()) {
        const score = scores[mode]!;
        for (let i = 0; i < files.length; i += 32) {
          const batch = [];
          for (const file of files.slice(i, i + 32)) {
            const p = await prepareImage(file, { size, limitInputPixels: 50_000_000, colour: modeColour });
            batch.push({ original: p.original, segmented: p.segmented });
          }
          const predictions = await classifier.classify(batch);
          predictions.forEach((pred, j) => {
            const label = items[i + j]!.label;
            score.n++;
            if (pred.classIndex === label) score.correct++;
            if (manifest.malignant[label]) {
              score.malignant++;
              if (pred.pBall >= threshold) score.flagged++;
            }
          });
        }
      }
      const rate = (s: Score) => ({
        accuracy: s.correct / s.n,
        sensitivity: s.flagged / Math.max(1, s.malignant),
      });
      const row = {
        condition: shift?.name ?? `none (${values.subset} split)`,
        n: files.length,
        without: rate(scores[0]!),
        with: rate(scores[1]!),
      };
      rows.push(row);
      rmSync(join(tmp, String(k)), { recursive: true, force: true });
      process.stderr.write(`robustness: ${row.condition} done\n`);
    }
  } finally {
    await classifier.close();
    rmSync(tmp, { recursive: true, force: true });
  }
  const pct = (v: number): string => `${(100 * v).toFixed(2)}%`;
  const lines = [
    '| condition | n | accuracy without | accuracy with | B-ALL sensitivity without | B-ALL sensitivity with |',
    '|---|--:|--:|--:|--:|--:|',
    ...rows.map(
      (r) =>
        `| ${r.condition} | ${r.n} | ${pct(r.without.accuracy)} | ${pct(r.with.accuracy)} | ${pct(r.without.sensitivity)} | ${pct(r.with.sensitivity)} |`,
    ),
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
  if (values.json)
    writeFileSync(values.json, `${JSON.stringify({ model: manifest.version, colour, rows }, null, 1)}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`robustness: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
