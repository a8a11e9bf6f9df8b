import t from 'tap';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { loadModelManifest } from '../../src/infer/index.js';
import { prepareImage } from '../../src/preprocess/index.js';
import { runCli } from '../helpers/cli.js';
import { tinyModelCopy } from '../infer/helpers.js';

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
