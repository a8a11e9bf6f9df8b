import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import t from 'tap';
import { loadConfig } from '../../src/config/load.js';
import { EventBus } from '../../src/runtime/events.js';
import { createMetrics } from '../../src/runtime/metrics.js';
import type { Pipeline } from '../../src/pipeline/index.js';
import { createHttpServer, type ServeContext } from '../../src/serve/index.js';
import { resultJson } from '../../src/serve/views.js';
import { registerDashboard } from '../../src/serve/dashboard/index.js';
import { dashboardPlugin } from '../../src/serve/dashboard/plugin.js';
import { createMemoryDeps } from '../dashboard/memory-deps.js';
import { openStore } from '../../src/store/index.js';

const TOKEN = 'a-long-enough-secret-token';

function context(t: { teardown(fn: () => void): void }, over: Partial<ServeContext> = {}): ServeContext {
  const dir = mkdtempSync(join(tmpdir(), 'bw-serve-'));
  const store = openStore({ dataDir: dir });
  t.teardown(() => {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  for (let i = 0; i < 3; i++)
    store.results.commit(
      {
        status: 'done',
        sha256: `${i}`.repeat(64),
        path: `/c/${i}.jpg`,
        file: `${i}.jpg`,
        origin: 'capture',
        size: 1,
        className: 'Benign',
        pBall: 0.1,
        flag: false,
        capturedAt: 1,
        processedAt: 1000 + i,
      },
      null,
      () => [],
    );
  const metrics = createMetrics();
  metrics.filesProcessed.inc({ outcome: 'done' }, 3);
  metrics.stageSeconds.observe(12, { stage: 'infer' });
  return {
    config: loadConfig(null, {}).config,
    log: pino({ level: 'silent' }),
    store,
    pipeline: { diskFreeBytes: () => 1 } as unknown as Pipeline,
    bus: new EventBus(),
    metrics,
    classifier: {} as ServeContext['classifier'],
    health: () => ({}) as ReturnType<ServeContext['health']>,
    readiness: () => ({ ready: true, reasons: [] }),
    mqtt: () => ({ enabled: false, connected: false, url: null, error: null }),
    auth: { loopback: true, token: null, authenticators: [] },
    startedAt: Date.now(),
    ...over,
  };
}

t.test('ops API on loopback: open, results newest first, limit validated', async (t) => {
  const app = await createHttpServer(context(t));
  t.teardown(() => app.close());
  const res = await app.inject('/api/results?limit=2');
  t.equal(res.statusCode, 200);
  const body = res.json() as { id: number; file: string; status: string }[];
  t.same(
    body.map((r) => r.file),
    ['2.jpg', '1.jpg'],
    'newest first, limited',
  );
  t.equal(body[0]?.status, 'done');
  for (const bad of ['0', '1001', 'abc', '1.5'])
    t.equal((await app.inject(`/api/results?limit=${bad}`)).statusCode, 400, `limit=${bad}`);
  t.same(
    ((await app.inject('/api/results?before=2')).json() as { file: string }[]).map((r) => r.file),
    ['0.jpg'],
    'paging',
  );
  for (const [query, field] of [
    ['limit=1&limit=2', 'limit'],
    ['before=1&before=2', 'before'],
    ['before=0', 'before'],
  ] as const) {
    const res = await app.inject(`/api/results?${query}`);
    t.equal(res.statusCode, 400, query);
    t.match(
      res.json(),
      { error: 'bad-request', message: new RegExp(`\\b${field}\\b`) },
      `${query}: names ${field}`,
    );
  }
});

t.test('/api/results: the reply schema keeps every field of the public result shape', async (t) => {
  const ctx = context(t);
  ctx.store.reviews.add({ resultId: 1, reviewer: 'Dr Who', className: 'Pre', note: 'a note' });
  const app = await createHttpServer(ctx);
  t.teardown(() => app.close());
  const res = await app.inject('/api/results');
  t.same(res.json(), ctx.store.results.list({ limit: 50 }).map(resultJson));
  t.ok(
    (res.json() as { review: unknown }[]).some((r) => r.review !== null),
    'a review is among them',
  );
  const health = { schema: 'blastwatch/health/1', device_id: 'scope', extra: { any: 1 } };
  const app2 = await createHttpServer(context(t, { health: () => health as never }));
  t.teardown(() => app2.close());
  t.same((await app2.inject('/api/health')).json(), health, '/api/health passes the snapshot on whole');
});

t.test('/healthz stays 200 when degraded and says so; /metrics exposes it', async (t) => {
  const ctx = context(t, {
    healthState: () => 'degraded',
    health: () => ({ state: 'degraded' }) as ReturnType<ServeContext['health']>,
  });
  const app = await createHttpServer(ctx);
  t.teardown(() => app.close());
  const res = await app.inject('/healthz');
  t.equal(res.statusCode, 200, 'alive: a degraded daemon is not restarted');
  t.match(res.json(), { status: 'ok', health: 'degraded' });
  const metrics = (await app.inject('/metrics')).body;
  t.match(metrics, /^blastwatch_health_degraded 1$/m);
  t.match(metrics, /^blastwatch_outbox_alerts_waiting 0$/m);
  t.match(metrics, /^blastwatch_outbox_oldest_age_seconds 0$/m);
});

t.test('LAN bind: everything but /healthz needs the Bearer token (or an authenticator)', async (t) => {
  let sessionOk = false;
  const app = await createHttpServer(
    context(t, { auth: { loopback: false, token: TOKEN, authenticators: [() => sessionOk] } }),
  );
  t.teardown(() => app.close());
  t.equal((await app.inject('/healthz')).statusCode, 200, '/healthz open');
  for (const url of ['/api/results', '/metrics', '/readyz', '/api/health']) {
    t.equal((await app.inject(url)).statusCode, 401, `${url} without token`);
  }
  const wrong = await app.inject({ url: '/api/results', headers: { authorization: `Bearer ${TOKEN}x` } });
  t.equal(wrong.statusCode, 401, 'wrong token');
  t.equal(wrong.headers['www-authenticate'], 'Bearer realm="blastwatch"');
  const short = await app.inject({ url: '/api/results', headers: { authorization: 'Bearer a' } });
  t.equal(short.statusCode, 401, 'a prefix of the token is not enough');
  const ok = await app.inject({ url: '/api/results', headers: { authorization: `Bearer ${TOKEN}` } });
  t.equal(ok.statusCode, 200, 'right token');
  sessionOk = true;
  t.equal((await app.inject('/api/results')).statusCode, 200, 'dashboard session accepted');
});

t.test('/readyz: 503 with reasons; /metrics: Prometheus text', async (t) => {
  const app = await createHttpServer(
    context(t, { readiness: () => ({ ready: false, reasons: ['watcher not running', 'database closed'] }) }),
  );
  t.teardown(() => app.close());
  const ready = await app.inject('/readyz');
  t.equal(ready.statusCode, 503);
  t.same(ready.json(), { ready: false, reasons: ['watcher not running', 'database closed'] });
  const m = await app.inject('/metrics');
  t.equal(m.statusCode, 200);
  t.match(m.headers['content-type'], /^text\/plain; version=0\.0\.4/);
  t.match(
    m.body,
    /# TYPE blastwatch_files_processed_total counter\nblastwatch_files_processed_total\{outcome="done"\} 3/,
  );
  t.match(m.body, /blastwatch_stage_duration_ms_bucket\{stage="infer",le="25"\} 1/);
  t.match(m.body, /blastwatch_stage_duration_ms_count\{stage="infer"\} 1/);
  t.match(m.body, /blastwatch_outbox_backlog 0/);
  // the process's memory under the client libraries' names, read at the scrape
  const figure = (name: string): number => Number(new RegExp(`^${name} (\\d+)$`, 'm').exec(m.body)?.[1]);
  const rss = figure('process_resident_memory_bytes');
  const heapTotal = figure('nodejs_heap_size_total_bytes');
  const heapUsed = figure('nodejs_heap_size_used_bytes');
  t.ok(rss > 20e6 && rss < 4e9, `RSS ${rss} bytes is this process's`);
  t.ok(heapUsed > 0 && heapUsed <= heapTotal && heapTotal < rss, 'heap used <= heap total < RSS');
  t.ok(
    figure('nodejs_array_buffers_bytes') <= figure('nodejs_external_memory_bytes'),
    'buffers are part of external',
  );
  t.match(m.body, /# TYPE process_resident_memory_bytes gauge/);
});

t.test('LAN bind: Bearer guesses are rate-limited per address and logged without the token', async (t) => {
  const lines: Record<string, unknown>[] = [];
  const log = pino({ level: 'warn' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
  const app = await createHttpServer(
    context(t, { log, auth: { loopback: false, token: TOKEN, authenticators: [] } }),
  );
  t.teardown(() => app.close());
  const codes: number[] = [];
  // The default limit: 10 failed attempts per address per minute.
  for (let i = 0; i < 12; i++) {
    const res = await app.inject({
      url: '/api/results',
      headers: { authorization: `Bearer guess-${i}-xxxxxxxxxxxxxxxxxx` },
    });
    codes.push(res.statusCode);
  }
  t.same(codes, [...Array(10).fill(401), 429, 429], 'ten failures, then 429');
  const blocked = await app.inject({ url: '/api/results', headers: { authorization: `Bearer ${TOKEN}` } });
  t.equal(blocked.statusCode, 429, 'the right token waits out the window too');
  t.ok(blocked.headers['retry-after'], 'with Retry-After');
  const warnings = lines.filter((l) => l.level === 40 && /bearer/i.test(String(l.msg)));
  t.ok(warnings.length >= 10, `every failure is logged at warn (${warnings.length})`);
  t.equal(warnings[0]?.ip, '127.0.0.1', 'with the address');
  t.notMatch(JSON.stringify(lines), /guess-\d|a-long-enough-secret/, 'never the token');
});

t.test('the Bearer scheme is case-insensitive on the ops API', async (t) => {
  const app = await createHttpServer(
    context(t, { auth: { loopback: false, token: TOKEN, authenticators: [] } }),
  );
  t.teardown(() => app.close());
  for (const scheme of ['Bearer', 'bearer', 'BEARER'])
    t.equal(
      (await app.inject({ url: '/api/results', headers: { authorization: `${scheme} ${TOKEN}` } }))
        .statusCode,
      200,
      `${scheme} <token>`,
    );
});

t.test('the ops API and the dashboard share one count of failed Bearer tokens per address', async (t) => {
  const workDir = mkdtempSync(join(tmpdir(), 'bw-serve-dash-'));
  const deps = await createMemoryDeps({ workDir, auth: { loopback: false, token: TOKEN, users: [] } });
  const app = await createHttpServer(
    context(t, { auth: { loopback: false, token: TOKEN, authenticators: [] } }),
    [
      async (server, ctx) => {
        await server.register(dashboardPlugin, {
          deps,
          uploadMaxBytes: 1024 * 1024,
          bearerFailures: ctx.auth.bearerFailures,
        });
      },
    ],
  );
  t.teardown(async () => {
    deps.dispose();
    await app.close();
    rmSync(workDir, { recursive: true, force: true });
  });
  const guess = (url: string, i: number) =>
    app.inject({ url, headers: { authorization: `Bearer guess-${i}-xxxxxxxxxxxxxxxxxx` } });
  const codes: number[] = [];
  for (let i = 0; i < 5; i++) codes.push((await guess('/api/results', i)).statusCode);
  for (let i = 5; i < 10; i++) codes.push((await guess('/api/dashboard/results', i)).statusCode);
  t.same(codes, Array(10).fill(401), 'ten guesses over both APIs');
  t.equal(
    (await guess('/api/dashboard/results', 10)).statusCode,
    429,
    'the dashboard counts the ops guesses',
  );
  t.equal((await guess('/api/results', 11)).statusCode, 429, 'and the other way round');
});

t.test(
  'the daemon wiring: http.live_streams_per_identity and the shared Bearer count reach the dashboard',
  async (t) => {
    const ctx = context(t, {
      auth: { loopback: false, token: TOKEN, authenticators: [] },
      classifier: { info: { classes: ['Benign', 'Pro'], malignant: [false, true] } } as never,
    });
    ctx.config.http.auth_token = TOKEN;
    ctx.config.http.live_streams_per_identity = 1;
    const app = await createHttpServer(ctx, [registerDashboard]);
    t.teardown(() => app.close());
    const url = await app.listen({ host: '127.0.0.1', port: 0 });
    const bearer = { authorization: `Bearer ${TOKEN}` };
    const first = await fetch(`${url}/api/dashboard/events`, { headers: bearer });
    t.teardown(() => first.body?.cancel());
    t.equal(first.status, 200, 'one stream');
    const second = await fetch(`${url}/api/dashboard/events`, { headers: bearer });
    t.equal(second.status, 429, 'a second one for the same token: 429 (the configured limit of 1)');
    await second.body?.cancel();
    for (let i = 0; i < 10; i++)
      await app.inject({
        url: '/api/results',
        headers: { authorization: `Bearer guess-${i}-xxxxxxxxxxxxxxxxxx` },
      });
    const dash = await app.inject({ url: '/api/dashboard/results', headers: bearer });
    t.equal(dash.statusCode, 429, 'ten guesses at the ops API: the dashboard refuses the address too');
  },
);
