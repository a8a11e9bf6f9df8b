/**
 * The pipeline with a real store, real files and the real decode/segment stage; the classifier is
 * a fake so faults (worker crash, slow inference) can be injected.
 */
import {
  chmodSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import t from 'tap';
import { IN_DOMAIN_UNCHECKED } from '../../src/domain/applicability.js';
import type { ModelInfo, Prediction } from '../../src/infer/index.js';
import { EventBus } from '../../src/runtime/events.js';
import { createMetrics } from '../../src/runtime/metrics.js';
import { loadConfig } from '../../src/config/load.js';
import { Pipeline, type WorkItem } from '../../src/pipeline/index.js';
import type { ClassifierLike } from '../../src/domain/ports.js';
import { WorkQueue } from '../../src/pipeline/queue.js';
import { prepareImage } from '../../src/preprocess/index.js';
import { outboxMessages } from '../../src/publish/payloads.js';
import { ingestUpload } from '../../src/serve/dashboard/upload.js';
import { openStore, type Store } from '../../src/store/index.js';
import { jpegVariant, sampleImages, until } from '../daemon/helpers.js';

const log = pino({ level: 'silent' });

const info: ModelInfo = {
  name: 'fake',
  version: '9',
  classes: ['Benign', 'Early Pre-B', 'Pre-B', 'Pro-B'],
  folders: ['Benign', 'Early', 'Pre', 'Pro'],
  malignant: [false, true, true, true],
  threshold: 0.5,
  uncertainBand: [0.4, 0.6],
  temperature: 1,
  views: 1,
  executionProvider: 'cpu',
  precision: 'int8',
  modelFile: '/dev/null',
  modelSha256: '0'.repeat(64),
  requestedProviders: ['cpu'],
  fallbackReason: null,
  imageSize: { height: 224, width: 224 },
  threads: 1,
};

/** A classifier that fails while `failing` is true and counts its calls. */
function fakeClassifier() {
  const state = { failing: false, calls: 0 };
  const classifier: ClassifierLike = {
    info,
    async classify(batch) {
      state.calls += 1;
      if (state.failing) throw new Error('inference worker exited with code 3');
      return batch.map((): Prediction => {
        const probabilities = [0.1, 0.1, 0.1, 0.7];
        return {
          probabilities,
          byClass: { Benign: 0.1, 'Early Pre-B': 0.1, 'Pre-B': 0.1, 'Pro-B': 0.7 },
          classIndex: 3,
          className: 'Pro-B',
          pBall: 0.9,
        };
      });
    },
  };
  return { classifier, state };
}

/** Test settings on top of config/default.yaml's sections. */
interface SetupOptions {
  maxAttempts?: number;
  minFreeDiskMb?: number;
}

function setup(t: { teardown(fn: () => void | Promise<void>): void }, over: SetupOptions = {}) {
  const root = mkdtempSync(join(tmpdir(), 'bw-pipe-'));
  const capture = join(root, 'captures');
  const data = join(root, 'var');
  mkdirSync(capture);
  const store: Store = openStore({ dataDir: data });
  const bus = new EventBus();
  const { classifier, state } = fakeClassifier();
  const defaults = loadConfig(null, {}).config;
  const model = { name: info.name, version: info.version, execution_provider: 'cpu', precision: 'int8' };
  const pipeline = new Pipeline({
    store,
    bus,
    metrics: createMetrics(),
    log,
    prepareImage,
    classifier,
    gate: { judge: () => IN_DOMAIN_UNCHECKED },
    outboxMessages: outboxMessages({ deviceId: 'dev', uncertainBand: info.uncertainBand, model }),
    capture: {
      ...defaults.capture,
      dir: capture,
      max_attempts: over.maxAttempts ?? 3,
      retry_backoff_ms: 50,
      move_processed_to: null,
      move_quarantined_to: null,
    },
    data: { ...defaults.data, dir: data, min_free_disk_mb: over.minFreeDiskMb ?? 0 },
    image: { max_file_mb: 10, max_input_pixels: 50_000_000 },
    segment: { k: 7, threshold: 141, min_object_area: 200, min_hole_area: 250 },
    pipeline: { concurrency: 2, queue_max: 8 },
  });
  t.teardown(async () => {
    await pipeline.stop();
    store.close();
    rmSync(root, { recursive: true, force: true });
  });
  return { root, capture, data, store, bus, pipeline, state };
}

function item(path: string, relPath: string): WorkItem {
  const st = statSync(path);
  return { path, relPath, size: st.size, mtimeMs: st.mtimeMs, ino: st.ino, ctimeMs: st.ctimeMs };
}

t.test('WorkQueue: bounded, deduplicated by key, FIFO, close waits for in-flight work', async (t) => {
  const started: string[] = [];
  const releases: (() => void)[] = [];
  const q = new WorkQueue<string>({
    concurrency: 1,
    max: 2,
    key: (s) => s,
    work: (s) => new Promise<void>((resolve) => (started.push(s), releases.push(resolve))),
    onError: () => undefined,
  });
  t.equal(q.offer('a'), 'queued');
  t.equal(q.offer('a'), 'duplicate', 'in flight → duplicate');
  t.equal(q.offer('b'), 'queued');
  t.equal(q.offer('c'), 'queued');
  t.equal(q.offer('d'), 'full', 'backpressure instead of growth');
  t.equal(q.depth, 2);
  releases.shift()!();
  await until(() => started.length === 2, 2000, 'next item');
  t.same(started, ['a', 'b'], 'FIFO');
  const closing = q.close();
  t.equal(q.offer('e'), 'closed');
  let closed = false;
  void closing.then(() => (closed = true));
  await new Promise((r) => setTimeout(r, 20));
  t.notOk(closed, 'close waits for the item in flight');
  releases.shift()!();
  t.equal(await closing, 1, 'one waiting item dropped (the scan finds it again)');
  t.same(started, ['a', 'b'], 'the dropped item never started');
});

t.test('EventBus: a throwing listener does not stop the others or the emitter', async (t) => {
  const bus = new EventBus();
  const seen: string[] = [];
  const errors: string[] = [];
  bus.onListenerError = (_err, topic) => errors.push(topic);
  bus.on('file:dropped', () => {
    throw new Error('dashboard bug');
  });
  bus.on('file:dropped', (p) => seen.push(p.path));
  bus.emit('file:dropped', { path: '/x', reason: 'queue-full' });
  t.same(seen, ['/x']);
  t.same(errors, ['file:dropped']);
  const next = bus.next('pipeline:idle');
  bus.emit('pipeline:idle', {});
  t.same(await next, {});
});

t.test('a known unchanged file costs a lookup; the same bytes under a new name are linked', async (t) => {
  const { capture, store, pipeline, state } = setup(t);
  const img = readFileSync(sampleImages()[0]!);
  writeFileSync(join(capture, 'a.jpg'), img);
  t.equal(pipeline.offer(item(join(capture, 'a.jpg'), 'a.jpg')), 'queued');
  await pipeline.onIdle();
  t.equal(store.results.counts().done, 1);
  t.equal(
    pipeline.offer(item(join(capture, 'a.jpg'), 'a.jpg')),
    'known',
    'rescan of a processed file: no work',
  );
  writeFileSync(join(capture, 'b.jpg'), img);
  pipeline.offer(item(join(capture, 'b.jpg'), 'b.jpg'));
  await pipeline.onIdle();
  t.equal(state.calls, 1, 'classified once');
  t.equal(store.results.counts().done, 1, 'one result for the same bytes');
  t.equal(store.outbox.backlog().count, 2, 'result + alert for the one result');
  t.equal(
    store.files.get(join(capture, 'b.jpg'))?.result_id,
    store.files.get(join(capture, 'a.jpg'))?.result_id,
  );
});

t.test('a replacement with the same size and mtime is a new image; same bytes are not', async (t) => {
  // What rsync -t / cp -p do: new bytes of the same size, the old timestamp restored. Without the
  // inode and ctime in the identity the pipeline answered 'known' and never classified them.
  const { capture, store, pipeline, state } = setup(t);
  const src = readFileSync(sampleImages()[1]!);
  const [v1, v2, v3] = ['same-size-1', 'same-size-2', 'same-size-3'].map((tag) => jpegVariant(src, tag));
  const path = join(capture, 'kept.jpg');
  // Whole seconds: utimes cannot restore a sub-millisecond mtime exactly.
  const when = new Date(Math.floor(Date.now() / 1000) * 1000 - 60_000);
  writeFileSync(path, v1!);
  utimesSync(path, when, when);
  const first = statSync(path);
  t.equal(pipeline.offer(item(path, 'kept.jpg')), 'queued');
  await pipeline.onIdle();
  t.equal(store.results.counts().done, 1);

  // Renamed into place (a new inode).
  writeFileSync(`${path}.part`, v2!);
  utimesSync(`${path}.part`, when, when);
  renameSync(`${path}.part`, path);
  const second = statSync(path);
  t.same([second.size, second.mtimeMs], [first.size, first.mtimeMs], 'same size and mtime');
  t.equal(pipeline.offer(item(path, 'kept.jpg')), 'queued', 'renamed into place: not "known"');
  await pipeline.onIdle();
  t.equal(store.results.counts().done, 2, 'the renamed-in replacement is a new result');

  // Written over in place (same inode, only the ctime tells). The kernel stamps the ctime from a
  // clock that moves in steps of a few ms: wait one out, or a fast machine writes both versions
  // within the same step and nothing could tell them apart.
  await new Promise((r) => setTimeout(r, 20));
  writeFileSync(path, v3!);
  utimesSync(path, when, when);
  const third = statSync(path);
  t.same([third.ino, third.size, third.mtimeMs], [second.ino, second.size, second.mtimeMs]);
  t.not(third.ctimeMs, second.ctimeMs, 'only the ctime differs');
  t.equal(pipeline.offer(item(path, 'kept.jpg')), 'queued', 'overwritten in place: not "known"');
  await pipeline.onIdle();
  t.equal(store.results.counts().done, 3, 'the in-place replacement is a new result');
  t.equal(state.calls, 3);
  const outbox = store.outbox.backlog().count;

  // Only the ctime changes (chmod): read and hashed again, but one result, no second message.
  await new Promise((r) => setTimeout(r, 20));
  chmodSync(path, 0o600);
  t.not(statSync(path).ctimeMs, third.ctimeMs, 'the chmod changed the ctime');
  t.equal(pipeline.offer(item(path, 'kept.jpg')), 'queued');
  await pipeline.onIdle();
  t.equal(state.calls, 3, 'same bytes: not classified again');
  t.equal(store.results.counts().done, 3, 'no second result');
  t.equal(store.outbox.backlog().count, outbox, 'no second result or alert message');
  t.equal(pipeline.offer(item(path, 'kept.jpg')), 'known', 'the new identity is recorded');
});

t.test('rows from before the inode/ctime migration are not reprocessed and adopt the identity', async (t) => {
  const { capture, store, pipeline, state } = setup(t);
  const path = join(capture, 'old.jpg');
  writeFileSync(path, readFileSync(sampleImages()[2]!));
  pipeline.offer(item(path, 'old.jpg'));
  await pipeline.onIdle();
  // What an upgraded database holds for a file processed by the previous version.
  store.db.prepare('UPDATE files SET ino = NULL, ctime_ms = NULL WHERE path = ?').run(path);
  t.equal(pipeline.offer(item(path, 'old.jpg')), 'known', 'matched on size + mtime: nothing reprocessed');
  await until(() => store.files.get(path)?.ino !== null, 5000, 'identity adopted');
  const st = statSync(path);
  t.same([store.files.get(path)?.ino, store.files.get(path)?.ctime_ms], [st.ino, st.ctimeMs]);
  t.equal(state.calls, 1);
});

t.test('an inference crash is retried and never quarantines a good image', async (t) => {
  const { capture, store, pipeline, state } = setup(t, { maxAttempts: 2 });
  writeFileSync(join(capture, 'c.jpg'), readFileSync(sampleImages()[1]!));
  state.failing = true;
  pipeline.offer(item(join(capture, 'c.jpg'), 'c.jpg'));
  await until(() => state.calls >= 4, 20_000, 'several failed attempts');
  const row = store.files.get(join(capture, 'c.jpg'));
  t.equal(row?.status, 'pending', 'still pending, not quarantined');
  t.equal(row?.error_kind, 'inference');
  t.equal(store.results.counts().quarantined, 0);
  state.failing = false;
  await until(() => store.results.counts().done === 1, 20_000, 'classified once the worker is back');
  t.equal(store.files.get(join(capture, 'c.jpg'))?.status, 'done');
});

t.test('retries recorded before a restart are re-armed by start', async (t) => {
  const { capture, store, pipeline } = setup(t);
  const path = join(capture, 'later.jpg');
  writeFileSync(path, readFileSync(sampleImages()[2]!));
  const st = statSync(path);
  // As if the previous process had seen it truncated and scheduled a retry, then died.
  const pending = {
    path,
    size: st.size,
    mtimeMs: st.mtimeMs,
    sha256: null,
    status: 'pending' as const,
    attempts: 1,
    errorKind: 'truncated',
    error: 'x',
  };
  store.files.put({ ...pending, nextAttemptAt: Date.now() + 600_000 });
  t.equal(pipeline.offer(item(path, 'later.jpg')), 'waiting', 'a rescan does not retry before its time');
  store.files.put({ ...pending, nextAttemptAt: Date.now() + 100 });
  pipeline.start();
  await until(() => store.results.counts().done === 1, 20_000, 'retried after restart');
  t.equal(store.files.get(path)?.attempts, 2, 'attempt count carried over');
});

t.test('a database write failure marks nothing done and is reported', async (t) => {
  const { capture, store, pipeline } = setup(t);
  const path = join(capture, 'd.jpg');
  writeFileSync(path, readFileSync(sampleImages()[3]!));
  const original = store.results.commit.bind(store.results);
  let fail = true;
  store.results.commit = ((...args: Parameters<Store['results']['commit']>) => {
    if (fail) throw Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' });
    return original(...args);
  }) as Store['results']['commit'];
  pipeline.offer(item(path, 'd.jpg'));
  await pipeline.onIdle();
  t.equal(store.files.get(path), undefined, 'file not recorded: the next scan tries again');
  t.equal(store.results.counts().done, 0);
  t.match(pipeline.storeError, /disk is full/, 'health can report it');
  fail = false;
  pipeline.offer(item(path, 'd.jpg'));
  await pipeline.onIdle();
  t.equal(store.results.counts().done, 1, 'processed once the disk has room');
  t.equal(pipeline.storeError, null, 'cleared');
});

t.test('free-disk guard: new images wait while data.dir is below the minimum', async (t) => {
  const { capture, pipeline } = setup(t, { minFreeDiskMb: Number.MAX_SAFE_INTEGER });
  const path = join(capture, 'e.jpg');
  writeFileSync(path, readFileSync(sampleImages()[4]!));
  t.equal(pipeline.offer(item(path, 'e.jpg')), 'disk-low');
  t.ok(pipeline.diskLow());
});

t.test('uploads go through the same stages and resolve with their result', async (t) => {
  const { store, pipeline, data } = setup(t);
  const uploads = { dataDir: data, store, offer: (i: WorkItem) => pipeline.offer(i) };
  const bytes = readFileSync(sampleImages()[5]!);
  const first = await ingestUpload(uploads, 'phone photo <1>.jpg', bytes);
  t.ok(first.resultId, 'stored');
  t.equal(first.duplicate, false);
  const row = store.results.get(first.resultId!);
  t.equal(row?.origin, 'upload');
  t.equal(row?.file, 'upload/phone photo <1>.jpg', 'user name kept as a label only');
  t.notMatch(row?.path, /phone photo/, 'stored under a name of our own');
  const again = await ingestUpload(uploads, 'again.jpg', bytes);
  t.same([again.resultId, again.duplicate], [first.resultId, true], 'same bytes → existing result');
});
