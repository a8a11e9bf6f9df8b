import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import type { Logger } from 'pino';
import {
  applyTemperature,
  createClassifier,
  MAX_CONSECUTIVE_RESTARTS,
  ModelError,
} from '../../src/infer/index.js';
import { openClassifier } from '../../src/infer/classifier.js';
import type { ToWorker } from '../../src/infer/protocol.js';
import { spawnWorker } from '../../src/infer/worker-supervisor.js';
import {
  captureLogger,
  createCrashableClassifier,
  fakePair,
  tinyModelCopy,
  tinyModelDir,
} from './helpers.js';

const close = (a: number, b: number, eps = 1e-6): boolean => Math.abs(a - b) <= eps;

t.test('cuda requested on a machine without it: cpu used, INT8 file, one warning', async (t) => {
  const { log, lines } = captureLogger();
  const c = await createClassifier({
    modelDir: tinyModelDir,
    executionProviders: ['cuda', 'cpu'],
    threads: 1,
    log,
  });
  t.teardown(() => c.close());
  t.equal(c.info.executionProvider, 'cpu');
  t.equal(c.info.precision, 'int8');
  t.match(c.info.modelFile, /tiny-int8\.onnx$/);
  t.same(c.info.requestedProviders, ['cuda', 'cpu']);
  t.match(c.info.fallbackReason, /^cuda: /);
  const warnings = lines.filter((l) => l.level === 40);
  t.equal(warnings.length, 1, 'exactly one warning line');
  t.match(warnings[0], {
    executionProvider: 'cpu',
    requestedProviders: ['cuda', 'cpu'],
    msg: /execution provider cuda unavailable; running the INT8 model on cpu/,
  });
  // Classifying does not repeat the warning.
  await c.classify([fakePair(1)]);
  await c.classify([fakePair(2), fakePair(3)]);
  t.equal(lines.filter((l) => l.level === 40).length, 1);
});

t.test('cuda only, not available: a clear error, no session', async (t) => {
  const { log } = captureLogger();
  await t.rejects(
    createClassifier({ modelDir: tinyModelDir, executionProviders: ['cuda'], threads: 1, log }),
    {
      name: 'ModelError',
      message: /no execution provider could load the model: cuda: /,
    },
  );
});

t.test('cpu first: no warning, no fallback', async (t) => {
  const { log, lines } = captureLogger();
  const c = await createClassifier({ modelDir: tinyModelDir, executionProviders: ['cpu'], threads: 0, log });
  t.teardown(() => c.close());
  t.equal(c.info.fallbackReason, null);
  t.ok(c.info.threads >= 1, 'threads 0 resolves to the core count');
  t.equal(lines.filter((l) => l.level === 40).length, 0);
  t.match(
    lines.find((l) => l.msg === 'inference session ready'),
    { executionProvider: 'cpu', precision: 'int8' },
  );
});

t.test('predictions: probabilities sum to 1, fields agree, batch equals single', async (t) => {
  const { log } = captureLogger();
  const c = await createClassifier({ modelDir: tinyModelDir, executionProviders: ['cpu'], threads: 1, log });
  t.teardown(() => c.close());
  const seeds = [11, 22, 33, 44, 55];
  const batch = await c.classify(seeds.map(fakePair));
  t.equal(batch.length, seeds.length);
  for (const p of batch) {
    t.ok(
      close(
        p.probabilities.reduce((s, v) => s + v, 0),
        1,
        1e-9,
      ),
    );
    t.equal(p.className, c.info.classes[p.classIndex]);
    t.equal(p.probabilities[p.classIndex], Math.max(...p.probabilities));
    t.ok(close(p.pBall, 1 - (p.byClass.Benign as number), 1e-9));
    c.info.classes.forEach((name, i) => t.equal(p.byClass[name], p.probabilities[i]));
  }
  // Distinct inputs give distinct outputs (the batch is not one image repeated).
  t.not(batch[0]?.probabilities[0], batch[1]?.probabilities[0]);
  for (const [i, seed] of seeds.entries()) {
    const t0 = performance.now();
    const [single] = await c.classify([fakePair(seed)]);
    const roundTrip = performance.now() - t0;
    single?.probabilities.forEach((v, k) =>
      t.ok(close(v, batch[i]?.probabilities[k] as number), `image ${i} class ${k}`),
    );
    // The worker's own run time comes back with the answer, inside the whole round trip.
    const modelMs = single?.modelMs ?? -1;
    t.ok(
      modelMs > 0 && modelMs <= roundTrip,
      `model run ${modelMs} ms within the round trip ${roundTrip} ms`,
    );
  }
});

t.test('temperature from model.json is applied to the softmax', async (t) => {
  const { log } = captureLogger();
  const t1 = await tinyModelCopy((m) => (m.temperature = 1));
  const t3 = await tinyModelCopy((m) => (m.temperature = 3));
  t.teardown(async () => {
    await t1.cleanup();
    await t3.cleanup();
  });
  const raw = await createClassifier({ modelDir: t1.dir, executionProviders: ['cpu'], threads: 1, log });
  const hot = await createClassifier({ modelDir: t3.dir, executionProviders: ['cpu'], threads: 1, log });
  const shipped = await createClassifier({
    modelDir: tinyModelDir,
    executionProviders: ['cpu'],
    threads: 1,
    log,
  });
  t.teardown(() => Promise.all([raw.close(), hot.close(), shipped.close()]));
  t.equal(shipped.info.temperature, 1.5);
  const images = [7, 8, 9].map(fakePair);
  const copy = () => images.map((p) => ({ original: p.original.slice(), segmented: p.segmented.slice() }));
  const [a, b, s] = [await raw.classify(copy()), await hot.classify(copy()), await shipped.classify(copy())];
  for (let i = 0; i < images.length; i++) {
    const p1 = a[i]?.probabilities as number[];
    const p3 = b[i]?.probabilities as number[];
    const ps = s[i]?.probabilities as number[];
    applyTemperature(p1, 3).forEach((v, k) => t.ok(close(v, p3[k] as number, 1e-9)));
    applyTemperature(p1, 1.5).forEach((v, k) => t.ok(close(v, ps[k] as number, 1e-9)));
    t.ok(Math.max(...p3) < Math.max(...p1), 'T=3 is flatter than T=1');
    t.equal(b[i]?.classIndex, a[i]?.classIndex, 'temperature keeps the predicted class');
  }
});

t.test('config threshold and band override model.json', async (t) => {
  const { log } = captureLogger();
  const c = await createClassifier({
    modelDir: tinyModelDir,
    executionProviders: ['cpu'],
    threads: 1,
    log,
    threshold: 0.25,
    uncertainBand: [0.1, 0.4],
  });
  t.teardown(() => c.close());
  t.equal(c.info.threshold, 0.25);
  t.same(c.info.uncertainBand, [0.1, 0.4]);
});

t.test('inputs are transferred by default, copied on request, checked for size', async (t) => {
  const { log } = captureLogger();
  const c = await createClassifier({ modelDir: tinyModelDir, executionProviders: ['cpu'], threads: 1, log });
  t.teardown(() => c.close());
  const moved = fakePair(5);
  const kept = fakePair(5);
  const [p1] = await c.classify([moved]);
  t.equal(moved.original.length, 0, 'transferred buffer is detached');
  const [p2] = await c.classify([kept], { transfer: false });
  t.equal(kept.original.length, 3 * 224 * 224, 'copied input is intact');
  t.same(p1?.probabilities, p2?.probabilities);
  // A view into a larger buffer, and one buffer used twice: copied, not transferred.
  const big = new Float32Array(2 * 3 * 224 * 224);
  const view = big.subarray(0, 3 * 224 * 224);
  await c.classify([{ original: view, segmented: view }]);
  t.equal(big.length, 2 * 3 * 224 * 224, 'the larger buffer is untouched');
  await t.rejects(c.classify([{ original: new Float32Array(10), segmented: view }]), {
    name: 'ModelError',
    message: 'image 0: original has 10 values, the model takes 3x224x224 = 150528',
  });
  t.same(await c.classify([]), []);
});

t.test('model.json naming an output the model lacks fails at load', async (t) => {
  const { log } = captureLogger();
  const copy = await tinyModelCopy((m) => (m.output = 'logits'));
  t.teardown(copy.cleanup);
  await t.rejects(createClassifier({ modelDir: copy.dir, executionProviders: ['cpu'], threads: 1, log }), {
    name: 'ModelError',
    message: /outputs \[probabilities\]; model\.json expects logits/,
  });
});

/** A classifier whose worker the test can crash, on one CPU thread, closed at the end of `t`. */
async function crashableOnCpu(t: Test, modelDir: string, log: Logger) {
  const out = await createCrashableClassifier({ modelDir, executionProviders: ['cpu'], threads: 1, log });
  t.teardown(() => out.classifier.close());
  return out;
}

t.test('a crashed worker rejects, is reported, and restarts on the next call', async (t) => {
  const { log, lines } = captureLogger();
  const { classifier: c, crash } = await crashableOnCpu(t, tinyModelDir, log);
  const errors: ModelError[] = [];
  c.onError((e) => errors.push(e));
  const before = await c.classify([fakePair(3)], { transfer: false });
  const crashed = new Promise<void>((resolve) => c.onError(() => resolve()));
  crash(3);
  await crashed;
  t.equal(errors.length, 1);
  t.match(errors[0]?.message, /inference worker crashed: exited with code 3/);
  t.match(c.health(), { state: 'crashed', restarts: 0 });
  t.ok(lines.some((l) => l.level === 50 && l.msg === 'inference worker crashed'));
  const after = await c.classify([fakePair(3)]);
  t.same(after[0]?.probabilities, before[0]?.probabilities, 'same results after restart');
  t.match(c.health(), { state: 'ready', restarts: 1 });
  t.equal(c.info.executionProvider, 'cpu');
});

t.test('a failing run rejects only that call; the worker stays up', async (t) => {
  const { log } = captureLogger();
  // model.json claims 112x112 inputs; the ONNX graph takes 224x224: onnxruntime refuses the run.
  const copy = await tinyModelCopy((m) => {
    const inputs = m.inputs as Record<string, { shape: number[] }>;
    for (const k of ['original', 'segmented']) (inputs[k] as { shape: number[] }).shape = [-1, 3, 112, 112];
  });
  t.teardown(copy.cleanup);
  const c = await createClassifier({ modelDir: copy.dir, executionProviders: ['cpu'], threads: 1, log });
  t.teardown(() => c.close());
  const small = () => ({
    original: new Float32Array(3 * 112 * 112),
    segmented: new Float32Array(3 * 112 * 112),
  });
  await t.rejects(c.classify([small()]), {
    name: 'ModelError',
    message: /^inference failed: .*(dimension|shape)/i,
  });
  await t.rejects(c.classify([small()]), { name: 'ModelError', message: /^inference failed: / });
  t.match(c.health(), { state: 'ready', restarts: 0 });
});

t.test('a call in flight when the worker dies is rejected', async (t) => {
  const { log } = captureLogger();
  const { classifier: c, crash } = await crashableOnCpu(t, tinyModelDir, log);
  // The exit request reaches the worker before the run: the run can never answer.
  crash(7);
  await t.rejects(c.classify([fakePair(1)]), {
    name: 'ModelError',
    message: 'inference worker crashed: exited with code 7',
  });
  const [p] = await c.classify([fakePair(1)]);
  t.ok(p, 'the next call restarts the worker');
});

t.test('a worker that cannot restart leaves the classifier failed, with the reason', async (t) => {
  const { log } = captureLogger();
  const copy = await tinyModelCopy();
  t.teardown(copy.cleanup);
  const { classifier: c, crash } = await crashableOnCpu(t, copy.dir, log);
  // The model file disappears while the daemon runs; then the worker crashes.
  await rm(join(copy.dir, 'tiny-int8.onnx'));
  const crashed = new Promise<void>((resolve) => c.onError(() => resolve()));
  crash();
  await crashed;
  await t.rejects(c.classify([fakePair(1)]), {
    name: 'ModelError',
    message: /no execution provider could load the model: cpu: /,
  });
  t.equal(c.health().state, 'failed');
  await t.rejects(c.classify([fakePair(1)]), {
    message: /giving up \(last: no execution provider could load the model/,
  });
  t.ok(MAX_CONSECUTIVE_RESTARTS >= 1);
});

t.test('a model file swapped between a crash and the restart is refused for good', async (t) => {
  const { log, lines } = captureLogger();
  const copy = await tinyModelCopy();
  t.teardown(copy.cleanup);
  const { classifier: c, crash } = await crashableOnCpu(t, copy.dir, log);
  await c.classify([fakePair(1)]);
  // Another model of the same size: one weight byte differs, so onnxruntime loads it happily.
  const file = join(copy.dir, 'tiny-int8.onnx');
  const bytes = await readFile(file);
  bytes[8000] = (bytes[8000] as number) ^ 0x01;
  await writeFile(file, bytes);
  const errors: ModelError[] = [];
  c.onError((e) => errors.push(e));
  const crashed = new Promise<void>((resolve) => c.onError(() => resolve()));
  crash();
  await crashed;
  await t.rejects(c.classify([fakePair(1)]), {
    name: 'ModelError',
    message: /^sha256 mismatch for model file .*tiny-int8\.onnx: expected [0-9a-f]{64}, got [0-9a-f]{64}/,
  });
  t.match(c.health(), { state: 'failed', lastError: /sha256 mismatch/ });
  t.equal(errors.length, 2, 'the crash, then the refused restart: the daemon hears it is final');
  t.match(errors[1]?.message, /sha256 mismatch/);
  t.ok(lines.some((l) => l.msg === 'inference worker cannot restart: giving up'));
  await t.rejects(c.classify([fakePair(1)]), { message: /giving up \(last: sha256 mismatch/ });
});

t.test('close rejects later calls and is idempotent', async (t) => {
  const { log } = captureLogger();
  const c = await createClassifier({ modelDir: tinyModelDir, executionProviders: ['cpu'], threads: 1, log });
  await c.close();
  await c.close();
  t.equal(c.health().state, 'closed');
  await t.rejects(c.classify([fakePair(1)]), { name: 'ModelError', message: 'classifier is closed' });
});

t.test(
  'the tensors reach the worker before classify() returns, so work after the call overlaps the run',
  async (t) => {
    const { log } = captureLogger();
    const posted: string[] = [];
    const c = await openClassifier(
      { modelDir: tinyModelDir, executionProviders: ['cpu'], threads: 1, log },
      (init) => {
        const w = spawnWorker(init);
        const post = w.postMessage.bind(w);
        w.postMessage = (msg: ToWorker, transfer?: Parameters<typeof post>[1]) => {
          posted.push(msg.type);
          post(msg, transfer);
        };
        return w;
      },
    );
    t.teardown(() => c.close());
    const answer = c.classify([fakePair(1)]);
    // Nothing has been awaited yet: the pipeline makes the gate's picture checks at this point.
    t.same(posted, ['run'], 'the run message was posted during the call');
    const [p] = await answer;
    t.ok(p && p.probabilities.length === c.info.classes.length, 'and its answer arrives');
  },
);
