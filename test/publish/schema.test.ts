/** The published payloads match the JSON schemas committed in schemas/mqtt/ (what consumers code against). */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import t from 'tap';
import { eventId, HEALTH_SCHEMA, resultPayload, type HealthPayload } from '../../src/publish/payloads.js';

const addFormats = addFormatsModule as unknown as (ajv: Ajv2020) => void;
const schema = (name: string) =>
  JSON.parse(
    readFileSync(fileURLToPath(new URL(`../../schemas/mqtt/${name}.schema.json`, import.meta.url)), 'utf8'),
  ) as object;

const ajv = new Ajv2020({ allErrors: true, strict: false });
addFormats(ajv);
const validResult = ajv.compile(schema('result'));
const validAlert = ajv.compile(schema('alert'));
const validHealth = ajv.compile(schema('health'));

const input = {
  deviceId: 'scope-1',
  resultId: 42,
  file: 'day1/<img src=x>.jpg',
  sha256: 'a'.repeat(64),
  className: 'Pro-B',
  probabilities: { Benign: 0.05, 'Early Pre-B': 0.05, 'Pre-B': 0.1, 'Pro-B': 0.8 },
  pBall: 0.95,
  flag: true,
  needsReview: false,
  threshold: 0.5,
  uncertainBand: [0.35, 0.65] as [number, number],
  model: { name: 'm', version: '1.0.0', execution_provider: 'cpu', precision: 'int8' },
  capturedAt: Date.UTC(2026, 10, 27, 9),
  processedAt: Date.UTC(2026, 10, 27, 9, 0, 1),
  timings: { decodeMs: 5, segmentMs: 3, inferMs: 20, totalMs: 30 },
};

t.test('result and alert payloads validate against their schemas', async (t) => {
  const result = resultPayload(input, 'result');
  const alert = resultPayload(input, 'alert');
  t.ok(validResult(result), JSON.stringify(validResult.errors));
  t.ok(validAlert(alert), JSON.stringify(validAlert.errors));
  t.notOk(
    validAlert(resultPayload({ ...input, flag: false }, 'alert')),
    'an alert without a flag is invalid',
  );
  t.notOk(validResult({ ...result, sha256: 'nope' }), 'the schema rejects a bad hash');
  t.not(result.event_id, alert.event_id, 'result and alert have different ids');
  t.equal(
    result.event_id,
    resultPayload({ ...input, processedAt: 0, resultId: 7 }, 'result').event_id,
    'event id is stable',
  );
  t.not(
    eventId(input.sha256, '1.0.0', 'result'),
    eventId(input.sha256, '1.0.1', 'result'),
    'a new model version is a new event',
  );
});

t.test('health payload validates', async (t) => {
  const health: HealthPayload = {
    schema: HEALTH_SCHEMA,
    device_id: 'scope-1',
    state: 'degraded',
    problems: ['capture folder unavailable'],
    uptime_s: 10,
    queue_depth: 0,
    in_flight: 0,
    processed: { done: 1, failed: 0, quarantined: 0, flagged: 1 },
    latency_ms: { p50: 12.5, p95: null },
    outbox_backlog: 0,
    model: { name: 'm', version: '1', execution_provider: 'cpu', precision: 'int8' },
    disk_free_bytes: 1_000_000,
    last_image_at: null,
    watcher: { running: true, dir_available: false, last_scan_at: null, last_error: 'ENOENT' },
    at: new Date().toISOString(),
  };
  t.ok(validHealth(health), JSON.stringify(validHealth.errors));
  const withMqtt: HealthPayload = {
    ...health,
    problems: ['MQTT broker unreachable since 2026-12-03T08:00:00.000Z: 84 messages waiting (3 alerts)'],
    outbox_backlog: 84,
    mqtt: {
      connected: false,
      disconnected_since: '2026-12-03T08:00:00.000Z',
      alerts_waiting: 3,
      oldest_waiting_at: '2026-12-03T07:59:00.000Z',
    },
  };
  t.ok(validHealth(withMqtt), JSON.stringify(validHealth.errors));
  t.notOk(validHealth({ ...withMqtt, mqtt: { connected: false } }), 'the mqtt section is complete');
});

t.test('the result schema lists every reason the gate can give, and no other', async (t) => {
  const { DOMAIN_REASON_TEXT } = await import('../../src/domain/applicability.js');
  const result = schema('result') as {
    $defs: { domain: { properties: { reasons: { items: { enum: string[] } } } } };
  };
  t.same(
    [...result.$defs.domain.properties.reasons.items.enum].sort(),
    Object.keys(DOMAIN_REASON_TEXT).sort(),
  );
});
