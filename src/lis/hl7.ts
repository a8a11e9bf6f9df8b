import { HL7_2_5_1, type Message } from 'node-hl7-client';
import { CAMERA_WATCH_LABEL } from '../domain/camera-warning.js';
import { readCount, type SpecimenReport } from '../domain/specimen.js';
import { messageControlId } from './ids.js';
import {
  cameraWarningsText,
  HL7_LOCAL_CODING_SYSTEM,
  OBSERVATION_CODES,
  SCREEN_CODE,
  SCREENING_DISCLAIMER,
  VERDICT_TEXT,
  modelLimits,
  readingsText,
} from './vocabulary.js';

/** What the lab's interface expects in the header, from config `lis`. */
export interface Hl7Options {
  labName: string | null;
  receivingApplication: string | null;
  receivingFacility: string | null;
}

/** HL7 v2 delimiters inside a text value, written as escape sequences (v2.5.1 §2.7). */
export function escapeHl7(text: string): string {
  return (
    text
      .replace(/\\/g, '\\E\\')
      .replace(/\|/g, '\\F\\')
      .replace(/\^/g, '\\S\\')
      .replace(/&/g, '\\T\\')
      .replace(/~/g, '\\R\\')
      // A segment ends at CR: a line break inside a value would cut the message.
      // eslint-disable-next-line no-control-regex
      .replace(/[\u0000-\u001f\u007f]+/g, ' ')
  );
}

/** HL7 DTM in UTC with an explicit offset, so the time means the same on every LIS. */
export function hl7Time(ms: number): string {
  const d = new Date(ms);
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  return (
    `${p(d.getUTCFullYear(), 4)}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}` +
    `${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}+0000`
  );
}

type Segment = ReturnType<Message['addSegment']>;

/** Sets a coded element: identifier ^ text ^ coding system. */
function setCoded(seg: Segment, field: number, code: { code: string; text: string }): void {
  seg.set(`${field}.1`, escapeHl7(code.code));
  seg.set(`${field}.2`, escapeHl7(code.text));
  seg.set(`${field}.3`, HL7_LOCAL_CODING_SYSTEM);
}

interface ObxRow {
  type: 'CWE' | 'NM' | 'ST' | 'TX';
  code: { code: string; text: string };
  subId?: string;
  /** For CWE: the coded value; otherwise the value as text. */
  value: string | { code: string; text: string };
  units?: string;
  /** OBX-16: the person who stands behind the value. */
  observer?: string;
}

function observationRows(report: SpecimenReport): ObxRow[] {
  const { specimen, signOff } = report;
  const c = specimen.counts;
  const codes = OBSERVATION_CODES;
  const rows: ObxRow[] = [
    {
      type: 'CWE',
      code: codes.verdict,
      value: { code: signOff.verdict, text: VERDICT_TEXT[signOff.verdict] },
      observer: signOff.signer,
    },
    {
      type: 'CWE',
      code: codes.suggestedVerdict,
      value: { code: signOff.suggestedVerdict, text: VERDICT_TEXT[signOff.suggestedVerdict] },
    },
    { type: 'NM', code: codes.imagesScreened, value: String(c.screened), units: '{images}' },
    { type: 'NM', code: codes.imagesOutOfDomain, value: String(c.outOfDomain), units: '{images}' },
    { type: 'NM', code: codes.imagesFailed, value: String(c.failed), units: '{images}' },
    { type: 'NM', code: codes.imagesFlagged, value: String(c.flagged), units: '{images}' },
  ];
  if (specimen.flaggedShare)
    rows.push({
      type: 'NM',
      code: codes.flaggedShare,
      value: (Math.round(specimen.flaggedShare.value * 10000) / 100).toString(),
      units: '%',
    });
  Object.entries(c.byClass).forEach(([name, n], i) =>
    rows.push({
      type: 'NM',
      code: { code: codes.classCount.code, text: `Screened images classified ${name}` },
      subId: String(i + 1),
      value: String(n),
      units: '{images}',
    }),
  );
  const readings = report.readings;
  rows.push({ type: 'NM', code: codes.imagesRead, value: String(readCount(readings)), units: '{images}' });
  Object.entries(readings.byClass).forEach(([name, n], i) =>
    rows.push({
      type: 'NM',
      code: { code: codes.readClassCount.code, text: `Images out of the model domain read as ${name}` },
      subId: String(i + 1),
      value: String(n),
      units: '{images}',
    }),
  );
  rows.push({
    type: 'NM',
    code: codes.withheldUnread,
    value: String(readings.unreadWithheld),
    units: '{images}',
  });
  // One pair per camera warning, sharing its sub-id: which watch (coded) and how many images.
  (report.cameraWarnings ?? []).forEach((w, i) => {
    const subId = String(i + 1);
    rows.push(
      {
        type: 'CWE',
        code: codes.cameraWarning,
        subId,
        value: { code: w.watch, text: CAMERA_WATCH_LABEL[w.watch] },
      },
      { type: 'NM', code: codes.cameraWarnedImages, subId, value: String(w.images), units: '{images}' },
    );
  });
  rows.push({ type: 'ST', code: codes.model, value: `${report.model.name} ${report.model.version}` });
  rows.push({ type: 'ST', code: codes.signer, value: signOff.signer, observer: signOff.signer });
  if (signOff.comment) rows.push({ type: 'TX', code: codes.comment, value: signOff.comment });
  if (report.amended && signOff.reason)
    rows.push({ type: 'TX', code: codes.amendmentReason, value: signOff.reason });
  return rows;
}

/**
 * The ORU^R01 (v2.5.1) of one signature of a specimen. Patient segments (PID, PV1) are left out:
 * blastwatch knows the accession number only, and the LIS files the result against its order by
 * the placer/filler order number (ORC-2/3, OBR-2/3 = accession). Nothing is invented to fill a
 * required field of a segment it does not need to send.
 */
export function buildOruR01(report: SpecimenReport, opts: Hl7Options): string {
  const { specimen, signOff, deviceId } = report;
  const status = report.amended ? 'C' : 'F';
  const signedAt = hl7Time(signOff.signedAt);
  const accession = escapeHl7(specimen.accession);

  // The library's builder checks the header against the v2.5.1 tables (message type, processing
  // id, version); the values it limits to the older field lengths are set afterwards.
  const builder = new HL7_2_5_1({ hardError: true });
  builder.buildMSH({
    msh_3: 'blastwatch',
    msh_9_1: 'ORU',
    msh_9_2: 'R01',
    msh_9_3: 'ORU_R01',
    msh_10: messageControlId(report),
    msh_11_1: 'P',
  } as Parameters<HL7_2_5_1['buildMSH']>[0]);
  const msg = builder.toMessage();
  // MSH-3 = blastwatch ^ device id ^ L (a local identifier): which microscope sent it.
  msg.set('MSH.3.2', escapeHl7(deviceId));
  msg.set('MSH.3.3', 'L');
  if (opts.labName) msg.set('MSH.4', escapeHl7(opts.labName));
  if (opts.receivingApplication) msg.set('MSH.5', escapeHl7(opts.receivingApplication));
  if (opts.receivingFacility) msg.set('MSH.6', escapeHl7(opts.receivingFacility));
  msg.set('MSH.7', signedAt);

  const orc = msg.addSegment('ORC');
  orc.set('1', 'RE'); // observations to follow
  orc.set('2', accession);
  orc.set('3', accession);
  orc.set('5', 'CM'); // order completed
  orc.set('9', signedAt);

  const obr = msg.addSegment('OBR');
  obr.set('1', '1');
  obr.set('2', accession);
  obr.set('3', accession);
  setCoded(obr, 4, SCREEN_CODE);
  obr.set('7', hl7Time(specimen.createdAt));
  obr.set('8', hl7Time(specimen.finishedAt ?? signOff.signedAt));
  obr.set('22', signedAt);
  obr.set('24', 'HM'); // diagnostic service section: hematology (table 0074)
  obr.set('25', status);
  obr.set('32.1.1', escapeHl7(signOff.signer));

  // The readings' and the camera warnings' OBX rows in words too: an LIS that prints the notes
  // shows them to the reader.
  const notes = [SCREENING_DISCLAIMER, modelLimits(report), readingsText(report), cameraWarningsText(report)];
  notes.filter((text) => text !== '').forEach((text, i) => addNote(msg, i + 1, text));

  observationRows(report).forEach((row, i) => {
    const obx = msg.addSegment('OBX');
    obx.set('1', String(i + 1));
    obx.set('2', row.type);
    setCoded(obx, 3, row.code);
    if (row.subId) obx.set('4', row.subId);
    if (typeof row.value === 'string') obx.set('5', escapeHl7(row.value));
    else setCoded(obx, 5, row.value);
    if (row.units) {
      obx.set('6.1', escapeHl7(row.units));
      obx.set('6.3', 'UCUM');
    }
    obx.set('11', status);
    obx.set('14', signedAt);
    if (row.observer) obx.set('16.1', escapeHl7(row.observer));
    obx.set('18.1', escapeHl7(deviceId));
    obx.set('18.2', 'blastwatch');
  });
  return msg.toString();
}

function addNote(msg: Message, setId: number, text: string): void {
  const nte = msg.addSegment('NTE');
  nte.set('1', String(setId));
  nte.set('2', 'L'); // source: ancillary (filler) department
  nte.set('3', escapeHl7(text));
}
