/**
 * End to end, in one process: real capture folder, real SQLite file, the tiny ONNX model in its
 * worker, the real watcher, fastify on a free port and an aedes broker. Images dropped into the
 * folder must show up in the database, on /api/results and on MQTT (result + alert topics).
 */
import { copyFileSync, existsSync, readFileSync, rmSync, writeFileSync, renameSync } from 'node:fs';
import { basename, join } from 'node:path';
import { crc32 } from 'node:zlib';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { pino } from 'pino';
import sharp from 'sharp';
import t from 'tap';
import { createApp } from '../../src/app.js';
import { loadConfig } from '../../src/config/load.js';
import {
  eventIds,
  freePort,
  jpegVariant,
  makeDirs,
  repoRoot,
  sampleImages,
  startBroker,
  subscribe,
  until,
  writeConfig,
} from './helpers.js';

const log = pino({ level: process.env.BW_TEST_LOG ?? 'silent' });
const PREFIX = 'blastwatch/e2e-scope';

t.test('images dropped → results in the DB, on /api/results and on MQTT', async (t) => {
  const dirs = makeDirs();
  const broker = await startBroker();
  const sub = await subscribe(broker.url, PREFIX);
  const httpPort = await freePort();
  writeConfig(dirs, { mqttUrl: broker.url, httpPort });
  const { config } = loadConfig(dirs.config, {});
  config.mqtt.reconnect_ms = 200;
  config.capture.dir_probe_interval_ms = 200;
  const app = await createApp(config, log, { plugins: [] });
  let stopped = false;
  t.teardown(async () => {
    if (!stopped) await app.stop();
    await sub.close();
    await broker.close();
    rmSync(dirs.root, { recursive: true, force: true });
  });
  await app.start();

  const images = sampleImages()
    .filter((_, i) => i % 2 === 0)
    .slice(0, 6);
  t.ok(images.length >= 4, 'have sample images');
  for (const src of images) {
    // Write under a temp name then rename, like a camera's save: the watcher ignores *.part.
    const dest = join(dirs.capture, basename(src));
    copyFileSync(src, `${dest}.part`);
    renameSync(`${dest}.part`, dest);
  }
  // Every image ends classified, or refused by the out-of-domain gate, which turns away about one
  // data-set image in fifty (models/MODEL_CARD.md; test/gate covers which and why).
  const processed = (): number => {
    const c = app.store.results.counts();
    return c.done + c.out_of_domain;
  };
  await until(() => processed() === images.length, 60_000, 'all images classified or refused');

  // Database
  const rows = app.store.results.list({ limit: 100 });
  t.equal(rows.length, images.length, 'one row per image');
  const refused = rows.filter((r) => r.status === 'out_of_domain').length;
  t.ok(refused <= 2, `the gate refused ${refused} of ${images.length} data-set images`);
  for (const r of rows) {
    t.ok(r.status === 'done' || r.status === 'out_of_domain', `${r.file}: ${r.status}`);
    t.match(r.sha256, /^[0-9a-f]{64}$/);
    t.ok(r.timings?.decodeMs !== undefined && r.timings?.inferMs !== undefined, 'stage timings recorded');
    const { modelMs = -1, inferMs = -1 } = r.timings ?? {};
    t.ok(
      modelMs > 0 && modelMs <= inferMs,
      `the model's own run (${modelMs} ms) is part of inferMs (${inferMs} ms)`,
    );
    if (r.status === 'done')
      t.ok(r.className && r.probabilities && typeof r.pBall === 'number', `classified: ${r.file}`);
    else
      t.ok(
        r.domain?.in === false && r.domain.reasons.length > 0 && !r.flag && r.className === null,
        `${r.file}: refused with reasons, no verdict`,
      );
  }
  await until(() => app.store.results.list({ limit: 100 }).every((r) => r.media), 10_000, 'media written');
  const first = rows[0]!;
  t.ok(((await app.store.media.read(first.id, 'thumb'))?.bytes.length ?? 0) > 100, 'thumbnail stored');
  t.ok(
    (await app.store.media.read(first.id, 'mask'))?.bytes.subarray(1, 4).toString() === 'PNG',
    'mask is a PNG',
  );
  t.ok(existsSync(join(config.data.dir, 'media.db')), 'the pictures are in media.db beside the database');

  // HTTP
  const api = (await (await fetch(`${app.url}/api/results?limit=100`)).json()) as Record<string, unknown>[];
  t.equal(api.length, images.length, '/api/results lists every image');
  t.same(
    api.map((r) => r.id),
    rows.map((r) => r.id),
    'newest first',
  );
  for (const key of [
    'id',
    'file',
    'sha256',
    'status',
    'class',
    'p_ball',
    'flag',
    'error',
    'probabilities',
    'processed_at',
  ])
    t.ok(key in api[0]!, `result has ${key}`);
  t.equal((await fetch(`${app.url}/healthz`)).status, 200, '/healthz 200');
  t.equal((await fetch(`${app.url}/readyz`)).status, 200, '/readyz 200');
  t.equal((await fetch(`${app.url}/api/results?limit=0`)).status, 400, 'bad limit refused');
  const metrics = await (await fetch(`${app.url}/metrics`)).text();
  t.match(
    metrics,
    new RegExp(`blastwatch_files_processed_total\\{outcome="done"\\} ${images.length - refused}`),
  );
  t.match(metrics, /blastwatch_stage_duration_ms_bucket\{stage="infer",le="\+Inf"\}/);
  t.match(metrics, /blastwatch_model_info\{.*execution_provider="cpu"/);

  // MQTT
  const flagged = rows.filter((r) => r.flag).length;
  await sub.waitFor(
    (m) => eventIds(m, 'result').size === images.length && eventIds(m, 'alert').size === flagged,
    20_000,
    'results and alerts',
  );
  const result = sub.messages.find((m) => m.topic === `${PREFIX}/result`)!.json!;
  t.equal(result.schema, 'blastwatch/result/1');
  const ajv = new Ajv2020({ allErrors: true, strict: false });
  (addFormats as unknown as (a: Ajv2020) => void)(ajv);
  const schemaFile = (n: string) =>
    JSON.parse(readFileSync(join(repoRoot, `schemas/mqtt/${n}.schema.json`), 'utf8')) as object;
  const validators = {
    result: ajv.compile(schemaFile('result')),
    alert: ajv.compile(schemaFile('alert')),
    health: ajv.compile(schemaFile('health')),
  };
  for (const m of sub.messages) {
    const kind = m.topic.slice(PREFIX.length + 1) as keyof typeof validators;
    if (!(kind in validators)) continue;
    t.ok(
      validators[kind](m.json),
      `${kind} payload matches schemas/mqtt/${kind}.schema.json ${JSON.stringify(validators[kind].errors)}`,
    );
  }
  t.equal(result.device_id, 'e2e-scope');
  for (const key of [
    'event_id',
    'file',
    'sha256',
    'class',
    'probabilities',
    'p_ball',
    'flag',
    'needs_review',
    'model',
    'captured_at',
    'processed_at',
    'timings_ms',
  ])
    t.ok(key in result, `payload has ${key}`);
  const alerts = sub.messages.filter((m) => m.topic === `${PREFIX}/alert`);
  t.ok(
    alerts.every((a) => a.json?.flag === true),
    'alerts carry flags only',
  );
  t.equal(sub.messages.filter((m) => m.topic === `${PREFIX}/status`).at(-1)?.payload, 'online');
  t.ok(
    sub.messages.some((m) => m.topic === `${PREFIX}/health` && m.json?.schema === 'blastwatch/health/1'),
    'health published',
  );
  await until(() => app.store.outbox.backlog().count === 0, 10_000, 'outbox empty');

  // Same bytes under a new name: linked, not classified again, nothing new published.
  const before = sub.messages.length;
  copyFileSync(images[0]!, join(dirs.capture, 'copy-of-first.jpg'));
  await until(
    () => app.store.files.get(join(dirs.capture, 'copy-of-first.jpg'))?.status === 'done',
    20_000,
    'copy recorded',
  );
  t.equal(processed(), images.length, 'same bytes → still one result');
  // A known name with new bytes: a new result.
  writeFileSync(
    join(dirs.capture, basename(images[1]!)),
    readFileSync(images[images.length - 1]!).subarray(0),
  );
  const other = sampleImages().filter((_, i) => i % 2 === 1)[0]!;
  copyFileSync(other, join(dirs.capture, basename(images[2]!)));
  await until(() => processed() === images.length + 1, 20_000, 'reused name with new bytes classified');
  t.pass('a reused file name with new bytes gets a new result');
  t.ok(sub.messages.length >= before, 'broker still receiving');

  await app.stop();
  stopped = true;
  await sub.waitFor(
    (m) => m.filter((x) => x.topic === `${PREFIX}/status`).at(-1)?.payload === 'offline',
    5000,
    'offline',
  );
  t.pass('retained offline published on stop');
});

t.test(
  'bad files are recorded with their reason, the daemon keeps going, a completed file is processed',
  async (t) => {
    const dirs = makeDirs();
    const httpPort = await freePort();
    writeConfig(dirs, {
      mqttUrl: null,
      httpPort,
      extra: {
        image: { max_file_mb: 1, max_input_pixels: 4_000_000 },
        capture: { max_attempts: 3, retry_backoff_ms: 100 },
      },
    });
    const { config } = loadConfig(dirs.config, {});
    config.capture.dir_probe_interval_ms = 200;
    const app = await createApp(config, log, { plugins: [] });
    t.teardown(async () => {
      await app.stop();
      rmSync(dirs.root, { recursive: true, force: true });
    });
    await app.start();
    const images = sampleImages();
    const good = readFileSync(images[0]!);
    const later = readFileSync(images[images.length - 1]!);
    const c = (name: string) => join(dirs.capture, name);

    writeFileSync(c('zero.jpg'), Buffer.alloc(0));
    writeFileSync(
      c('random.jpg'),
      Buffer.from(Array.from({ length: 5000 }, (_, i) => (i * 7919 + 13) % 251)),
    );
    writeFileSync(c('huge-file.jpg'), Buffer.concat([good, Buffer.alloc(1_200_000, 7)]));
    // A PNG header claiming 100000 x 100000 pixels (a decompression bomb): refused before decoding.
    const bomb = Buffer.from(
      await sharp({ create: { width: 1, height: 1, channels: 3, background: '#fff' } })
        .png()
        .toBuffer(),
    );
    bomb.writeUInt32BE(100_000, 16); // IHDR width
    bomb.writeUInt32BE(100_000, 20); // IHDR height
    bomb.writeUInt32BE(crc32(bomb.subarray(12, 29)), 29); // IHDR CRC
    writeFileSync(c('bomb.png'), bomb);
    writeFileSync(c('stays-truncated.jpg'), good.subarray(0, Math.floor(good.length / 2)));
    writeFileSync(c('completed-later.jpg'), later.subarray(0, Math.floor(later.length / 3)));
    writeFileSync(c('fine.jpg'), good);

    // Newest row per file name (results.list is newest first).
    const byFile = () =>
      new Map(
        app.store.results
          .list({ limit: 100 })
          .reverse()
          .map((r) => [r.file, r]),
      );
    await until(() => byFile().size >= 6, 30_000, 'bad files recorded');
    await until(
      () => byFile().get('stays-truncated.jpg')?.status === 'quarantined',
      30_000,
      'truncated file quarantined',
    );
    const r = byFile();
    t.equal(r.get('zero.jpg')?.errorKind, 'empty', 'zero bytes → empty');
    t.equal(r.get('random.jpg')?.status, 'failed');
    t.match(r.get('random.jpg')?.errorKind, /unsupported|unreadable/, 'random bytes → unsupported');
    t.equal(r.get('huge-file.jpg')?.errorKind, 'too-large', 'file over image.max_file_mb');
    t.equal(r.get('bomb.png')?.errorKind, 'too-large', 'pixel bomb refused');
    t.equal(r.get('stays-truncated.jpg')?.errorKind, 'truncated');
    t.match(r.get('stays-truncated.jpg')?.error, /after 3 attempts/, 'quarantined after max_attempts');
    t.equal(r.get('fine.jpg')?.status, 'done', 'a good image among bad ones is classified');
    t.ok(r.get('zero.jpg')?.error, 'reason text recorded');

    // The camera finishes writing: new size and mtime → tried again and classified.
    writeFileSync(c('completed-later.jpg'), later);
    await until(
      () => byFile().get('completed-later.jpg')?.status === 'done',
      30_000,
      'completed file classified',
    );
    t.pass('a truncated file completed later is processed');
    // Same for a quarantined one.
    writeFileSync(c('stays-truncated.jpg'), readFileSync(images[1]!));
    await until(
      () =>
        app.store.results
          .list({ limit: 100 })
          .some((x) => x.file === 'stays-truncated.jpg' && x.status === 'done'),
      30_000,
      'quarantined file replaced and classified',
    );
    t.pass('a quarantined file that changes is tried again');
    const api = (await (await fetch(`${app.url}/api/results?limit=100`)).json()) as {
      status: string;
      error: string | null;
    }[];
    t.ok(
      api.some((x) => x.status === 'failed' && x.error),
      '/api/results shows failures with their reason',
    );
    t.equal((await fetch(`${app.url}/readyz`)).status, 200, 'still ready');
  },
);

t.test(
  'a backlog larger than the queue is worked through without waiting for the periodic scan',
  async (t) => {
    const dirs = makeDirs();
    const samples = sampleImages();
    const N = 20;
    for (let i = 0; i < N; i++)
      writeFileSync(
        join(dirs.capture, `backlog-${i}.jpg`),
        jpegVariant(readFileSync(samples[i % samples.length]!), `bl-${i}`),
      );
    writeConfig(dirs, {
      mqttUrl: null,
      httpPort: await freePort(),
      extra: { pipeline: { queue_max: 3 }, capture: { rescan_interval_s: 3600 } },
    });
    const { config } = loadConfig(dirs.config, {});
    const app = await createApp(config, log, { plugins: [] });
    t.teardown(async () => {
      await app.stop();
      rmSync(dirs.root, { recursive: true, force: true });
    });
    await app.start();
    // Classified: screened, or refused by the out-of-domain gate (a sample may be either).
    const classified = (): number => {
      const c = app.store.results.counts();
      return c.done + c.out_of_domain;
    };
    await until(() => classified() === N, 60_000, 'whole backlog classified');
    t.equal(classified(), N, 'every file once, though the queue holds only 3');
  },
);
