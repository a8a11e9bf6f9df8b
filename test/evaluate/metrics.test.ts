import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { labelList, listClassFolders, readFileList } from '../../src/evaluate/dataset.js';
import { computeMetrics, expectedCalibrationError } from '../../src/evaluate/metrics.js';

const classes = ['Benign', 'Early Pre-B', 'Pre-B', 'Pro-B'];
const malignant = [false, true, true, true];
const onehot = (c: number, p = 0.9): number[] => classes.map((_, i) => (i === c ? p : (1 - p) / 3));

t.test('confusion, per-class and B-ALL metrics on a hand-checked example', async (t) => {
  // truth -> predicted: B->B, B->B, B->Early (false positive), Early->Early, Pre->Pro, Pro->Pro, Pro->B (missed)
  const pairs: Array<[number, number]> = [
    [0, 0],
    [0, 0],
    [0, 1],
    [1, 1],
    [2, 3],
    [3, 3],
    [3, 0],
  ];
  const items = pairs.map(([truth, pred]) => {
    const probabilities = onehot(pred);
    return { truth, probabilities, pBall: 1 - (probabilities[0] as number) };
  });
  const m = computeMetrics(items, classes, malignant, 0.5, [0.3, 0.7]);
  t.equal(m.n, 7);
  t.same(m.confusion, [
    [2, 1, 0, 0],
    [0, 1, 0, 0],
    [0, 0, 0, 1],
    [1, 0, 0, 1],
  ]);
  t.equal(m.accuracy, 4 / 7);
  t.same(m.per_class.Benign, { precision: 2 / 3, recall: 2 / 3, specificity: 3 / 4, f1: 2 / 3, support: 3 });
  t.same(m.per_class['Pre-B'], { precision: 0, recall: 0, specificity: 1, f1: 0, support: 1 });
  t.equal(m.per_class['Pro-B']?.precision, 1 / 2);
  // Malignant truth: Early, Pre, Pro, Pro = 4; flagged (pBall 0.9+): 3 of them; benign flagged: 1 of 3.
  t.same(m.malignant, { threshold: 0.5, sensitivity: 3 / 4, specificity: 2 / 3, tp: 3, fn: 1, tn: 2, fp: 1 });
  t.equal(m.needs_review, 0);
});

t.test('the threshold, not the argmax, decides B-ALL; the band counts reviews', async (t) => {
  const items = [
    { truth: 1, probabilities: [0.6, 0.4, 0, 0], pBall: 0.4 },
    { truth: 0, probabilities: [0.6, 0.4, 0, 0], pBall: 0.4 },
  ];
  const m = computeMetrics(items, classes, malignant, 0.3, [0.35, 0.45]);
  t.equal(m.malignant.tp, 1, 'predicted Benign but flagged at threshold 0.3');
  t.equal(m.malignant.fp, 1);
  t.equal(m.malignant.specificity, 0);
  t.equal(m.needs_review, 2);
});

t.test('macro-F1 averages the classes present or predicted, as scikit-learn does', async (t) => {
  const right = (c: number): { truth: number; probabilities: number[]; pBall: number } => {
    const probabilities = onehot(c);
    return { truth: c, probabilities, pBall: 1 - (probabilities[0] as number) };
  };
  // a check set without Early Pre-B or Pro-B cases, every image right
  const checkSet = computeMetrics([right(0), right(0), right(2)], classes, malignant, 0.5, [0.3, 0.7]);
  t.equal(checkSet.macro_f1, 1, 'the absent classes do not count as F1 0');
  t.equal(checkSet.per_class['Pro-B']?.support, 0);
  // a class predicted but absent counts: its F1 is 0
  const wrong = { truth: 2, probabilities: onehot(3), pBall: 0.9 };
  const withFalseClass = computeMetrics([right(0), wrong], classes, malignant, 0.5, [0.3, 0.7]);
  t.equal(withFalseClass.macro_f1, 1 / 3, 'Benign 1, Pre-B 0, Pro-B 0 (predicted, never true)');
});

t.test('undefined ratios are null, not NaN (JSON-safe)', async (t) => {
  const m = computeMetrics(
    [{ truth: 0, probabilities: onehot(0), pBall: 0.1 }],
    classes,
    malignant,
    0.5,
    [0.3, 0.7],
  );
  t.equal(m.malignant.sensitivity, null);
  t.equal(m.malignant.specificity, 1);
  t.doesNotThrow(() => JSON.parse(JSON.stringify(m)));
  t.equal(computeMetrics([], classes, malignant, 0.5, [0, 0]).accuracy, null);
});

t.test('ECE: confident and right is 0, confident and wrong is large', async (t) => {
  t.equal(expectedCalibrationError([{ truth: 0, probabilities: [1, 0, 0, 0], pBall: 0 }]), 0);
  t.ok(
    Math.abs(expectedCalibrationError([{ truth: 1, probabilities: [0.9, 0.1, 0, 0], pBall: 0.1 }]) - 0.9) <
      1e-12,
  );
});

t.test('file lists: class folders, text, JSON and split.json', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'blastwatch-dataset-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  for (const f of ['Benign', 'Early', 'Pre', 'Pro']) await mkdir(join(dir, f));
  await writeFile(join(dir, 'Pro', 'b.JPG'), 'x');
  await writeFile(join(dir, 'Pro', 'a.jpg'), 'x');
  await writeFile(join(dir, 'Pro', 'notes.txt'), 'x');
  await writeFile(join(dir, 'Benign', '.hidden.jpg'), 'x');
  const folders = ['Benign', 'Early', 'Pre', 'Pro'];
  const listed = await listClassFolders(dir, folders, ['.jpg']);
  t.same(
    listed.map((f) => [f.relPath, f.truth]),
    [
      ['Pro/a.jpg', 3],
      ['Pro/b.JPG', 3],
    ],
  );
  await rm(join(dir, 'Early'), { recursive: true });
  await t.rejects(listClassFolders(dir, folders, ['.jpg']), {
    message: /cannot read class folder .*Early: ENOENT/,
  });

  await writeFile(join(dir, 'list.txt'), '# test images\nPro/a.jpg\n\nBenign/x.jpg\n');
  t.same(await readFileList(join(dir, 'list.txt')), [{ relPath: 'Pro/a.jpg' }, { relPath: 'Benign/x.jpg' }]);
  await writeFile(join(dir, 'list.json'), JSON.stringify(['Pre/c.jpg', { path: 'Pro/d.jpg', sha256: 'ab' }]));
  t.same(await readFileList(join(dir, 'list.json')), [
    { relPath: 'Pre/c.jpg' },
    { relPath: 'Pro/d.jpg', sha256: 'ab' },
  ]);
  const split = {
    format: 'blastwatch-split/1',
    splits: { train: [], val: [], test: [{ path: 'Early/e.jpg', sha256: 'cd', label: 1 }] },
  };
  await writeFile(join(dir, 'split.json'), JSON.stringify(split));
  t.same(await readFileList(join(dir, 'split.json'), 'test'), [{ relPath: 'Early/e.jpg', sha256: 'cd' }]);
  await t.rejects(readFileList(join(dir, 'split.json')), { message: /needs --subset \(train, val, test\)/ });
  await t.rejects(readFileList(join(dir, 'split.json'), 'tset'), { message: /no split 'tset'/ });
  await writeFile(join(dir, 'bad.txt'), '../../etc/passwd\n');
  await t.rejects(readFileList(join(dir, 'bad.txt')), {
    message: /must be a path relative to the data folder/,
  });

  const labelled = labelList(dir, [{ relPath: 'Pre/c.jpg' }], folders);
  t.equal(labelled[0]?.truth, 2);
  t.equal(labelled[0]?.absPath, join(dir, 'Pre', 'c.jpg'));
  t.throws(() => labelList(dir, [{ relPath: 'Other/c.jpg' }], folders), {
    message: /'Other' is not one of the model's folders/,
  });
});
