/**
 * Health tells the truth about what an operator relies on: MQTT delivery (alerts waiting for a
 * broker that is down), the disk guard refusing images, a database found damaged while running.
 * createHealth over a real store; the running parts are stand-ins whose state the test sets.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import type { DomainReason } from '../../src/domain/applicability.js';
import { loadConfig } from '../../src/config/load.js';
import type { MagnificationDrift } from '../../src/gate/magnification-watch.js';
import { createHealth, MQTT_DOWN_GRACE_MS, OUTBOX_STALE_MS, type MqttState } from '../../src/health.js';
import type { ModelInfo } from '../../src/infer/index.js';
import { createMetrics } from '../../src/runtime/metrics.js';
import { backupStore, readBackupStatus } from '../../src/store/backup.js';
import { openStore, type Store } from '../../src/store/index.js';
import { classifiedResult } from '../helpers/results.js';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const T0 = Date.parse('2026-12-03T08:00:00.000Z');

function setup(
  t: { teardown(fn: () => void): void },
  mqttOn = true,
  model: Partial<ModelInfo> = {},
  magnification?: () => MagnificationDrift | null,
) {
  const dir = mkdtempSync(join(tmpdir(), 'bw-health-'));
  const store = openStore({ dataDir: dir });
  t.teardown(() => {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const clock = { now: T0 };
  const disk = { low: false, free: 500 * 1048576 };
  let mqtt: MqttState | null = mqttOn ? { connected: true, disconnectedSince: null, error: null } : null;
  const health = createHealth({
    config: loadConfig(null, {}).config,
    store,
    metrics: createMetrics(),
    model: { name: 'm', version: '1', executionProvider: 'cpu', precision: 'int8', ...model } as ModelInfo,
    startedAt: T0,
    pipeline: {
      queueDepth: 0,
      inFlight: 0,
      storeError: null,
      lastImageAt: null,
      diskFreeBytes: () => disk.free,
      diskLow: () => disk.low,
    },
    capture: {
      started: true,
      status: () => ({ running: true, dirAvailable: true, lastScanAt: T0, lastError: null }) as never,
    },
    classifier: () => ({ state: 'ready', lastError: null }),
    mqtt: () => mqtt,
    now: () => clock.now,
    ...(magnification ? { magnification } : {}),
    backup: () => readBackupStatus(dir),
  });
  return { store, health, clock, disk, dir, setMqtt: (m: MqttState | null) => (mqtt = m) };
}

/** `n` results stored at `at`, every `alertEvery`-th one flagged (a result and an alert message). */
function storeResults(store: Store, n: number, alertEvery: number, at: number): void {
  for (let i = 0; i < n; i++) {
    const sha256 = `${at}-${i}`.padStart(64, '0');
    const flag = i % alertEvery === 0;
    store.results.commit(
      {
        status: 'done',
        sha256,
        path: `/c/${sha256}.jpg`,
        file: `${i}.jpg`,
        origin: 'capture',
        size: 1,
        className: flag ? 'Pro-B' : 'Benign',
        pBall: flag ? 0.9 : 0.1,
        flag,
        capturedAt: at,
        processedAt: at,
      },
      null,
      () => [
        { eventId: `r${sha256}`, topic: 'result', payload: '{}' },
        ...(flag ? [{ eventId: `a${sha256}`, topic: 'alert', payload: '{}' }] : []),
      ],
    );
  }
}

t.test('broker unreachable with alerts waiting: degraded, in words; ready all the same', async (t) => {
  const { store, health, clock, setMqtt } = setup(t);
  const originalNow = Date.now;
  Date.now = () => T0; // outbox rows take their created_at from Date.now
  try {
    storeResults(store, 81, 27, T0); // 81 results, 3 flagged: 84 messages, 3 alerts
  } finally {
    Date.now = originalNow;
  }
  setMqtt({ connected: false, disconnectedSince: T0, error: 'connect ECONNREFUSED 127.0.0.1:1883' });
  clock.now = T0 + 5_000;
  t.equal(health.payload().state, 'ok', 'a few seconds without the broker: a reconnect, not a problem');

  clock.now = T0 + MQTT_DOWN_GRACE_MS + 1;
  const p = health.payload();
  t.equal(p.state, 'degraded');
  t.same(p.problems, [
    'MQTT broker unreachable since 2026-12-03T08:00:00.000Z (connect ECONNREFUSED 127.0.0.1:1883): 84 messages waiting (3 alerts)',
  ]);
  t.equal(p.outbox_backlog, 84);
  t.same(p.mqtt, {
    connected: false,
    disconnected_since: '2026-12-03T08:00:00.000Z',
    alerts_waiting: 3,
    oldest_waiting_at: '2026-12-03T08:00:00.000Z',
  });
  t.equal(health.state(), 'degraded', 'what /healthz carries');
  t.same(health.readiness(), { ready: true, reasons: [] }, 'images are still taken: /readyz 200');
});

t.test('connected but messages stuck in the outbox too long: degraded', async (t) => {
  const { store, health, clock } = setup(t);
  const originalNow = Date.now;
  Date.now = () => T0;
  try {
    storeResults(store, 2, 1, T0);
  } finally {
    Date.now = originalNow;
  }
  clock.now = T0 + 1000;
  t.equal(health.payload().state, 'ok', 'fresh messages on their way');
  clock.now = T0 + OUTBOX_STALE_MS + 1;
  t.same(health.payload().problems, [
    'MQTT messages undelivered since 2026-12-03T08:00:00.000Z: 4 messages waiting (2 alerts)',
  ]);
});

t.test('MQTT off: no MQTT problem and no mqtt section', async (t) => {
  const { store, health, clock } = setup(t, false);
  storeResults(store, 1, 1, T0);
  clock.now = T0 + 10 * OUTBOX_STALE_MS;
  const p = health.payload();
  t.equal(p.state, 'ok');
  t.equal(p.mqtt, undefined);
});

t.test('the disk guard refusing images makes the daemon not ready, with the reason', async (t) => {
  const { health, disk } = setup(t, false);
  disk.low = true;
  disk.free = 8 * 1048576;
  const r = health.readiness();
  t.equal(r.ready, false);
  t.match(r.reasons, [/data disk nearly full \(8 MB free, below data\.min_free_disk_mb\): new images wait/]);
  t.equal(health.payload().state, 'degraded');
  t.equal(health.payload().problems.length, 1, 'said once');
});

t.test('a database found damaged while running: not ready, degraded with what to do', async (t) => {
  const { store, health } = setup(t, false);
  const damage = Object.assign(new Error('database disk image is malformed'), { code: 'SQLITE_CORRUPT' });
  store.noteFailure(Object.assign(new Error('disk I/O error'), { code: 'SQLITE_IOERR' }));
  t.equal(health.payload().state, 'ok', 'other failures are not damage');
  store.noteFailure(damage);
  const r = health.readiness();
  t.equal(r.ready, false);
  t.match(
    r.reasons[0],
    /^database .*blastwatch\.db is damaged \(database disk image is malformed\): stop blastwatch, move/,
  );
  t.match(health.payload().problems, [/is damaged/]);
});

/**
 * Captured images, each with its green balance, stored in this order: accepted, or refused for
 * the reasons given.
 */
function storeScreened(
  store: Store,
  balances: readonly number[],
  from: number,
  refusedFor: DomainReason[] = [],
): void {
  balances.forEach((greenBalance, i) => {
    const sha256 = `g${from + i}`.padStart(64, '0');
    const judged = { sha256, path: `/c/${sha256}.jpg`, file: `${from + i}.jpg`, size: 1 };
    store.results.commit(
      {
        ...judged,
        origin: 'capture',
        capturedAt: T0,
        processedAt: T0,
        ...(refusedFor.length > 0
          ? {
              status: 'out_of_domain' as const,
              domain: { in: false, reasons: refusedFor, scores: { greenBalance } },
            }
          : {
              status: 'done' as const,
              className: 'Benign',
              pBall: 0.1,
              flag: false,
              domain: { in: true, reasons: [], scores: { greenBalance } },
            }),
      },
      null,
      () => [],
    );
  });
}

const ajv = new Ajv2020({ allErrors: true, strict: false });
(addFormatsModule as unknown as (a: Ajv2020) => void)(ajv);
const validHealth = ajv.compile(
  JSON.parse(
    readFileSync(fileURLToPath(new URL('../../schemas/mqtt/health.schema.json', import.meta.url)), 'utf8'),
  ) as object,
);

/** A green-balance reference as model.json has it, and the default config's window. */
const GREEN_REFERENCE = { figure: 'green_balance' as const, high: 1.04 };
const DRIFT_WINDOW = loadConfig(null, {}).config.gate.drift_window;

t.test(
  'a camera recording green brighter: degraded once the screened images median above the training high',
  async (t) => {
    const { store, health } = setup(t, false, { colourDrift: GREEN_REFERENCE });
    const window = DRIFT_WINDOW;
    storeScreened(
      store,
      Array.from({ length: window }, (_, i) => 0.93 + (i % 5) * 0.01),
      0,
    );
    let p = health.payload();
    t.equal(p.state, 'ok', 'the training camera');
    t.same(p.colour_drift, { window, measured: window, median: 0.95, high: 1.04, drifting: false });

    storeScreened(
      store,
      Array.from({ length: window / 2 + 1 }, () => 1.07),
      window,
    );
    p = health.payload();
    t.equal(p.state, 'degraded', 'more than half the window is the new camera');
    t.equal(p.colour_drift?.drifting, true);
    t.equal(p.colour_drift?.median, 1.07);
    t.match(
      p.problems[0],
      /^white balance changed\? The camera records green brighter than the training camera did: the median green balance of the last 50 images screened or refused only for their green or a contradicted benign call is 1\.070, above 1\.040/,
    );
    t.same(health.readiness(), { ready: true, reasons: [] }, 'images are still taken and judged');
  },
);

t.test(
  'the fields refused for their green count; those refused for anything else (maybe no smear) do not',
  async (t) => {
    const { store, health } = setup(t, false, { colourDrift: GREEN_REFERENCE });
    const window = DRIFT_WINDOW;
    const screened = Math.floor(window / 4);
    const refusedForGreen = Math.ceil(window / 2) - screened + 1;
    storeScreened(
      store,
      Array.from({ length: screened }, () => 0.95),
      0,
    );
    storeScreened(
      store,
      Array.from({ length: refusedForGreen }, () => 1.08),
      screened,
      ['green_balance'],
    );
    storeScreened(
      store,
      Array.from({ length: window - screened - refusedForGreen }, () => 1.3),
      window,
      ['green_balance', 'appearance'],
    );
    const c = health.payload().colour_drift;
    t.same(
      c,
      { window, measured: screened + refusedForGreen, median: 1.08, high: 1.04, drifting: true },
      'the screened and the green-refused fields, not the ones also refused for their appearance',
    );
  },
);

t.test('a model without the reference: no colour_drift, whatever the images', async (t) => {
  const { store, health } = setup(t, false);
  storeScreened(
    store,
    Array.from({ length: 60 }, () => 1.2),
    0,
  );
  const p = health.payload();
  t.equal(p.colour_drift, undefined);
  t.equal(p.state, 'ok');
});

t.test(
  "capture files stamped by a clock that disagrees with this station's: degraded, in words",
  async (t) => {
    const { store, health } = setup(t, false);
    const capture = (file: string, capturedAt: number, processedAt: number) =>
      store.results.commit(
        classifiedResult(file.padStart(64, '0'), { file, path: `/c/${file}`, capturedAt, processedAt }),
        null,
        () => [],
      ).id;

    capture('a.jpg', T0 - 2_000, T0);
    let p = health.payload();
    t.equal(p.state, 'ok', 'a file stamped before it was read is as it should be');
    t.same(p.capture_clock, {
      captures: 1,
      ahead: 0,
      max_ahead_s: 0,
      before_session: 0,
      long_before_session: 0,
      max_long_before_s: 0,
    });
    t.ok(validHealth(p), JSON.stringify(validHealth.errors));

    capture('b.jpg', T0 + 42_000, T0);
    p = health.payload();
    t.equal(p.state, 'degraded');
    t.same(p.capture_clock, {
      captures: 2,
      ahead: 1,
      max_ahead_s: 42,
      before_session: 0,
      long_before_session: 0,
      max_long_before_s: 0,
    });
    t.match(p.problems, [
      /^capture clock ahead\? 1 of the last 2 captures was stamped up to 42 s later than this station's clock when it read them: .*NTP/,
    ]);
    t.ok(validHealth(p), JSON.stringify(validHealth.errors));

    // A capture that arrives during a session but is stamped before its start joins no specimen.
    const started = store.specimens.start('H26-00042', 'dr-lee');
    const startedAt = store.specimens.openSession()!.startedAt;
    const early = capture('field-01.jpg', startedAt - 58_000, startedAt + 1);
    p = health.payload();
    t.equal(p.capture_clock?.before_session, 1);
    t.match(
      p.problems[1],
      /^1 capture arrived during the open specimen session but is stamped before it started, so it is in no specimen: field-01\.jpg \(H26-00042, 58 s before\)\. Assign it by hand if it belongs/,
    );
    t.ok(validHealth(p), JSON.stringify(validHealth.errors));
    store.specimens.assignImages(started.specimen.id, [early], 'dr-lee');
    t.equal(health.payload().capture_clock?.before_session, 0, 'assigned by hand: no longer a problem');

    // A writer's clock far behind: every capture of the session is stamped long before its start.
    const problemsBefore = health.payload().problems.length;
    capture('far-1.jpg', startedAt - 15 * 60_000, startedAt + 2);
    capture('far-2.jpg', startedAt - 16 * 60_000, startedAt + 3);
    p = health.payload();
    t.equal(p.capture_clock?.long_before_session, 2);
    t.equal(p.problems.length, problemsBefore, 'two could be old pictures copied late: not yet a problem');
    capture('far-3.jpg', startedAt - 17 * 60_000, startedAt + 4);
    p = health.payload();
    t.equal(p.capture_clock?.long_before_session, 3);
    t.equal(p.capture_clock?.max_long_before_s, 17 * 60);
    t.equal(p.state, 'degraded');
    t.match(
      p.problems.at(-1),
      /^capture clock far behind\? 3 captures arrived during the open specimen session \(H26-00042\) stamped 15 min to 17 min before it started, so they are in no specimen/,
    );
    t.ok(validHealth(p), JSON.stringify(validHealth.errors));
    store.specimens.finish(started.specimen.id, 'dr-lee');
    t.equal(health.payload().capture_clock?.long_before_session, 0, 'no session open: nothing to miss');
  },
);

t.test(
  "the red cells' size: degraded when it differs from the training images', unless the camera's colour or exposure changed too",
  async (t) => {
    const range = { window: 50, low: 6.15, high: 8.68, needed: 25 };
    let drift: MagnificationDrift = { ...range, measured: 40, median: 7.2, differs: null };
    const { store, health } = setup(t, false, { colourDrift: GREEN_REFERENCE }, () => drift);
    let p = health.payload();
    t.same(p.magnification, {
      window: 50,
      measured: 40,
      median: 7.2,
      low: 6.15,
      high: 8.68,
      differs: null,
      called: false,
    });
    t.equal(p.state, 'ok');
    t.same(health.cameraWarnings(), [], 'as trained: no camera warning');
    t.ok(validHealth(p), JSON.stringify(validHealth.errors));

    drift = { ...range, measured: 40, median: 5.81234, differs: 'smaller' };
    p = health.payload();
    t.match(p.magnification, { median: 5.8123, differs: 'smaller', called: true });
    t.equal(p.state, 'degraded');
    t.match(p.problems, [
      /^magnification changed\? The red cells measure 5\.81 px in radius, the median of the last 40 captures measured, smaller than in any 50 consecutive training images \(6\.15–8\.68 px\): the magnification is lower than the training camera's/,
    ]);
    t.ok(validHealth(p), JSON.stringify(validHealth.errors));
    t.same(
      health.cameraWarnings(),
      [{ watch: 'magnification', text: p.problems[0], window: 50 }],
      'the camera warning a specimen keeps is the problem health states, judged on its window',
    );

    // A brighter green makes red cells read smaller too: the white balance is the finding.
    storeScreened(
      store,
      Array.from({ length: DRIFT_WINDOW }, () => 1.07),
      0,
    );
    p = health.payload();
    t.match(p.magnification, { differs: 'smaller', called: false });
    t.equal(p.colour_drift?.drifting, true);
    t.equal(p.problems.filter((x) => x.startsWith('magnification')).length, 0, 'not called on its own');
    t.equal(p.problems.filter((x) => x.startsWith('white balance')).length, 1);
    t.same(
      health.cameraWarnings().map((w) => w.watch),
      ['colour_drift'],
      'the white balance alone is the camera warning',
    );
  },
);

t.test('no magnification watch: no magnification in the health', async (t) => {
  const { health } = setup(t, false, {}, () => null);
  t.equal(health.payload().magnification, undefined);
  const { health: without } = setup(t, false);
  t.equal(without.payload().magnification, undefined);
});

t.test('backups: none tried says nothing; a failed one and a stale one are problems', async (t) => {
  const { health, clock, dir } = setup(t, false);
  let p = health.payload();
  t.equal(p.state, 'ok');
  t.notOk('backup' in p, 'never tried: nothing to say');

  const to = join(dir, 'backups');
  const made = backupStore({ dataDir: dir, toDir: to, keep: 3, now: new Date(T0) });
  p = health.payload();
  t.equal(p.state, 'ok');
  t.same(p.backup, {
    last_attempt_at: new Date(T0).toISOString(),
    ok: true,
    error: null,
    last_ok_at: new Date(T0).toISOString(),
    last_ok_file: made.file,
  });
  t.ok(validHealth(p), JSON.stringify(validHealth.errors));

  // The backup folder replaced by a file: the next one fails, the good one is remembered.
  const blocked = join(dir, 'blocked');
  writeFileSync(blocked, 'x');
  t.throws(() => backupStore({ dataDir: dir, toDir: join(blocked, 'b'), keep: 3, now: new Date(T0 + 1000) }));
  p = health.payload();
  t.equal(p.state, 'degraded');
  t.match(p.backup, { ok: false, last_ok_at: new Date(T0).toISOString(), last_ok_file: made.file });
  t.match(p.problems, [/^backup failed at .*: cannot create .*blocked\/b: .*Run blastwatch backup by hand/]);
  t.ok(validHealth(p), JSON.stringify(validHealth.errors));

  // It works again, then no backup for two days.
  backupStore({ dataDir: dir, toDir: to, keep: 3, now: new Date(T0 + 2000) });
  t.equal(health.payload().state, 'ok', 'working again: no problem');
  clock.now = T0 + 49 * 3_600_000;
  p = health.payload();
  t.equal(p.state, 'degraded');
  t.match(p.problems, [
    /^no backup for 48 h \(the latest: .*blastwatch-.*\.db\): is blastwatch-backup\.timer still enabled/,
  ]);
});
