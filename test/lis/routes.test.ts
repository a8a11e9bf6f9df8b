import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify from 'fastify';
import t from 'tap';
import type { Specimen } from '../../src/domain/specimen.js';
import { createLis } from '../../src/lis/index.js';
import type { SpecimenImageRow } from '../../src/lis/csv.js';
import { specimenReportsFrom, type LisHttp, type SpecimenReports } from '../../src/lis/ports.js';
import { dashboardPlugin } from '../../src/serve/dashboard/plugin.js';
import { EMPTY_COUNTS } from '../../src/store/specimen-rows.js';
import { createMemoryDeps } from '../dashboard/memory-deps.js';
import {
  lisConfig,
  makeReport,
  type Teardown,
  noThumbnails,
  silentLog,
  tempStore,
  until,
} from './fixtures.js';
import { pdfText } from './pdf-text.js';

const signed = makeReport({ id: 42, accession: '=HYPERLINK("http://evil")' });
const open: Specimen = {
  ...makeReport({ id: 43 }).specimen,
  id: 43,
  status: 'open',
  finalVerdict: null,
  signOff: null,
};

const images: SpecimenImageRow[] = [
  {
    resultId: 7,
    file: '-2+3 "field, 7".jpg',
    status: 'done',
    className: 'Pro-B',
    pBall: 0.98,
    flagged: true,
    reviewedClass: null,
    capturedAt: Date.UTC(2026, 11, 3, 9, 1),
    processedAt: Date.UTC(2026, 11, 3, 9, 2),
  },
];

const specimens: SpecimenReports = {
  list: () => [{ ...signed.specimen, cameraWarned: ['colour_drift', 'magnification'] }, open],
  get: (id) => [signed.specimen, open].find((s) => s.id === id) ?? null,
  report: (id) => (id === 42 ? signed : null),
  images: (id) => (id === 42 ? images : id === 43 ? [] : null),
  signedReadings: (s) => (s.id === 42 ? { ...signed.readings, unreadWithheld: 2 } : null),
};

async function server(t: Teardown, lis: LisHttp) {
  const workDir = mkdtempSync(join(tmpdir(), 'bw-lis-http-'));
  t.teardown(() => rmSync(workDir, { recursive: true, force: true }));
  const deps = await createMemoryDeps({ workDir, auth: { loopback: true, token: null, users: [] } });
  const app = Fastify({ logger: false });
  await app.register(dashboardPlugin, { deps, uploadMaxBytes: 1024, lis });
  await app.ready();
  t.teardown(() => app.close());
  return app;
}

/** A write as the dashboard page makes it: its session cookie and CSRF token. */
async function post(app: Awaited<ReturnType<typeof server>>, url: string) {
  const host = 'localhost';
  const session = await app.inject({ url: '/api/dashboard/session', headers: { host } });
  const cookie = String([session.headers['set-cookie']].flat()[0]).split(';')[0]!;
  return app.inject({
    method: 'POST',
    url,
    headers: { host, cookie, 'x-csrf-token': session.json().csrfToken as string },
  });
}

t.test('the signed report as a PDF; 409 before signing, 404 for no specimen', async (t) => {
  const store = tempStore(t);
  const lis = createLis({ db: store.db, config: lisConfig(), log: silentLog, thumbnails: noThumbnails });
  const app = await server(t, { specimens, lis: null, renderPdf: lis.renderPdf });
  const res = await app.inject({ url: '/api/specimens/42/report.pdf' });
  t.equal(res.statusCode, 200);
  t.equal(res.headers['content-type'], 'application/pdf');
  t.match(
    res.headers['content-disposition'],
    /^attachment; filename="blastwatch-_HYPERLINK_http_evil_-v1\.pdf"$/,
  );
  const { text } = await pdfText(res.rawPayload);
  t.match(text, /Verdict: Suspicious/);
  t.match(text, /Signed by dr-lee/);
  t.equal((await app.inject({ url: '/api/specimens/43/report.pdf' })).statusCode, 409);
  t.equal((await app.inject({ url: '/api/specimens/44/report.pdf' })).statusCode, 404);
  t.equal((await app.inject({ url: '/api/specimens/abc/report.pdf' })).statusCode, 400);
});

t.test('CSV exports are RFC 4180 and cannot run formulas in a spreadsheet', async (t) => {
  const app = await server(t, { specimens, lis: null, renderPdf: async () => Buffer.alloc(0) });
  const all = await app.inject({ url: '/api/specimens.csv' });
  t.equal(all.statusCode, 200);
  t.match(all.headers['content-type'], /^text\/csv/);
  const lines = all.body.split('\r\n');
  t.equal(lines.length, 4, 'header, two specimens, final CRLF');
  t.match(lines[0], /^"id","accession","status",/);
  t.match(lines[0], /"class_Benign",.*"class_Early Pre-B","class_Pre-B","class_Pro-B"/, 'a column per class');
  t.match(
    lines[1],
    /^42,"'=HYPERLINK\(""http:\/\/evil""\)","signed","suspicious","suspicious",14,12,1,1,9,0\.75,/,
  );
  t.match(lines[1], /"dr-lee","2026-12-03T09:30:00\.000Z",1,/);
  t.match(lines[0], /,"signed_out_of_domain_read","signed_withheld_unread","camera_warned"$/);
  t.match(
    lines[1],
    /,1,2,"colour_drift magnification"$/,
    'the signature read one out-of-domain field and left two withheld ones unread; two watches warned',
  );
  t.match(lines[2], /^43,"H26-0042","open","suspicious",,/);
  t.match(lines[2], /,,,$/, 'unsigned and never warned: nothing to say yet');

  const one = await app.inject({ url: '/api/specimens/42/images.csv' });
  t.equal(one.statusCode, 200);
  const rows = one.body.split('\r\n');
  t.equal(
    rows[0],
    '"specimen_id","accession","result_id","file","status","class","p_ball","flagged","reviewed_class","captured_at","processed_at"',
  );
  t.equal(
    rows[1],
    `42,"'=HYPERLINK(""http://evil"")",7,"'-2+3 ""field, 7"".jpg","done","Pro-B",0.98,true,,"2026-12-03T09:01:00.000Z","2026-12-03T09:02:00.000Z"`,
  );
  t.equal((await app.inject({ url: '/api/specimens/99/images.csv' })).statusCode, 404);
});

t.test('without the specimen store the report routes say so', async (t) => {
  const app = await server(t, { specimens: null, lis: null, renderPdf: async () => Buffer.alloc(0) });
  const res = await app.inject({ url: '/api/specimens.csv' });
  t.equal(res.statusCode, 503);
  t.match(res.json().error, /specimens are not available/);
  const off = await app.inject({ url: '/api/lis' });
  t.same(off.json(), { enabled: false, destinations: [] });
  t.equal((await post(app, '/api/lis/messages/1/retry')).statusCode, 404);
});

t.test('/api/lis shows each destination; a held message is released by POST .../retry', async (t) => {
  const store = tempStore(t);
  const dir = join(mkdtempSync(join(tmpdir(), 'bw-lis-drop-')), 'missing');
  const lis = createLis({
    db: store.db,
    config: lisConfig({
      file_dir: dir,
      fhir: { base_url: 'http://127.0.0.1:9/fhir', token: 'secret-abc', timeout_ms: 500 },
    }),
    log: silentLog,
    thumbnails: noThumbnails,
    pollMs: 50,
  });
  store.db.transaction(() => lis.onSignOff(signed))();
  const fhirRow = lis.outbox.forSpecimen(42).find((m) => m.destination === 'fhir')!;
  lis.outbox.markHeld(fhirRow.id, 'FHIR server answered 422: Unknown accession');
  lis.delivery!.start();
  t.teardown(() => lis.delivery!.stop());
  const app = await server(t, { specimens, lis: lis.delivery, renderPdf: lis.renderPdf });
  await until(() => lis.delivery!.status()[0]?.lastError !== null, 5000, 'a file error');

  const res = await app.inject({ url: '/api/lis' });
  t.equal(res.statusCode, 200);
  const body = res.json();
  t.equal(body.enabled, true);
  const [file, fhir] = body.destinations;
  t.equal(file.destination, 'file');
  t.equal(file.target, dir);
  t.equal(file.connected, false);
  t.equal(file.queued, 1);
  t.match(file.lastError, /ENOENT/);
  t.equal(fhir.destination, 'fhir');
  t.equal(fhir.target, 'http://127.0.0.1:9/fhir', 'the URL, never the token');
  t.notMatch(res.body, /secret-abc/);
  t.equal(fhir.held.length, 1);
  t.same(
    { id: fhir.held[0].id, accession: fhir.held[0].accession, lastError: fhir.held[0].lastError },
    {
      id: fhirRow.id,
      accession: '=HYPERLINK("http://evil")',
      lastError: 'FHIR server answered 422: Unknown accession',
    },
  );

  const anonymous = await app.inject({ method: 'POST', url: `/api/lis/messages/${fhirRow.id}/retry` });
  t.equal(anonymous.statusCode, 403, 'a write needs a session: not any page can release it');
  const retried = await post(app, `/api/lis/messages/${fhirRow.id}/retry`);
  t.equal(retried.statusCode, 200);
  t.equal(retried.json().state, 'pending');
  t.equal(lis.outbox.get(fhirRow.id)?.state, 'pending');
  const again = await post(app, `/api/lis/messages/${fhirRow.id}/retry`);
  t.equal(again.statusCode, 409, 'only a held message can be released');
});

t.test(
  'the port over the specimen store: latest report of a signed specimen, images by P(B-ALL)',
  async (t) => {
    const asked: unknown[] = [];
    const port = specimenReportsFrom({
      specimens: {
        get: (id) => [signed.specimen, open].find((s) => s.id === id),
        list: () => [signed.specimen, open],
      },
      signOffs: { report: (s) => ({ ...signed, specimen: s }) },
      results: {
        list: (q) => {
          asked.push(q);
          return [
            {
              id: 7,
              file: 'a.jpg',
              status: 'done',
              className: 'Pro-B',
              pBall: 0.9,
              flag: true,
              capturedAt: null,
              processedAt: 5,
              review: { className: 'Pre-B' },
            },
          ];
        },
        outOfDomainReadings: (specimenId, asOf) => {
          asked.push({ readingsOf: specimenId, asOf });
          return { byClass: { 'Pre-B': 1 }, unreadWithheld: 0, images: [] };
        },
      },
    });
    t.equal(port.report(42)?.signOff.signer, 'dr-lee');
    t.equal(port.report(43), null, 'not signed');
    t.equal(port.report(99), null, 'unknown');
    t.equal(port.images(99), null);
    t.same(port.images(42), [
      {
        resultId: 7,
        file: 'a.jpg',
        status: 'done',
        className: 'Pro-B',
        pBall: 0.9,
        flagged: true,
        reviewedClass: 'Pre-B',
        capturedAt: null,
        processedAt: 5,
      },
    ]);
    t.match(asked, [{ specimen: 42, order: 'p_ball' }]);
    t.equal(port.signedReadings(open), null, 'unsigned: no readings of a signature');
    t.same(port.signedReadings(signed.specimen)?.byClass, { 'Pre-B': 1 });
    t.match(asked.at(-1), { readingsOf: 42, asOf: signed.signOff.signedAt }, 'as at the latest signature');
    t.equal(port.list().length, 2);
  },
);

t.test("the CSV export lists every specimen, not the dashboard list's thousand", async (t) => {
  const store = tempStore(t);
  const insert = store.db.prepare(
    `INSERT INTO specimens (accession, status, suggested_verdict, counts, created_at, updated_at)
     VALUES (?, 'awaiting_signoff', 'insufficient', ?, ?, ?)`,
  );
  const counts = JSON.stringify(EMPTY_COUNTS);
  store.db.transaction(() => {
    for (let i = 0; i < 1005; i++) insert.run(`H26-${String(i).padStart(5, '0')}`, counts, i, i);
  })();
  t.equal(specimenReportsFrom(store).list().length, 1005);
  t.equal(store.specimens.list().length, 200, 'the list keeps its default page');
});
