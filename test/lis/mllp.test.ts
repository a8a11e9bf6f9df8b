import t from 'tap';
import { createLis, type Lis } from '../../src/lis/index.js';
import { messageControlId } from '../../src/lis/ids.js';
import { parseAck } from '../../src/lis/mllp.js';
import type { Store } from '../../src/store/index.js';
import {
  lisConfig,
  type Teardown,
  makeReport,
  noThumbnails,
  silentLog,
  tempStore,
  until,
} from './fixtures.js';
import { freePort, startLis, type LisBehaviour } from './lis-server.js';

function mllpLis(t: Teardown, store: Store, port: number, ackTimeoutMs = 2000): Lis {
  const lis = createLis({
    db: store.db,
    config: lisConfig({
      mllp: { host: '127.0.0.1', port, ack_timeout_ms: ackTimeoutMs, connect_timeout_ms: 1000 },
    }),
    log: silentLog,
    thumbnails: noThumbnails,
    pollMs: 50,
  });
  lis.delivery!.start();
  t.teardown(() => lis.delivery!.stop());
  return lis;
}

const sign = (store: Store, lis: Lis, report = makeReport()) =>
  store.db.transaction(() => lis.onSignOff(report))();
const only = (lis: Lis) => lis.delivery!.status()[0]!;

async function withLis(t: Teardown, behave: (id: string, nth: number) => LisBehaviour) {
  const port = await freePort();
  const server = await startLis(port, behave);
  t.teardown(() => server.close());
  return server;
}

t.test('ACK AA: delivered once, and the LIS reads the message with its HL7 parser', async (t) => {
  const server = await withLis(t, () => 'AA');
  const store = tempStore(t);
  const lis = mllpLis(t, store, server.port);
  sign(store, lis);
  await until(() => only(lis).queued === 0, 10_000, 'delivery');
  t.same(server.accepted, [messageControlId(makeReport())]);
  const msg = server.messages[0]!;
  t.equal(msg.get('MSH.9.1').toString(), 'ORU');
  t.equal(msg.get('OBR.3').toString(), 'H26-0042');
  const status = only(lis);
  t.equal(status.connected, true);
  t.equal(status.lastError, null);
  t.ok(status.lastDeliveredAt);
  t.equal(lis.outbox.forSpecimen(42)[0]?.state, 'delivered');
});

for (const code of ['AE', 'AR'] as const) {
  t.test(`ACK ${code}: held with the error shown, not retried until a person asks`, async (t) => {
    let refuse = true;
    const server = await withLis(t, () => (refuse ? code : 'AA'));
    const store = tempStore(t);
    const lis = mllpLis(t, store, server.port);
    sign(store, lis, makeReport({ id: 1 }));
    sign(store, lis, makeReport({ id: 2 }));
    await until(() => server.accepted.length === 1 || server.received.length >= 2, 10_000, 'both tried');
    await until(() => only(lis).held.length === 2, 10_000, 'both held');
    const status = only(lis);
    t.equal(status.queued, 2);
    t.match(status.lastError, code === 'AE' ? /application error \(AE\)/ : /rejected \(AR\)/);
    t.match(status.held[0]?.lastError, new RegExp(`\\(${code}\\)`));
    t.match(lis.delivery!.problems(), [
      /^LIS mllp \(mllp:\/\/127\.0\.0\.1:\d+\): 2 reports refused and held until retried/,
    ]);
    await new Promise((r) => setTimeout(r, 300));
    t.equal(server.received.length, 2, 'a refused message is not sent again by itself');

    refuse = false;
    const held = status.held[0]!;
    t.ok(lis.delivery!.retry(held.id), 'the lab chooses to send it again');
    await until(() => server.accepted.length === 1, 10_000, 'retried one accepted');
    t.same(server.accepted, [held.controlId], 'the same control id');
    t.equal(only(lis).held.length, 1, 'the other stays held');
    t.notOk(lis.delivery!.retry(held.id), 'a delivered message cannot be retried');
  });
}

t.test('no answer: retried with backoff, same control id, delivered when the LIS answers', async (t) => {
  const server = await withLis(t, (_id, nth) => (nth <= 2 ? 'silent' : 'AA'));
  const store = tempStore(t);
  // An ACK timeout a stalled test process cannot outlast: a fourth send would break the count.
  const lis = mllpLis(t, store, server.port, 1000);
  sign(store, lis);
  await until(() => server.accepted.length === 1, 20_000, 'accepted after silence');
  t.equal(server.received.length, 3, 'two silent tries, one answered');
  t.same(new Set(server.received), new Set([messageControlId(makeReport())]), 'always the same control id');
  await until(() => only(lis).queued === 0, 5000, 'marked delivered');
  const m = lis.outbox.forSpecimen(42)[0]!;
  t.equal(m.attempts, 3);
});

t.test('connection dropped mid-message: retried on a new connection and delivered', async (t) => {
  const server = await withLis(t, (_id, nth) => (nth === 1 ? 'drop' : 'AA'));
  const store = tempStore(t);
  const lis = mllpLis(t, store, server.port);
  sign(store, lis);
  await until(() => only(lis).queued === 0, 10_000, 'delivered');
  t.equal(server.accepted.length, 1, 'acknowledged once');
  t.equal(server.received.length, 2);
  t.equal(server.received[0], server.received[1], 'the redelivery carries the same control id');
});

t.test('LIS down during 20 sign-offs, then back: each report delivered once, in order', async (t) => {
  const port = await freePort();
  const store = tempStore(t);
  const lis = mllpLis(t, store, port);
  const reports = Array.from({ length: 20 }, (_, i) =>
    makeReport({ id: 100 + i, accession: `H26-${1000 + i}` }),
  );
  for (const r of reports) {
    sign(store, lis, r);
    await new Promise((r) => setTimeout(r, 10));
  }
  await until(() => (only(lis).lastError ?? '').includes('ECONNREFUSED'), 5000, 'a failed attempt');
  t.equal(only(lis).queued, 20, 'all waiting');
  t.equal(only(lis).connected, false, 'shown as not connected');
  t.same(lis.delivery!.problems(), [], 'not a health problem yet');
  t.match(lis.delivery!.problems(0), [/20 reports undelivered since .*ECONNREFUSED/], 'after a while it is');

  const server = await startLis(port, () => 'AA');
  t.teardown(() => server.close());
  await until(() => only(lis).queued === 0, 20_000, 'backlog drained');
  t.same(server.accepted, reports.map(messageControlId), 'every report once, in sign-off order');
  t.same(server.received, server.accepted, 'nothing sent twice');
  t.same(lis.delivery!.problems(0), [], 'no problem left');
  t.same(
    server.messages.map((m) => m.get('ORC.2').toString()),
    reports.map((r) => r.specimen.accession),
  );
});

t.test('a daemon restart resumes delivery of what was pending', async (t) => {
  const port = await freePort();
  const store = tempStore(t);
  const first = mllpLis(t, store, port);
  sign(store, first, makeReport({ id: 1 }));
  sign(store, first, makeReport({ id: 2 }));
  await until(() => only(first).lastError !== null, 5000, 'a failed attempt');
  await first.delivery!.stop();

  const server = await startLis(port, () => 'AA');
  t.teardown(() => server.close());
  const second = mllpLis(t, store, port);
  await until(() => only(second).queued === 0, 10_000, 'delivered after restart');
  t.same(server.accepted, [messageControlId(makeReport({ id: 1 })), messageControlId(makeReport({ id: 2 }))]);
});

t.test("an ACK's error text is read from MSA-3 or ERR", async (t) => {
  const ack = (tail: string) =>
    `MSH|^~\\&|LIS|LAB|blastwatch|x|20261203093000||ACK^R01^ACK|A1|P|2.5.1\rMSA|${tail}`;
  t.same(parseAck(ack('AE|12-ab-1|Unknown accession')), {
    code: 'AE',
    controlId: '12-ab-1',
    text: 'Unknown accession',
  });
  t.same(parseAck(`${ack('AR|12-ab-1')}\rERR||||E||||Order cancelled`), {
    code: 'AR',
    controlId: '12-ab-1',
    text: 'Order cancelled',
  });
  t.throws(() => parseAck('MSH|^~\\&|LIS\rPID|1'), /without an MSA/);
});
