/**
 * The specimen HTTP API on the dashboard plugin over a real store: the contract's shapes, writes
 * as a named user and with the Bearer token, the concurrent sign-off (one 200, one 409 naming the
 * signer), amendments, unassigned images and the live feed's `specimen` event.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify from 'fastify';
import { pino } from 'pino';
import t from 'tap';
import { loadConfig } from '../../src/config/load.js';
import type { NewResult } from '../../src/domain/result.js';
import { landInFolder } from '../helpers/results.js';
import { EventBus } from '../../src/runtime/events.js';
import { createMetrics } from '../../src/runtime/metrics.js';
import type { Pipeline } from '../../src/pipeline/index.js';
import type { ServeContext } from '../../src/serve/index.js';
import { registerDashboard } from '../../src/serve/dashboard/index.js';
import { openStore, type Store } from '../../src/store/index.js';

const TOKEN = 'a-long-enough-secret-token';
const bearer = { authorization: `Bearer ${TOKEN}` };

async function server(t: { teardown(fn: () => void | Promise<void>): void }) {
  const dir = mkdtempSync(join(tmpdir(), 'bw-specimen-api-'));
  // A rule of its own (not the shipped default), so the shapes below do not move with it.
  const store = openStore({
    dataDir: dir,
    specimens: { rule: { minScreened: 5, minFlagged: 2, minFlaggedShare: 0.2 } },
  });
  const bus = new EventBus();
  const { config } = loadConfig(null, {});
  config.http.auth_token = TOKEN;
  const ctx: ServeContext = {
    config,
    log: pino({ level: 'silent' }),
    store,
    pipeline: { diskFreeBytes: () => 1, offer: () => 'closed' } as unknown as Pipeline,
    bus,
    metrics: createMetrics(),
    classifier: {
      info: {
        classes: ['Benign', 'Early Pre-B', 'Pre-B', 'Pro-B'],
        malignant: [false, true, true, true],
        threshold: 0.5,
        uncertainBand: null,
      },
    } as unknown as ServeContext['classifier'],
    health: () =>
      ({ device_id: 'x', model: null, processed: {} }) as unknown as ReturnType<ServeContext['health']>,
    readiness: () => ({ ready: true, reasons: [] }),
    mqtt: () => ({ enabled: false, connected: false, url: null, error: null }),
    auth: { loopback: true, token: TOKEN, authenticators: [] },
    startedAt: Date.now(),
  };
  const app = Fastify();
  await registerDashboard(app, ctx);
  await app.ready();
  t.teardown(async () => {
    await app.close();
    store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return { app, store, bus };
}

let seq = 0;
function land(store: Store, file: string, over: Partial<NewResult> = {}): number {
  seq += 1;
  const verdict = {
    pBall: 0.1 + seq / 1000,
    needsReview: false,
    modelName: 'm',
    modelVersion: '1',
    threshold: 0.5,
  };
  return landInFolder(store, file, Date.now(), { ...verdict, ...over }).id;
}

interface SpecimenItem {
  id: number;
  accession: string;
  status: string;
  suggested_verdict: string;
  final_verdict: string | null;
  counts: Record<string, unknown>;
  flagged_share: { value: number; low: number; high: number } | null;
  rule: string;
  sign_off: { signer: string; version: number; verdict: string } | null;
}

t.test('GET /api/specimens and /:id: the contract shapes', async (t) => {
  const { app, store } = await server(t);
  for (let i = 0; i < 4; i++) land(store, `A-1/${i}.jpg`);
  land(store, 'A-1/f.jpg', { className: 'Pro-B', pBall: 0.97, flag: true });
  land(store, 'A-1/x.jpg', { status: 'failed', sha256: null, className: null, pBall: null, flag: null });
  const loose = land(store, 'loose.jpg');
  const list = (await app.inject('/api/specimens')).json() as SpecimenItem[];
  t.equal(list.length, 1);
  const item = list[0]!;
  t.same(
    {
      accession: item.accession,
      status: item.status,
      suggested_verdict: item.suggested_verdict,
      final_verdict: item.final_verdict,
      counts: item.counts,
      sign_off: item.sign_off,
    },
    {
      accession: 'A-1',
      status: 'open',
      suggested_verdict: 'suspicious',
      final_verdict: null,
      counts: {
        images: 6,
        screened: 5,
        out_of_domain: 0,
        failed: 1,
        flagged: 1,
        by_class: { Benign: 4, 'Pro-B': 1 },
      },
      sign_off: null,
    },
  );
  t.equal(item.flagged_share?.value, 0.2);
  t.ok(item.flagged_share!.low < 0.2 && item.flagged_share!.high > 0.2, 'Wilson interval around the share');
  t.match(item.rule, /Suspicious when at least 2/);
  const detail = (await app.inject(`/api/specimens/${item.id}`)).json() as {
    images: { id: number; p_ball: number | null; file: string; status: string; delivery: unknown }[];
    sign_offs: unknown[];
    audit: { action: string; actor: string }[];
  };
  t.equal(detail.images.length, 6);
  t.equal(detail.images[0]?.file, 'A-1/f.jpg', 'most suspicious first');
  t.ok(detail.images[0]?.delivery, 'the /api/results item shape');
  t.equal(detail.images.at(-1)?.status, 'failed');
  t.same(detail.sign_offs, []);
  t.equal(detail.audit[0]?.action, 'created');
  t.equal((await app.inject('/api/specimens/999')).statusCode, 404);
  t.equal((await app.inject('/api/specimens?status=signed')).json().length, 0, 'status filter');
  t.equal((await app.inject('/api/specimens?status=nope')).statusCode, 400);
  const unassigned = (await app.inject('/api/specimens/unassigned')).json() as { id: number }[];
  t.same(
    unassigned.map((r) => r.id),
    [loose],
  );
});

t.test('sessions, sign, concurrent sign (409 naming the signer), amend, assign', async (t) => {
  const { app, store, bus } = await server(t);
  const changed: number[] = [];
  bus.on('specimen:changed', ({ specimenId }) => changed.push(specimenId));
  const post = (url: string, payload: object | undefined) =>
    app.inject({ method: 'POST', url, headers: bearer, ...(payload ? { payload } : {}) });

  t.equal(
    (await app.inject({ method: 'POST', url: '/api/specimens', payload: { accession: 'S1' } })).statusCode,
    403,
    'a write needs a session or the token',
  );
  t.equal((await post('/api/specimens', { accession: 'bad name' })).statusCode, 400);
  t.equal(
    (await post('/api/specimens', { accession: 'S1' })).statusCode,
    400,
    'the shared token names who writes',
  );
  const started = await post('/api/specimens', { accession: 'S1', reviewer: 'dr-lee' });
  t.equal(started.statusCode, 201);
  const id = (started.json() as SpecimenItem).id;
  t.equal(
    (await post('/api/specimens', { accession: 'S2', reviewer: 'dr-kim' })).statusCode,
    409,
    'one session at a time',
  );
  land(store, 'a.jpg');
  const loose = land(store, 'earlier.jpg', { capturedAt: Date.now() - 60_000 });
  const bodiless = await post(`/api/specimens/${id}/finish`, undefined);
  t.match(
    bodiless.json(),
    { error: /reviewer name/ },
    'no body is fine for the schema; the token still names no one',
  );
  const finished = await post(`/api/specimens/${id}/finish`, { reviewer: 'dr-lee' });
  t.equal(finished.statusCode, 200);
  t.equal((finished.json() as SpecimenItem).status, 'awaiting_signoff');
  const assigned = await post(`/api/specimens/${id}/images`, { result_ids: [loose], reviewer: 'dr-lee' });
  t.equal(assigned.statusCode, 200);
  t.equal((assigned.json() as { counts: { images: number } }).counts.images, 2);

  const [a, b] = await Promise.all([
    post(`/api/specimens/${id}/sign`, {
      verdict: 'insufficient',
      comment: 'too few fields',
      reviewer: 'dr-lee',
    }),
    post(`/api/specimens/${id}/sign`, { verdict: 'no_suspicious_cells', comment: null, reviewer: 'dr-kim' }),
  ]);
  const codes = [a.statusCode, b.statusCode].sort();
  t.same(codes, [200, 409], 'one signs, the other is refused');
  const loser = a.statusCode === 409 ? a : b;
  const winner = a.statusCode === 200 ? a : b;
  const signer = (winner.json() as SpecimenItem).sign_off?.signer;
  t.match((loser.json() as { error: string }).error, new RegExp(`already signed by ${signer}`));
  t.equal((winner.json() as SpecimenItem).status, 'signed');

  t.equal(
    (await post(`/api/specimens/${id}/amend`, { verdict: 'suspicious', reviewer: 'dr-kim' })).statusCode,
    400,
    'reason required',
  );
  const amended = await post(`/api/specimens/${id}/amend`, {
    verdict: 'suspicious',
    comment: 'one blast on re-read',
    reason: 'second opinion',
    version: 1,
    reviewer: 'dr-kim',
  });
  t.equal(amended.statusCode, 200);
  const after = amended.json() as SpecimenItem;
  t.same([after.status, after.final_verdict, after.sign_off?.version], ['amended', 'suspicious', 2]);
  t.equal(
    (await post(`/api/specimens/${id}/images`, { result_ids: [land(store, 'z.jpg')], reviewer: 'x' }))
      .statusCode,
    409,
    'locked',
  );
  const detail = (await app.inject(`/api/specimens/${id}`)).json() as {
    sign_offs: unknown[];
    audit: { action: string }[];
  };
  t.equal(detail.sign_offs.length, 2);
  t.same(
    detail.audit.map((e) => e.action),
    ['session_started', 'image_added', 'finished', 'images_assigned', 'signed', 'sign_refused', 'amended'],
  );
  const agreement = (await app.inject('/api/specimens/agreement')).json() as { signed: number; rate: number };
  t.equal(agreement.signed, 1);
  t.ok(changed.includes(id), 'writes announce the specimen on the bus (live feed)');
});

t.test('unread_withheld: withheld fields nobody has read, on every specimen the API gives', async (t) => {
  const { app, store, bus } = await server(t);
  const changed: number[] = [];
  bus.on('specimen:changed', ({ specimenId }) => changed.push(specimenId));
  const post = (url: string, payload: object) =>
    app.inject({ method: 'POST', url, headers: bearer, payload: { reviewer: 'dr-lee', ...payload } });
  const withheld = (file: string, reasons: string[]) =>
    land(store, file, {
      status: 'out_of_domain',
      className: null,
      pBall: null,
      flag: null,
      needsReview: null,
      domain: { in: false, reasons, scores: {} } as NewResult['domain'],
    });
  const screened = land(store, 'W-1/screened.jpg');
  const field = withheld('W-1/withheld.jpg', ['features_disagree']);
  const blank = withheld('W-1/blank.jpg', ['underexposed']);
  land(store, 'W-2/screened.jpg');
  const unread = async () =>
    Object.fromEntries(
      ((await app.inject('/api/specimens')).json() as (SpecimenItem & { unread_withheld: number })[]).map(
        (s) => [s.accession, s.unread_withheld],
      ),
    );
  t.same(await unread(), { 'W-1': 1, 'W-2': 0 });
  const id = store.specimens.byAccession('W-1')!.id;
  t.equal((await app.inject(`/api/specimens/${id}`)).json().unread_withheld, 1, 'the detail too');
  const finished = await post(`/api/specimens/${id}/finish`, {});
  t.equal(finished.json().unread_withheld, 1, 'a write reply replaces a list row: it keeps the count');

  changed.length = 0;
  t.equal((await post(`/api/dashboard/results/${screened}/review`, { class: 'Benign' })).statusCode, 200);
  t.equal((await post(`/api/dashboard/results/${blank}/review`, { class: 'Benign' })).statusCode, 200);
  t.same(changed, [], 'readings that change no count announce nothing');
  t.equal((await post(`/api/dashboard/results/${field}/review`, { class: 'Pre-B' })).statusCode, 200);
  t.same(changed, [id], 'the first reading of a withheld field announces its specimen (live feed)');
  t.same(await unread(), { 'W-1': 0, 'W-2': 0 });
  changed.length = 0;
  await post(`/api/dashboard/results/${field}/review`, { class: 'Pro-B' });
  t.same(changed, [], 'a second reading changes no count');
});
