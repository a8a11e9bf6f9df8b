import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { createClassifier } from '../../src/infer/classifier.js';
import { loadModelManifest } from '../../src/infer/index.js';
import { VIEW_COUNTS, viewRuns, writeView, writeViewRange } from '../../src/infer/views.js';
import { prepareImage } from '../../src/preprocess/index.js';
import { repoRoot } from '../helpers/cli.js';
import { captureLogger, fakePair, tinyModelCopy } from './helpers.js';

/** View k spelled out one operation at a time, as src/infer/views.ts documents it. */
function viewByDefinition(src: Float32Array, k: number, size: number): Float32Array {
  const plane = size * size;
  let cur = Float32Array.from(src);
  const remap = (at: (y: number, x: number) => number): void => {
    const next = new Float32Array(cur.length);
    for (let c = 0; c < cur.length; c += plane)
      for (let y = 0; y < size; y++)
        for (let x = 0; x < size; x++) next[c + y * size + x] = cur[c + at(y, x)]!;
    cur = next;
  };
  if (k & 1) remap((y, x) => y * size + (size - 1 - x));
  if (k & 2) remap((y, x) => (size - 1 - y) * size + x);
  if (k & 4) remap((y, x) => x * size + y);
  return cur;
}

t.test('each view is the mirrors and the transpose in the documented order', async (t) => {
  const size = 5;
  const src = Float32Array.from({ length: 2 * size * size }, (_, i) => i);
  const seen = new Set<string>();
  for (let k = 0; k < 8; k++) {
    const out = new Float32Array(src.length);
    writeView(src, out, k, size);
    t.same(Array.from(out), Array.from(viewByDefinition(src, k, size)), `view ${k}`);
    seen.add(out.join(','));
  }
  t.equal(seen.size, 8, 'the eight views are eight different pictures');
  const out = new Float32Array(src.length);
  writeView(src, out, 0, size);
  t.same(out, src, 'view 0 is the image as taken');
  // A 3 x 3 plane written out: view 5 (mirrored left-right, then transposed).
  const small = Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9]);
  const five = new Float32Array(9);
  writeView(small, five, 5, 3);
  t.same(Array.from(five), [3, 6, 9, 2, 5, 8, 1, 4, 7]);
  t.throws(() => writeView(src, new Float32Array(3), 1, size), /lengths differ/);
});

t.test('writeViewRange lays the views one after another, the turned ones made from view 4', async (t) => {
  const size = 7;
  const n = 3 * size * size;
  const src = Float32Array.from({ length: n }, (_, i) => (i * 37) % 101);
  for (const count of VIEW_COUNTS) {
    const out = new Float32Array(count * n).fill(-1);
    writeViewRange(src, out, 0, count, size);
    for (let k = 0; k < count; k++)
      t.same(
        Array.from(out.subarray(k * n, (k + 1) * n)),
        Array.from(viewByDefinition(src, k, size)),
        `${count}: view ${k}`,
      );
  }
  t.throws(() => writeViewRange(src, new Float32Array(n), 0, 2, size), /expected/);
});

t.test('the model runs of an image cover its views once, in order, four at most', async (t) => {
  t.same(viewRuns(1), [[0, 1]]);
  t.same(viewRuns(2), [[0, 2]]);
  t.same(viewRuns(4), [[0, 4]]);
  t.same(viewRuns(8), [
    [0, 4],
    [4, 4],
  ]);
  const size = 6;
  const n = 3 * size * size;
  const src = Float32Array.from({ length: n }, (_, i) => (i * 53) % 97);
  // every range, whether view 4 is in it (5-7 made from it) or not (made from the image)
  for (const [first, rows] of [
    [4, 4],
    [5, 3],
    [6, 1],
    [2, 5],
  ] as const) {
    const out = new Float32Array(rows * n);
    writeViewRange(src, out, first, rows, size);
    for (let r = 0; r < rows; r++)
      t.same(
        Array.from(out.subarray(r * n, (r + 1) * n)),
        Array.from(viewByDefinition(src, first + r, size)),
        `range ${first}+${rows}: view ${first + r}`,
      );
  }
});

t.test('model.json views: absent means 1; only 1, 2, 4 or 8', async (t) => {
  const plain = await tinyModelCopy();
  t.teardown(plain.cleanup);
  t.equal((await loadModelManifest(plain.dir)).views, 1);
  const bad = await tinyModelCopy((m) => (m.views = 3));
  t.teardown(bad.cleanup);
  await t.rejects(loadModelManifest(bad.dir), { message: /views/ });
  t.same([...VIEW_COUNTS], [1, 2, 4, 8]);
});

t.test('with views the prediction is the mean of the views, each scaled by the temperature', async (t) => {
  const { log } = captureLogger();
  const single = await tinyModelCopy();
  const eight = await tinyModelCopy((m) => (m.views = 8));
  t.teardown(single.cleanup);
  t.teardown(eight.cleanup);
  const one = await createClassifier({ modelDir: single.dir, executionProviders: ['cpu'], threads: 1, log });
  const many = await createClassifier({ modelDir: eight.dir, executionProviders: ['cpu'], threads: 1, log });
  t.teardown(() => one.close());
  t.teardown(() => many.close());
  t.equal(many.info.views, 8);
  const images = [fakePair(3), fakePair(4)];
  const views = images.flatMap((img) =>
    Array.from({ length: 8 }, (_, k) => {
      const original = new Float32Array(img.original.length);
      const segmented = new Float32Array(img.segmented.length);
      writeView(img.original, original, k, 224);
      writeView(img.segmented, segmented, k, 224);
      return { original, segmented };
    }),
  );
  const separately = await one.classify(views);
  const together = await many.classify(images, { transfer: false });
  t.equal(together.length, 2);
  for (const [i, p] of together.entries()) {
    const mine = separately.slice(i * 8, i * 8 + 8);
    for (let c = 0; c < 4; c++) {
      const mean = mine.reduce((s, v) => s + v.probabilities[c]!, 0) / 8;
      t.ok(
        Math.abs(p.probabilities[c]! - mean) < 1e-6,
        `image ${i} class ${c}: ${p.probabilities[c]} vs ${mean}`,
      );
    }
    t.ok(Math.abs(p.probabilities.reduce((s, v) => s + v, 0) - 1) < 1e-9, 'sums to 1');
  }
  // Different inputs keep different answers: the rows are not mixed up.
  t.not(together[0]!.probabilities[0], together[1]!.probabilities[0]);
});

t.test('the shipped model: the features are those of the image as taken, whatever the views', async (t) => {
  const modelDir = join(repoRoot, 'models');
  const manifest = await loadModelManifest(modelDir);
  const { log } = captureLogger();
  const open = (views: 1 | 8) =>
    createClassifier({
      modelDir,
      manifest: { ...manifest, views },
      executionProviders: ['cpu'],
      threads: 1,
      log,
    });
  const [single, eight] = await Promise.all([open(1), open(8)]);
  t.teardown(() => single.close());
  t.teardown(() => eight.close());
  const bytes = await readFile(join(repoRoot, 'test/fixtures/samples/Pre', 'WBC-Malignant-Pre-001.jpg'));
  const prepared = await prepareImage(bytes, {
    size: 224,
    limitInputPixels: 50_000_000,
    colour: manifest.preprocessing?.colour ?? null,
  });
  const [plain] = await single.classify([prepared], { transfer: false });
  const [averaged] = await eight.classify([prepared], { transfer: false });
  t.ok(plain?.features && averaged?.features, 'the shipped model gives features');
  t.same(Array.from(averaged!.features!), Array.from(plain!.features!));
  t.not(averaged!.probabilities[0], plain!.probabilities[0], 'but the probabilities are averaged');
  // Two images in one message: each gets its own view 0's features.
  const other = await prepareImage(
    await readFile(join(repoRoot, 'test/fixtures/samples/Benign', 'WBC-Benign-001.jpg')),
    { size: 224, limitInputPixels: 50_000_000, colour: manifest.preprocessing?.colour ?? null },
  );
  const [otherPlain] = await single.classify([other], { transfer: false });
  const both = await eight.classify([prepared, other], { transfer: false });
  t.same(Array.from(both[0]!.features!), Array.from(plain!.features!), 'first image: its own features');
  t.same(Array.from(both[1]!.features!), Array.from(otherPlain!.features!), 'second image: its own features');
});
