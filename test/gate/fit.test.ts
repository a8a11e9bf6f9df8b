import t from 'tap';
import {
  createFeatureScorer,
  featureDistance,
  parseFeatureModel,
  serializeFeatureModel,
} from '../../src/gate/feature-distance.js';
import { mulberry32 } from '../../src/runtime/seeded-random.js';
import { fitFeatureModel } from '../../src/gate/fit-features.js';
import { fitRange, quantileSorted } from '../../src/gate/fit-ranges.js';

/** Seeded standard normals (Box-Muller over mulberry32). */
function normals(seed: number): () => number {
  const next = mulberry32(seed);
  // Half a step up: never 0, so the logarithm stays finite.
  const uniform = (): number => next() + 2 ** -33;
  return () => Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
}

/** Two classes in 12 dimensions; the within-class spread is 3 along axis 0, 2 along axis 1, 0.5 elsewhere. */
function synthetic(n: number, seed: number): { rows: Float32Array[]; labels: number[] } {
  const z = normals(seed);
  const rows: Float32Array[] = [];
  const labels: number[] = [];
  for (let i = 0; i < n; i++) {
    const label = i % 2;
    const row = new Float32Array(12);
    for (let d = 0; d < 12; d++)
      row[d] = (d === 0 ? 3 : d === 1 ? 2 : 0.5) * z() + (label === 1 && d === 5 ? 10 : 0);
    rows.push(row);
    labels.push(label);
  }
  return { rows, labels };
}

t.test('fitting recovers the covariance and class means, and scores training points near 1', async (t) => {
  const { rows, labels } = synthetic(4000, 1);
  const model = fitFeatureModel(rows, labels, 2, { components: 2 });
  t.ok(Math.abs(model.variances[0]! - 9) < 0.8, `first variance ${model.variances[0]}`);
  t.ok(Math.abs(model.variances[1]! - 4) < 0.4, `second variance ${model.variances[1]}`);
  t.ok(Math.abs(Math.abs(model.basis[0]!) - 1) < 0.02, 'first direction is axis 0');
  t.ok(Math.abs(Math.abs(model.basis[12 + 1]!) - 1) < 0.02, 'second direction is axis 1');
  t.ok(Math.abs(model.residualVariance - 0.25) < 0.03, `residual ${model.residualVariance}`);
  t.ok(Math.abs(model.means[12 + 5]! - 10) < 0.2, 'class 1 mean');
  const scorer = createFeatureScorer(model);
  let sum = 0;
  for (const row of rows) sum += featureDistance(scorer, row).score;
  t.ok(Math.abs(sum / rows.length - 1) < 0.05, `mean score ${sum / rows.length}`);
  const far = new Float32Array(12);
  far[7] = 5; // 10 residual standard deviations off along a direction with little spread
  t.ok(featureDistance(scorer, far).score > 5, 'a point off the training subspace scores far');
  t.equal(featureDistance(scorer, rows[1]!).nearestClass, 1);
});

t.test('fitting is deterministic and the statistics file round-trips', async (t) => {
  const { rows, labels } = synthetic(500, 2);
  const a = serializeFeatureModel(fitFeatureModel(rows, labels, 2, { components: 3 }));
  const b = serializeFeatureModel(fitFeatureModel(rows, labels, 2, { components: 3 }));
  t.ok(a.equals(b), 'same rows, same bytes');
  const parsed = parseFeatureModel(a, { dim: 12, classCount: 2, components: 3 });
  t.ok(serializeFeatureModel(parsed).equals(a));
  t.throws(() => parseFeatureModel(a.subarray(4), { dim: 12, classCount: 2, components: 3 }), /expected/);
});

t.test('ranges: quantiles widened by a share of their span, one side when asked', async (t) => {
  const values = Array.from({ length: 1001 }, (_, i) => i);
  t.equal(quantileSorted(values, 0.5), 500);
  const [low, high] = fitRange(values, 'both', { lowQuantile: 0, highQuantile: 1, widen: 0.1 });
  t.equal(low, -100);
  t.equal(high, 1100);
  t.same(fitRange(values, 'low', { lowQuantile: 0, highQuantile: 1, widen: 0 }), [0, null]);
  t.same(fitRange(values, 'high', { lowQuantile: 0, highQuantile: 1, widen: 0 }), [null, 1000]);
  t.same(fitRange([...values].reverse(), 'both'), fitRange(values, 'both'), 'order does not matter');
});

t.test('appearance: fitted mean and inverse covariance give the textbook distance', async (t) => {
  const { appearanceDistance, fitAppearance, APPEARANCE_FIGURES } =
    await import('../../src/gate/appearance.js');
  const z = normals(3);
  const scales = [10, 1, 0.5, 0.1, 0.05, 0.3, 4, 0.01, 0.02];
  const vectors = Array.from({ length: 5000 }, () =>
    Float64Array.from(scales, (s, i) => 100 * (i === 0 ? 2 : 0) + s * z()),
  );
  const model = fitAppearance(vectors);
  t.equal(model.mean.length, APPEARANCE_FIGURES.length);
  t.ok(Math.abs(model.mean[0]! - 200) < 0.5);
  let sum = 0;
  for (const v of vectors) sum += appearanceDistance(model, v);
  t.ok(
    Math.abs(sum / vectors.length - scales.length) < 0.1,
    `mean squared distance ${sum / vectors.length} ≈ number of figures`,
  );
  const off = Float64Array.from(model.mean);
  off[3] = (off[3] as number) + 1; // ten standard deviations on a figure with spread 0.1
  t.ok(Math.abs(appearanceDistance(model, off) - 100) < 5);
  t.same(fitAppearance(vectors), model, 'deterministic');
});

t.test('appearance: the distance is to the nearest of its Gaussians', async (t) => {
  const { appearanceDistance, fitAppearance, nearestAppearanceDistance } =
    await import('../../src/gate/appearance.js');
  const z = normals(5);
  const cloud = (centre: number): Float64Array[] =>
    Array.from({ length: 2000 }, () =>
      Float64Array.from({ length: 9 }, (_, i) => (i === 0 ? centre : 0) + z()),
    );
  const original = fitAppearance(cloud(0));
  const darker = fitAppearance(cloud(-20));
  const between = Float64Array.from({ length: 9 }, (_, i) => (i === 0 ? -10 : 0));
  const atDarker = Float64Array.from({ length: 9 }, (_, i) => (i === 0 ? -20 : 0));
  t.ok(appearanceDistance(original, atDarker) > 300, 'far from the originals alone');
  t.ok(nearestAppearanceDistance([original, darker], atDarker) < 2, 'near once its change has a Gaussian');
  t.equal(
    nearestAppearanceDistance([original, darker], between),
    Math.min(appearanceDistance(original, between), appearanceDistance(darker, between)),
  );
  t.ok(nearestAppearanceDistance([original, darker], between) > 50, 'halfway is still far from both');
  t.equal(nearestAppearanceDistance([], between), Number.POSITIVE_INFINITY, 'no Gaussian: nothing is near');
});

t.test(
  'appearance: exposure and focus of the raw picture, background colour of the normalised one',
  async (t) => {
    const { appearanceInputOf, appearanceVector } = await import('../../src/gate/appearance.js');
    const { measureImage, backgroundColour } = await import('../../src/gate/image-measures.js');
    const size = 32;
    const noise = mulberry32(11);
    // a bright background with darker, textured "cells" on the left half
    const normalised = new Uint8Array(size * size * 3);
    for (let i = 0; i < size * size; i++) {
      const cell = i % size < size / 2;
      for (let c = 0; c < 3; c++) normalised[i * 3 + c] = cell ? 90 + Math.floor(noise() * 60) : 245;
    }
    // the same field as a warmer, dimmer lamp recorded it
    const raw = Uint8Array.from(normalised, (v, i) => Math.round(v * (i % 3 === 0 ? 0.9 : 0.75)));
    const segmentation = { foregroundFraction: 0.5, componentCount: 3, aStarThreshold: 150 };
    const rawMeasures = measureImage(raw, size, size);
    const input = appearanceInputOf(
      { rgb: raw, modelRgb: normalised, width: size, height: size, segmentation },
      rawMeasures,
    );
    t.equal(input.measures, rawMeasures, 'exposure, focus and clipping as recorded');
    t.same(
      input.background,
      backgroundColour(normalised, size * size, rawMeasures.meanLuma),
      'background after normalisation',
    );
    t.not(input.background.redShare, backgroundColour(raw, size * size, rawMeasures.meanLuma).redShare);
    const vector = appearanceVector(input);
    t.equal(vector[0], rawMeasures.meanLuma);
    t.equal(vector[5], Math.log1p(3), 'cell count from the segmentation');
    const withoutNormalisation = appearanceInputOf(
      { rgb: raw, width: size, height: size, segmentation },
      rawMeasures,
    );
    t.same(withoutNormalisation.background, backgroundColour(raw, size * size, rawMeasures.meanLuma));
  },
);
