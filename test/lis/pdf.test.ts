import t from 'tap';
import sharp from 'sharp';
import { renderReportPdf } from '../../src/lis/pdf.js';
import { makeReport } from './fixtures.js';
import { pdfText } from './pdf-text.js';

const jpeg = (r: number) =>
  sharp({ create: { width: 64, height: 64, channels: 3, background: { r, g: 40, b: 120 } } })
    .jpeg()
    .toBuffer();

t.test('the report opens in a PDF reader and holds the verdict, the signer and the counts', async (t) => {
  const asked: number[] = [];
  const pdf = await renderReportPdf(makeReport(), {
    labName: 'City Hospital Haematology',
    thumbnails: async (id) => {
      asked.push(id);
      return id === 7 ? jpeg(200) : null; // result 3's thumbnail is gone: an empty frame, no failure
    },
  });
  t.equal(pdf.subarray(0, 5).toString(), '%PDF-');
  const { text, title } = await pdfText(pdf);
  t.equal(title, 'B-ALL screening report H26-0042');
  t.match(text, /Verdict: Suspicious/);
  t.match(text, /Signed by dr-lee/);
  t.match(text, /Screening aid, not a diagnosis/);
  t.match(text, /City Hospital Haematology/);
  t.match(text, /Accession: H26-0042/);
  t.match(text, /Flagged B-ALL 9/);
  t.match(text, /Classified Early Pre-B 4/);
  t.match(text, /Out of domain, read by a person 1/);
  t.match(text, /Out of domain, read as Pre-B 1/);
  t.match(text, /Withheld benign calls not read 0/);
  t.match(text, /75\.0 % \(95 % Wilson interval 46\.8 % to 91\.1 %\)/);
  t.match(text, /blastwatch-mobilenet_v2-early-fusion 2026\.11\.27\+58f4004b/);
  t.match(text, /field-07\.jpg/);
  t.match(text, /Read by a person, not screened by the model/);
  t.match(text, /field-09\.jpg\s*read as Pre-B by dr-lee/);
  t.same(asked, [7, 3, 9], 'the most suspicious images, in order, then the field a person read');
});

t.test('an amendment says so, with its reason', async (t) => {
  const pdf = await renderReportPdf(
    makeReport({ version: 2, verdict: 'no_suspicious_cells', reason: 'Smudge cells, not blasts' }),
    { labName: null, thumbnails: async () => null },
  );
  const { text } = await pdfText(pdf);
  t.match(text, /Verdict: No suspicious cells found/);
  t.match(text, /amendment, version 2/);
  t.match(text, /Reason for the amendment: Smudge cells, not blasts/);
});

t.test('readings are printed under the out-of-domain count, and only when there is one', async (t) => {
  const unread = await pdfText(
    await renderReportPdf(makeReport({ readings: { byClass: {}, unreadWithheld: 1 } }), {
      labName: null,
      thumbnails: async () => null,
    }),
  );
  t.match(unread.text, /Out of domain, read by a person 0/);
  t.notMatch(unread.text, /read as/, 'no class row without a reading');
  t.match(unread.text, /Withheld benign calls not read 1/);

  const report = makeReport({ readings: { byClass: {}, unreadWithheld: 0 } });
  const none = await pdfText(
    await renderReportPdf(
      { ...report, specimen: { ...report.specimen, counts: { ...report.specimen.counts, outOfDomain: 0 } } },
      { labName: null, thumbnails: async () => null },
    ),
  );
  t.match(none.text, /Out of the model domain 0/);
  t.notMatch(none.text, /read by a person|Withheld benign/, 'nothing to read, nothing printed');
});

t.test(
  'the camera warnings its images arrived under are printed, and only when there were any',
  async (t) => {
    const at = Date.parse('2026-11-27T09:10:00Z');
    const text = 'magnification changed? The red cells measure 5.81 px in radius';
    const warned = await pdfText(
      await renderReportPdf(
        {
          ...makeReport(),
          cameraWarnings: [{ watch: 'magnification', text, images: 12, firstAt: at, lastAt: at }],
        },
        { labName: null, thumbnails: async () => null },
      ),
    );
    t.match(
      warned.text,
      /Camera warnings while its images arrived\s*12 images: magnification changed\? The red cells measure 5\.81 px/,
    );
    const none = await pdfText(
      await renderReportPdf(makeReport(), { labName: null, thumbnails: async () => null }),
    );
    t.notMatch(none.text, /Camera warnings/, 'none: nothing printed');
  },
);

t.test('the pictures of fields read stop at the thumbnail limit, and say so', async (t) => {
  const images = Array.from({ length: 8 }, (_, i) => ({
    resultId: 100 + i,
    file: `read-${i}.jpg`,
    className: 'Benign',
    reviewer: 'dr-lee',
  }));
  const asked: number[] = [];
  const { text } = await pdfText(
    await renderReportPdf(makeReport({ readings: { byClass: { Benign: 8 }, unreadWithheld: 0, images } }), {
      labName: null,
      thumbnails: async (id) => {
        asked.push(id);
        return null;
      },
    }),
  );
  t.match(text, /Read by a person, not screened by the model \(first 6 of 8\)/);
  t.same(
    asked.filter((id) => id >= 100),
    [100, 101, 102, 103, 104, 105],
  );
});
