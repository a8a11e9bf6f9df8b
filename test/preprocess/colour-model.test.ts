import { createDomainGate } from '../../src/gate/index.js';
import t from 'tap';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import {
  createClassifier,
  loadModelManifest,
  type ModelInfo,
  type Prediction,
} from '../../src/infer/index.js';
import { Stage, type ClassifierLike } from '../../src/pipeline/index.js';
import type { PrepareImage } from '../../src/domain/ports.js';
import { createMetrics } from '../../src/runtime/metrics.js';
import { openStore } from '../../src/store/index.js';
import { prepareImage } from '../../src/preprocess/index.js';
import { runCli } from '../helpers/cli.js';
import { captureLogger, tinyModelCopy } from '../infer/helpers.js';

const sample = fileURLToPath(new URL('../fixtures/samples/Pro/WBC-Malignant-Pro-001.jpg', import.meta.url));
const shippedModel = JSON.parse(
  readFileSync(fileURLToPath(new URL('../../models/model.json', import.meta.url)), 'utf8'),
) as { preprocessing: { colour: Record<string, unknown> } };
const colour = shippedModel.preprocessing.colour;

t.test('model.json without preprocessing.colour asks for none; with it, the daemon gets it', async (t) => {
  const copy = await tinyModelCopy();
  t.teardown(copy.cleanup);
  t.equal(
    (await loadModelManifest(copy.dir)).preprocessing?.colour,
    undefined,
    'as before: no normalisation',
  );
  const file = path.join(copy.dir, 'model.json');
  const json = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
  await writeFile(
    file,
    JSON.stringify({ ...json, preprocessing: { ...(json.preprocessing as object), colour } }),
  );
  t.match((await loadModelManifest(copy.dir)).preprocessing?.colour, { method: 'background-gains' });
  await writeFile(
    file,
    JSON.stringify({ ...json, preprocessing: { colour: { ...colour, background_low: [300, 0, 0] } } }),
  );
  await t.rejects(loadModelManifest(copy.dir), {
    name: 'ModelError',
    message: /preprocessing\.colour\.background_low/,
  });
});

t.test('segment keeps the raw image by default; --as-model shows what the model is fed', async (t) => {
  const out = mkdtempSync(path.join(tmpdir(), 'blastwatch-seg-colour-'));
  t.teardown(() => rmSync(out, { recursive: true, force: true }));
  const raw = await runCli(['segment', sample, '--out', path.join(out, 'raw')]);
  t.equal(raw.code, 0, raw.stderr);
  const asModel = await runCli(['segment', sample, '--out', path.join(out, 'model'), '--as-model']);
  t.equal(asModel.code, 0, asModel.stderr);
  const line = JSON.parse(asModel.stdout.trim()) as { model_input: string; colour: { gains: number[] } };
  t.ok(
    line.colour.gains.some((g) => g !== 1),
    'this sample is moved into the training range',
  );
  const plain = await prepareImage(sample, { size: 224, limitInputPixels: 10_000_000 });
  const { data } = await sharp(path.join(out, 'raw', 'WBC-Malignant-Pro-001.segmented.png'))
    .raw()
    .toBuffer({ resolveWithObject: true });
  t.ok(
    data.equals(Buffer.from(plain.segmentation.segmented)),
    "default: the paper's algorithm on the raw image",
  );
  const normalised = await prepareImage(sample, {
    size: 224,
    limitInputPixels: 10_000_000,
    colour: colour as never,
  });
  const fed = await sharp(line.model_input).raw().toBuffer();
  t.ok(fed.equals(Buffer.from(normalised.modelRgb)), '--as-model writes the normalised pixels');
  const seg = await sharp(path.join(out, 'model', 'WBC-Malignant-Pro-001.segmented.png'))
    .raw()
    .toBuffer();
  t.ok(seg.equals(Buffer.from(normalised.segmentation.segmented)), 'and segments them');
});

t.test("the classifier hands the model's normalisation to the daemon's preprocessing", async (t) => {
  const plain = await tinyModelCopy();
  const withColour = await tinyModelCopy((m) => {
    m.preprocessing = { ...(m.preprocessing as object), colour };
  });
  t.teardown(async () => {
    await plain.cleanup();
    await withColour.cleanup();
  });
  const open = (dir: string) =>
    createClassifier({ modelDir: dir, executionProviders: ['cpu'], threads: 1, log: captureLogger().log });
  const a = await open(plain.dir);
  t.teardown(() => a.close());
  t.equal(a.info.colour, null, 'no preprocessing.colour: none (as before)');
  const b = await open(withColour.dir);
  t.teardown(() => b.close());
  t.same(b.info.colour, colour, 'the pipeline stage passes info.colour to prepareImage');
});

t.test("the daemon's stage feeds the model the normalised tensors model.json asks for", async (t) => {
  const root = mkdtempSync(path.join(tmpdir(), 'bw-colour-stage-'));
  const store = openStore({ dataDir: path.join(root, 'var') });
  t.teardown(() => {
    store.close();
    rmSync(root, { recursive: true, force: true });
  });
  const seen: Float32Array[] = [];
  const asked: unknown[] = [];
  const classifier: ClassifierLike = {
    info: {
      name: 'fake',
      version: '9',
      classes: ['Benign', 'Early Pre-B', 'Pre-B', 'Pro-B'],
      malignant: [false, true, true, true],
      threshold: 0.5,
      uncertainBand: [0.4, 0.6],
      imageSize: { height: 224, width: 224 },
      colour,
    } as unknown as ModelInfo,
    async classify(batch) {
      seen.push(Float32Array.from(batch[0]!.original));
      return batch.map((): Prediction => ({
        probabilities: [1, 0, 0, 0],
        byClass: { Benign: 1, 'Early Pre-B': 0, 'Pre-B': 0, 'Pro-B': 0 },
        classIndex: 0,
        className: 'Benign',
        pBall: 0,
      }));
    },
  };
  const spy: PrepareImage = (input, opts) => {
    asked.push(opts.colour);
    return prepareImage(input, opts);
  };
  const stage = new Stage({
    store,
    prepareImage: spy,
    classifier,
    gate: createDomainGate(),
    metrics: createMetrics(),
    capture: { max_attempts: 3, retry_backoff_ms: 1000 },
    image: { max_file_mb: 1, max_input_pixels: 50_000_000 },
    segment: { k: 7, threshold: 141, min_object_area: 200, min_hole_area: 250 },
  });
  const file = path.join(root, 'a.jpg');
  writeFileSync(file, readFileSync(sample));
  const st = statSync(file);
  const out = await stage.run(
    { path: file, relPath: 'a.jpg', size: st.size, mtimeMs: st.mtimeMs, ino: st.ino, ctimeMs: st.ctimeMs },
    0,
  );
  t.equal(out.kind, 'done');
  t.same(asked, [colour], "prepareImage got the model's normalisation");
  const expected = await prepareImage(sample, {
    size: 224,
    limitInputPixels: 50_000_000,
    colour: colour as never,
  });
  t.ok(
    Buffer.from(seen[0]!.buffer).equals(Buffer.from(expected.original.buffer)),
    'the classifier got its tensors',
  );
});

t.test('preprocess-dataset --colour takes a colour object or a model.json and records it', async (t) => {
  const work = mkdtempSync(path.join(tmpdir(), 'blastwatch-colour-cli-'));
  t.teardown(() => rmSync(work, { recursive: true, force: true }));
  const samples = fileURLToPath(new URL('../fixtures/samples', import.meta.url));
  const modelJson = fileURLToPath(new URL('../../models/model.json', import.meta.url));
  writeFileSync(path.join(work, 'colour.json'), JSON.stringify(colour));
  writeFileSync(path.join(work, 'bad.json'), JSON.stringify({ method: 'grey-world' }));
  for (const source of [modelJson, path.join(work, 'colour.json')]) {
    const out = path.join(work, `cache-${path.basename(source)}`);
    const res = await runCli([
      'preprocess-dataset',
      '--data',
      samples,
      '--out',
      out,
      '--limit',
      '1',
      '--colour',
      source,
    ]);
    t.equal(res.code, 0, res.stderr);
    const manifest = JSON.parse(readFileSync(path.join(out, 'manifest.json'), 'utf8')) as { colour: unknown };
    t.same(manifest.colour, colour, `${path.basename(source)}: recorded in the cache's manifest`);
  }
  const bad = await runCli([
    'preprocess-dataset',
    '--data',
    samples,
    '--out',
    path.join(work, 'bad'),
    '--colour',
    path.join(work, 'bad.json'),
  ]);
  t.equal(bad.code, 1);
  t.match(bad.stderr, /--colour .*bad\.json: not a colour normalisation/);
});
