/**
 * Measures the out-of-domain gate of the model in --model on every set it must handle, and
 * prints the figures as JSON (and with --markdown as the model card's tables):
 *
 *   nice -n 10 node --import tsx scripts/gate-report.ts [--data ../shared/data/all-smears]
 *     [--split training/split.json] [--bccd ../shared/data/ood-dev/bccd] [--model models]
 *     [--every N] [--quick] [--subset test|val] [--shifts "KIND:P KIND:P"] [--markdown] [--out FILE]
 *
 * - test split: accepted share, accuracy on the accepted images, silent misses (malignant
 *   images accepted and not flagged, as a share of the malignant images);
 * - camera shifts over their range (scripts/perturb-images.ts on the test images): accepted
 *   share, accuracy on accepted, silent misses;
 * - BCCD smear fields from another laboratory, in two halves by sorted file name: even
 *   positions = the development half (the only one looked at while choosing the gate's rules),
 *   odd positions = the held-out half the target is judged on;
 * - frames that are not smears: blank bright fields, black frames, heavy defocus (sigma 4 and
 *   6), exposure x0.4 and x1.8, generated pictures that are not smears: rejected share.
 * --every N keeps every N-th test image; --quick is the seconds-long version the tests run
 * (a few images per set, three shifts). --subset val measures the validation split in place of
 * the test split (and shifts of it): the one to look at while choosing a rule, so that the test
 * split is measured once, after. --shifts measures only the shifts named.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { loadDomainGate, type DomainGate } from '../src/gate/index.js';
import { decide, loadModelManifest } from '../src/infer/index.js';
import type { OpenedModel } from '../src/evaluate/classify-file.js';
import { RANGE_SHIFTS } from './camera-shifts.js';
import { measureImage, openModelQuietly } from './gate/measure.js';
import {
  listImages,
  nonSmearImages,
  parseEvery,
  SET_OPTIONS,
  withChangedCopies,
  writeList,
  type SetImage,
} from './gate/sets.js';

/** Each camera shift at the ends of its range (scripts/camera-shifts.ts). */
export const SHIFTS = RANGE_SHIFTS;
const QUICK_SHIFTS = ['brightness:1.2', 'blur:2', 'stretch:1024x768'];
/** Changes that leave no smear to screen: each must be refused. */
const NON_SMEAR_CHANGES = ['blur:4', 'blur:6', 'brightness:0.4', 'brightness:1.8'];

export interface SetFigures {
  n: number;
  accepted: number;
  acceptedShare: number;
  rejectedByReason: Record<string, number>;
  /** Only for sets with classes. */
  accuracyOnAccepted?: number | null;
  malignant?: number;
  silentMisses?: number;
  silentMissShare?: number | null;
  /** Without the gate, for comparison. */
  accuracyAll?: number | null;
  flaggedAccepted?: number;
  flaggedAll?: number;
}

interface Context {
  opened: OpenedModel;
  gate: DomainGate;
  malignant: readonly boolean[];
  folders: readonly string[];
  judgeMs: number[];
}

async function measureSet(ctx: Context, images: readonly SetImage[]): Promise<SetFigures> {
  const byReason: Record<string, number> = {};
  let accepted = 0;
  let correctAccepted = 0;
  let correctAll = 0;
  let labelled = 0;
  let malignant = 0;
  let silent = 0;
  let flaggedAccepted = 0;
  let flaggedAll = 0;
  const { threshold, uncertainBand } = ctx.opened.classifier.info;
  for (const image of images) {
    const { gateInput, prediction } = await measureImage(ctx.opened, image.input);
    const t0 = performance.now();
    const check = ctx.gate.judge(gateInput);
    ctx.judgeMs.push(performance.now() - t0);
    const { flag } = decide(prediction.pBall, threshold, uncertainBand);
    if (flag) flaggedAll++;
    if (check.in) {
      accepted++;
      if (flag) flaggedAccepted++;
    } else for (const r of check.reasons) byReason[r] = (byReason[r] ?? 0) + 1;
    if (image.truth === null) continue;
    labelled++;
    const correct = prediction.classIndex === image.truth;
    if (correct) correctAll++;
    if (check.in && correct) correctAccepted++;
    if (ctx.malignant[image.truth]) {
      malignant++;
      if (check.in && !flag) silent++;
    }
  }
  const n = images.length;
  const figures: SetFigures = {
    n,
    accepted,
    acceptedShare: n > 0 ? accepted / n : 0,
    rejectedByReason: byReason,
    flaggedAccepted,
    flaggedAll,
  };
  if (labelled > 0) {
    figures.accuracyOnAccepted = accepted > 0 ? correctAccepted / accepted : null;
    figures.accuracyAll = correctAll / labelled;
    figures.malignant = malignant;
    figures.silentMisses = silent;
    figures.silentMissShare = malignant > 0 ? silent / malignant : null;
  }
  return figures;
}

/** Generated frames without a smear, and the test images changed until no smear is left to screen. */
async function measureNonSmears(
  ctx: Context,
  perKind: number,
  dataDir: string,
  list: string,
  work: string,
): Promise<Record<string, SetFigures>> {
  const generated = await nonSmearImages(perKind);
  const nonSmear: Record<string, SetFigures> = {
    blank: await measureSet(ctx, generated.blank),
    black: await measureSet(ctx, generated.black),
    'not a smear': await measureSet(ctx, generated.other),
  };
  for (const kind of NON_SMEAR_CHANGES)
    nonSmear[kind] = await withChangedCopies(dataDir, list, kind, work, ctx.folders, (images) =>
      measureSet(ctx, images),
    );
  return nonSmear;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      ...SET_OPTIONS,
      bccd: { type: 'string', default: '../shared/data/ood-dev/bccd' },
      quick: { type: 'boolean', default: false },
      subset: { type: 'string', default: 'test' },
      shifts: { type: 'string' },
      markdown: { type: 'boolean', default: false },
      out: { type: 'string' },
    },
  });
  const quick = values.quick;
  const every = quick ? 52 : parseEvery(values.every);
  const subset = values.subset;
  if (subset !== 'test' && subset !== 'val') throw new Error('--subset must be test or val');
  const shiftKinds = values.shifts
    ? values.shifts.split(/\s+/).filter(Boolean)
    : quick
      ? QUICK_SHIFTS
      : SHIFTS;
  const started = performance.now();
  const modelDir = resolve(values.model);
  const manifest = await loadModelManifest(modelDir);
  const gate = await loadDomainGate(manifest);
  const opened = await openModelQuietly(modelDir);
  const ctx: Context = {
    opened,
    gate,
    malignant: manifest.malignant,
    folders: manifest.folders,
    judgeMs: [],
  };
  const work = await mkdtemp(join(tmpdir(), 'gate-report-'));
  const report: Record<string, unknown> = { model: manifest.version, gateChecking: gate.checking, subset };
  try {
    const split = JSON.parse(await readFile(values.split, 'utf8')) as {
      splits: Record<'test' | 'val', { path: string; label: number }[]>;
    };
    const test = split.splits[subset].filter((_, i) => i % every === 0);
    const testImages: SetImage[] = test.map((e) => ({
      name: e.path,
      input: join(values.data, e.path),
      truth: e.label,
    }));
    report.test = await measureSet(ctx, testImages);
    progress('test', report.test as SetFigures);

    const list = join(work, 'test-files.txt');
    await writeList(
      list,
      test.map((e) => e.path),
    );
    const shifts: Record<string, SetFigures> = {};
    for (const kind of shiftKinds) {
      shifts[kind] = await withChangedCopies(values.data, list, kind, work, manifest.folders, (images) =>
        measureSet(ctx, images),
      );
      progress(kind, shifts[kind]);
    }
    report.shifts = shifts;

    const bccd = await listImages(values.bccd, []);
    const bccdKept = quick ? bccd.slice(0, 8) : bccd;
    const development = bccdKept.filter((_, i) => i % 2 === 0);
    const heldOut = bccdKept.filter((_, i) => i % 2 === 1);
    report.bccd = {
      rule: 'files sorted by name; even positions = development half, odd positions = held-out half',
      development: await measureSet(ctx, development),
      heldOut: await measureSet(ctx, heldOut),
    };
    progress('bccd held-out', (report.bccd as { heldOut: SetFigures }).heldOut);

    report.nonSmear = await measureNonSmears(ctx, quick ? 2 : 30, values.data, list, work);
    const sorted = [...ctx.judgeMs].sort((a, b) => a - b);
    report.judgeMs = {
      median: sorted[Math.floor(sorted.length / 2)] ?? 0,
      p95: sorted[Math.floor(sorted.length * 0.95)] ?? 0,
      n: sorted.length,
    };
    report.seconds = Math.round((performance.now() - started) / 1000);
  } finally {
    await opened.classifier.close();
    await rm(work, { recursive: true, force: true });
  }
  const json = `${JSON.stringify(report, null, 1)}\n`;
  if (values.out) await writeFile(values.out, json);
  process.stdout.write(values.markdown ? markdown(report) : json);
}

function progress(name: string, f: SetFigures): void {
  process.stderr.write(
    `gate-report: ${name}: ${f.accepted}/${f.n} accepted` +
      (f.accuracyOnAccepted != null
        ? `, accuracy on accepted ${(100 * f.accuracyOnAccepted).toFixed(2)} %`
        : '') +
      '\n',
  );
}

const pct = (v: number | null | undefined): string => (v == null ? '–' : `${(100 * v).toFixed(1)} %`);
const reasons = (f: SetFigures): string =>
  Object.entries(f.rejectedByReason)
    .sort((a, b) => b[1] - a[1])
    .map(([r, c]) => `${r} ${c}`)
    .join(', ') || '–';

function markdown(report: Record<string, unknown>): string {
  const lines: string[] = [];
  const test = report.test as SetFigures;
  lines.push('| set | n | accepted | accuracy on accepted (all) | silent misses | rejected by reason |');
  lines.push('|---|---|---|---|---|---|');
  const row = (name: string, f: SetFigures): void => {
    lines.push(
      `| ${name} | ${f.n} | ${pct(f.acceptedShare)} | ${pct(f.accuracyOnAccepted)} (${pct(f.accuracyAll)}) | ` +
        `${f.silentMisses ?? '–'}/${f.malignant ?? '–'} (${pct(f.silentMissShare)}) | ${reasons(f)} |`,
    );
  };
  row(report.subset === 'val' ? 'validation split' : 'test split', test);
  for (const [kind, f] of Object.entries(report.shifts as Record<string, SetFigures>))
    row(`shift ${kind}`, f);
  lines.push('');
  lines.push('| set | n | rejected | flagged B-ALL: accepted (without the gate) | rejected by reason |');
  lines.push('|---|---|---|---|---|');
  const rejectRow = (name: string, f: SetFigures): void => {
    lines.push(
      `| ${name} | ${f.n} | ${pct(1 - f.acceptedShare)} | ${f.flaggedAccepted} (${f.flaggedAll}) | ${reasons(f)} |`,
    );
  };
  const bccd = report.bccd as { development: SetFigures; heldOut: SetFigures };
  rejectRow('BCCD held-out half (odd positions)', bccd.heldOut);
  rejectRow('BCCD development half (even positions)', bccd.development);
  for (const [kind, f] of Object.entries(report.nonSmear as Record<string, SetFigures>)) rejectRow(kind, f);
  const judge = report.judgeMs as { median: number; p95: number; n: number };
  lines.push('');
  lines.push(
    `judge(): median ${judge.median.toFixed(3)} ms, p95 ${judge.p95.toFixed(3)} ms over ${judge.n} images.`,
  );
  return `${lines.join('\n')}\n`;
}

main().catch((err: unknown) => {
  process.stderr.write(`gate-report: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
