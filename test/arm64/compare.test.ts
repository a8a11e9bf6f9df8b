// The pure parts of scripts/verify-arm64: how x86 and arm64 outputs are compared. The emulated
// run itself needs root and minutes of qemu time, so it is a script, not a unit test.
import t from 'tap';
import {
  argmax,
  compareMessages,
  comparePredictions,
  compareProbe,
  extractPredictions,
} from '../../scripts/verify-arm64.d/compare.mjs';

const evalDoc = (rows: Array<[string, string, number]>) => ({
  accuracy: 1,
  images: rows.map(([file, cls, pBenign]) => ({
    file: `samples/${file}`,
    class: cls,
    probabilities: { Benign: pBenign, 'Pro-B': 1 - pBenign },
  })),
});

t.test('argmax picks the largest entry', async (t) => {
  t.equal(argmax([0.1, 0.7, 0.2]), 1);
  t.equal(argmax(new Float32Array([0.9, 0.05])), 0);
});

t.test('extractPredictions finds per-image rows anywhere and keys them by base name', async (t) => {
  const found = extractPredictions({
    summary: { n: 2 },
    per_class: {},
    results: evalDoc([['a.jpg', 'Benign', 0.8]]).images,
  });
  t.same([...found.keys()], ['a.jpg']);
  t.equal(found.get('a.jpg')?.cls, 'Benign');
  // No class field: the class is the most probable name.
  const inferred = extractPredictions([{ path: '/x/b.jpg', probabilities: { Benign: 0.2, 'Pre-B': 0.8 } }]);
  t.equal(inferred.get('b.jpg')?.cls, 'Pre-B');
});

t.test('comparePredictions passes equal classes and reports the largest probability gap', async (t) => {
  const host = evalDoc([
    ['a.jpg', 'Benign', 0.8],
    ['b.jpg', 'Pro-B', 0.1],
  ]);
  const arm = evalDoc([
    ['a.jpg', 'Benign', 0.79],
    ['b.jpg', 'Pro-B', 0.1],
  ]);
  const r = comparePredictions(host, arm);
  t.ok(r.ok);
  t.equal(r.images, 2);
  t.equal(r.maxDiffFile, 'a.jpg');
  t.ok(Math.abs(r.maxProbDiff - 0.01) < 1e-9);
});

t.test('comparePredictions fails on a class flip, a missing image, or an empty host run', async (t) => {
  const host = evalDoc([
    ['a.jpg', 'Benign', 0.8],
    ['b.jpg', 'Pro-B', 0.1],
  ]);
  const flipped = comparePredictions(
    host,
    evalDoc([
      ['a.jpg', 'Pro-B', 0.4],
      ['b.jpg', 'Pro-B', 0.1],
    ]),
  );
  t.notOk(flipped.ok);
  t.match(flipped.problems[0], /a\.jpg: class Benign on x86, Pro-B on arm64/);
  const missing = comparePredictions(host, evalDoc([['a.jpg', 'Benign', 0.8]]));
  t.notOk(missing.ok);
  t.match(missing.problems.join('\n'), /b\.jpg: missing from the arm64 output/);
  t.notOk(comparePredictions({}, {}).ok);
  // Same class, but P(B-ALL) crossed the threshold on one machine: the flag differs.
  const flagged = (flag: boolean, pBall: number) => [{ file: 'c.jpg', class: 'Pre-B', p_ball: pBall, flag }];
  const flagFlip = comparePredictions(flagged(true, 0.51), flagged(false, 0.49));
  t.notOk(flagFlip.ok);
  t.match(flagFlip.problems[0], /c\.jpg: B-ALL flag true on x86, false on arm64/);
});

t.test('compareProbe fails when a native module failed or the arm64 run was not arm64', async (t) => {
  const image = { file: 'a.jpg', decodedSha: 'x', cameraPathSha: 'y', int8: [0.2, 0.8], fp32: [0.3, 0.7] };
  const host = { arch: 'x64', errors: [], modules: {}, images: [image] };
  const ok = compareProbe(host, {
    arch: 'arm64',
    errors: [],
    modules: {},
    images: [{ ...image, fp32: [0.31, 0.69] }],
  });
  t.ok(ok.ok);
  t.ok(Math.abs(ok.maxDiff.fp32 - 0.01) < 1e-9);
  t.equal(ok.sameDecode, 1);
  const broken = compareProbe(host, {
    arch: 'arm64',
    errors: ['sharp: Could not load'],
    modules: {},
    images: [],
  });
  t.notOk(broken.ok);
  t.match(broken.problems.join('\n'), /arm64: sharp: Could not load/);
  t.notOk(compareProbe(host, { arch: 'x64', errors: [], modules: {}, images: [image] }).ok);
  const flip = compareProbe(host, {
    arch: 'arm64',
    errors: [],
    modules: {},
    images: [{ ...image, int8: [0.9, 0.1] }],
  });
  t.notOk(flip.ok);
});

t.test('compareMessages counts distinct results and checks them against evaluate', async (t) => {
  const msg = (file: string, cls: string) =>
    JSON.stringify({
      topic: 'blastwatch/dev/result',
      retained: false,
      payload: JSON.stringify({ event_id: file, file, class: cls, p_ball: 0.1 }),
    });
  const status = JSON.stringify({ topic: 'blastwatch/dev/status', retained: true, payload: 'online' });
  const ref = evalDoc([
    ['a.jpg', 'Benign', 0.8],
    ['b.jpg', 'Pro-B', 0.1],
  ]);
  const good = compareMessages([status, msg('a.jpg', 'Benign'), msg('b.jpg', 'Pro-B'), ''], ref, 2);
  t.ok(good.ok);
  t.equal(good.checkedAgainstEvaluate, 2);
  t.same(good.topics, ['result', 'status']);
  const short = compareMessages([msg('a.jpg', 'Benign'), msg('a.jpg', 'Benign')], ref, 2);
  t.notOk(short.ok, 'a duplicate delivery does not count twice');
  const wrong = compareMessages([msg('a.jpg', 'Pro-B')], ref, 1);
  t.notOk(wrong.ok);
});
