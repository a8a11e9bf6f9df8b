/**
 * `blastwatch evaluate --json` through the real CLI with the tiny model: the gate's fields on a
 * class-per-folder set and on a folder without class folders, and `--no-gate`. The daemon's gate
 * for this model judges the images; what a refusal does to the figures is checked in-process in
 * test/evaluate/gate-metrics.test.ts. And `blastwatch classify`'s line for a refused image.
 */
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { repoRoot, runCli } from '../helpers/cli.js';
import { tinyModelDir } from '../daemon/helpers.js';
import { darkFrame } from '../helpers/dark-frame-gate.js';
import { parseCameraShift } from '../../scripts/camera-shifts.js';
import type { ModelInfo } from '../../src/infer/index.js';

const DATA = join(repoRoot, 'test', 'fixtures', 'samples');
const FOLDERS = ['Benign', 'Early', 'Pre', 'Pro'];
const first = (folder: string): string =>
  readdirSync(join(DATA, folder))
    .filter((f) => f.endsWith('.jpg'))
    .sort()[0] as string;

interface Gated {
  n: number;
  n_accepted: number;
  rejected: { total: number; by_reason: Record<string, number>; by_class?: Record<string, number> };
  gate: boolean;
}

t.test(
  'evaluate --json: the gate fields on a labelled and an unlabelled folder, and --no-gate',
  async (t) => {
    const root = await mkdtemp(join(tmpdir(), 'bw-eval-gate-cli-'));
    t.teardown(() => rm(root, { recursive: true, force: true }));
    const labelled = join(root, 'labelled');
    for (const folder of FOLDERS) {
      await mkdir(join(labelled, folder), { recursive: true });
      await copyFile(join(DATA, folder, first(folder)), join(labelled, folder, first(folder)));
    }
    const r = await runCli(['evaluate', '--json', '--data', labelled, '--model', tinyModelDir]);
    t.equal(r.code, 0, r.stderr);
    const m = JSON.parse(r.stdout) as Gated & {
      silent_misses: number;
      silent_miss_share: number | null;
      malignant: { fn: number; tp: number };
      confusion: number[][];
      accuracy: number;
      site_check: { verdict: string; missed: string[]; silent_miss_upper_95: number };
      colour_drift: unknown;
    };
    t.match(m, { n: 4, gate: true, rejected: { total: Number, by_reason: Object, by_class: Object } });
    t.equal(m.n_accepted + m.rejected.total, m.n, 'every image is accepted or rejected');
    t.equal(
      m.confusion.flat().reduce((s, v) => s + v, 0),
      m.n_accepted,
      'the confusion matrix covers the accepted images',
    );
    t.equal(m.silent_misses, m.malignant.fn, 'silent misses: malignant, accepted, not flagged');
    t.equal(m.silent_miss_share, m.silent_misses / 3);
    // Three malignant images can never show silent misses below 1 %: the verdict is never "applies".
    t.not(m.site_check.verdict, 'applies');
    t.equal(
      m.site_check.verdict,
      m.site_check.missed.length > 0 ? 'does_not_apply' : 'not_enough_images',
      `verdict from the targets missed (${m.site_check.missed.join(', ') || 'none'})`,
    );
    t.ok(m.site_check.silent_miss_upper_95 > 0.6, 'at most 3 malignant images: the bound stays high');

    const text = await runCli(['evaluate', '--data', labelled, '--model', tinyModelDir]);
    t.equal(text.code, 0, text.stderr);
    t.match(text.stdout, /accepted by the out-of-domain gate: \d+ of 4; rejected \(cannot screen\): \d+\n/);
    t.match(text.stdout, /silent misses \(malignant, accepted, not flagged\): \d+/);
    t.match(
      text.stdout,
      /\n {2}verdict: (the model does not apply|no target missed, but too few malignant images)/,
    );

    const off = await runCli([
      'evaluate',
      '--json',
      '--no-gate',
      '--data',
      labelled,
      '--model',
      tinyModelDir,
    ]);
    t.equal(off.code, 0, off.stderr);
    const o = JSON.parse(off.stdout) as Gated & { accuracy: number; site_check: unknown };
    t.match(o, { n: 4, n_accepted: 4, rejected: { total: 0, by_reason: {} }, gate: false });
    t.equal(o.site_check, null, 'no gate, no check against the targets');
    t.equal(m.colour_drift, null, 'a model without the green-balance reference');

    // A folder without class folders: a day's captures, another lab's smears, a dark frame.
    const plain = join(root, 'plain');
    await mkdir(join(plain, 'slide-2'), { recursive: true });
    await copyFile(join(DATA, 'Pro', first('Pro')), join(plain, 'a.jpg'));
    await copyFile(join(DATA, 'Benign', first('Benign')), join(plain, 'slide-2', 'b.jpg'));
    await writeFile(join(plain, 'slide-2', 'dark.jpg'), await darkFrame(3));
    await writeFile(join(plain, 'notes.txt'), 'not an image');
    const u = await runCli(['evaluate', '--json', '--data', plain, '--model', tinyModelDir]);
    t.equal(u.code, 0, u.stderr);
    const p = JSON.parse(u.stdout) as Gated & { flagged: number; accuracy?: unknown; failed: unknown[] };
    t.match(p, { n: 3, gate: true, flagged: Number, rejected: { total: Number, by_reason: Object } });
    t.equal(p.n_accepted + p.rejected.total, 3);
    t.ok(p.flagged <= p.n_accepted, 'flagged counts accepted images only');
    t.notOk('accuracy' in p, 'no accuracy without labels');
    t.same(p.failed, []);
    const plainText = await runCli(['evaluate', '--data', plain, '--model', tinyModelDir, '--no-gate']);
    t.equal(plainText.code, 0, plainText.stderr);
    t.match(plainText.stdout, /\(no class folders: unlabelled\)\nimages: 3\nout-of-domain gate: off/);
    t.match(plainText.stdout, /flagged as possible B-ALL \(accepted images\): \d\n/);
  },
);

t.test(
  'evaluate with the bundled model names a camera recording green brighter, on a folder without labels',
  async (t) => {
    const root = await mkdtemp(join(tmpdir(), 'bw-eval-green-'));
    t.teardown(() => rm(root, { recursive: true, force: true }));
    const green = parseCameraShift('gains:1,1.15,1');
    for (const folder of FOLDERS)
      for (const name of readdirSync(join(DATA, folder)).filter((f) => f.endsWith('.jpg'))) {
        const path = join(DATA, folder, name);
        const shifted = await green.apply(await readFile(path), path);
        await writeFile(join(root, `${folder}-${name.replace(/\.jpg$/, '.png')}`), shifted.bytes);
      }
    const r = await runCli(['evaluate', '--json', '--data', root]);
    t.equal(r.code, 0, r.stderr);
    const m = JSON.parse(r.stdout) as {
      n: number;
      n_accepted: number;
      rejected: { by_reason: Record<string, number> };
      colour_drift: { measured: number; median: number; high: number; above: boolean };
    };
    t.equal(m.n, 12);
    const refusedForGreen = m.rejected.by_reason.green_balance ?? 0;
    t.ok(refusedForGreen > 0, `the gate refuses fields greener than any training image (${refusedForGreen})`);
    t.ok(
      m.colour_drift.measured >= m.n_accepted,
      `every accepted image measured, and those refused for their green (${m.colour_drift.measured})`,
    );
    t.ok(
      m.colour_drift.median > m.colour_drift.high,
      `median ${m.colour_drift.median} above ${m.colour_drift.high}`,
    );
    t.equal(m.colour_drift.above, true);
    const text = await runCli(['evaluate', '--data', root]);
    t.match(
      text.stdout,
      /\ngreen balance of the images accepted or refused only for their green or a contradicted benign call: median 1\.\d{3} over \d+, training images at most \d\.\d{3}: the camera records green brighter than the training camera did/,
    );

    const asRecorded = await runCli(['evaluate', '--json', '--data', DATA]);
    const clean = JSON.parse(asRecorded.stdout) as {
      colour_drift: { median: number; high: number; above: boolean };
    };
    t.equal(clean.colour_drift.above, false, `the samples as recorded: median ${clean.colour_drift.median}`);
  },
);

t.test(
  'evaluate with the bundled model: a blast called benign against its features is withheld, not a silent miss',
  async (t) => {
    const root = await mkdtemp(join(tmpdir(), 'bw-eval-disagree-'));
    t.teardown(() => rm(root, { recursive: true, force: true }));
    const name = 'WBC-Malignant-Pre-153.jpg';
    for (const folder of FOLDERS) await mkdir(join(root, folder), { recursive: true });
    await copyFile(join(repoRoot, 'test/fixtures/disagree', name), join(root, 'Pre', name));
    interface Labelled extends Gated {
      silent_misses: number;
    }
    const gated = await runCli(['evaluate', '--json', '--data', root]);
    t.equal(gated.code, 0, gated.stderr);
    const withGate = JSON.parse(gated.stdout) as Labelled;
    t.match(withGate, {
      n: 1,
      n_accepted: 0,
      silent_misses: 0,
      rejected: { by_reason: { features_disagree: 1 } },
    });
    const ungated = JSON.parse(
      (await runCli(['evaluate', '--json', '--data', root, '--no-gate'])).stdout,
    ) as Labelled;
    t.equal(ungated.silent_misses, 1, 'without the gate it would have been called benign');
    // config model.threshold low enough to flag it: flagged, so nothing to withhold.
    const config = join(root, 'low-threshold.yaml');
    await writeFile(config, 'model:\n  threshold: 0.05\n');
    const low = JSON.parse(
      (await runCli(['evaluate', '--json', '--data', root, '--config', config])).stdout,
    ) as Labelled;
    t.match(low, { n_accepted: 1, silent_misses: 0 }, 'flagged at the configured threshold');
  },
);

t.test('classify: an image the gate refused gets no verdict, in text and JSON', async (t) => {
  const { outcomeLine } = await import('../../src/cli/commands/classify.js');
  const info = {
    name: 'm',
    version: '1',
    executionProvider: 'cpu',
    threshold: 0.5,
    classes: ['Benign', 'Pro-B'],
  } as unknown as ModelInfo;
  const refused = {
    prediction: {
      probabilities: [0.1, 0.9],
      byClass: { Benign: 0.1, 'Pro-B': 0.9 },
      classIndex: 1,
      className: 'Pro-B',
      pBall: 0.9,
    },
    decision: { flag: true, needsReview: false, label: 'b-all' as const },
    sha256: 'a'.repeat(64),
    domain: { in: false, reasons: ['focus' as const], scores: { laplacianVar: 3 } },
  };
  t.equal(
    outcomeLine('x.jpg', refused, info, false),
    'x.jpg: cannot screen: unlike the images the model was trained on (the picture is out of focus)\n',
  );
  const line = JSON.parse(outcomeLine('x.jpg', refused, info, true)) as Record<string, unknown>;
  t.match(line, {
    status: 'out_of_domain',
    class: null,
    p_ball: null,
    flag: null,
    needs_review: null,
    probabilities: null,
    label: 'cannot-screen',
    domain: { in: false, reasons: ['focus'] },
  });
  const screened = JSON.parse(
    outcomeLine('y.jpg', { ...refused, domain: { in: true, reasons: [], scores: {} } }, info, true),
  ) as Record<string, unknown>;
  t.match(screened, { status: 'done', class: 'Pro-B', p_ball: 0.9, flag: true, label: 'b-all' });
});
