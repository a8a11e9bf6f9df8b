import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { repoRoot, runCli } from '../helpers/cli.js';
import { tinyModelDir } from './helpers.js';

/**
 * classify / evaluate through the real CLI, on the committed sample images, with the tiny model
 * (its classes are meaningless: these tests check the mechanics and the output contract).
 */
const DATA = join(repoRoot, 'test', 'fixtures', 'samples');
const FOLDERS = ['Benign', 'Early', 'Pre', 'Pro'];
const firstImages = (folder: string, n: number): string[] =>
  readdirSync(join(DATA, folder))
    .filter((f) => f.endsWith('.jpg'))
    .sort()
    .slice(0, n)
    .map((f) => join(DATA, folder, f));

t.test('classify --json: one line per image, failures included, exit 1', async (t) => {
  const images = [firstImages('Pro', 1)[0] as string, firstImages('Benign', 1)[0] as string];
  const r = await runCli([
    'classify',
    '--json',
    '--model',
    tinyModelDir,
    ...images,
    '/nonexistent/x.jpg',
    'package.json',
  ]);
  t.equal(r.code, 1, r.stderr);
  const lines = r.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  t.equal(lines.length, 4);
  for (const [i, line] of lines.slice(0, 2).entries()) {
    t.equal(line.file, images[i]);
    t.match(line, {
      class: String,
      class_index: Number,
      p_ball: Number,
      flag: Boolean,
      needs_review: Boolean,
      label: /^(b-all|uncertain|benign)$/,
      model: { name: 'tiny-test-model', execution_provider: 'cpu' },
    });
    const probs = Object.values(line.probabilities as Record<string, number>);
    t.equal(probs.length, 4);
    t.ok(Math.abs(probs.reduce((s, v) => s + v, 0) - 1) < 1e-9);
    t.ok(
      Math.abs((line.p_ball as number) - (1 - (line.probabilities as Record<string, number>).Benign!)) < 1e-9,
    );
    t.equal(line.flag, (line.p_ball as number) >= 0.5);
  }
  t.same(lines[2], { file: '/nonexistent/x.jpg', error: 'no such file', kind: 'not-found' });
  t.match(lines[3], { file: 'package.json', kind: 'unsupported' });
});

t.test('classify text output and a missing model', async (t) => {
  const image = firstImages('Early', 1)[0] as string;
  const ok = await runCli(['classify', '--model', tinyModelDir, image]);
  t.equal(ok.code, 0, ok.stderr);
  t.match(ok.stdout, /: (Benign|Early Pre-B|Pre-B|Pro-B) {2}P\(B-ALL\) \d\.\d{4} {2}(FLAG|not flagged)/);
  t.match(ok.stdout, /Benign \d\.\d{4} {2}Early Pre-B \d\.\d{4} {2}Pre-B \d\.\d{4} {2}Pro-B \d\.\d{4}/);
  // The Jetson config on this CUDA-less machine: one readable warning on stderr, CPU used.
  const jetson = await runCli([
    'classify',
    '--config',
    join(repoRoot, 'config', 'jetson.yaml'),
    '--model',
    tinyModelDir,
    image,
  ]);
  t.equal(jetson.code, 0, jetson.stderr);
  t.equal(
    jetson.stderr.match(
      /^blastwatch: warning: execution provider cuda unavailable; running the INT8 model on cpu/gm,
    )?.length,
    1,
  );
  t.match(jetson.stderr, /\(int8 on cpu\)/);
  const empty = await mkdtemp(join(tmpdir(), 'blastwatch-nomodel-'));
  t.teardown(() => rm(empty, { recursive: true, force: true }));
  const missing = await runCli(['classify', '--model', empty, image]);
  t.equal(missing.code, 1);
  t.equal(
    missing.stderr.trim(),
    `blastwatch classify: no model.json in ${empty}: set model.dir to a folder with a trained model`,
  );
  const usage = await runCli(['classify', '--model', tinyModelDir]);
  t.equal(usage.code, 2);
});

t.test('evaluate --json over a class-per-folder set, a file list and a split', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'blastwatch-eval-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  for (const folder of FOLDERS) {
    await mkdir(join(dir, folder));
    for (const src of firstImages(folder, 2))
      await copyFile(src, join(dir, folder, src.split('/').pop() as string));
  }
  const all = await runCli(['evaluate', '--json', '--data', dir, '--model', tinyModelDir]);
  t.equal(all.code, 0, all.stderr);
  const m = JSON.parse(all.stdout) as {
    n: number;
    accuracy: number;
    confusion: number[][];
    classes: string[];
    per_class: Record<string, { support: number }>;
    malignant: { sensitivity: number; specificity: number; tp: number; fn: number; tn: number; fp: number };
    model: Record<string, unknown>;
    failed: unknown[];
  };
  t.equal(m.n, 8);
  t.same(m.classes, ['Benign', 'Early Pre-B', 'Pre-B', 'Pro-B']);
  t.same(
    m.confusion.map((row) => row.reduce((s, v) => s + v, 0)),
    [2, 2, 2, 2],
    'rows are the truth: 2 images per folder',
  );
  t.equal(m.accuracy, m.confusion.reduce((s, row, i) => s + (row[i] as number), 0) / 8);
  t.equal(m.per_class['Pro-B']?.support, 2);
  t.equal(m.malignant.tp + m.malignant.fn, 6);
  t.equal(m.malignant.tn + m.malignant.fp, 2);
  t.match(m.model, {
    name: 'tiny-test-model',
    file: 'tiny-int8.onnx',
    executionProvider: 'cpu',
    precision: 'int8',
  });
  t.same(m.failed, []);

  // --files restricts; the text report has the matrix and B-ALL lines.
  const pro = readdirSync(join(dir, 'Pro'))[0] as string;
  await writeFile(join(dir, 'list.txt'), `Pro/${pro}\nBenign/${readdirSync(join(dir, 'Benign'))[0]}\n`);
  const listed = await runCli([
    'evaluate',
    '--data',
    dir,
    '--model',
    tinyModelDir,
    '--files',
    join(dir, 'list.txt'),
  ]);
  t.equal(listed.code, 0, listed.stderr);
  t.match(listed.stdout, /images: 2\n/);
  t.match(listed.stdout, /confusion matrix \(rows = truth, columns = predicted\):/);
  t.match(
    listed.stdout,
    /B-ALL \(any malignant class\) vs benign, flag = P\(B-ALL\) >= 0\.5:\n {2}sensitivity /,
  );

  // A set with one Benign image: every class neither present nor predicted is said to be so in
  // the text and left out of macro-F1, instead of a row of zeros.
  await writeFile(join(dir, 'one.txt'), `Benign/${readdirSync(join(dir, 'Benign'))[0]}\n`);
  const oneArgs = ['evaluate', '--data', dir, '--model', tinyModelDir, '--files', join(dir, 'one.txt')];
  const oneJson = await runCli([...oneArgs, '--json']);
  t.equal(oneJson.code, 0, oneJson.stderr);
  const one = JSON.parse(oneJson.stdout) as { confusion: number[][]; classes: string[]; macro_f1: number };
  const predicted = (one.confusion[0] as number[]).findIndex((v) => v === 1);
  const silentClasses = one.classes.filter((_, i) => i !== 0 && i !== predicted);
  t.ok(silentClasses.length >= 2, 'at least two classes have no image and no prediction');
  t.equal(one.macro_f1, predicted === 0 ? 1 : 0, 'macro-F1 over Benign and the class predicted only');
  const oneText = await runCli(oneArgs);
  t.equal(oneText.code, 0, oneText.stderr);
  for (const c of one.classes)
    t.equal(
      new RegExp(`^${c} +no images of this class, none predicted$`, 'm').test(oneText.stdout),
      silentClasses.includes(c),
      `${c}: said to have no images only when it has none and none was predicted`,
    );

  // A split whose recorded sha256 does not match the bytes: that image fails, the rest count.
  const split = {
    format: 'blastwatch-split/1',
    splits: {
      test: [
        { path: `Pro/${pro}`, sha256: '0'.repeat(64), label: 3 },
        { path: `Pre/${readdirSync(join(dir, 'Pre'))[0]}` },
      ],
    },
  };
  await writeFile(join(dir, 'split.json'), JSON.stringify(split));
  const r = await runCli([
    'evaluate',
    '--json',
    '--data',
    dir,
    '--model',
    tinyModelDir,
    '--split',
    join(dir, 'split.json'),
  ]);
  t.equal(r.code, 1);
  const s = JSON.parse(r.stdout) as {
    n: number;
    failed: Array<{ file: string; kind: string }>;
    data: { subset: string };
  };
  t.equal(s.n, 1);
  t.match(s.failed, [{ file: `Pro/${pro}`, kind: 'changed' }]);
  t.equal(s.data.subset, 'test');
});

t.test('evaluate refuses a set with a class folder missing', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'blastwatch-eval-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await mkdir(join(dir, 'Benign'));
  const r = await runCli(['evaluate', '--data', dir, '--model', tinyModelDir]);
  t.equal(r.code, 1);
  t.match(r.stderr, /cannot read class folder .*Early: ENOENT/);
});
