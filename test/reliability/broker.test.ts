/**
 * Item 5, broker trouble: a broker that refuses connections (CONNACK "not authorized") while
 * flags are produced; PUBACKs lost on the way back (a proxy drops them, then the connection
 * breaks); a long outage with a SIGKILL restart of the daemon inside it. No alert may be lost;
 * duplicates are allowed only as the same event_id with the same payload.
 *
 * Scale: the long outage lasts 30 s in CI and 180 s with BLASTWATCH_RELIABILITY_FULL=1 (or BW_OUTAGE_S).
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { eventId } from '../../src/publish/payloads.js';
import {
  freePort,
  FULL,
  isClassified,
  jpegVariant,
  makeDirs,
  PREFIX,
  readResults,
  sampleImages,
  scale,
  sleep,
  startBroker,
  startDaemon,
  startInProcess,
  subscribe,
  type Received,
  type Subscriber,
  type TestDirs,
  until,
  writeConfig,
} from './harness.js';
import { startMqttProxy } from './mqtt-proxy.js';

// The whole file (.taprc's 300 s is per file): slow on a shared 2-core machine.
t.setTimeout((scale('BW_OUTAGE_S', 30, 180) + 600) * 1000);

const images = sampleImages().map((p) => readFileSync(p));
let counter = 0;
function drop(dir: string, count: number): void {
  for (let i = 0; i < count; i++, counter++)
    writeFileSync(
      join(dir, `b-${counter}.jpg`),
      jpegVariant(images[counter % images.length]!, `broker-${counter}`),
    );
}

/** Expected alert ids from the database; asserts each reached the subscriber, duplicates identical. */
async function assertAlerts(t: Test, dirs: TestDirs, sub: Subscriber, timeoutMs = 60_000): Promise<void> {
  const rows = readResults(dirs.data).filter((r) => isClassified(r.status));
  const expected = rows.filter((r) => r.flag === 1).map((r) => eventId(r.sha256, r.model_version!, 'alert'));
  const resultIds = rows.map((r) => eventId(r.sha256, r.model_version!, 'result'));
  t.ok(expected.length > 0, `flags produced (${expected.length})`);
  const has = (m: Received[], suffix: string, ids: string[]) => {
    const got = new Set(m.filter((x) => x.topic.endsWith(`/${suffix}`)).map((x) => x.json?.event_id));
    return ids.every((id) => got.has(id));
  };
  await sub.waitFor(
    (m) => has(m, 'alert', expected) && has(m, 'result', resultIds),
    timeoutMs,
    'every alert and result',
  );
  t.pass(`all ${expected.length} alerts and ${resultIds.length} results delivered`);
  const payloads = new Map<string, string>();
  let dups = 0;
  for (const m of sub.messages) {
    if (!m.topic.endsWith('/alert') && !m.topic.endsWith('/result')) continue;
    const id = String(m.json?.event_id);
    const prev = payloads.get(id);
    if (prev !== undefined) {
      dups++;
      if (prev !== m.payload) t.fail(`event ${id} re-sent with a different payload`);
    }
    payloads.set(id, m.payload);
  }
  const alertIds = new Set(
    sub.messages.filter((m) => m.topic.endsWith('/alert')).map((m) => m.json?.event_id),
  );
  t.equal(alertIds.size, expected.length, 'no alert for anything that was not flagged');
  t.comment(`duplicates (same event_id, same payload): ${dups}`);
}

t.test('broker refusing connections, then accepting: no alert lost', async (t) => {
  const dirs = makeDirs('bw-refuse-');
  const broker = await startBroker();
  let refuse = false;
  // CONNACK "not authorized" for the daemon while `refuse` holds; the test's subscriber is let in.
  broker.broker.authenticate = (client, _u, _p, done) => {
    if (refuse && !client.id.startsWith('rel-sub')) {
      const err = Object.assign(new Error('refused'), { returnCode: 5 });
      done(err as never, false);
    } else done(null, true);
  };
  const sub = await subscribe(broker.url, PREFIX, 'rel-sub-refuse');
  const d = await startInProcess(dirs, { mqttUrl: broker.url, httpPort: await freePort() });
  t.teardown(async () => {
    await d.stop();
    await sub.close();
    await broker.close();
    rmSync(dirs.root, { recursive: true, force: true });
  });
  await until(() => d.app.publisher?.connected === true, 20_000, 'daemon connected');
  refuse = true;
  await broker.pause();
  await broker.resume(); // the subscriber comes back; the daemon is refused
  drop(dirs.capture, 12);
  await until(
    () => readResults(dirs.data).filter((r) => isClassified(r.status)).length >= 12,
    60_000,
    'classified',
  );
  await sleep(1500); // several refused reconnects
  t.notOk(d.app.publisher?.connected, 'daemon is refused while the broker says no');
  t.ok(
    d.app.store.outbox.backlog().count > 0,
    `results wait in the outbox (${d.app.store.outbox.backlog().count})`,
  );
  t.equal((await fetch(`${d.app.url}/healthz`)).status, 200, 'daemon alive');
  refuse = false;
  await assertAlerts(t, dirs, sub);
  await until(() => d.app.store.outbox.backlog().count === 0, 20_000, 'outbox empty');
});

t.test('PUBACKs dropped, then the connection breaks: every alert re-sent with its event_id', async (t) => {
  const dirs = makeDirs('bw-puback-');
  const broker = await startBroker();
  const proxy = await startMqttProxy(broker.port);
  const sub = await subscribe(broker.url, PREFIX, 'rel-sub-puback');
  const d = await startInProcess(dirs, { mqttUrl: proxy.url, httpPort: await freePort() });
  t.teardown(async () => {
    await d.stop();
    await sub.close();
    await proxy.close();
    await broker.close();
    rmSync(dirs.root, { recursive: true, force: true });
  });
  await until(() => d.app.publisher?.connected === true, 20_000, 'daemon connected through the proxy');
  proxy.dropPubacks = true;
  drop(dirs.capture, 12);
  await until(
    () => readResults(dirs.data).filter((r) => isClassified(r.status)).length >= 12,
    60_000,
    'classified',
  );
  await until(() => proxy.dropped >= 12, 20_000, 'PUBACKs dropped');
  t.ok(
    d.app.store.outbox.backlog().count > 0,
    `unacknowledged rows stay unsent (${d.app.store.outbox.backlog().count})`,
  );
  proxy.dropPubacks = false;
  proxy.cut();
  await assertAlerts(t, dirs, sub);
  await until(() => d.app.store.outbox.backlog().count === 0, 20_000, 'outbox empty once acknowledged');
  t.ok(proxy.dropped >= 12, `${proxy.dropped} PUBACKs were lost`);
});

t.test('a long outage with a SIGKILL restart inside it: no alert lost', async (t) => {
  const outageS = scale('BW_OUTAGE_S', 30, 180);
  t.setTimeout((outageS + 240) * 1000);
  const dirs = makeDirs('bw-longout-');
  const broker = await startBroker();
  const sub = await subscribe(broker.url, PREFIX, 'rel-sub-long');
  const httpPort = await freePort();
  writeConfig(dirs, { mqttUrl: broker.url, httpPort, extra: { mqtt: { shutdown_flush_ms: 500 } } });
  t.teardown(async () => {
    await sub.close();
    await broker.close();
    rmSync(dirs.root, { recursive: true, force: true });
  });
  const first = startDaemon(dirs.config, httpPort);
  t.teardown(() => first.child.kill('SIGKILL'));
  await first.ready(120_000);
  drop(dirs.capture, 4);
  await until(() => readResults(dirs.data).length >= 4, 60_000, 'before the outage');
  const t0 = Date.now();
  await broker.pause();
  drop(dirs.capture, 10);
  await until(() => readResults(dirs.data).length >= 14, 60_000, 'classified during the outage');
  first.child.kill('SIGKILL');
  await first.exited;
  const second = startDaemon(dirs.config, httpPort);
  t.teardown(() => second.child.kill('SIGKILL'));
  await second.ready(120_000);
  drop(dirs.capture, 10);
  await until(
    () => readResults(dirs.data).length >= 24,
    60_000,
    'classified after the restart, still in the outage',
  );
  const left = outageS * 1000 - (Date.now() - t0);
  if (left > 0) await sleep(left);
  t.comment(`outage lasted ${Math.round((Date.now() - t0) / 1000)} s`);
  await broker.resume();
  await assertAlerts(t, dirs, sub, 120_000);
  second.child.kill('SIGTERM');
  t.equal(await second.exited, 0, 'clean stop');
});

// A broker that keeps the connection up but never acknowledges: only the publisher's stall
// detector (no PUBACK for 60 s → reconnect → re-send) gets the alerts out. 60-75 s of waiting,
// so it runs at full scale only (BLASTWATCH_RELIABILITY_FULL=1 or BW_STALL=1).
t.test(
  'PUBACKs dropped on a live connection: the stall detector reconnects and re-sends',
  { skip: FULL || process.env.BW_STALL === '1' ? false : 'full scale only (BW_STALL=1)' },
  async (t) => {
    const dirs = makeDirs('bw-stall-');
    const broker = await startBroker();
    const proxy = await startMqttProxy(broker.port);
    const sub = await subscribe(broker.url, PREFIX, 'rel-sub-stall');
    const d = await startInProcess(dirs, { mqttUrl: proxy.url, httpPort: await freePort() });
    t.teardown(async () => {
      await d.stop();
      await sub.close();
      await proxy.close();
      await broker.close();
      rmSync(dirs.root, { recursive: true, force: true });
    });
    await until(() => d.app.publisher?.connected === true, 20_000, 'daemon connected through the proxy');
    proxy.dropPubacks = true;
    drop(dirs.capture, 6);
    await until(() => readResults(dirs.data).length >= 6, 60_000, 'classified');
    await until(() => proxy.dropped >= 12, 60_000, 'PUBACKs dropped');
    t.ok(d.app.store.outbox.backlog().count > 0, `unacknowledged (${d.app.store.outbox.backlog().count})`);
    // From here on the broker acknowledges again (health, status), but the dropped ones stay
    // unacknowledged: mqtt.js re-sends only after a reconnect, which the stall detector forces.
    proxy.dropPubacks = false;
    const t0 = Date.now();
    await until(
      () => d.app.store.outbox.backlog().count === 0,
      150_000,
      'outbox empty after the stall detector',
      500,
    );
    t.comment(`outbox empty ${Math.round((Date.now() - t0) / 1000)} s after the PUBACKs came back`);
    await assertAlerts(t, dirs, sub, 30_000);
  },
);
