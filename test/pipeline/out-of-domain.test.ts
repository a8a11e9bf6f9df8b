/**
 * The gate in the daemon's path: real store, real files, real decode/segment, a classifier that
 * would flag everything and a gate that refuses dark frames (a port, like the fault-injecting
 * classifiers). An out-of-domain image is stored with no verdict, publishes one schema-valid
 * result message and no alert, is counted by reason, and many of them make health report drift
 * until the share falls again.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { pino } from 'pino';
import t from 'tap';
import { loadConfig } from '../../src/config/load.js';
import type { DomainGateLike } from '../../src/domain/ports.js';
import { loadDomainGate } from '../../src/gate/index.js';
import { watchMagnification } from '../../src/gate/magnification-watch.js';
import { createHealth } from '../../src/health.js';
import { loadModelManifest } from '../../src/infer/manifest.js';
import type { ModelInfo, Prediction } from '../../src/infer/index.js';
import { Pipeline, type ClassifierLike, type WorkItem } from '../../src/pipeline/index.js';
import { prepareImage } from '../../src/preprocess/index.js';
import { outboxMessages } from '../../src/publish/payloads.js';
import { EventBus } from '../../src/runtime/events.js';
import { createMetrics } from '../../src/runtime/metrics.js';
import { openStore } from '../../src/store/index.js';
import { parseCameraShift } from '../../scripts/camera-shifts.js';
import { jpegVariant, repoRoot, sampleImages } from '../daemon/helpers.js';
import { darkFrame, darkFrameGate } from '../helpers/dark-frame-gate.js';

const addFormats = addFormatsModule as unknown as (ajv: Ajv2020) => void;
const ajv = new Ajv2020({ allErrors: true, strict: false });
addFormats(ajv);
const validResult = ajv.compile(
  JSON.parse(
    readFileSync(new URL('../../schemas/mqtt/result.schema.json', import.meta.url), 'utf8'),
  ) as object,
);

const info = {
  name: 'fake',
  version: '9',
  classes: ['Benign', 'Early Pre-B', 'Pre-B', 'Pro-B'],
  folders: ['Benign', 'Early', 'Pre', 'Pro'],
  malignant: [false, true, true, true],
  threshold: 0.5,
  uncertainBand: [0.4, 0.6],
  executionProvider: 'cpu',
  precision: 'int8',
  imageSize: { height: 224, width: 224 },
} as unknown as ModelInfo;

/** Calls everything Pro-B with P(B-ALL) 0.9: whatever the gate lets through is flagged. */
const alwaysFlags: ClassifierLike = {
  info,
  async classify(batch) {
    return batch.map((): Prediction => ({
      probabilities: [0.1, 0.1, 0.1, 0.7],
      byClass: { Benign: 0.1, 'Early Pre-B': 0.1, 'Pre-B': 0.1, 'Pro-B': 0.7 },
      classIndex: 3,
      className: 'Pro-B',
      pBall: 0.9,
    }));
  },
};

function setup(
  t: { teardown(fn: () => void | Promise<void>): void },
  gate: DomainGateLike,
  modelInfo: ModelInfo = info,
) {
  const root = mkdtempSync(join(tmpdir(), 'bw-ood-'));
  const capture = join(root, 'captures');
  const data = join(root, 'var');
  mkdirSync(capture);
  const store = openStore({ dataDir: data });
  const metrics = createMetrics();
  const defaults = loadConfig(null, {}).config;
  const model = { name: info.name, version: info.version, execution_provider: 'cpu', precision: 'int8' };
  const bus = new EventBus();
  const pipeline = new Pipeline({
    store,
    bus,
    metrics,
    log: pino({ level: 'silent' }),
    prepareImage,
    classifier: { ...alwaysFlags, info: modelInfo },
    gate,
    outboxMessages: outboxMessages({ deviceId: 'dev', uncertainBand: info.uncertainBand, model }),
    capture: { ...defaults.capture, dir: capture, max_attempts: 2, retry_backoff_ms: 60_000 },
    data: { ...defaults.data, dir: data, min_free_disk_mb: 0 },
    image: defaults.image,
    segment: defaults.segment,
    pipeline: { concurrency: 1, queue_max: 8 },
  });
  const config = { ...defaults, gate: { drift_window: 6, drift_share: 0.5, magnification_watch: true } };
  const watch = watchMagnification(modelInfo.redCellSize, { bus, pipeline, metrics });
  const health = createHealth({
    config,
    store,
    metrics,
    model: modelInfo,
    startedAt: Date.now(),
    pipeline,
    capture: {
      started: true,
      status: () => ({ running: true, dirAvailable: true, lastScanAt: 0, lastError: null }) as never,
    },
    classifier: () => ({ state: 'ready', lastError: null }),
    mqtt: () => null,
    magnification: () => watch?.drift() ?? null,
  });
  t.teardown(async () => {
    await pipeline.stop();
    store.close();
    rmSync(root, { recursive: true, force: true });
  });
  /** Writes `bytes` as `name` into the capture folder and waits for its outcome. */
  const process = (name: string, bytes: Buffer) => {
    const path = join(capture, name);
    writeFileSync(path, bytes);
    const st = statSync(path);
    return new Promise<{ resultId: number | null; duplicate: boolean; error?: string }>((settle) => {
      const work: WorkItem = {
        path,
        relPath: name,
        size: st.size,
        mtimeMs: st.mtimeMs,
        ino: st.ino,
        ctimeMs: st.ctimeMs,
        settle,
      };
      pipeline.offer(work);
    });
  };
  return { store, metrics, health, process, capture, watch };
}

const smear = (n: number) => jpegVariant(readFileSync(sampleImages()[0]!), `smear-${n}`);

t.test('an out-of-domain image: no verdict, one result message, no alert, counted by reason', async (t) => {
  const gate = darkFrameGate();
  const { store, metrics, process, capture } = setup(t, gate);

  const screened = await process('smear.jpg', await smear(0));
  t.match(store.results.get(screened.resultId!), {
    status: 'done',
    flag: true,
    domain: { in: true, reasons: [] },
  });

  const dark = await darkFrame(0);
  const refused = await process('dark.jpg', dark);
  const r = store.results.get(refused.resultId!);
  t.match(r, {
    status: 'out_of_domain',
    className: null,
    classIndex: null,
    pBall: null,
    flag: null,
    needsReview: null,
    probabilities: null,
    domain: { in: false, reasons: ['underexposed'] },
    modelVersion: '9',
  });
  t.ok((r?.domain?.scores.meanLuma ?? 99) < 40, 'the figure it was judged on is kept');
  t.ok(r?.timings?.gateMs !== undefined, 'the gate is timed');
  t.equal(store.files.get(join(capture, 'dark.jpg'))?.status, 'done', 'the file is processed');

  const rows = store.db
    .prepare('SELECT topic, payload FROM outbox WHERE result_id = ? ORDER BY id')
    .all(refused.resultId) as { topic: string; payload: string }[];
  t.same(
    rows.map((row) => row.topic),
    ['result'],
    'a result message and no alert',
  );
  const payload = JSON.parse(rows[0]!.payload) as Record<string, unknown>;
  t.ok(validResult(payload), JSON.stringify(validResult.errors));
  t.match(payload, {
    status: 'out_of_domain',
    flag: null,
    p_ball: null,
    domain: { in: false, reasons: ['underexposed'] },
  });

  // The same bytes under another name: linked to the one result, not judged or classified again.
  const calls = gate.calls;
  const copy = await process('dark-copy.jpg', dark);
  t.same(copy, { resultId: refused.resultId, duplicate: true });
  t.equal(gate.calls, calls, 'not judged twice');

  t.equal(metrics.outOfDomain.get({ reason: 'underexposed' }), 1);
  t.equal(metrics.outOfDomain.get({ reason: 'focus' }), 0);
  t.equal(metrics.filesProcessed.get({ outcome: 'out_of_domain' }), 1);
  t.equal(metrics.flags.get(), 1, 'only the screened image is counted as flagged');
  const text = metrics.registry.render();
  t.match(text, /blastwatch_out_of_domain_total\{reason="underexposed"\} 1\n/);
  t.match(
    text,
    /blastwatch_out_of_domain_total\{reason="geometry"\} 0\n/,
    'every reason is exported from the start',
  );
  t.same(store.results.counts(), { done: 1, out_of_domain: 1, failed: 0, quarantined: 0, flagged: 1 });
});

t.test(
  'a gate that fails gives no verdict: the image is retried (quarantined if it keeps failing)',
  async (t) => {
    const broken: DomainGateLike = {
      judge: () => {
        throw new Error('thresholds missing');
      },
    };
    const { store, process } = setup(t, broken);
    const out = await process('a.jpg', await smear(1));
    t.equal(out.resultId, null);
    t.match(out.error, /internal: domain check failed: Error: thresholds missing \(will retry\)/);
    t.equal(store.results.counts().done, 0, 'no verdict without a judgement');
  },
);

t.test(
  'drift: more than drift_share of a full window out of domain degrades health, then recovers',
  async (t) => {
    const { health, process, metrics } = setup(t, darkFrameGate());
    const drift = () => health.payload().domain_drift;
    await process('s0.jpg', await smear(0));
    for (let i = 0; i < 4; i++) await process(`d${i}.jpg`, await darkFrame(i));
    t.match(drift(), { window: 6, judged: 5, out_of_domain: 4, drifting: false });
    t.equal(health.state(), 'ok', 'a window not yet full is not judged');

    await process('d4.jpg', await darkFrame(4));
    t.match(drift(), { judged: 6, out_of_domain: 5, share: 0.8333, limit: 0.5, drifting: true });
    t.equal(health.state(), 'degraded');
    const problem = health.payload().problems.find((p) => p.startsWith('camera, stain or magnification'));
    t.equal(
      problem,
      'camera, stain or magnification changed? The model may not apply here: 5 of the last 6 images were ' +
        'unlike the images it was trained on (83.3 %, above gate.drift_share 50 %); most often: the picture is too dark (5)',
    );
    t.same(health.readiness(), { ready: true, reasons: [] }, 'images are still taken: degraded, not unready');

    // Screened images push the refused ones out of the window.
    await process('s1.jpg', await smear(1));
    await process('s2.jpg', await smear(2));
    t.match(drift(), { out_of_domain: 4, drifting: true }, '4 of 6 is still above half');
    await process('s3.jpg', await smear(3));
    t.match(drift(), { out_of_domain: 3, share: 0.5, drifting: false }, 'half is not more than half');
    t.equal(health.state(), 'ok', 'recovered');
    t.same(health.payload().problems, []);
    t.equal(metrics.outOfDomain.get({ reason: 'underexposed' }), 5);
  },
);

t.test(
  'a camera recording green brighter: the bundled gate refuses the fields greener than any training image, health names the white balance',
  async (t) => {
    // The bundled model's gate (its picture checks: this classifier has no features output) and
    // its colour normalisation and green-balance reference.
    const manifest = await loadModelManifest(join(repoRoot, 'models'));
    const reference = manifest.gate?.colour_drift;
    if (!reference) throw new Error('the bundled model.json has no gate.colour_drift');
    const bundled = {
      ...info,
      colour: manifest.preprocessing?.colour ?? null,
      colourDrift: reference,
    } as ModelInfo;
    const { store, health, process } = setup(t, await loadDomainGate(manifest), bundled);
    const samples = sampleImages().slice(0, 12);
    const colour = () => health.payload().colour_drift;

    for (const [i, path] of samples.slice(0, 6).entries())
      await process(`clean-${i}.jpg`, readFileSync(path));
    t.match(colour(), { window: 6, high: reference.high, drifting: false }, 'the training camera');
    t.ok((colour()?.median ?? 2) < reference.high, `median ${colour()?.median} below ${reference.high}`);
    t.equal(health.state(), 'ok');

    const green = parseCameraShift('gains:1,1.15,1');
    const ids: number[] = [];
    for (const [i, path] of samples.entries()) {
      const out = await process(`green-${i}.png`, (await green.apply(readFileSync(path), path)).bytes);
      if (out.resultId !== null) ids.push(out.resultId);
    }
    const results = ids.map((id) => store.results.get(id));
    t.equal(results.length, samples.length, 'every picture has a result');
    const greenRefused = results.filter((r) => r?.domain?.reasons.includes('green_balance'));
    t.ok(greenRefused.length >= 1, `refused for their green: ${greenRefused.length} of ${samples.length}`);
    for (const r of results) {
      const balance = r?.domain?.scores.greenBalance;
      t.type(balance, 'number', `result ${r?.id} keeps its green balance`);
      t.equal(
        r?.domain?.reasons.includes('green_balance'),
        balance! > reference.high,
        `result ${r?.id}: refused for its green exactly when above ${reference.high} (${balance})`,
      );
    }
    for (const r of greenRefused) {
      t.equal(r?.status, 'out_of_domain', 'no verdict');
      t.equal(r?.flag, null);
    }
    const c = colour();
    t.equal(c?.drifting, true, `median ${c?.median} of ${c?.measured} above ${reference.high}`);
    t.equal(health.state(), 'degraded');
    t.match(
      health.payload().problems.filter((p) => p.startsWith('white balance')),
      [/^white balance changed\? The camera records green brighter than the training camera did/],
    );
  },
);

t.test(
  'a lower magnification: the daemon measures the red cells of its captures after their verdicts, and health names the magnification',
  async (t) => {
    const manifest = await loadModelManifest(join(repoRoot, 'models'));
    const range = manifest.acquisition?.red_cell_radius;
    if (!range) throw new Error('the bundled model.json has no acquisition.red_cell_radius');
    // The bundled range, judged over the 12 committed samples instead of 50 fields.
    const bundled = {
      ...info,
      colour: manifest.preprocessing?.colour ?? null,
      redCellSize: { ...range, window: 12 },
    } as ModelInfo;
    const { health, process, watch } = setup(t, await loadDomainGate(manifest), bundled);
    const magnification = () => health.payload().magnification;
    const measuredAll = async (n: number) => {
      for (let i = 0; i < 2000 && watch!.backlog.pending > 0; i++)
        await new Promise((r) => setTimeout(r, 10));
      t.equal(watch!.backlog.pending, 0, 'nothing left waiting');
      t.ok((magnification()?.measured ?? 0) >= n, `${magnification()?.measured} measured`);
    };
    const samples = sampleImages().slice(0, 12);

    for (const [i, path] of samples.entries()) await process(`clean-${i}.jpg`, readFileSync(path));
    await measuredAll(6);
    t.match(
      magnification(),
      { window: 12, low: range.low, high: range.high, differs: null },
      'the training camera',
    );
    t.equal(health.state(), 'ok');

    const shrink = parseCameraShift('magnification:0.75');
    // Six at a time: captures close together wait for a quiet moment, at most MAX_PENDING (8) of them.
    for (const [i, path] of samples.entries()) {
      await process(`shrunk-${i}.png`, (await shrink.apply(readFileSync(path), path)).bytes);
      if (i % 6 === 5) await measuredAll(6);
    }
    const m = magnification();
    t.equal(m?.differs, 'smaller', `median ${m?.median} of ${m?.measured} below ${range.low}`);
    t.equal(health.state(), 'degraded');
    t.match(
      health.payload().problems.filter((p) => p.startsWith('magnification')),
      [
        /^magnification changed\? The red cells measure .* smaller than .*: the magnification is lower than the training camera's/,
      ],
    );
  },
);
