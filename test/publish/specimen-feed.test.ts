/**
 * The `<prefix>/specimen` change feed through the durable outbox to an in-process broker: the
 * messages of the dashboard's writes (start, finish, sign) and of images landing in the pipeline's
 * transaction arrive in order, schema-valid, one per change; a broker outage loses none.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import t from 'tap';
import { mqttSchemaValidator } from '../helpers/mqtt-schema.js';
import { landInFolder } from '../helpers/results.js';
import { EventBus } from '../../src/runtime/events.js';
import { createMetrics } from '../../src/runtime/metrics.js';
import {
  HEALTH_SCHEMA,
  OutboxPublisher,
  specimenMessages,
  type HealthPayload,
} from '../../src/publish/mqtt.js';
import { openStore, type SpecimenWrite, type Store } from '../../src/store/index.js';
import { freePort, startBroker, subscribe, until } from '../daemon/helpers.js';

const PREFIX = 'blastwatch/test-dev';
const valid = mqttSchemaValidator('specimen');

function tempStore(t: { teardown(fn: () => void): void }): Store {
  const dir = mkdtempSync(join(tmpdir(), 'bw-specimen-feed-'));
  const store = openStore({
    dataDir: dir,
    specimens: { deviceId: 'test-dev', changeMessages: specimenMessages('test-dev') },
  });
  t.teardown(() => {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return store;
}

function publisher(store: Store, bus: EventBus, url: string) {
  return new OutboxPublisher({
    config: {
      url,
      username: null,
      password: null,
      client_id: 'bw-specimen-feed',
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
    log: pino({ level: 'silent' }),
    health: () => ({ schema: HEALTH_SCHEMA, device_id: 'test-dev' }) as unknown as HealthPayload,
  });
}

/** An image landing the way the pipeline commits it: result and specimen in one transaction. */
function land(store: Store, bus: EventBus, file: string, flag: boolean): void {
  const committed = landInFolder(store, file, Date.now(), {
    className: flag ? 'Pro-B' : 'Benign',
    pBall: flag ? 0.9 : 0.1,
    flag,
  });
  if (committed.created)
    bus.emit('outbox:added', {
      resultId: committed.id,
      count: committed.outbox.length,
      rows: committed.outbox,
    });
}

const announce = (bus: EventBus, w: SpecimenWrite) =>
  bus.emit('outbox:added', { resultId: null, count: w.outbox.length, rows: w.outbox });

t.test('specimen changes reach the broker once each, in order, schema-valid, across an outage', async (t) => {
  const store = tempStore(t);
  const bus = new EventBus();
  const port = await freePort();
  const broker = await startBroker(port);
  const sub = await subscribe(broker.url, PREFIX, 'specimen-feed-sub');
  const pub = publisher(store, bus, broker.url);
  pub.start();
  t.teardown(async () => {
    await pub.stop();
    await sub.close();
    await broker.close();
  });

  land(store, bus, 'A1/1.jpg', false);
  land(store, bus, 'A1/2.jpg', true);
  const id = store.specimens.byAccession('A1')!.id;
  await until(() => store.outbox.backlog().count === 0, 20_000, 'first changes sent');
  await broker.pause();
  // Written while the broker is away: they wait in the outbox.
  land(store, bus, 'A1/3.jpg', true);
  announce(bus, store.specimens.finish(id, 'dr-lee'));
  announce(bus, store.signOffs.sign(id, { verdict: 'suspicious', comment: 'two blasts' }, 'dr-lee'));
  t.equal(store.outbox.backlog().count, 3, 'three changes wait in the outbox');
  await broker.resume();
  await until(() => store.outbox.backlog().count === 0, 30_000, 'outbox drained after the outage');
  const isFeed = (m: { topic: string }) => m.topic === `${PREFIX}/specimen`;
  await sub.waitFor(
    (m) => new Set(m.filter(isFeed).map((x) => x.json?.event_id)).size === 5,
    30_000,
    'five changes',
  );
  const first = new Map<string, Record<string, unknown>>();
  for (const m of sub.messages.filter(isFeed))
    if (!first.has(String(m.json?.event_id))) first.set(String(m.json?.event_id), m.json!);
  const payloads = [...first.values()];
  for (const p of payloads) t.ok(valid(p), JSON.stringify(valid.errors));
  t.same(
    payloads.map((p) => [p.revision, p.change]),
    [
      [1, 'created'],
      [2, 'image_added'],
      [3, 'image_added'],
      [4, 'finished'],
      [5, 'signed'],
    ],
    'one message per change, in the order they happened',
  );
  const signed = payloads[4] as {
    before: { status: string };
    after: { status: string; signer: string; counts: { flagged: number } };
  };
  t.same(
    [signed.before.status, signed.after.status, signed.after.signer, signed.after.counts.flagged],
    ['awaiting_signoff', 'signed', 'dr-lee', 2],
  );
});
