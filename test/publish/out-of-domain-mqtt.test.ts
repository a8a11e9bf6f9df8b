/**
 * Out-of-domain images over a real MQTT broker (aedes, in process) from the whole daemon (tiny
 * model, a gate that refuses dark frames): each one is a schema-valid `result` message with no
 * verdict, none is an alert, and the retained health message reports the drift they make.
 */
import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import t from 'tap';
import { createApp } from '../../src/app.js';
import { loadConfig } from '../../src/config/load.js';
import { createLogger } from '../../src/log.js';
import { jpegVariant, sampleImages, startBroker, subscribe, tinyModelDir } from '../daemon/helpers.js';
import { darkFrame, darkFrameGate } from '../helpers/dark-frame-gate.js';

const addFormats = addFormatsModule as unknown as (ajv: Ajv2020) => void;
const ajv = new Ajv2020({ allErrors: true, strict: false });
addFormats(ajv);
const schema = (name: string) =>
  JSON.parse(
    readFileSync(new URL(`../../schemas/mqtt/${name}.schema.json`, import.meta.url), 'utf8'),
  ) as object;
const validResult = ajv.compile(schema('result'));
const validAlert = ajv.compile(schema('alert'));
const validHealth = ajv.compile(schema('health'));

const drifting = (h: Record<string, unknown> | undefined): boolean =>
  (h?.domain_drift as { drifting?: boolean } | undefined)?.drifting === true;

t.test('MQTT: no verdict and no alert for out-of-domain images; drift in the health message', async (t) => {
  const broker = await startBroker();
  const root = mkdtempSync(join(tmpdir(), 'bw-mqtt-ood-'));
  const capture = join(root, 'captures');
  const staging = join(root, 'staging');
  mkdirSync(capture);
  mkdirSync(staging);
  const { config } = loadConfig(null, {
    BLASTWATCH_CAPTURE_DIR: capture,
    BLASTWATCH_DATA_DIR: join(root, 'data'),
    BLASTWATCH_MODEL_DIR: tinyModelDir,
    BLASTWATCH_HTTP_PORT: '0',
    BLASTWATCH_DEVICE_ID: 'ood-scope',
    BLASTWATCH_MQTT_URL: broker.url,
  });
  config.capture.stability_ms = 100;
  config.model.threads = 1;
  // Every result flagged, so an alert would be sent for any image the gate let through.
  config.model.threshold = 0;
  config.gate = { drift_window: 5, drift_share: 0.5, magnification_watch: true };
  const sub = await subscribe(broker.url, 'blastwatch/ood-scope');
  const app = await createApp(config, createLogger({ level: 'warn', pretty: false }), {
    gate: darkFrameGate(),
  });
  await app.start();
  t.teardown(async () => {
    await app.stop();
    await sub.close();
    await broker.close();
    rmSync(root, { recursive: true, force: true });
  });
  const drop = async (name: string, bytes: Buffer) => {
    const stored = app.bus.next('result:stored', ({ result }) => result.file === name);
    writeFileSync(join(staging, name), bytes);
    renameSync(join(staging, name), join(capture, name));
    await stored;
  };
  await drop('smear.jpg', jpegVariant(readFileSync(sampleImages()[0]!), 'mqtt-ood'));
  for (let i = 0; i < 5; i++) await drop(`dark-${i}.jpg`, await darkFrame(200 + i));
  const on = (suffix: string) => sub.messages.filter((m) => m.topic === `blastwatch/ood-scope/${suffix}`);
  await sub.waitFor(
    () => on('result').length >= 6 && on('alert').length >= 1,
    30_000,
    'results and the alert',
  );

  const results = on('result').map((m) => m.json!);
  for (const r of results) t.ok(validResult(r), `${String(r.file)}: ${JSON.stringify(validResult.errors)}`);
  const dark = results.filter((r) => String(r.file).startsWith('dark-'));
  t.equal(dark.length, 5);
  for (const r of dark)
    t.match(r, {
      schema: 'blastwatch/result/2',
      status: 'out_of_domain',
      class: null,
      p_ball: null,
      flag: null,
      domain: { in: false, reasons: ['underexposed'] },
    });
  t.match(
    results.find((r) => r.file === 'smear.jpg'),
    { schema: 'blastwatch/result/1', status: 'done', flag: true, domain: { in: true } },
  );
  const alerts = on('alert').map((m) => m.json!);
  t.same(
    alerts.map((a) => a.file),
    ['smear.jpg'],
    'the only alert is the screened image: none for an out-of-domain one',
  );
  for (const a of alerts) t.ok(validAlert(a), JSON.stringify(validAlert.errors));

  // The health message carries the drift (retained, sent on connect and on a timer; sent now).
  app.publisher!.publishHealth();
  await sub.waitFor(
    () => on('health').some((m) => drifting(m.json)),
    10_000,
    'a health message with the drift',
  );
  const health = on('health')
    .map((m) => m.json!)
    .filter(drifting)
    .at(-1)!;
  t.ok(validHealth(health), JSON.stringify(validHealth.errors));
  t.match(health, {
    state: 'degraded',
    problems: [
      /^camera, stain or magnification changed\? The model may not apply here: 5 of the last 5 images/,
    ],
    processed: { done: 1, out_of_domain: 5 },
    domain_drift: { window: 5, judged: 5, out_of_domain: 5, share: 1, drifting: true },
  });
});
