/**
 * Out-of-domain results on MQTT: one `result` message with status and the gate's judgement and no
 * verdict, never an alert; screened results carry status `done` and their judgement too. Checked
 * against the committed JSON schemas consumers code against.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import t from 'tap';
import type { DomainCheck } from '../../src/domain/applicability.js';
import { resultOf, type NewResult } from '../../src/domain/result.js';
import {
  noVerdictPayload,
  outboxMessages,
  RESULT_NO_VERDICT_SCHEMA,
  RESULT_SCHEMA,
} from '../../src/publish/payloads.js';

const addFormats = addFormatsModule as unknown as (ajv: Ajv2020) => void;
const schema = (name: string) =>
  JSON.parse(
    readFileSync(fileURLToPath(new URL(`../../schemas/mqtt/${name}.schema.json`, import.meta.url)), 'utf8'),
  ) as object;
const ajv = new Ajv2020({ allErrors: true, strict: false });
addFormats(ajv);
const validResult = ajv.compile(schema('result'));
const validAlert = ajv.compile(schema('alert'));

const model = { name: 'm', version: '2026.11.27+58f4004b', execution_provider: 'cpu', precision: 'int8' };
const messages = outboxMessages({ deviceId: 'scope-1', uncertainBand: [0.35, 0.65], model });
const blackFrame: DomainCheck = {
  in: false,
  reasons: ['underexposed', 'clipping'],
  scores: { meanLuma: 3.14159265, clippedShare: 0.97 },
};

const stored = (over: Partial<NewResult>) =>
  resultOf(
    42,
    {
      status: 'done',
      sha256: 'b'.repeat(64),
      path: '/c/x.jpg',
      file: 'day1/x.jpg',
      origin: 'capture',
      size: 1000,
      className: 'Pro-B',
      classIndex: 3,
      pBall: 0.95,
      flag: true,
      needsReview: false,
      probabilities: { Benign: 0.05, 'Early Pre-B': 0.05, 'Pre-B': 0.1, 'Pro-B': 0.8 },
      modelName: 'm',
      modelVersion: model.version,
      threshold: 0.5,
      capturedAt: Date.UTC(2026, 10, 27, 9),
      processedAt: Date.UTC(2026, 10, 27, 9, 0, 1),
      timings: { decodeMs: 5, inferMs: 20, gateMs: 0.4, totalMs: 30 },
      domain: { in: true, reasons: [], scores: { meanLuma: 172.5 } },
      ...over,
    },
    0,
  );

const outOfDomain = () =>
  stored({
    status: 'out_of_domain',
    className: null,
    classIndex: null,
    pBall: null,
    flag: null,
    needsReview: null,
    probabilities: null,
    domain: blackFrame,
  });

t.test('an out-of-domain image: one result message, no verdict, no alert, schema-valid', async (t) => {
  const rows = messages(outOfDomain());
  t.same(
    rows.map((r) => r.topic),
    ['result'],
    'no alert for an image with no verdict',
  );
  const payload = JSON.parse(rows[0]!.payload) as Record<string, unknown>;
  t.ok(validResult(payload), JSON.stringify(validResult.errors));
  t.match(payload, {
    schema: RESULT_NO_VERDICT_SCHEMA,
    status: 'out_of_domain',
    class: null,
    probabilities: null,
    p_ball: null,
    flag: null,
    needs_review: null,
    domain: {
      in: false,
      reasons: ['underexposed', 'clipping'],
      scores: { meanLuma: 3.141593, clippedShare: 0.97 },
    },
    result_id: 42,
    model,
  });
  t.match(
    payload.notice,
    /^Cannot screen: unlike the images the model was trained on\..*the picture is too dark/,
  );
  t.equal(rows[0]!.eventId, payload.event_id, 'the outbox row carries the payload id');

  // What the schema refuses: a verdict on an out-of-domain image, or one without its reasons.
  const bad = (over: Record<string, unknown>) => validResult({ ...payload, ...over });
  t.notOk(bad({ flag: false }), 'an out-of-domain image is never "not flagged"');
  t.notOk(bad({ class: 'Benign', p_ball: 0.01 }), 'nor called benign');
  t.notOk(bad({ schema: RESULT_SCHEMA }), 'nor published as a /1 message a consumer would read as screened');
  t.notOk(bad({ domain: { in: false, reasons: [], scores: {} } }), 'the reasons are there');
  t.notOk(bad({ domain: null }), 'the judgement is there');
  t.notOk(validAlert({ ...payload, schema: 'blastwatch/alert/1' }), 'and it is not an alert');
});

t.test('a screened image: status done and its judgement on result and alert', async (t) => {
  const rows = messages(stored({}));
  t.same(
    rows.map((r) => r.topic),
    ['result', 'alert'],
  );
  const [result, alert] = rows.map((r) => JSON.parse(r.payload) as Record<string, unknown>);
  t.ok(validResult(result), JSON.stringify(validResult.errors));
  t.ok(validAlert(alert), JSON.stringify(validAlert.errors));
  t.match(result, {
    schema: RESULT_SCHEMA,
    status: 'done',
    flag: true,
    domain: { in: true, reasons: [], scores: { meanLuma: 172.5 } },
  });
  t.notOk(
    validResult({ ...result, domain: blackFrame }),
    'a verdict under an out-of-domain judgement is refused',
  );
  t.notOk(validResult({ ...result, flag: null }), 'a screened image has its flag');
  const unjudged = JSON.parse(messages(stored({ domain: null, flag: false }))[0]!.payload) as object;
  t.ok(validResult(unjudged), 'a result judged by no gate has domain null');
  t.match(unjudged, { domain: null });
});

t.test('the payload builder on its own names the reasons in words', async (t) => {
  const p = noVerdictPayload({
    deviceId: 'scope-1',
    resultId: 3,
    file: 'f.jpg',
    sha256: 'c'.repeat(64),
    threshold: 0.5,
    uncertainBand: null,
    model,
    capturedAt: null,
    processedAt: 0,
    timings: {},
    domain: { in: false, reasons: ['focus'], scores: { laplacianVar: 4 } },
  });
  t.ok(validResult(p), JSON.stringify(validResult.errors));
  t.match(p.notice, /the picture is out of focus/);
});
