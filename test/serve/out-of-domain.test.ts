/**
 * Out-of-domain results through the whole daemon (src/app.ts with the tiny model and a gate that
 * refuses dark frames) as the HTTP side shows them: the ops API, /metrics by reason, /healthz and
 * /api/health reporting drift, and the dashboard's views, filter and status page. Never counted
 * as flagged or benign; a person may still review one.
 */
import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { createApp } from '../../src/app.js';
import { loadConfig } from '../../src/config/load.js';
import { createLogger } from '../../src/log.js';
import { jpegVariant, sampleImages, tinyModelDir } from '../daemon/helpers.js';
import { darkFrame, darkFrameGate } from '../helpers/dark-frame-gate.js';

t.test('the HTTP API and the dashboard on out-of-domain images', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'bw-serve-ood-'));
  const capture = join(root, 'captures');
  const staging = join(root, 'staging');
  mkdirSync(capture);
  mkdirSync(staging);
  const { config } = loadConfig(null, {
    BLASTWATCH_CAPTURE_DIR: capture,
    BLASTWATCH_DATA_DIR: join(root, 'data'),
    BLASTWATCH_MODEL_DIR: tinyModelDir,
    BLASTWATCH_HTTP_PORT: '0',
    BLASTWATCH_DEVICE_ID: 'test-scope',
  });
  config.capture.stability_ms = 100;
  config.model.threads = 1;
  config.gate = { drift_window: 5, drift_share: 0.5, magnification_watch: true };
  const app = await createApp(config, createLogger({ level: 'warn', pretty: false }), {
    gate: darkFrameGate(),
  });
  await app.start();
  t.teardown(async () => {
    await app.stop();
    rmSync(root, { recursive: true, force: true });
  });
  const drop = async (name: string, bytes: Buffer) => {
    const stored = app.bus.next('result:stored', ({ result }) => result.file === name);
    writeFileSync(join(staging, name), bytes);
    renameSync(join(staging, name), join(capture, name));
    await stored;
  };
  await drop('smear.jpg', jpegVariant(readFileSync(sampleImages()[0]!), 'serve-ood'));
  for (let i = 0; i < 5; i++) await drop(`dark-${i}.jpg`, await darkFrame(100 + i));
  const get = async (url: string) => {
    const res = await app.http.inject(url);
    t.equal(res.statusCode, 200, url);
    return res;
  };

  // Ops API: the status and the judgement, no verdict.
  const results = (await get('/api/results')).json() as Record<string, unknown>[];
  const dark = results.find((r) => r.file === 'dark-4.jpg');
  t.match(dark, {
    status: 'out_of_domain',
    class: null,
    p_ball: null,
    flag: null,
    needs_review: null,
    probabilities: null,
    domain: { in: false, reasons: ['underexposed'], reasons_text: ['the picture is too dark'] },
  });
  t.match(
    results.find((r) => r.file === 'smear.jpg'),
    { status: 'done', domain: { in: true, reasons: [] } },
  );

  // /metrics: by reason, and the share over the drift window.
  const metrics = (await get('/metrics')).body;
  t.match(metrics, /blastwatch_out_of_domain_total\{reason="underexposed"\} 5\n/);
  t.match(metrics, /blastwatch_files_processed_total\{outcome="out_of_domain"\} 5\n/);
  t.match(metrics, /blastwatch_out_of_domain_share 1\n/);
  t.match(metrics, /blastwatch_health_degraded 1\n/);

  // Drift: /healthz says degraded; /api/health says why, with the figures.
  t.match((await get('/healthz')).json(), { status: 'ok', health: 'degraded' });
  const health = (await get('/api/health')).json() as {
    problems: string[];
    processed: Record<string, number>;
    domain_drift: Record<string, unknown>;
  };
  t.match(health.problems, [
    /^camera, stain or magnification changed\? The model may not apply here: 5 of the last 5 images/,
  ]);
  t.same(health.domain_drift, {
    window: 5,
    judged: 5,
    out_of_domain: 5,
    share: 1,
    limit: 0.5,
    drifting: true,
  });
  t.match(health.processed, { done: 1, out_of_domain: 5, flagged: Number });
  t.equal((await get('/readyz')).json().ready, true, 'still ready: images are still taken');

  // Dashboard: the sentence and the reasons in words; a filter; never in the review queue.
  const all = (await get('/api/dashboard/results')).json() as Record<string, unknown>[];
  t.equal(all.length, 6);
  const filtered = (await get('/api/dashboard/results?out_of_domain=1')).json() as Record<string, unknown>[];
  t.same(
    filtered.map((r) => r.file),
    ['dark-4.jpg', 'dark-3.jpg', 'dark-2.jpg', 'dark-1.jpg', 'dark-0.jpg'],
  );
  t.match(filtered[0], {
    status: 'out_of_domain',
    flag: null,
    class: null,
    pBall: null,
    needsReview: false,
    outOfDomain: {
      message: 'Cannot screen: unlike the images the model was trained on',
      reasons: [{ code: 'underexposed', text: 'the picture is too dark' }],
    },
    images: { original: true },
  });
  t.equal(all.find((r) => r.file === 'smear.jpg')?.outOfDomain, null, 'a screened image has none');
  const flagged = (await get('/api/dashboard/results?flagged=1')).json() as { file: string }[];
  t.notOk(
    flagged.some((r) => r.file.startsWith('dark')),
    'an out-of-domain image is never in the flagged list',
  );
  const queue = (await get('/api/dashboard/review-queue')).json() as { file: string }[];
  t.notOk(
    queue.some((r) => r.file.startsWith('dark')),
    'nor in the review queue',
  );
  const detail = (await get(`/api/dashboard/results/${filtered[0]!.id as number}`)).json();
  t.match(detail, { outOfDomain: { scores: { meanLuma: Number } } });

  // A person can still record what a withheld picture shows: kept as a review with no model class
  // to agree with, exported, and the result keeps its status and no verdict.
  const host = 'localhost';
  const session = await app.http.inject({ url: '/api/dashboard/session', headers: { host } });
  const cookie = String([session.headers['set-cookie']].flat()[0]).split(';')[0]!;
  const reviewed = await app.http.inject({
    method: 'POST',
    url: `/api/dashboard/results/${filtered[0]!.id as number}/review`,
    headers: { host, cookie, 'x-csrf-token': session.json().csrfToken as string },
    payload: { class: 'Pre-B', note: 'read at the microscope', reviewer: 'dr-lee' },
  });
  t.equal(reviewed.statusCode, 200, reviewed.body);
  t.match(reviewed.json(), { class: 'Pre-B', modelClass: null, reviewer: 'dr-lee' });
  t.match((await get(`/api/dashboard/results/${filtered[0]!.id as number}`)).json(), {
    status: 'out_of_domain',
    class: null,
    flag: null,
    needsReview: false,
    review: { class: 'Pre-B', modelClass: null },
  });
  const exported = (await get('/api/dashboard/reviews/export?format=json')).json() as Record<
    string,
    unknown
  >[];
  t.match(exported, [{ file: 'dark-4.jpg', modelClass: null, pBall: null, reviewedClass: 'Pre-B' }]);

  const status = (await get('/api/dashboard/status')).json() as {
    status: Record<string, unknown>;
    daily: { counts: Record<string, number>; outOfDomain: number; failed: number }[];
  };
  t.match(status.status, {
    processed: 1,
    outOfDomain: 5,
    outOfDomainByReason: [{ code: 'underexposed', text: 'the picture is too dark', count: 5 }],
    failed: 0,
    problems: [/^camera, stain or magnification changed\?/],
  });
  const today = status.daily.at(-1)!;
  t.equal(today.outOfDomain, 5, 'the chart counts them on their own');
  t.equal(today.failed, 0, 'not as unreadable');
  t.equal(
    Object.values(today.counts).reduce((s, n) => s + n, 0),
    1,
    'and in no class (benign included)',
  );
});
