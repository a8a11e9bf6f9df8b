/**
 * Measures the flag threshold of the model in --model against camera shifts, from the validation
 * split only, and records it in model.json (run it after scripts/fit-gate.ts: which images the
 * gate accepts decides which misses are silent). With --lower it also applies it.
 *
 *   nice -n 10 node --import tsx scripts/fit-threshold.ts [--data ../shared/data/all-smears]
 *     [--split training/split.json] [--model models] [--lower] [--every N] [--shifts "KIND:P ..."]
 *     [--records FILE] [--dry-run]
 *
 * The training report chooses the threshold on the clean validation images (sensitivity >= 99.5 %,
 * halved as a margin). A new lamp or camera lowers P(B-ALL) of some blasts the gate still accepts,
 * and those become silent misses. So the validation images are also measured under each camera
 * shift at the ends of its range (scripts/camera-shifts.ts RANGE_SHIFTS), and the script finds the
 * largest threshold, at most the clean rule's, at which no shift has more than SHIFT_SILENT_SHARE
 * of its malignant images accepted and not flagged. model.json's `threshold_fit` records it with
 * every set's bound. --lower makes it the model's threshold (the uncertain band follows, by the
 * training report's rule); without it the threshold stays the clean rule's, because a lower one
 * flags more benign images under a shifted camera, and the specimen rule (scripts/specimen-sim.ts)
 * pays for those (the model card's "The flag threshold under camera shifts" has the figures). A
 * changed threshold is a changed model: it gets a new version (unless model.json is fresh from
 * `package`, not yet measured).
 * --every N keeps every N-th validation image and --shifts measures only the shifts named (quick
 * runs for tests); --records FILE keeps the measured figures (and reads them from there when it
 * exists), so the rule can be refitted in seconds; --dry-run prints the result without writing.
 * stderr gets a table of each set's silent misses and false alarms (benign images accepted and
 * flagged) at the clean and at the needed threshold.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { nextModelVersion } from '../src/infer/manifest.js';
import {
  chooseThreshold,
  outcomesAt,
  SHIFT_SILENT_SHARE,
  uncertainBand,
  type SetOutcome,
  type ThresholdRecord,
} from '../src/gate/fit-threshold.js';
import { RANGE_SHIFTS } from './camera-shifts.js';
import { measureImage, openModelQuietly } from './gate/measure.js';
import { parseEvery, SET_OPTIONS, withChangedCopies, writeList, type SetImage } from './gate/sets.js';

/** The training report's rule (training/blastwatch_train/pipeline.py), word for word. */
const CLEAN_RULE =
  'P(B-ALL) = 1 - P(Benign) after temperature; chosen on val for sensitivity >= 99.5% ' +
  '(largest passing value, halved as a margin, capped at 0.5)';

interface SplitEntry {
  path: string;
  label: number;
}

async function measureRecords(
  modelDir: string,
  dataDir: string,
  entries: readonly SplitEntry[],
  malignantClasses: readonly boolean[],
  folders: readonly string[],
  shifts: readonly string[],
): Promise<ThresholdRecord[]> {
  // The model opens with its gate, as the daemon's evaluate path does.
  const opened = await openModelQuietly(modelDir);
  const gate = opened.gate;
  if (!gate) throw new Error(`${modelDir}/model.json has no gate: run scripts/fit-gate.ts first`);
  const work = await mkdtemp(join(tmpdir(), 'fit-threshold-'));
  const records: ThresholdRecord[] = [];
  const measure = async (set: string, images: readonly SetImage[]): Promise<void> => {
    for (const image of images) {
      if (image.truth === null) continue;
      const { gateInput, prediction } = await measureImage(opened, image.input);
      // Judged as if called benign, since which threshold calls it benign is what this script
      // chooses: the disagreement check then fires whenever the features disagree, and every
      // other reason is the gate's whatever the call.
      const { reasons } = gate.judge({ ...gateInput, pBall: 0 });
      records.push({
        set,
        name: image.name,
        malignant: malignantClasses[image.truth] === true,
        accepted: reasons.every((r) => r === 'features_disagree'),
        disagrees: reasons.includes('features_disagree'),
        pBall: prediction.pBall,
      });
    }
    process.stderr.write(`fit-threshold: ${set}: ${images.length} images\n`);
  };
  try {
    await measure(
      'validation',
      entries.map((e) => ({ name: e.path, input: join(dataDir, e.path), truth: e.label })),
    );
    const list = join(work, 'val-files.txt');
    await writeList(
      list,
      entries.map((e) => e.path),
    );
    for (const kind of shifts)
      await withChangedCopies(dataDir, list, kind, work, folders, (images) => measure(kind, images));
  } finally {
    await opened.classifier.close();
    await rm(work, { recursive: true, force: true });
  }
  return records;
}

async function loadRecords(path: string): Promise<ThresholdRecord[]> {
  try {
    const text = await readFile(path, 'utf8');
    return text
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as ThresholdRecord);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      ...SET_OPTIONS,
      shifts: { type: 'string' },
      lower: { type: 'boolean', default: false },
      records: { type: 'string' },
      'dry-run': { type: 'boolean', default: false },
    },
  });
  const every = parseEvery(values.every);
  const modelDir = resolve(values.model);
  const manifestPath = join(modelDir, 'model.json');
  const manifest = JSON.parse(await readFile(manifestPath, 'utf8')) as { [key: string]: unknown };
  if (manifest.gate === undefined)
    throw new Error(`${manifestPath} has no gate: run scripts/fit-gate.ts first`);
  const split = JSON.parse(await readFile(values.split, 'utf8')) as { splits: Record<string, SplitEntry[]> };
  const entries = (split.splits.val ?? []).filter((_, i) => i % every === 0);
  const shifts = values.shifts ? values.shifts.split(/\s+/).filter(Boolean) : RANGE_SHIFTS;
  let records = values.records ? await loadRecords(values.records) : [];
  if (records.length === 0) {
    records = await measureRecords(
      modelDir,
      values.data,
      entries,
      manifest.malignant as boolean[],
      manifest.folders as string[],
      shifts,
    );
    if (values.records)
      await writeFile(values.records, records.map((r) => JSON.stringify(r)).join('\n') + '\n');
  }
  // The clean rule's threshold: model.json's own unless this script has lowered it before.
  const previousFit = manifest.threshold_fit as { clean?: number } | undefined;
  const clean = previousFit?.clean ?? (manifest.threshold as number);
  const choice = chooseThreshold(records, clean);
  const lower = values.lower === true;
  const round = (v: number | null): number | null => (v === null ? null : Number(v.toPrecision(6)));
  const fit = {
    command: `node --import tsx scripts/fit-threshold.ts${lower ? ' --lower' : ''}`,
    data: `training/split.json val: ${entries.length} images, clean and under ${shifts.length} camera shifts`,
    rule:
      `the largest threshold, at most the clean rule's, at which no set has more than ${100 * SHIFT_SILENT_SHARE} % ` +
      'of its malignant images accepted by the gate and not flagged',
    clean,
    needed: choice.threshold,
    applied: lower,
    binding: choice.binding,
    boundaries: Object.fromEntries(Object.entries(choice.bySet).map(([set, b]) => [set, round(b.boundary)])),
  };
  process.stdout.write(`${JSON.stringify(fit, null, 1)}\n`);
  process.stderr.write(comparison(records, clean, choice.threshold));
  if (values['dry-run']) return;
  const threshold = lower ? choice.threshold : clean;
  const before = manifest.threshold as number;
  const changed = threshold !== before;
  manifest.threshold = threshold;
  manifest.uncertain_band = uncertainBand(threshold);
  // Without --lower a threshold lowered by an earlier run goes back to the clean rule's.
  manifest.threshold_rule = lower
    ? `${CLEAN_RULE}, lowered where needed so that no camera shift of the val images has more than ` +
      `${100 * SHIFT_SILENT_SHARE}% of its malignant images accepted by the gate and not flagged (threshold_fit)`
    : CLEAN_RULE;
  manifest.threshold_fit = fit;
  // The threshold decides which results are flagged: a different one is a different model. A
  // model.json without measured figures comes fresh from `package`, which gave it a version of its own.
  if (changed && manifest.metrics !== undefined) {
    const files = manifest.files as { int8: { sha256: string } };
    manifest.version = nextModelVersion(String(manifest.version), files.int8.sha256, new Date());
  }
  await writeFile(manifestPath, `${JSON.stringify(manifest, null, 1)}\n`);
  process.stdout.write(
    `fit-threshold: ${changed ? `threshold ${before} -> ${threshold}` : 'threshold unchanged'}` +
      `${lower ? '' : ` (the shifts would need ${choice.threshold}; --lower applies it)`}; wrote ${manifestPath}\n`,
  );
}

/** Silent misses and false alarms at the clean and at the needed threshold, per set and over the shifts. */
function comparison(records: readonly ThresholdRecord[], clean: number, needed: number): string {
  const at = [outcomesAt(records, clean), outcomesAt(records, needed)] as const;
  const cell = (o: SetOutcome | undefined): string =>
    o ? `${o.silentMisses}/${o.malignant} | ${o.falseAlarms}/${o.benignAccepted}` : '– | –';
  const lines = [
    `| set | silent misses at ${clean.toFixed(4)} | benign flagged | silent misses at ${needed.toFixed(4)} | benign flagged |`,
    '|---|--:|--:|--:|--:|',
  ];
  for (const set of Object.keys(at[0])) lines.push(`| ${set} | ${cell(at[0][set])} | ${cell(at[1][set])} |`);
  // The shifts together: their records as one set.
  const shiftRecords = records.filter((r) => r.set !== 'validation').map((r) => ({ ...r, set: 'all' }));
  const shifts = (threshold: number): SetOutcome | undefined => outcomesAt(shiftRecords, threshold).all;
  lines.push(`| all shifts | ${cell(shifts(clean))} | ${cell(shifts(needed))} |`);
  return `${lines.join('\n')}\n`;
}

main().catch((err: unknown) => {
  process.stderr.write(`fit-threshold: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
