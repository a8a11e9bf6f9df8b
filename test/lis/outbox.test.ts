import t from 'tap';
import { openStore } from '../../src/store/index.js';
import { createLis } from '../../src/lis/index.js';
import { LisOutbox } from '../../src/lis/outbox.js';
import { messageControlId } from '../../src/lis/ids.js';
import { lisConfig, makeReport, noThumbnails, silentLog, tempDir, tempStore } from './fixtures.js';

t.test(
  'a sign-off that rolls back leaves no outbox row; one that commits leaves one per destination',
  async (t) => {
    const store = tempStore(t);
    const lis = createLis({
      db: store.db,
      config: lisConfig({
        mllp: { host: '127.0.0.1', port: 9, ack_timeout_ms: 100, connect_timeout_ms: 100 },
        file_dir: '/nowhere',
      }),
      log: silentLog,
      thumbnails: noThumbnails,
    });
    const signOff = store.db.transaction((fail: boolean) => {
      lis.onSignOff(makeReport());
      if (fail) throw new Error('two reviewers signed at once: this one lost');
    });
    t.throws(() => signOff(true));
    t.equal(
      (store.db.prepare('SELECT count(*) AS n FROM lis_outbox').get() as { n: number } | undefined)?.n,
      0,
      'rolled back with the sign-off',
    );
    signOff(false);
    const rows = store.db.prepare('SELECT destination, control_id, state FROM lis_outbox ORDER BY id').all();
    t.same(rows, [
      { destination: 'mllp', control_id: messageControlId(makeReport()), state: 'pending' },
      { destination: 'file', control_id: messageControlId(makeReport()), state: 'pending' },
    ]);
    signOff(false);
    t.equal(
      (store.db.prepare('SELECT count(*) AS n FROM lis_outbox').get() as { n: number } | undefined)?.n,
      2,
      'the same signature is enqueued once',
    );
  },
);

t.test('no destination configured: a sign-off writes nothing and there is nothing to start', async (t) => {
  const store = tempStore(t);
  const lis = createLis({ db: store.db, config: lisConfig(), log: silentLog, thumbnails: noThumbnails });
  t.equal(lis.delivery, null);
  store.db.transaction(() => lis.onSignOff(makeReport()))();
  t.equal(
    (store.db.prepare('SELECT count(*) AS n FROM lis_outbox').get() as { n: number } | undefined)?.n,
    0,
  );
});

t.test('pending, held and failed rows survive a daemon restart as they were', async (t) => {
  const dir = tempDir(t);
  let store = openStore({ dataDir: dir });
  let outbox = new LisOutbox(store.db, ['mllp']);
  store.db.transaction(() => {
    for (let v = 1; v <= 3; v++) outbox.enqueue(makeReport({ version: v }));
  })();
  const a = outbox.next('mllp')!;
  outbox.markHeld(a.id, 'LIS rejected (AR): unknown order');
  const second = outbox.next('mllp')!;
  outbox.markFailed(second.id, 'no ACK', Date.now() + 60_000);
  store.close();

  store = openStore({ dataDir: dir });
  t.teardown(() => store.close());
  outbox = new LisOutbox(store.db, ['mllp']);
  const status = outbox.status('mllp');
  t.equal(status.queued, 3, 'nothing delivered, nothing lost');
  t.equal(status.held.length, 1);
  t.equal(status.held[0]?.lastError, 'LIS rejected (AR): unknown order');
  t.equal(status.held[0]?.accession, 'H26-0042');
  const next = outbox.next('mllp')!;
  t.equal(next.id, second.id, 'the held one is skipped; the next keeps its place');
  t.equal(next.attempts, 1);
  t.equal(next.lastError, 'no ACK');
  t.ok((next.nextAttemptAt ?? 0) > Date.now(), 'its backoff too');
  t.equal(next.report.signOff.version, 2, 'the report as signed');
  t.ok(outbox.retry(a.id), 'a person releases the held one');
  t.notOk(outbox.retry(a.id), 'once');
  t.equal(outbox.next('mllp')!.id, a.id, 'back in its place, ahead of later ones');
});

t.test('the first rendering of a message is kept for every redelivery', async (t) => {
  const store = tempStore(t);
  const outbox = new LisOutbox(store.db, ['file']);
  store.db.transaction(() => outbox.enqueue(makeReport()))();
  const m = outbox.next('file')!;
  t.equal(outbox.savePayload(m.id, 'first'), 'first');
  t.equal(outbox.savePayload(m.id, 'second'), 'first');
  t.equal(outbox.get(m.id)?.payload, 'first');
});

t.test('the bytes of long-delivered messages are dropped; the row and the report stay', async (t) => {
  let now = 1_000_000;
  const store = tempStore(t);
  const outbox = new LisOutbox(store.db, ['fhir'], () => now);
  store.db.transaction(() => {
    outbox.enqueue(makeReport({ id: 1 }));
    outbox.enqueue(makeReport({ id: 2 }));
  })();
  const first = outbox.next('fhir')!;
  outbox.savePayload(first.id, 'bundle 1');
  outbox.markDelivered(first.id);
  now += 1000;
  const second = outbox.next('fhir')!;
  outbox.savePayload(second.id, 'bundle 2');
  t.equal(outbox.dropDeliveredPayloads(now), 1);
  t.equal(outbox.get(first.id)?.payload, null);
  t.equal(outbox.get(first.id)?.state, 'delivered');
  t.equal(outbox.get(first.id)?.report.specimen.id, 1);
  t.equal(outbox.get(second.id)?.payload, 'bundle 2', 'an undelivered message keeps its bytes');
});
