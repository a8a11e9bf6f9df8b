/**
 * Specimens, named users and LIS delivery together, through the real daemon (src/app.ts with the
 * bundled model): images filed into captures/<accession>/ become a specimen; a viewer's token
 * cannot sign it; a reviewer's token signs it as the reviewer, which writes one ORU^R01 file to
 * the LIS drop folder and makes the PDF report; an amendment writes a second, corrected message
 * and leaves the first as it was.
 */
import {
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Message } from 'node-hl7-client';
import t from 'tap';
import { createApp, type App } from '../../src/app.js';
import { loadConfig } from '../../src/config/load.js';
import { createLogger } from '../../src/log.js';
import { hashPassword, newApiToken } from '../../src/runtime/password.js';
import { pdfText } from './pdf-text.js';

const MODEL = fileURLToPath(new URL('../../models/', import.meta.url));
const SAMPLES = fileURLToPath(new URL('../fixtures/samples/', import.meta.url));
const ACCESSION = 'H26-0777';
const VIEWER = 'vic-viewer';
const REVIEWER = 'dr-rhea';
const IMAGES = [
  ['Pro', 'WBC-Malignant-Pro-001.jpg'],
  ['Pre', 'WBC-Malignant-Pre-001.jpg'],
  ['Benign', 'WBC-Benign-001.jpg'],
] as const;

interface SignOffJson {
  version: number;
  verdict: string;
  comment: string | null;
  reason: string | null;
  signer: string;
}
interface SpecimenJson {
  id: number;
  accession: string;
  status: string;
  counts: { images: number; screened: number; out_of_domain: number; failed: number };
  sign_off: SignOffJson | null;
}
interface SpecimenDetailJson extends SpecimenJson {
  sign_offs: SignOffJson[];
  audit: { actor: string; action: string }[];
}

/** Polls an async check until it returns a value; fails after `ms`. */
async function eventually<T>(check: () => Promise<T | undefined>, ms: number, what: string): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Every OBX of a message as {code, value, status, observer}. */
function observations(msg: Message) {
  const out: { code: string; value: string; status: string; observer: string }[] = [];
  msg.get('OBX').forEach((obx) => {
    out.push({
      code: obx.get('OBX.3.1').toString(),
      value: obx.get('OBX.5.1').toString(),
      status: obx.get('OBX.11').toString(),
      observer: obx.get('OBX.16').toString(),
    });
  });
  return out;
}

t.test('capture → specimen → viewer refused → reviewer signs → HL7 file and PDF → amendment', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'bw-signoff-flow-'));
  const daemon: { app?: App } = {};
  // One teardown: the daemon stops before its folders go.
  t.teardown(async () => {
    await daemon.app?.stop();
    rmSync(root, { recursive: true, force: true });
  });
  const capture = join(root, 'captures');
  const staging = join(root, 'staging');
  const drop = join(root, 'lis-inbox');
  for (const dir of [capture, staging, drop]) mkdirSync(dir);

  // The users as an operator writes them: hashes made by the code behind `blastwatch hash-password`.
  const token = { viewer: newApiToken(), reviewer: newApiToken() };
  const configFile = join(root, 'blastwatch.yaml');
  writeFileSync(
    configFile,
    JSON.stringify({
      http: {
        host: '0.0.0.0',
        users: [
          { name: VIEWER, role: 'viewer', api_token_hash: await hashPassword(token.viewer) },
          { name: REVIEWER, role: 'reviewer', api_token_hash: await hashPassword(token.reviewer) },
        ],
      },
      capture: { stability_ms: 150, rescan_interval_s: 1 },
      model: { threads: 1 },
      lis: { lab_name: 'Northgate Haematology', retry_min_ms: 50, retry_max_ms: 200 },
    }),
  );
  const { config } = loadConfig(configFile, {
    BLASTWATCH_CAPTURE_DIR: capture,
    BLASTWATCH_DATA_DIR: join(root, 'data'),
    BLASTWATCH_MODEL_DIR: MODEL,
    BLASTWATCH_HTTP_PORT: '0',
    BLASTWATCH_DEVICE_ID: 'scope-e2e',
    BLASTWATCH_LIS_FILE_DIR: drop,
  });
  t.equal(config.specimen.assign, 'folder', 'images are filed by their capture sub-folder');
  const app = await createApp(config, createLogger({ level: 'error', pretty: false }));
  daemon.app = app;
  await app.start();
  const url = app.url.replace('://0.0.0.0:', '://127.0.0.1:');

  const call = async (who: keyof typeof token | null, method: string, path: string, body?: object) => {
    const res = await fetch(`${url}${path}`, {
      method,
      headers: {
        ...(who ? { authorization: `Bearer ${token[who]}` } : {}),
        ...(body ? { 'content-type': 'application/json' } : {}),
      },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
    return {
      status: res.status,
      type: res.headers.get('content-type'),
      bytes: Buffer.from(await res.arrayBuffer()),
    };
  };
  const json = async <T>(who: keyof typeof token | null, method: string, path: string, body?: object) => {
    const res = await call(who, method, path, body);
    return { status: res.status, body: JSON.parse(res.bytes.toString('utf8')) as T };
  };
  const hl7Files = () =>
    readdirSync(drop)
      .filter((n) => n.endsWith('.hl7'))
      .sort();

  t.equal(
    (await call(null, 'GET', '/api/specimens')).status,
    401,
    'the LAN-bound daemon asks who is calling',
  );

  // The camera files three fields under the accession's folder (written elsewhere, renamed in).
  mkdirSync(join(capture, ACCESSION));
  for (const [cls, name] of IMAGES) {
    copyFileSync(join(SAMPLES, cls, name), join(staging, name));
    renameSync(join(staging, name), join(capture, ACCESSION, name));
  }
  const specimen = await eventually(
    async () => {
      const list = await json<SpecimenJson[]>('viewer', 'GET', '/api/specimens');
      const s = list.body.find((x) => x.accession === ACCESSION);
      return s && s.counts.images === IMAGES.length ? s : undefined;
    },
    120_000,
    `the three images counted in specimen ${ACCESSION}`,
  );
  t.equal(specimen.sign_off, null);
  t.equal(
    specimen.counts.screened + specimen.counts.out_of_domain + specimen.counts.failed,
    IMAGES.length,
    'every image counted once: screened, out of domain or failed',
  );
  const id = specimen.id;

  // A viewer watches; signing is a reviewer's act.
  const byViewer = await json<{ error: string }>('viewer', 'POST', `/api/specimens/${id}/sign`, {
    verdict: 'suspicious',
    comment: 'viewer tries',
  });
  t.equal(byViewer.status, 403, "the viewer's token may not sign");
  t.match(byViewer.body.error, /needs the reviewer role/);
  const afterRefusal = await json<SpecimenDetailJson>('viewer', 'GET', `/api/specimens/${id}`);
  t.equal(afterRefusal.body.sign_off, null, 'the specimen stays unsigned');
  t.not(afterRefusal.body.status, 'signed');
  t.same(afterRefusal.body.sign_offs, []);
  t.same(readdirSync(drop), [], 'nothing reaches the LIS drop folder');

  // The reviewer signs; the name typed in the body is ignored for a named user.
  const signed = await json<SpecimenJson>('reviewer', 'POST', `/api/specimens/${id}/sign`, {
    verdict: 'suspicious',
    comment: 'Blast-like cells in 2 of 3 fields; refer for flow cytometry.',
    reviewer: 'typed-impostor',
  });
  t.equal(signed.status, 200, "the reviewer's token signs");
  t.equal(signed.body.status, 'signed');
  t.equal(signed.body.sign_off?.signer, REVIEWER, "signed with the reviewer's configured name");
  t.equal(signed.body.sign_off?.verdict, 'suspicious');

  await eventually(async () => (hl7Files().length > 0 ? true : undefined), 15_000, 'the first HL7 file');
  // The file is written first and the message marked delivered after it (at least once, never
  // lost), so the queue may still count it for a moment.
  const destinations = await eventually(
    async () => {
      const lis = await json<{ destinations: { destination: string; queued: number }[] }>(
        'viewer',
        'GET',
        '/api/lis',
      );
      return lis.body.destinations.every((d) => d.queued === 0) ? lis.body.destinations : undefined;
    },
    15_000,
    'the delivered message to leave the queue',
  );
  t.same(
    destinations.map((d) => [d.destination, d.queued]),
    [['file', 0]],
    'the file destination is the only one, and nothing waits in it',
  );
  const [first] = hl7Files();
  t.same(hl7Files(), [first], 'exactly one message for one signature');
  const firstText = readFileSync(join(drop, first!), 'utf8');
  const msg = new Message({ text: firstText });
  t.equal(msg.get('MSH.9.1').toString(), 'ORU');
  t.equal(msg.get('MSH.9.2').toString(), 'R01');
  const controlId = msg.get('MSH.10').toString();
  t.equal(first, `${controlId}.hl7`, 'the file is named by the message control id');
  t.match(controlId, new RegExp(`^${id}-[0-9a-f]{8}-1$`), 'specimen id, its key, version 1');
  t.equal(msg.get('MSH.3.2').toString(), 'scope-e2e');
  t.equal(msg.get('MSH.4').toString(), 'Northgate Haematology');
  t.equal(msg.get('ORC.2').toString(), ACCESSION, 'placer order = accession');
  t.equal(msg.get('OBR.2').toString(), ACCESSION, 'placer order = accession');
  t.equal(msg.get('OBR.3').toString(), ACCESSION, 'filler order = accession');
  t.equal(msg.get('OBR.25').toString(), 'F', 'final result');
  t.equal(msg.get('OBR.32.1.1').toString(), REVIEWER, 'principal result interpreter: the signer');
  const obx = observations(msg);
  const one = (code: string) => obx.find((o) => o.code === code);
  t.equal(one('VERDICT')?.value, 'suspicious', 'the signed verdict');
  t.equal(one('VERDICT')?.observer, REVIEWER);
  t.equal(one('SIGNED-BY')?.value, REVIEWER);
  t.equal(one('COMMENT')?.value, 'Blast-like cells in 2 of 3 fields; refer for flow cytometry.');
  t.equal(one('IMAGES-SCREENED')?.value, String(specimen.counts.screened), 'the counts the API showed');
  t.equal(one('AMENDMENT-REASON'), undefined);
  t.ok(obx.length > 0 && obx.every((o) => o.status === 'F'), 'every observation final');
  t.notMatch(
    firstText,
    /typed-impostor|vic-viewer/,
    'neither the typed name nor the viewer is in the message',
  );

  // The printable report of the signature.
  const pdf = await call('reviewer', 'GET', `/api/specimens/${id}/report.pdf`);
  t.equal(pdf.status, 200);
  t.equal(pdf.type, 'application/pdf');
  const report = await pdfText(pdf.bytes);
  t.match(report.text, ACCESSION);
  t.match(report.text, 'Verdict: Suspicious');
  t.match(report.text, `Signed by ${REVIEWER}`);

  // The amendment: a new signature, a new message with result status C.
  const amended = await json<SpecimenJson>('reviewer', 'POST', `/api/specimens/${id}/amend`, {
    verdict: 'no_suspicious_cells',
    comment: 'Smudge cells on second look.',
    reason: 'Field 1 re-read: smudge cells, not blasts',
    version: 1,
  });
  t.equal(amended.status, 200, "the reviewer's token amends");
  t.equal(amended.body.status, 'amended');
  t.equal(amended.body.sign_off?.version, 2);
  t.equal(amended.body.sign_off?.signer, REVIEWER);

  await eventually(async () => (hl7Files().length > 1 ? true : undefined), 15_000, 'the second HL7 file');
  t.equal(hl7Files().length, 2, 'one more message for the amendment');
  const second = hl7Files().find((n) => n !== first)!;
  const correction = new Message({ text: readFileSync(join(drop, second), 'utf8') });
  const secondId = correction.get('MSH.10').toString();
  t.equal(second, `${secondId}.hl7`);
  t.not(secondId, controlId, 'a control id of its own');
  t.match(secondId, new RegExp(`^${id}-[0-9a-f]{8}-2$`), 'the same specimen, version 2');
  t.equal(correction.get('OBR.2').toString(), ACCESSION);
  t.equal(correction.get('OBR.25').toString(), 'C', 'corrected result');
  const cobx = observations(correction);
  t.ok(cobx.length > 0 && cobx.every((o) => o.status === 'C'), 'every observation corrected');
  t.equal(cobx.find((o) => o.code === 'VERDICT')?.value, 'no_suspicious_cells');
  t.equal(
    cobx.find((o) => o.code === 'AMENDMENT-REASON')?.value,
    'Field 1 re-read: smudge cells, not blasts',
  );
  t.equal(cobx.find((o) => o.code === 'SIGNED-BY')?.value, REVIEWER);
  t.equal(readFileSync(join(drop, first!), 'utf8'), firstText, 'the first message file is unchanged');

  const amendedPdf = await pdfText((await call('reviewer', 'GET', `/api/specimens/${id}/report.pdf`)).bytes);
  t.match(amendedPdf.text, 'Verdict: No suspicious cells found');
  t.match(amendedPdf.text, `Signed by ${REVIEWER} (amendment, version 2)`);

  // The audit trail: a refusal by role happens before the specimen store is asked, so the
  // viewer's attempt is not in it (only a conflicting sign-off, 409, is audited there).
  const detail = await json<SpecimenDetailJson>('viewer', 'GET', `/api/specimens/${id}`);
  const trail = detail.body.audit.map((a) => [a.action, a.actor]);
  t.same(
    trail.filter(([action]) => action === 'signed' || action === 'amended'),
    [
      ['signed', REVIEWER],
      ['amended', REVIEWER],
    ],
    'the sign-off and the amendment, each under the reviewer',
  );
  t.notOk(
    detail.body.audit.some((a) => a.actor === VIEWER || a.actor === 'typed-impostor'),
    'no audit row under the viewer or the typed name',
  );
  t.notOk(
    detail.body.audit.some((a) => a.action === 'sign_refused'),
    'a role refusal is not a refused sign-off',
  );
  t.same(
    detail.body.sign_offs.map((s) => [s.version, s.signer, s.verdict]),
    [
      [1, REVIEWER, 'suspicious'],
      [2, REVIEWER, 'no_suspicious_cells'],
    ],
  );
});
