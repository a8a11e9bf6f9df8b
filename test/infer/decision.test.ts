import t from 'tap';
import { applyTemperature, decide, malignantProbability } from '../../src/infer/index.js';

const sum = (a: number[]): number => a.reduce((s, v) => s + v, 0);

t.test('temperature 1 is the identity and every result sums to 1', async (t) => {
  const p = [0.1, 0.2, 0.6, 0.1];
  applyTemperature(p, 1).forEach((v, i) => t.ok(Math.abs(v - (p[i] as number)) < 1e-12));
  for (const T of [0.5, 1, 1.5, 3]) t.ok(Math.abs(sum(applyTemperature(p, T)) - 1) < 1e-12, `T=${T}`);
});

t.test('temperature equals softmax(logits / T)', async (t) => {
  const logits = [2, -1, 0.5, 3];
  const softmax = (z: number[]): number[] => {
    const m = Math.max(...z);
    const e = z.map((v) => Math.exp(v - m));
    return e.map((v) => v / sum(e));
  };
  const viaProbabilities = applyTemperature(softmax(logits), 2.5);
  const direct = softmax(logits.map((z) => z / 2.5));
  viaProbabilities.forEach((v, i) => t.ok(Math.abs(v - (direct[i] as number)) < 1e-12));
});

t.test('T > 1 softens, T < 1 sharpens, order is kept', async (t) => {
  const p = [0.05, 0.15, 0.7, 0.1];
  const soft = applyTemperature(p, 2);
  const sharp = applyTemperature(p, 0.5);
  t.ok((soft[2] as number) < 0.7 && (sharp[2] as number) > 0.7);
  t.equal(soft.indexOf(Math.max(...soft)), 2);
});

t.test('zeros (INT8 softmax) are clamped, not NaN', async (t) => {
  const r = applyTemperature([0, 0, 1, 0], 1.5);
  t.ok(r.every((v) => Number.isFinite(v)));
  t.ok((r[2] as number) > 0.999999);
});

t.test('P(B-ALL) sums the malignant classes', async (t) => {
  t.ok(Math.abs(malignantProbability([0.1, 0.2, 0.3, 0.4], [false, true, true, true]) - 0.9) < 1e-12);
});

t.test('decide: flag at threshold, review inside the inclusive band', async (t) => {
  const band: [number, number] = [0.3, 0.7];
  t.same(decide(0.5, 0.5, band), { flag: true, needsReview: true, label: 'uncertain' });
  t.same(decide(0.49, 0.5, band), { flag: false, needsReview: true, label: 'uncertain' });
  t.same(decide(0.3, 0.5, band), { flag: false, needsReview: true, label: 'uncertain' });
  t.same(decide(0.7, 0.5, band), { flag: true, needsReview: true, label: 'uncertain' });
  t.same(decide(0.71, 0.5, band), { flag: true, needsReview: false, label: 'b-all' });
  t.same(decide(0.29, 0.5, band), { flag: false, needsReview: false, label: 'benign' });
  // A threshold below the band: flagged but not in review.
  t.same(decide(0.25, 0.2, band), { flag: true, needsReview: false, label: 'b-all' });
});
