import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { loadDomainGate } from '../../src/gate/index.js';
import { loadModelManifest, ModelError } from '../../src/infer/index.js';
import { repoRoot } from '../helpers/cli.js';

/** The gate section and the feature statistics file are verified when model.json is loaded. */
const modelDir = join(repoRoot, 'models');

async function modelCopy(t: Test): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'gate-model-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  for (const f of ['model.json', 'blastwatch-int8.onnx', 'blastwatch-fp32.onnx', 'gate-features.bin'])
    await cp(join(modelDir, f), join(dir, f));
  return dir;
}

// model.json as the tests edit it: loosely typed on purpose, to write what the loader must refuse.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = Record<string, any>;

async function editJson(dir: string, edit: (m: Json) => void): Promise<void> {
  const path = join(dir, 'model.json');
  const m = JSON.parse(await readFile(path, 'utf8')) as Json;
  edit(m);
  await writeFile(path, JSON.stringify(m));
}

t.test('the shipped model.json has a gate section and a hashed statistics file', async (t) => {
  const m = await loadModelManifest(modelDir);
  t.ok(m.gate, 'gate section');
  t.equal(m.gate?.features?.file, 'gate');
  t.match(m.files.gate, { path: 'gate-features.bin', sha256: /^[0-9a-f]{64}$/ });
  t.equal(m.features_output, 'features');
  const gate = await loadDomainGate(m);
  t.ok(gate.checking);
});

t.test('a tampered statistics file is refused at load', async (t) => {
  const dir = await modelCopy(t);
  const path = join(dir, 'gate-features.bin');
  const bytes = await readFile(path);
  bytes.writeUInt8(bytes.readUInt8(100) ^ 0xff, 100);
  await writeFile(path, bytes);
  const err = await loadModelManifest(dir).catch((e: unknown) => e);
  t.type(err, ModelError);
  t.match((err as Error).message, /sha256 mismatch for model file .*gate-features\.bin/);
});

t.test('a statistics file swapped after load is refused by the gate loader', async (t) => {
  const dir = await modelCopy(t);
  const manifest = await loadModelManifest(dir);
  const path = join(dir, 'gate-features.bin');
  const bytes = await readFile(path);
  bytes.writeUInt8(bytes.readUInt8(7) ^ 0x01, 7);
  await writeFile(path, bytes);
  await t.rejects(loadDomainGate(manifest), { message: /sha256 mismatch for gate statistics/ });
});

t.test('bad gate sections are refused with their key path', async (t) => {
  const cases: Array<[string, (m: Json) => void, RegExp]> = [
    ['a range that is not a pair', (m) => (m.gate.ranges.mean_luma = [1]), /gate\.ranges\.mean_luma/],
    ['a missing range', (m) => delete m.gate.ranges.cell_count, /gate\.ranges\.cell_count/],
    ['a negative feature threshold', (m) => (m.gate.features.threshold = -1), /gate\.features\.threshold/],
    ['features without their file', (m) => delete m.files.gate, /files\.gate: gate\.features needs/],
    [
      'an appearance Gaussian of the wrong size',
      (m) => m.gate.appearance.components[1].mean.pop(),
      /gate\.appearance: mean and inverse_covariance must have one entry per figure/,
    ],
    [
      'an appearance check with both one Gaussian and several',
      (m) => {
        m.gate.appearance.mean = m.gate.appearance.components[0].mean;
        m.gate.appearance.inverse_covariance = m.gate.appearance.components[0].inverse_covariance;
      },
      /gate\.appearance: give either mean and inverse_covariance, or components/,
    ],
    [
      'an aspect ratio below 1',
      (m) => (m.gate.geometry.aspect_ratios = [0.75]),
      /gate\.geometry\.aspect_ratios/,
    ],
  ];
  for (const [name, edit, message] of cases) {
    const dir = await modelCopy(t);
    await editJson(dir, edit);
    await t.rejects(loadModelManifest(dir), { name: 'ModelError', message }, name);
  }
});

t.test('an appearance check written as one Gaussian still loads, and its gate checks', async (t) => {
  const dir = await modelCopy(t);
  await editJson(dir, (m) => {
    const [original] = m.gate.appearance.components;
    m.gate.appearance.mean = original.mean;
    m.gate.appearance.inverse_covariance = original.inverse_covariance;
    delete m.gate.appearance.components;
  });
  const gate = await loadDomainGate(await loadModelManifest(dir));
  t.ok(gate.checking);
});

t.test('a model.json without a gate section loads, and its gate passes everything unchecked', async (t) => {
  const dir = await modelCopy(t);
  await editJson(dir, (m) => {
    delete m.gate;
    delete m.files.gate;
  });
  const gate = await loadDomainGate(await loadModelManifest(dir));
  t.notOk(gate.checking);
});
