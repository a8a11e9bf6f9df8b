/**
 * Chooses the default specimen verdict rule (min flagged k, min flagged share x, min screened n)
 * by simulation on the test split, on clean images and on shifted copies of them.
 *
 *   nice -n 10 node --import tsx scripts/specimen-sim.ts [--write-card]
 *
 * 1. Writes shifted copies of the test images with scripts/perturb-images.ts (each kind once;
 *    cached under --work) — a camera whose exposure, hue or focus has drifted is the realistic
 *    case, and a rule judged only on clean images, where the model is near 100 %, is degenerate.
 * 2. Classifies every image through the daemon's own path (prepareImage + the ONNX classifier +
 *    the shipped threshold, as `blastwatch evaluate` does); per-image predictions are cached as
 *    JSON under --work, keyed by the model file's sha256.
 * 3. Simulates specimens of m = 1..20 images drawn without replacement from one class's pool
 *    (a malignant class gives a B-ALL specimen, Benign a hematogone specimen), with a seeded
 *    PRNG, and applies every rule of a grid through suggestVerdict. A specimen keeps one
 *    condition for all its images: a shifted camera shifts the whole smear.
 * 4. Picks the rule by the criterion below, prints the tables (Markdown) and writes every figure
 *    to <work>/specimen-sim.json; --write-card puts the section into models/MODEL_CARD.md.
 *
 * Criterion, fixed before the results were seen:
 *   a. B-ALL specimen sensitivity >= 99.5 % at every m from 5 to 20, under every condition
 *      (clean and each shift);
 *   b. of those rules, the highest worst-case specificity (minimum over conditions and m = 5..20);
 *   c. rules within 0.2 points of that are tied; of tied rules, the one that needs the fewest
 *      flagged images to call a specimen suspicious (at m = 20, then 10, then 5), then the
 *      smallest k and x — because real smears mix blasts with normal cells, which the simulation
 *      cannot represent, so of equally specific rules the more sensitive one is the safer;
 *   d. n = 5: the smallest specimen size the sensitivity target was required at; below it a
 *      "no suspicious cells found" is not backed by this simulation.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { cliLogger } from '../src/cli/logger.js';
import { describeRule, type VerdictRule } from '../src/domain/specimen.js';
import { classifyFile, openModel } from '../src/evaluate/classify-file.js';
import { readFileList } from '../src/evaluate/dataset.js';
import {
  addCounts,
  screenSpecimens,
  seededRandom,
  simulateFlaggedCounts,
  simulateMixedFlaggedCounts,
  type Rate,
  type SpecimenScreening,
} from '../src/evaluate/specimen-simulation.js';

const SHIFTS = ['brightness+10', 'brightness-10', 'hue+10', 'saturation-15', 'blur1', 'jpeg70'];
const CLEAN = 'clean';
const MALIGNANT_FOLDERS = ['Early', 'Pre', 'Pro'];
const BENIGN_FOLDER = 'Benign';
const MAX_SIZE = 20;
const REPORTED_SIZES = [3, 5, 10, 20];
const SENSITIVITY_TARGET = 0.995;
const TARGET_FROM_SIZE = 5;
const TIE_TOLERANCE = 0.002;
/** Shares of blast images in the mixed B-ALL specimens of the sensitivity check beside the criterion. */
const BLAST_SHARES = [0.2, 0.5];
const MIXED_SIZES = [5, 10, 20];

interface ImagePrediction {
  path: string;
  folder: string;
  pBall: number;
  flag: boolean;
}
interface PredictionFile {
  modelSha256: string;
  threshold: number;
  images: ImagePrediction[];
}

function options() {
  const { values } = parseArgs({
    options: {
      data: { type: 'string', default: '../shared/data/all-smears' },
      split: { type: 'string', default: 'training/split.json' },
      subset: { type: 'string', default: 'test' },
      work: { type: 'string', default: 'var/specimen-sim' },
      draws: { type: 'string', default: '20000' },
      seed: { type: 'string', default: '1' },
      'write-card': { type: 'boolean', default: false },
    },
  });
  const draws = Number(values.draws);
  const seed = Number(values.seed);
  if (!Number.isInteger(draws) || draws < 1) throw new Error(`--draws must be a positive integer`);
  if (!Number.isInteger(seed)) throw new Error(`--seed must be an integer`);
  return { ...values, data: resolve(values.data), work: resolve(values.work), draws, seed };
}

/** The shifted copies of the listed images, written once per kind by the project's own perturbation script. */
async function ensureShiftedImages(data: string, listFile: string, dir: string, kind: string, expected: number) {
  const count = async () =>
    existsSync(dir)
      ? (await Promise.all((await readdir(dir)).map(async (d) => (await readdir(join(dir, d))).length))).reduce(
          (a, b) => a + b,
          0,
        )
      : 0;
  if ((await count()) === expected) return;
  const run = spawnSync(
    process.execPath,
    ['--import', 'tsx', 'scripts/perturb-images.ts', '--data', data, '--out', dir, '--kind', kind, '--files', listFile],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );
  if (run.status !== 0 || (await count()) !== expected) throw new Error(`perturb-images --kind ${kind} failed`);
}

/** Per-image predictions of one condition through the daemon's path, cached by model hash. */
async function predict(
  opened: Awaited<ReturnType<typeof openModel>>,
  imageDir: string,
  relPaths: string[],
  cacheFile: string,
): Promise<PredictionFile> {
  const info = opened.classifier.info;
  if (existsSync(cacheFile)) {
    const cached = JSON.parse(await readFile(cacheFile, 'utf8')) as PredictionFile;
    if (cached.modelSha256 === info.modelSha256 && cached.images.length === relPaths.length) return cached;
  }
  const images: ImagePrediction[] = [];
  // One image at a time: the machine is shared, and the throughput is ample for a few thousand images.
  for (const rel of relPaths) {
    const out = await classifyFile(opened, join(imageDir, rel));
    images.push({
      path: rel,
      folder: rel.split('/')[0] as string,
      pBall: out.prediction.pBall,
      flag: out.decision.flag,
    });
  }
  const file: PredictionFile = { modelSha256: info.modelSha256, threshold: info.threshold, images };
  await writeFile(cacheFile, `${JSON.stringify(file)}\n`);
  return file;
}

/** Flagged-count histograms per m (1..MAX_SIZE) for B-ALL (subtypes pooled, equal draws each) and benign specimens. */
function simulateCondition(preds: ImagePrediction[], draws: number, seed: number) {
  const pool = (folder: string) => preds.filter((p) => p.folder === folder).map((p) => p.flag);
  const random = seededRandom(seed);
  const ball: number[][] = [];
  const benign: number[][] = [];
  for (let m = 1; m <= MAX_SIZE; m++) {
    ball[m] = addCounts(MALIGNANT_FOLDERS.map((f) => simulateFlaggedCounts(pool(f), m, draws, random)));
    benign[m] = simulateFlaggedCounts(pool(BENIGN_FOLDER), m, draws, random);
  }
  return { ball, benign };
}

type Histograms = ReturnType<typeof simulateCondition>;

function ruleGrid(): VerdictRule[] {
  const rules: VerdictRule[] = [];
  for (let k = 1; k <= MAX_SIZE; k++)
    // i / 20, not i * 0.05: 0.3 must be the same double as 6 / 20 so a share exactly at x counts.
    for (let i = 1; i <= 20; i++) rules.push({ minFlagged: k, minFlaggedShare: i / 20, minScreened: TARGET_FROM_SIZE });
  return rules;
}

/** The smallest number of flagged images among m that makes the rule call a specimen suspicious. */
function flaggedNeeded(rule: VerdictRule, m: number): number {
  return Math.max(1, Math.min(rule.minFlagged, Math.ceil(rule.minFlaggedShare * m - 1e-9)));
}

interface RuleScore {
  rule: VerdictRule;
  worstSensitivity: number;
  worstSpecificity: number;
  /** Smallest m from which sensitivity meets the target up to MAX_SIZE under every condition. */
  validFrom: number;
}

function scoreRule(rule: VerdictRule, sims: Map<string, Histograms>): RuleScore {
  let worstSensitivity = 1;
  let worstSpecificity = 1;
  let validFrom = 1;
  for (let m = 1; m <= MAX_SIZE; m++) {
    for (const h of sims.values()) {
      const s = screenSpecimens(h.ball[m] as number[], h.benign[m] as number[], m, rule);
      if (s.sensitivity.value < SENSITIVITY_TARGET) validFrom = m + 1;
      if (m >= TARGET_FROM_SIZE) {
        worstSensitivity = Math.min(worstSensitivity, s.sensitivity.value);
        worstSpecificity = Math.min(worstSpecificity, s.specificity.value);
      }
    }
  }
  return { rule, worstSensitivity, worstSpecificity, validFrom };
}

function chooseRule(scores: RuleScore[]): { chosen: RuleScore; eligible: number; tied: number } {
  const eligible = scores.filter((s) => s.validFrom <= TARGET_FROM_SIZE);
  if (eligible.length === 0) throw new Error('no rule of the grid meets the sensitivity target');
  const best = Math.max(...eligible.map((s) => s.worstSpecificity));
  const tied = eligible.filter((s) => s.worstSpecificity >= best - TIE_TOLERANCE);
  const key = (s: RuleScore) => [
    flaggedNeeded(s.rule, 20),
    flaggedNeeded(s.rule, 10),
    flaggedNeeded(s.rule, 5),
    s.rule.minFlagged,
    s.rule.minFlaggedShare,
  ];
  const chosen = tied.sort((a, b) => {
    const ka = key(a);
    const kb = key(b);
    const i = ka.findIndex((v, j) => v !== kb[j]);
    return i < 0 ? 0 : (ka[i] as number) - (kb[i] as number);
  })[0] as RuleScore;
  return { chosen, eligible: eligible.length, tied: tied.length };
}

const pct = (v: number, digits = 1) => `${(v * 100).toFixed(digits)} %`;
/** A simulated rate with its Monte Carlo 95 % Wilson interval, to two decimals (the figures sit near 100 %). */
const ci = (r: Rate) => `${pct(r.value, 2)} [${(r.low * 100).toFixed(2)}, ${(r.high * 100).toFixed(2)}]`;

function imageTable(preds: Map<string, PredictionFile>): string {
  const rows = ['| condition | B-ALL images flagged | benign images flagged |', '|---|--:|--:|'];
  for (const [condition, p] of preds) {
    const ball = p.images.filter((i) => i.folder !== BENIGN_FOLDER);
    const benign = p.images.filter((i) => i.folder === BENIGN_FOLDER);
    const n = (xs: ImagePrediction[]) => xs.filter((i) => i.flag).length;
    rows.push(`| ${condition} | ${n(ball)}/${ball.length} | ${n(benign)}/${benign.length} |`);
  }
  return rows.join('\n');
}

function screeningAt(sims: Map<string, Histograms>, rule: VerdictRule, condition: string, m: number) {
  const h = sims.get(condition) as Histograms;
  return screenSpecimens(h.ball[m] as number[], h.benign[m] as number[], m, rule);
}

/** The chosen rule against m: clean, and the worst shift for each figure (named). */
function summaryTable(rule: VerdictRule, sims: Map<string, Histograms>): string {
  const shifts = [...sims.keys()].filter((c) => c !== CLEAN);
  const rows = [
    '| m | sensitivity, clean | specificity, clean | sensitivity, worst shift | specificity, worst shift | insufficient (B-ALL / benign), clean | insufficient (B-ALL / benign), most under a shift |',
    '|--:|--:|--:|--:|--:|--:|--:|',
  ];
  for (const m of REPORTED_SIZES) {
    const clean = screeningAt(sims, rule, CLEAN, m);
    const shifted = shifts.map((c) => ({ c, s: screeningAt(sims, rule, c, m) }));
    const worst = (pick: (s: SpecimenScreening) => Rate) =>
      shifted.reduce((a, b) => (pick(b.s).value < pick(a.s).value ? b : a));
    const most = (pick: (s: SpecimenScreening) => Rate) => Math.max(...shifted.map((x) => pick(x.s).value));
    const sens = worst((s) => s.sensitivity);
    const spec = worst((s) => s.specificity);
    rows.push(
      `| ${m} | ${ci(clean.sensitivity)} | ${ci(clean.specificity)} | ${ci(sens.s.sensitivity)} ${sens.c} | ` +
        `${ci(spec.s.specificity)} ${spec.c} | ${pct(clean.insufficientBall.value)} / ${pct(clean.insufficientBenign.value)} | ` +
        `${pct(most((s) => s.insufficientBall))} / ${pct(most((s) => s.insufficientBenign))} |`,
    );
  }
  return rows.join('\n');
}

function conditionTable(rule: VerdictRule, sims: Map<string, Histograms>): string {
  const rows = [
    `| condition | ${REPORTED_SIZES.map((m) => `m = ${m}: sens. / spec.`).join(' | ')} |`,
    `|---|${REPORTED_SIZES.map(() => '--:').join('|')}|`,
  ];
  for (const condition of sims.keys()) {
    const cells = REPORTED_SIZES.map((m) => {
      const s = screeningAt(sims, rule, condition, m);
      return `${pct(s.sensitivity.value, 2)} / ${pct(s.specificity.value, 2)}`;
    });
    rows.push(`| ${condition} | ${cells.join(' | ')} |`);
  }
  return rows.join('\n');
}

/**
 * Sensitivity of the chosen rule for B-ALL specimens of which only a share of the images show
 * blasts (the rest drawn from the benign pool of the same condition). Not part of the criterion:
 * it shows what the one-class simulation leaves out.
 */
function mixedTable(
  rule: VerdictRule,
  preds: Map<string, PredictionFile>,
  draws: number,
  seed: number,
): string {
  const rows = [
    `| condition | ${BLAST_SHARES.flatMap((b) => MIXED_SIZES.map((m) => `${pct(b, 0)} blasts, m = ${m}`)).join(' | ')} |`,
    `|---|${BLAST_SHARES.flatMap(() => MIXED_SIZES.map(() => '--:')).join('|')}|`,
  ];
  const random = seededRandom(seed);
  for (const [condition, p] of preds) {
    const blasts = p.images.filter((i) => i.folder !== BENIGN_FOLDER).map((i) => i.flag);
    const normals = p.images.filter((i) => i.folder === BENIGN_FOLDER).map((i) => i.flag);
    const cells = BLAST_SHARES.flatMap((b) =>
      MIXED_SIZES.map((m) => {
        const counts = simulateMixedFlaggedCounts(blasts, normals, b, m, draws, random);
        return pct(screenSpecimens(counts, [draws], m, rule).sensitivity.value);
      }),
    );
    rows.push(`| ${condition} | ${cells.join(' | ')} |`);
  }
  return rows.join('\n');
}

interface Outcome {
  rule: VerdictRule;
  chosen: RuleScore;
  eligible: number;
  tied: number;
  images: { ball: number; benign: number };
  tables: { images: string; summary: string; conditions: string; mixed: string };
}

async function main(): Promise<void> {
  const opt = options();
  const list = await readFileList(opt.split, opt.subset);
  const relPaths = list.map((e) => e.relPath);
  await mkdir(join(opt.work, 'predictions'), { recursive: true });
  const listFile = join(opt.work, `${opt.subset}-files.txt`);
  await writeFile(listFile, `${relPaths.join('\n')}\n`);

  const opened = await openModel({ log: cliLogger() });
  const preds = new Map<string, PredictionFile>();
  try {
    preds.set(CLEAN, await predict(opened, opt.data, relPaths, join(opt.work, 'predictions', `${CLEAN}.json`)));
    for (const kind of SHIFTS) {
      const dir = join(opt.work, 'images', kind);
      await ensureShiftedImages(opt.data, listFile, dir, kind, relPaths.length);
      // perturb-images writes PNG (JPEG for jpeg70) under the same class folder and stem
      const ext = kind === 'jpeg70' ? '.jpg' : '.png';
      const shifted = relPaths.map((p) => p.replace(/\.[^./]+$/, ext));
      preds.set(kind, await predict(opened, dir, shifted, join(opt.work, 'predictions', `${kind}.json`)));
    }
  } finally {
    await opened.classifier.close();
  }

  const sims = new Map<string, Histograms>();
  [...preds].forEach(([condition, p], i) => sims.set(condition, simulateCondition(p.images, opt.draws, opt.seed + i)));
  const scores = ruleGrid().map((rule) => scoreRule(rule, sims));
  const { chosen, eligible, tied } = chooseRule(scores);
  const rule: VerdictRule = { ...chosen.rule, minScreened: Math.max(TARGET_FROM_SIZE, chosen.validFrom) };
  const outcome: Outcome = {
    rule,
    chosen,
    eligible,
    tied,
    images: {
      ball: relPaths.filter((p) => !p.startsWith(`${BENIGN_FOLDER}/`)).length,
      benign: relPaths.filter((p) => p.startsWith(`${BENIGN_FOLDER}/`)).length,
    },
    tables: {
      images: imageTable(preds),
      summary: summaryTable(rule, sims),
      conditions: conditionTable(rule, sims),
      mixed: mixedTable(rule, preds, opt.draws, opt.seed + preds.size),
    },
  };
  const section = cardSection(outcome, opt);
  process.stdout.write(`${section}\n`);
  await writeFile(
    join(opt.work, 'specimen-sim.json'),
    `${JSON.stringify({ options: opt, rule, chosen, eligible, tied, scores }, null, 1)}\n`,
  );
  if (opt['write-card']) await writeCardSection(section);
}

const COMMAND = 'nice -n 10 node --import tsx scripts/specimen-sim.ts --write-card';

function cardSection(o: Outcome, opt: ReturnType<typeof options>): string {
  const { rule, chosen } = o;
  return `## Specimen-level screening

_Written by \`${COMMAND}\` (${opt.draws.toLocaleString('en')} simulated specimens per class, condition and m; seed ${opt.seed}); figures are from that run._

A hematologist reports a specimen, not an image: the daemon counts a specimen's screened and flagged images and suggests \`suspicious\`, \`insufficient\` or \`no_suspicious_cells\` by the rule in \`config/default.yaml\` (\`specimen\`). The defaults come from a simulation on the test split.

**Chosen defaults: min_flagged k = ${rule.minFlagged}, min_flagged_share x = ${rule.minFlaggedShare}, min_screened n = ${rule.minScreened}.** In words: ${describeRule(rule)}

How the specimens are made: every test image (${o.images.ball + o.images.benign}: ${o.images.ball} B-ALL, ${o.images.benign} benign) went through the daemon's own path (decode, segmentation, INT8 model, shipped temperature and threshold), clean and under each of six shifts written by \`scripts/perturb-images.ts\` (a camera or stain shift is the realistic case; on clean images the model is near 100 % and every rule looks perfect). A simulated specimen is m images drawn without replacement from one class of one condition: Early Pre-B, Pre-B or Pro-B give a B-ALL specimen (equal numbers of each: ${(3 * opt.draws).toLocaleString('en')} per m and condition), Benign a hematogone specimen (${opt.draws.toLocaleString('en')}). Sensitivity = B-ALL specimens called \`suspicious\`; specificity = benign specimens not called \`suspicious\` (\`insufficient\` counts as not suspicious; its share is given apart). Every rule k = 1..20, x = 0.05..1.00 (step 0.05) was applied to the same draws through the daemon's \`suggestVerdict\`.

Criterion, fixed before the results were seen: (a) B-ALL specimen sensitivity ≥ 99.5 % at every m from 5 to 20 under every condition (clean and each shift); (b) of those rules (${o.eligible} of ${20 * 20}), the highest worst-case specificity (minimum over the seven conditions and m = 5..20); (c) rules within 0.2 points of it are tied (${o.tied}), and of those the one that needs the fewest flagged images to call a specimen suspicious (at m = 20, then 10, then 5), because real smears mix blasts with normal cells, which this simulation cannot show, so of equally specific rules the more sensitive is the safer; (d) n = 5, the smallest specimen the sensitivity target was required at: below it, "no suspicious cells found" has no backing here (the sensitivity target alone would already hold from m = ${chosen.validFrom}). Result: worst-case sensitivity ${pct(chosen.worstSensitivity, 2)}, worst-case specificity ${pct(chosen.worstSpecificity, 2)} (m = 5..20, all conditions).

Images flagged (P(B-ALL) ≥ threshold) per condition, test split:

${o.tables.images}

The chosen rule against specimen size m (simulated share, 95 % Wilson interval of the Monte Carlo estimate in brackets; the worst of the six shifts is named):

${o.tables.summary}

Per condition (sensitivity / specificity):

${o.tables.conditions}

At m = 3 (below n) a benign specimen without enough flagged images is \`insufficient\`, and a B-ALL one is still called \`suspicious\` when enough of its images are flagged: a flagged image is never hidden by a small count.

What the one-class simulation leaves out, measured with the same rule: B-ALL specimens in which only a share of the images show blasts (each image a blast image with that probability, otherwise drawn from the benign pool of the same condition). Not part of the criterion; sensitivity:

${o.tables.mixed}

**Limitations.** The data carry no patient IDs, so a simulated specimen is m images of one class drawn from many patients, not one patient's smear: it ignores the correlation between the images of one patient (a patient whose cells the model misreads contributes all of a specimen's images, not one), and the test split is at image level, so images of the same patients are in training. On this data set colour alone predicts the class (a colour shortcut), and real smears mix blasts with normal cells (the table above): real specimens will do worse than these figures. Every figure here is an upper bound for the lab; a hematologist decides.`;
}

const CARD = 'models/MODEL_CARD.md';
const START = '<!-- specimen-screening: written by scripts/specimen-sim.ts --write-card -->';
const END = '<!-- /specimen-screening -->';

/** Replaces the section between the markers, or appends it: the rest of the card is generated by training. */
async function writeCardSection(section: string): Promise<void> {
  const card = await readFile(CARD, 'utf8');
  const block = `${START}\n${section}\n${END}\n`;
  const from = card.indexOf(START);
  const to = card.indexOf(END);
  const next =
    from >= 0 && to > from
      ? card.slice(0, from) + block + card.slice(to + END.length).replace(/^\n/, '')
      : `${card.trimEnd()}\n\n${block}`;
  await writeFile(CARD, next);
}

main().catch((err: unknown) => {
  process.stderr.write(`specimen-sim: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
