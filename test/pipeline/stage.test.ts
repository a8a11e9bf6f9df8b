/**
 * The stage function on its own: one work item in, one outcome out, nothing written. Each case
 * pins which outcome a situation leads to and what it would record.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { IN_DOMAIN_UNCHECKED } from '../../src/domain/applicability.js';
import type { ModelInfo, Prediction } from '../../src/infer/index.js';
import { Stage, type ClassifierLike, type DomainGateLike, type WorkItem } from '../../src/pipeline/index.js';
import { prepareImage } from '../../src/preprocess/index.js';
import { createMetrics } from '../../src/runtime/metrics.js';
import { openStore, type Store } from '../../src/store/index.js';
import { sampleImages } from '../daemon/helpers.js';

const info = {
  name: 'fake',
  version: '9',
  classes: ['Benign', 'Early Pre-B', 'Pre-B', 'Pro-B'],
  malignant: [false, true, true, true],
  threshold: 0.5,
  uncertainBand: [0.4, 0.6],
  executionProvider: 'cpu',
  precision: 'int8',
  imageSize: { height: 224, width: 224 },
} as unknown as ModelInfo;

function setup(
  t: { teardown(fn: () => void): void },
  maxAttempts = 3,
  gate: DomainGateLike = { judge: () => IN_DOMAIN_UNCHECKED },
  events: string[] = [],
) {
  const root = mkdtempSync(join(tmpdir(), 'bw-stage-'));
  const capture = join(root, 'captures');
  mkdirSync(capture);
  const store: Store = openStore({ dataDir: join(root, 'var') });
  const state = { failing: false };
  const classifier: ClassifierLike = {
    info,
    async classify(batch) {
      events.push('classify called');
      await new Promise((resolve) => setTimeout(resolve, 5));
      events.push('prediction');
      if (state.failing) throw new Error('worker exited');
      return batch.map((): Prediction => ({
        probabilities: [0.1, 0.1, 0.1, 0.7],
        byClass: { Benign: 0.1, 'Early Pre-B': 0.1, 'Pre-B': 0.1, 'Pro-B': 0.7 },
        classIndex: 3,
        className: 'Pro-B',
        pBall: 0.9,
      }));
    },
  };
  const stage = new Stage({
    store,
    prepareImage,
    classifier,
    gate,
    metrics: createMetrics(),
    capture: { max_attempts: maxAttempts, retry_backoff_ms: 1000 },
    image: { max_file_mb: 1, max_input_pixels: 50_000_000 },
    segment: { k: 7, threshold: 141, min_object_area: 200, min_hole_area: 250 },
  });
  t.teardown(() => {
    store.close();
    rmSync(root, { recursive: true, force: true });
  });
  const put = (name: string, bytes: Buffer): WorkItem => {
    const path = join(capture, name);
    writeFileSync(path, bytes);
    const st = statSync(path);
    return { path, relPath: name, size: st.size, mtimeMs: st.mtimeMs, ino: st.ino, ctimeMs: st.ctimeMs };
  };
  return { store, stage, state, put, capture };
}

const jpeg = () => readFileSync(sampleImages()[0]!);

t.test('done: a classified image with its decision, the file row and the timings', async (t) => {
  const { store, stage, put } = setup(t);
  const out = await stage.run(put('a.jpg', jpeg()), 3);
  if (out.kind !== 'done') return t.fail(`expected done, got ${out.kind}`);
  t.match(out.result, { status: 'done', file: 'a.jpg', className: 'Pro-B', flag: true, needsReview: false });
  t.match(out.result, { modelVersion: '9', threshold: 0.5, attempts: 1, origin: 'capture' });
  t.match(out.file, { status: 'done', attempts: 1, sha256: out.result.sha256 });
  t.equal(out.timings.queueMs, 3);
  t.ok(out.timings.inferMs !== undefined && out.timings.decodeMs !== undefined, 'stage timings');
  t.equal(store.results.counts().done, 0, 'the stage writes nothing');
});

t.test('gone: the file vanished since the hint', async (t) => {
  const { stage, put } = setup(t);
  const item = put('x.jpg', jpeg());
  rmSync(item.path);
  t.same(await stage.run(item, 0), { kind: 'gone' });
});

t.test('failed: too large, or bytes that are no image', async (t) => {
  const { stage, put } = setup(t);
  const big = await stage.run(put('big.jpg', Buffer.alloc(2 * 1024 * 1024, 1)), 0);
  t.match(big, {
    kind: 'failed',
    result: { errorKind: 'too-large', sha256: null },
    file: { status: 'failed' },
  });
  const junk = await stage.run(put('junk.jpg', Buffer.from('not an image at all')), 0);
  t.equal(junk.kind, 'failed');
});

t.test('retry, then quarantined once max_attempts is reached', async (t) => {
  const { store, stage, put } = setup(t, 2);
  const bytes = jpeg();
  const item = put('cut.jpg', bytes.subarray(0, Math.floor(bytes.length / 3)));
  const triedAfter = Date.now();
  const first = await stage.run(item, 0);
  if (first.kind !== 'retry') return t.fail(`expected retry, got ${first.kind}`);
  t.match(first.file, { status: 'pending', attempts: 1, errorKind: 'truncated' });
  t.equal(first.delayMs, 1000, 'first backoff');
  t.ok(first.file.nextAttemptAt >= triedAfter + 1000, 'next attempt one backoff after the try');
  store.files.put(first.file);
  const second = await stage.run(item, 0);
  t.match(second, {
    kind: 'quarantined',
    result: { status: 'quarantined', attempts: 2, error: /after 2 attempts/ },
  });
});

t.test(
  'failed at once: an uploaded image that is cut short (an upload is stored whole, so waiting cannot help)',
  async (t) => {
    const { stage, put } = setup(t, 5);
    const bytes = jpeg();
    const item = {
      ...put('cut-upload.jpg', bytes.subarray(0, Math.floor(bytes.length / 3))),
      origin: 'upload' as const,
    };
    t.match(await stage.run(item, 0), {
      kind: 'failed',
      result: { status: 'failed', origin: 'upload', errorKind: 'truncated', attempts: 1 },
      file: { status: 'failed' },
    });
  },
);

t.test('an inference failure retries without counting toward quarantine', async (t) => {
  const { stage, state, put } = setup(t, 1);
  state.failing = true;
  const out = await stage.run(put('b.jpg', jpeg()), 0);
  t.match(out, { kind: 'retry', file: { attempts: 0, errorKind: 'inference' }, delayMs: 4000 });
});

t.test('duplicate: unchanged and known, or the bytes of another result', async (t) => {
  const { store, stage, put } = setup(t);
  const item = put('a.jpg', jpeg());
  const done = await stage.run(item, 0);
  if (done.kind !== 'done') return t.fail(done.kind);
  const { id } = store.results.commit(done.result, done.file, () => []);
  t.same(await stage.run(item, 0), {
    kind: 'duplicate',
    resultId: id,
    record: null,
    adopt: null,
    counted: false,
    move: false,
  });
  const copy = await stage.run(put('copy.jpg', jpeg()), 0);
  t.match(copy, { kind: 'duplicate', resultId: id, counted: true, move: true, record: { status: 'done' } });
});

t.test("the gate's picture checks run while the model infers; its judgement ends after", async (t) => {
  const events: string[] = [];
  const gate: DomainGateLike = {
    inspect: () => {
      events.push('inspect');
      return { reasons: ['focus'], scores: { laplacianVariance: 1 } };
    },
    judge: (input) => {
      events.push(`judge with ${input.inspection?.reasons.join(',')}`);
      return { in: false, reasons: [...(input.inspection?.reasons ?? [])], scores: {} };
    },
  };
  const { stage, put } = setup(t, 3, gate, events);
  const out = await stage.run(put('a.jpg', jpeg()), 0);
  t.same(events, ['classify called', 'inspect', 'prediction', 'judge with focus']);
  if (out.kind !== 'done') return t.fail(`expected done, got ${out.kind}`);
  t.match(out.result, { status: 'out_of_domain', flag: null, domain: { in: false, reasons: ['focus'] } });
});

t.test('a picture check that throws gives no verdict: the image is tried again', async (t) => {
  const gate: DomainGateLike = {
    inspect: () => {
      throw new Error('no ranges');
    },
    judge: () => IN_DOMAIN_UNCHECKED,
  };
  const { stage, put } = setup(t, 3, gate);
  const out = await stage.run(put('a.jpg', jpeg()), 0);
  if (out.kind !== 'retry') return t.fail(`expected retry, got ${out.kind}`);
  t.match(out.file, { errorKind: 'internal', error: /domain check failed: Error: no ranges/ });
});
