import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import t from 'tap';
import { EventBus } from '../../src/runtime/events.js';
import { createMetrics } from '../../src/runtime/metrics.js';
import { eventId, HEALTH_SCHEMA, OutboxPublisher, type HealthPayload } from '../../src/publish/mqtt.js';
import { openStore, type Store } from '../../src/store/index.js';
import { eventIds, freePort, startBroker, subscribe, until } from '../daemon/helpers.js';

const log = pino({ level: 'silent' });
const PREFIX = 'blastwatch/test-dev';

function tempStore(t: { teardown(fn: () => void): void }): Store {
  const dir = mkdtempSync(join(tmpdir(), 'bw-outbox-'));
  const store = openStore({ dataDir: dir });
  t.teardown(() => {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return store;
}

/** Commits a fake classified result with its result (+ alert when flagged) messages. */
function addResult(store: Store, bus: EventBus, n: number, flag: boolean, handRows = false): void {
  const sha = `sha-${n}`;
  const committed = store.results.commit(
    {
      status: 'done',
      sha256: sha,
      path: `/c/${n}.jpg`,
      file: `${n}.jpg`,
      origin: 'capture',
      size: 1,
      capturedAt: 1,
      processedAt: Date.now(),
      flag,
    },
    null,
    ({ id: resultId }) => {
      const drafts = [
        {
          eventId: eventId(sha, '1', 'result'),
          topic: 'result',
          payload: JSON.stringify({ event_id: eventId(sha, '1', 'result'), n, resultId }),
        },
      ];
      if (flag)
        drafts.push({
          eventId: eventId(sha, '1', 'alert'),
          topic: 'alert',
          payload: JSON.stringify({ event_id: eventId(sha, '1', 'alert'), n, resultId }),
        });
      return drafts;
    },
  );
  const rows = handRows && committed.created ? { rows: committed.outbox } : {};
  bus.emit('outbox:added', { resultId: committed.id, count: flag ? 2 : 1, ...rows });
}

function makePublisher(store: Store, bus: EventBus, url: string, clientId = 'bw-test') {
  const health = (): HealthPayload =>
    ({ schema: HEALTH_SCHEMA, device_id: 'test-dev', state: 'ok', problems: [] }) as unknown as HealthPayload;
  return new OutboxPublisher({
    config: {
      url,
      username: null,
      password: null,
      client_id: clientId,
      topic_prefix: PREFIX,
      ca_file: null,
      cert_file: null,
      key_file: null,
      reject_unauthorized: true,
      keepalive_s: 5,
      health_interval_s: 3600,
      shutdown_flush_ms: 0,
      reconnect_ms: 100,
    },
    store,
    bus,
    metrics: createMetrics(),
    log,
    health,
    window: 4,
  });
}

t.test(
  'messages written while the broker is down go out in order once it is up; marked sent on PUBACK',
  async (t) => {
    const store = tempStore(t);
    const bus = new EventBus();
    const port = await freePort();
    const pub = makePublisher(store, bus, `mqtt://127.0.0.1:${port}`);
    pub.start();
    t.teardown(() => pub.stop());
    for (let i = 0; i < 10; i++) addResult(store, bus, i, i % 3 === 0);
    t.equal(store.outbox.backlog().count, 14, 'all waiting in the outbox');

    const broker = await startBroker(port);
    t.teardown(() => broker.close());
    const sub = await subscribe(broker.url, PREFIX);
    t.teardown(() => sub.close());
    await until(() => store.outbox.backlog().count === 0, 30_000, 'outbox drained');
    await sub.waitFor((m) => eventIds(m, 'result').size === 10 && eventIds(m, 'alert').size === 4, 30_000);
    // First delivery of each event, in arrival order (a re-delivery after a reconnect is allowed).
    const order = [
      ...new Set(sub.messages.filter((m) => m.topic.endsWith('/result')).map((m) => Number(m.json?.n))),
    ];
    t.same(
      order,
      [...order].sort((a, b) => a - b),
      'results arrive in outbox order',
    );
    t.equal(
      sub.messages.find((m) => m.topic === `${PREFIX}/status`)?.payload,
      'online',
      'retained status online',
    );
    t.equal(
      sub.messages.find((m) => m.topic === `${PREFIX}/health`)?.json?.schema,
      HEALTH_SCHEMA,
      'health published',
    );
  },
);

t.test('an outage mid-stream loses nothing: unacknowledged rows are re-read after reconnect', async (t) => {
  const store = tempStore(t);
  const bus = new EventBus();
  const broker = await startBroker();
  const sub = await subscribe(broker.url, PREFIX, 'sub-outage');
  const pub = makePublisher(store, bus, broker.url);
  pub.start();
  t.teardown(async () => {
    await pub.stop();
    await sub.close();
    await broker.close();
  });
  await until(() => pub.connected, 30_000, 'publisher connected');
  for (let i = 0; i < 20; i++) addResult(store, bus, i, true);
  await broker.pause();
  for (let i = 20; i < 40; i++) addResult(store, bus, i, true);
  t.ok(store.outbox.backlog().count > 0, 'backlog during the outage');
  await broker.resume();
  await until(() => store.outbox.backlog().count === 0, 30_000, 'outbox drained after the outage');
  // A row is marked sent only on its PUBACK, so by now the broker must hold every event.
  t.equal(eventIds(broker.accepted, 'alert').size, 40, 'the broker accepted every alert');
  t.equal(eventIds(broker.accepted, 'result').size, 40, 'the broker accepted every result');
  // Delivery to the subscriber across its own reconnect is not ordered between topics (the
  // broker replays its offline queue while forwarding new messages), so wait for both sets
  // rather than for the alerts alone.
  await sub.waitFor(
    (m) => eventIds(m, 'alert').size === 40 && eventIds(m, 'result').size === 40,
    30_000,
    'all 40 alerts and 40 results',
  );
  t.pass('every alert and result reached the subscriber');
});

t.test(
  'a restart (new publisher, same database) sends what the last one never got acknowledged',
  async (t) => {
    const store = tempStore(t);
    const bus = new EventBus();
    const port = await freePort();
    const first = makePublisher(store, bus, `mqtt://127.0.0.1:${port}`, 'bw-first');
    first.start();
    for (let i = 0; i < 5; i++) addResult(store, bus, i, true);
    await first.stop(); // never connected: nothing acknowledged
    t.equal(store.outbox.backlog().count, 10);

    const broker = await startBroker(port);
    const sub = await subscribe(broker.url, PREFIX);
    const second = makePublisher(store, new EventBus(), broker.url, 'bw-second');
    second.start();
    t.teardown(async () => {
      await second.stop();
      await sub.close();
      await broker.close();
    });
    t.ok(await second.flush(30_000), 'flush reports an empty outbox');
    await sub.waitFor((m) => eventIds(m, 'alert').size === 5, 30_000);
    t.pass('all alerts delivered by the restarted publisher');
  },
);

t.test(
  'graceful stop publishes retained offline; a dropped connection triggers the retained will',
  async (t) => {
    const broker = await startBroker();
    t.teardown(() => broker.close());
    const store = tempStore(t);
    const pub = makePublisher(store, new EventBus(), broker.url, 'bw-will');
    pub.start();
    await until(() => pub.connected, 30_000, 'connected');
    await pub.stop();
    const late = await subscribe(broker.url, PREFIX, 'late-sub');
    t.teardown(() => late.close());
    await late.waitFor((m) => m.some((x) => x.topic === `${PREFIX}/status`), 5000, 'retained status');
    t.equal(
      late.messages.find((m) => m.topic === `${PREFIX}/status`)?.payload,
      'offline',
      'retained offline after stop',
    );

    const pub2 = makePublisher(store, new EventBus(), broker.url, 'bw-will-2');
    pub2.start();
    await until(() => pub2.connected, 30_000, 'connected again');
    await late.waitFor(
      (m) => m.filter((x) => x.topic === `${PREFIX}/status`).at(-1)?.payload === 'online',
      5000,
      'online',
    );
    // Kill the socket without DISCONNECT: the broker publishes the last will.
    (pub2 as unknown as { client: { stream: { destroy(): void } } }).client.stream.destroy();
    await late.waitFor(
      (m) => m.filter((x) => x.topic === `${PREFIX}/status`).at(-1)?.payload === 'offline',
      30_000,
      'will',
    );
    t.pass('last will offline delivered');
    await pub2.stop();
  },
);

t.test(
  'rows handed with outbox:added go out without a query; a row committed unannounced still goes out',
  async (t) => {
    const store = tempStore(t);
    const bus = new EventBus();
    const broker = await startBroker(await freePort());
    t.teardown(() => broker.close());
    const sub = await subscribe(broker.url, PREFIX);
    t.teardown(() => sub.close());
    let queries = 0;
    const pending = store.outbox.pending.bind(store.outbox);
    store.outbox.pending = (afterId, limit) => {
      queries++;
      return pending(afterId, limit);
    };
    const pub = makePublisher(store, bus, broker.url);
    pub.start();
    t.teardown(() => pub.stop());
    await until(() => pub.connected, 10_000, 'connected');
    for (let i = 0; i < 10; i++) {
      addResult(store, bus, i, i % 2 === 0, true);
      await until(() => store.outbox.backlog().count === 0, 10_000, `result ${i} acknowledged`);
    }
    const afterHanded = queries;
    t.ok(afterHanded <= 2, `no query per result while caught up (${afterHanded} in all)`);
    // Rows in the outbox that no event announced (as after a crash) are found by the fallback query.
    store.results.commit(
      {
        status: 'done',
        sha256: 'sha-quiet',
        path: '/c/q.jpg',
        file: 'q.jpg',
        origin: 'capture',
        size: 1,
        capturedAt: 1,
        processedAt: Date.now(),
      },
      null,
      () => [
        { eventId: 'quiet', topic: 'result', payload: JSON.stringify({ event_id: 'quiet', n: 'quiet' }) },
      ],
    );
    addResult(store, bus, 10, false, true);
    await until(() => store.outbox.backlog().count === 0, 10_000, 'outbox drained');
    t.ok(queries > afterHanded, 'rows that do not follow the last one read are read from the outbox');
    const order = sub.messages.filter((m) => m.topic.endsWith('/result')).map((m) => String(m.json?.n));
    t.same(order.slice(-2), ['quiet', '10'], 'in outbox order');
  },
);
