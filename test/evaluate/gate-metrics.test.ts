/**
 * The gate's figures in `blastwatch evaluate`: the model's metrics over the accepted images only,
 * rejections by reason and class, silent misses; and the summary of a set without labels. Small
 * hand-checked examples, then the real per-image path (tiny model, real images) with a gate that
 * refuses dark frames.
 */
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import t from 'tap';
import type { DomainCheck } from '../../src/domain/applicability.js';
import { classifyFile, openModel } from '../../src/evaluate/classify-file.js';
import { evaluateLabelled, evaluateUnlabelled } from '../../src/evaluate/gate-metrics.js';
import { sampleImages, tinyModelDir } from '../daemon/helpers.js';
import { darkFrame, darkFrameGate } from '../helpers/dark-frame-gate.js';

const classes = ['Benign', 'Early Pre-B', 'Pre-B', 'Pro-B'];
const malignant = [false, true, true, true];
const IN: DomainCheck = { in: true, reasons: [], scores: {} };
const out = (...reasons: DomainCheck['reasons']): DomainCheck => ({ in: false, reasons, scores: {} });
/** An image of class `truth` the model puts in class `predicted` with P(B-ALL) `pBall`. */
const img = (truth: number, predicted: number, pBall: number, domain: DomainCheck | null = IN) => ({
  truth,
  probabilities: classes.map((_, i) => (i === predicted ? 0.85 : 0.05)),
  pBall,
  domain,
});

t.test('labelled: metrics over the accepted images, rejections, silent misses', async (t) => {
  const items = [
    img(0, 0, 0.1), // benign, right
    img(0, 3, 0.9, out('focus')), // benign, would be a false alarm: rejected
    img(3, 3, 0.9), // Pro-B flagged
    img(3, 0, 0.1), // Pro-B called benign: a silent miss
    img(2, 0, 0.2, out('underexposed', 'clipping')), // Pre-B the model would miss: rejected, not silent
    img(1, 1, 0.8, out('focus')),
  ];
  const m = evaluateLabelled(items, classes, malignant, 0.5, [0.4, 0.6], true);
  t.equal(m.n, 6, 'every image classified');
  t.equal(m.n_accepted, 3);
  t.same(m.rejected, {
    total: 3,
    by_reason: { focus: 2, underexposed: 1, clipping: 1 },
    by_class: { Benign: 1, 'Early Pre-B': 1, 'Pre-B': 1, 'Pro-B': 0 },
  });
  t.same(
    m.confusion,
    [
      [1, 0, 0, 0],
      [0, 0, 0, 0],
      [0, 0, 0, 0],
      [1, 0, 0, 1],
    ],
    'the confusion matrix holds the accepted images only',
  );
  t.equal(m.accuracy, 2 / 3);
  t.match(m.malignant, { tp: 1, fn: 1, tn: 1, fp: 0 });
  t.equal(m.silent_misses, 1, 'the rejected Pre-B is not silent: the daemon said it cannot screen it');
  t.equal(m.silent_miss_share, 1 / 4, 'of the four malignant images');
  t.equal(m.gate, true);

  const noGate = evaluateLabelled(
    items.map((i) => ({ ...i, domain: null })),
    classes,
    malignant,
    0.5,
    [0.4, 0.6],
    false,
  );
  t.match(noGate, { n: 6, n_accepted: 6, rejected: { total: 0, by_reason: {} }, gate: false });
  t.equal(noGate.silent_misses, 2, 'without the gate both misses are silent');
  t.match(noGate.malignant, { tp: 2, fn: 2, fp: 1, tn: 1 });
});

t.test('unlabelled: accepted, rejected by reason, flagged among the accepted', async (t) => {
  const items = [img(0, 3, 0.9), img(0, 3, 0.95, out('features')), img(0, 0, 0.5), img(0, 0, 0.1)];
  const m = evaluateUnlabelled(items, 0.5, [0.4, 0.6], true);
  t.same(m, {
    n: 4,
    n_accepted: 3,
    rejected: { total: 1, by_reason: { features: 1 } },
    gate: true,
    flagged: 2,
    needs_review: 1,
  });
});

t.test("the daemon's per-image path judges with the model's gate", async (t) => {
  const opened = await openModel({ modelDir: tinyModelDir, log: pino({ level: 'silent' }) });
  t.teardown(() => opened.classifier.close());
  t.ok(opened.gate, 'a gate by default');
  const noGate = await openModel({ modelDir: tinyModelDir, log: pino({ level: 'silent' }), gate: false });
  await noGate.classifier.close();
  t.equal(noGate.gate, null, 'none with gate: false');

  opened.gate = darkFrameGate();
  const dir = await mkdtemp(join(tmpdir(), 'bw-eval-gate-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'dark.jpg'), await darkFrame(7));
  await writeFile(join(dir, 'smear.jpg'), readFileSync(sampleImages()[0]!));
  const dark = await classifyFile(opened, join(dir, 'dark.jpg'));
  const smear = await classifyFile(opened, join(dir, 'smear.jpg'));
  t.match(dark.domain, { in: false, reasons: ['underexposed'] });
  t.match(smear.domain, { in: true, reasons: [] });
  const m = evaluateUnlabelled(
    [dark, smear].map((o) => ({
      probabilities: o.prediction.probabilities,
      pBall: o.prediction.pBall,
      domain: o.domain,
    })),
    opened.classifier.info.threshold,
    opened.classifier.info.uncertainBand,
    true,
  );
  t.match(m, { n: 2, n_accepted: 1, rejected: { total: 1, by_reason: { underexposed: 1 } } });
});
