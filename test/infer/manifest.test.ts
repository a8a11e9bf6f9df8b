import { readFile, rm, writeFile } from 'node:fs/promises';
import { isAbsolute, join } from 'node:path';
import t from 'tap';
import { createClassifier } from '../../src/infer/classifier.js';
import { loadModelManifest, ModelError, sha256File } from '../../src/infer/index.js';
import { nextModelVersion, versionHashProblem } from '../../src/infer/manifest.js';
import { captureLogger, tinyModelCopy, tinyModelDir } from './helpers.js';

t.test('loads and verifies the tiny model manifest', async (t) => {
  const m = await loadModelManifest(tinyModelDir);
  t.same(m.classes, ['Benign', 'Early Pre-B', 'Pre-B', 'Pro-B']);
  t.same(m.folders, ['Benign', 'Early', 'Pre', 'Pro']);
  t.same(m.imageSize, { height: 224, width: 224 });
  t.ok(isAbsolute(m.paths.int8) && m.paths.int8.endsWith('tiny-int8.onnx'));
  t.equal(await sha256File(m.paths.fp32), m.files.fp32.sha256);
  t.equal(m.temperature, 1.5);
});

t.test('missing model.json names the folder', async (t) => {
  const copy = await tinyModelCopy();
  t.teardown(copy.cleanup);
  await rm(join(copy.dir, 'model.json'));
  await t.rejects(loadModelManifest(copy.dir), {
    name: 'ModelError',
    message: new RegExp(`no model.json in ${copy.dir}`),
  });
});

t.test('missing model file names the file and the key', async (t) => {
  const copy = await tinyModelCopy();
  t.teardown(copy.cleanup);
  await rm(join(copy.dir, 'tiny-int8.onnx'));
  await t.rejects(loadModelManifest(copy.dir), {
    message: /model file missing: .*tiny-int8\.onnx \(files\.int8\.path in .*model\.json\)/,
  });
});

t.test('a changed byte is a sha256 mismatch naming the file and both hashes', async (t) => {
  const copy = await tinyModelCopy();
  t.teardown(copy.cleanup);
  const path = join(copy.dir, 'tiny-fp32.onnx');
  const bytes = await readFile(path);
  const last = bytes.length - 1;
  bytes.writeUInt8(bytes.readUInt8(last) ^ 0xff, last); // same size, different content
  await writeFile(path, bytes);
  const expected = (await loadModelManifest(tinyModelDir)).files.fp32.sha256;
  const actual = await sha256File(path);
  t.not(actual, expected);
  const err = await loadModelManifest(copy.dir).catch((e: unknown) => e);
  t.type(err, ModelError);
  t.match(
    (err as Error).message,
    `sha256 mismatch for model file ${path}: expected ${expected}, got ${actual}`,
  );
});

t.test('a different size is reported before hashing', async (t) => {
  const copy = await tinyModelCopy();
  t.teardown(copy.cleanup);
  await writeFile(join(copy.dir, 'tiny-fp32.onnx'), 'not a model');
  await t.rejects(loadModelManifest(copy.dir), {
    message: /tiny-fp32\.onnx has 11 bytes, model\.json says \d+/,
  });
});

t.test('bad fields are refused with their key path', async (t) => {
  const cases: Array<[string, (m: Record<string, unknown>) => void, RegExp]> = [
    ['threshold out of range', (m) => (m.threshold = 2), /model\.json: threshold: /],
    ['malignant length', (m) => (m.malignant = [false, true]), /malignant: expected 4 entries/],
    ['band reversed', (m) => (m.uncertain_band = [0.8, 0.2]), /uncertain_band: low must not exceed high/],
    ['no benign class', (m) => (m.malignant = [true, true, true, true]), /malignant: needs at least one/],
    [
      'bad sha256',
      (m) => ((m.files as { int8: { sha256: string } }).int8.sha256 = 'abc'),
      /files\.int8\.sha256: /,
    ],
    ['missing temperature', (m) => delete m.temperature, /temperature: /],
    [
      'wrong layout',
      (m) => ((m.inputs as { original: { layout: string } }).original.layout = 'NHWC'),
      /inputs\.original\.layout/,
    ],
    [
      'path outside the folder',
      (m) => ((m.files as { int8: { path: string } }).int8.path = '../x.onnx'),
      /files\.int8\.path: '\.\.\/x\.onnx' must be a path inside the model folder/,
    ],
  ];
  for (const [name, edit, message] of cases) {
    const copy = await tinyModelCopy(edit);
    await t.rejects(loadModelManifest(copy.dir), { name: 'ModelError', message }, name);
    await copy.cleanup();
  }
});

t.test('not JSON', async (t) => {
  const copy = await tinyModelCopy();
  t.teardown(copy.cleanup);
  await writeFile(join(copy.dir, 'model.json'), '{ nope');
  await t.rejects(loadModelManifest(copy.dir), { message: /model\.json: not valid JSON/ });
});

t.test('the version names the INT8 weights: its hash suffix must match files.int8.sha256', async (t) => {
  const m = await loadModelManifest(tinyModelDir);
  t.equal(m.version, `0.0.0-test+${m.files.int8.sha256.slice(0, 8)}`, 'the fixture carries its suffix');
  t.same(m.warnings, [], 'a current version loads without a warning');

  // The shipped model: its version is date (with a day counter after a second fit that day) + the
  // first 8 hex digits of its INT8 file's sha256.
  const shipped = await loadModelManifest(new URL('../../models/', import.meta.url).pathname);
  t.match(shipped.version, /^\d{4}\.\d{2}\.\d{2}(\.\d+)?\+[0-9a-f]{8}$/);
  t.equal(shipped.version.split('+')[1], (await sha256File(shipped.paths.int8)).slice(0, 8));
  t.same(shipped.warnings, []);

  const cases: Array<[string, string, RegExp]> = [
    [
      "another model's version",
      '2026.11.27+3f2a9c1d',
      /model\.json: version: '2026\.11\.27\+3f2a9c1d' names INT8 weights 3f2a9c1d…, but files\.int8\.sha256 is [0-9a-f]{8}…/,
    ],
    ['a suffix that is no hash', '1.0.0+build5', /model\.json: version: .*expected the first 8 hex digits/],
    ['upper-case hex', `0.0.0-test+${m.files.int8.sha256.slice(0, 8).toUpperCase()}`, /version: /],
    ['the fp32 hash', `0.0.0-test+${m.files.fp32.sha256.slice(0, 8)}`, /names INT8 weights/],
  ];
  for (const [name, version, message] of cases) {
    const copy = await tinyModelCopy((j) => (j.version = version));
    await t.rejects(loadModelManifest(copy.dir), { name: 'ModelError', message }, name);
    await copy.cleanup();
  }
});

t.test('a hand-edited INT8 hash cannot keep the version of the weights it replaced', async (t) => {
  // files.int8.sha256 edited (say, to the hash of other weights put in the folder): the version
  // still names the old weights and is refused before any file is read.
  const copy = await tinyModelCopy((j) => {
    const files = j.files as { int8: { sha256: string } };
    files.int8.sha256 = 'f'.repeat(64);
  });
  t.teardown(copy.cleanup);
  await t.rejects(loadModelManifest(copy.dir), {
    name: 'ModelError',
    message: /model\.json: version: .*names INT8 weights/,
  });
});

t.test('an old-style version (no hash suffix) still loads, with a warning the classifier logs', async (t) => {
  const copy = await tinyModelCopy((j) => (j.version = '2026.11.27'));
  t.teardown(copy.cleanup);
  const m = await loadModelManifest(copy.dir);
  t.equal(m.version, '2026.11.27');
  t.equal(m.warnings.length, 1);
  t.match(m.warnings[0], /model\.json: version '2026\.11\.27' does not name its weights/);
  const { log, lines } = captureLogger();
  const classifier = await createClassifier({
    modelDir: copy.dir,
    executionProviders: ['cpu'],
    threads: 1,
    log,
  });
  t.teardown(() => classifier.close());
  t.equal(classifier.info.version, '2026.11.27');
  t.ok(
    lines.some((l) => l.level === 40 && /does not name its weights/.test(String(l.msg))),
    'one warning line at load',
  );
});

t.test('a changed model never repeats the version of the one it replaces', async (t) => {
  const sha = `44c46939${'0'.repeat(56)}`;
  const dec5 = new Date('2026-12-05T23:59:00Z');
  t.equal(
    nextModelVersion('2026.12.04+44c46939', sha, dec5),
    '2026.12.05+44c46939',
    'a new day: the date alone',
  );
  t.equal(
    nextModelVersion('2026.12.05+44c46939', sha, dec5),
    '2026.12.05.2+44c46939',
    'the same day: counted up',
  );
  t.equal(nextModelVersion('2026.12.05.2+44c46939', sha, dec5), '2026.12.05.3+44c46939');
  t.equal(
    nextModelVersion('2026.12.05.9+58f4004b', sha, new Date('2026-12-06T00:00:00Z')),
    '2026.12.06+44c46939',
  );
  t.equal(nextModelVersion('2026.11.27', sha, dec5), '2026.12.05+44c46939', 'an old version without a hash');
  t.equal(
    versionHashProblem(nextModelVersion('2026.12.05+44c46939', sha, dec5), sha),
    null,
    'the loader accepts it',
  );
});
