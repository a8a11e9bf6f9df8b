import PDFDocument from 'pdfkit';
import {
  describeRule,
  readCount,
  type OutOfDomainReadings,
  type SpecimenReport,
} from '../domain/specimen.js';
import type { ThumbnailSource } from './thumbnails.js';
import {
  cameraWarningLine,
  modelLimits,
  percent,
  SCREENING_DISCLAIMER,
  VERDICT_LABEL,
} from './vocabulary.js';

/** The JPEG thumbnail of a result, or null when it is gone (retention, media pruned). */
export interface PdfOptions {
  labName: string | null;
  thumbnails: ThumbnailSource;
  /** How many of the most suspicious images to print (default 6). */
  maxThumbnails?: number;
}

const MARGIN = 50;
const GREY = '#555555';

function isoMinute(ms: number | null): string {
  return ms === null ? '-' : `${new Date(ms).toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

/**
 * The printable report of one signature (A4, pdfkit, no browser): who and what, the signed
 * verdict and its signer, the counts, the most suspicious images, the model and its limits, and
 * that it is a screening aid. Dates come from the report, so the same signature prints the same.
 */
export async function renderReportPdf(report: SpecimenReport, opts: PdfOptions): Promise<Buffer> {
  const { specimen, signOff } = report;
  const doc = new PDFDocument({
    size: 'A4',
    margin: MARGIN,
    info: {
      Title: `B-ALL screening report ${specimen.accession}`,
      Author: `blastwatch ${report.deviceId}`,
      Subject: 'Screening aid, not a diagnosis',
      CreationDate: new Date(signOff.signedAt),
    },
  });
  const chunks: Buffer[] = [];
  doc.on('data', (c: Buffer) => chunks.push(c));
  const done = new Promise<Buffer>((resolve, reject) => {
    doc.on('end', () => resolve(Buffer.concat(chunks)));
    doc.on('error', reject);
  });

  doc.font('Helvetica-Bold').fontSize(16).text('B-ALL screening report');
  doc
    .font('Helvetica')
    .fontSize(10)
    .fillColor('#b00000')
    .text('Screening aid, not a diagnosis.')
    .fillColor('black');
  doc.moveDown(0.6);
  const facts: [string, string][] = [
    ['Laboratory', opts.labName ?? '-'],
    ['Device', `blastwatch ${report.deviceId}`],
    ['Accession', specimen.accession],
    ['First image', isoMinute(specimen.createdAt)],
    ['Finished', isoMinute(specimen.finishedAt)],
    ['Signed', isoMinute(signOff.signedAt)],
  ];
  for (const [k, v] of facts)
    doc.font('Helvetica-Bold').text(`${k}: `, { continued: true }).font('Helvetica').text(v);

  doc.moveDown(0.8);
  doc.font('Helvetica-Bold').fontSize(13).text(`Verdict: ${VERDICT_LABEL[signOff.verdict]}`);
  doc.font('Helvetica').fontSize(10);
  doc.text(`Signed by ${signOff.signer}${report.amended ? ` (amendment, version ${signOff.version})` : ''}`);
  if (report.amended && signOff.reason) doc.text(`Reason for the amendment: ${signOff.reason}`);
  if (signOff.comment) doc.text(`Comment: ${signOff.comment}`);
  doc
    .fillColor(GREY)
    .text(`Suggested by the rule: ${VERDICT_LABEL[signOff.suggestedVerdict]}. ${describeRule(report.rule)}`);
  doc.fillColor('black');

  doc.moveDown(0.8);
  writeCounts(doc, report);
  await writeThumbnails(doc, report, opts);

  writeCameraWarnings(doc, report);
  doc.moveDown(0.8);
  doc.font('Helvetica-Bold').fontSize(10).text('Model');
  doc.font('Helvetica').text(modelLimits(report));
  doc.moveDown(0.5);
  doc.fillColor(GREY).fontSize(9).text(SCREENING_DISCLAIMER);
  doc.end();
  return done;
}

function writeCounts(doc: PDFKit.PDFDocument, report: SpecimenReport): void {
  const { counts, flaggedShare } = report.specimen;
  const { readings } = report;
  doc.font('Helvetica-Bold').fontSize(10).text('Counts');
  doc.font('Helvetica');
  const share = flaggedShare
    ? `${percent(flaggedShare.value)} (95 % Wilson interval ${percent(flaggedShare.low)} to ${percent(flaggedShare.high)})`
    : '-';
  const rows: [string, string][] = [
    ['Images', String(counts.images)],
    ['Screened', String(counts.screened)],
    ['Out of the model domain', String(counts.outOfDomain)],
    ...(counts.outOfDomain > 0 ? readingRows(readings) : []),
    ['Unreadable', String(counts.failed)],
    ['Flagged B-ALL', String(counts.flagged)],
    ['Flagged share', share],
    ...Object.entries(counts.byClass).map(([name, n]): [string, string] => [`Classified ${name}`, String(n)]),
  ];
  for (const [k, v] of rows) {
    const y = doc.y;
    doc.text(k, MARGIN, y, { width: 200 });
    doc.text(v, MARGIN + 210, y);
  }
  doc.x = MARGIN;
}

/**
 * The camera warnings its images arrived under: the counts and the suggestion came from a camera
 * that may no longer have been the training camera's, which the reader of the report must know.
 */
function writeCameraWarnings(doc: PDFKit.PDFDocument, report: SpecimenReport): void {
  const warnings = report.cameraWarnings ?? [];
  if (warnings.length === 0) return;
  doc.moveDown(0.8);
  doc.font('Helvetica-Bold').fontSize(10).text('Camera warnings while its images arrived');
  doc.font('Helvetica');
  for (const w of warnings)
    doc.text(cameraWarningLine(w), MARGIN, doc.y, {
      width: doc.page.width - 2 * MARGIN,
    });
}

/** The people's side of the out-of-domain fields, printed under their count. */
function readingRows(readings: OutOfDomainReadings): [string, string][] {
  return [
    ['Out of domain, read by a person', String(readCount(readings))],
    ...Object.entries(readings.byClass).map(([name, n]): [string, string] => [
      `Out of domain, read as ${name}`,
      String(n),
    ]),
    ['Withheld benign calls not read', String(readings.unreadWithheld)],
  ];
}

/** One picture of the report: a result's thumbnail with two caption lines. */
interface Picture {
  resultId: number;
  caption: string;
  detail: string;
}

async function writeThumbnails(
  doc: PDFKit.PDFDocument,
  report: SpecimenReport,
  opts: PdfOptions,
): Promise<void> {
  const max = opts.maxThumbnails ?? 6;
  await writePictures(
    doc,
    'Most suspicious images',
    report.topImages.slice(0, max).map((image) => ({
      resultId: image.resultId,
      caption: image.file,
      detail: `${image.className ?? '-'}, P(B-ALL) ${image.pBall === null ? '-' : image.pBall.toFixed(2)}`,
    })),
    opts,
  );
  // The fields a person read where the model gave no verdict: what the counts leave out, shown.
  const read = report.readings.images;
  await writePictures(
    doc,
    `Read by a person, not screened by the model${read.length > max ? ` (first ${max} of ${read.length})` : ''}`,
    read.slice(0, max).map((image) => ({
      resultId: image.resultId,
      caption: image.file,
      detail: `read as ${image.className} by ${image.reviewer}`,
    })),
    opts,
  );
}

async function writePictures(
  doc: PDFKit.PDFDocument,
  title: string,
  pictures: readonly Picture[],
  opts: PdfOptions,
): Promise<void> {
  if (pictures.length === 0) return;
  doc.moveDown(0.8);
  doc.font('Helvetica-Bold').fontSize(10).text(title, MARGIN);
  const size = 150;
  const gap = 15;
  let x = MARGIN;
  let y = doc.y + 5;
  if (y + size + 30 > doc.page.height - MARGIN) {
    doc.addPage();
    y = MARGIN;
  }
  for (const picture of pictures) {
    const bytes = await opts.thumbnails(picture.resultId);
    if (bytes) doc.image(bytes, x, y, { fit: [size, size] });
    else doc.rect(x, y, size, size).stroke('#cccccc');
    doc.font('Helvetica').fontSize(7).fillColor(GREY);
    doc.text(picture.caption, x, y + size + 2, { width: size, lineBreak: false, ellipsis: true });
    doc.text(picture.detail, x, y + size + 11, { width: size });
    doc.fillColor('black');
    x += size + gap;
    if (x + size > doc.page.width - MARGIN) {
      x = MARGIN;
      y += size + 30;
      if (y + size + 30 > doc.page.height - MARGIN) {
        doc.addPage();
        y = MARGIN;
      }
    }
  }
  doc.x = MARGIN;
  doc.y = x === MARGIN ? y : y + size + 30;
  doc.fontSize(10);
}
