import { readCount, type OutOfDomainReadings, type Specimen } from '../domain/specimen.js';

/**
 * CSV exports of specimens and of a specimen's images (RFC 4180: CRLF line ends, every text field
 * quoted, quotes doubled). Text that a spreadsheet would run as a formula (starting with = + - @,
 * tab or CR) gets a leading apostrophe: accessions and file names come from outside and must not
 * execute on the reviewer's machine. Numbers are written as numbers.
 */

/** One image of a specimen as the export lists it. */
export interface SpecimenImageRow {
  resultId: number;
  file: string;
  status: string;
  className: string | null;
  pBall: number | null;
  flagged: boolean | null;
  reviewedClass: string | null;
  capturedAt: number | null;
  processedAt: number | null;
}

export type CsvCell = string | number | boolean | null | undefined;

export function csvCell(value: CsvCell): string {
  if (value === null || value === undefined) return '';
  if (typeof value === 'number') return Number.isFinite(value) ? String(value) : '';
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  const text = /^[=+\-@\t\r]/.test(value) ? `'${value}` : value;
  return `"${text.replace(/"/g, '""')}"`;
}

/** A whole table: the header row, then one row per entry, CRLF line ends. */
export function csvTable(header: readonly string[], rows: readonly CsvCell[][]): string {
  const lines = [header.map(csvCell).join(',')];
  for (const row of rows) lines.push(row.map(csvCell).join(','));
  return lines.join('\r\n') + '\r\n';
}

const isoOrNull = (ms: number | null | undefined) =>
  ms === null || ms === undefined ? null : new Date(ms).toISOString();

/**
 * One row per specimen; one `class_<name>` column per class, in the given (model) order. Two
 * columns say what the latest signature's report said of the out-of-domain fields (empty while
 * unsigned): how many a person had read, and how many withheld benign calls nobody had; the last
 * names the camera watches that warned while its images arrived (src/domain/camera-warning.ts).
 */
export function specimensCsv(
  specimens: readonly Specimen[],
  classNames: readonly string[],
  signedReadings: (specimen: Specimen) => OutOfDomainReadings | null = () => null,
): string {
  const classes = [...classNames];
  for (const s of specimens)
    for (const name of Object.keys(s.counts.byClass)) if (!classes.includes(name)) classes.push(name);
  const header = [
    'id',
    'accession',
    'status',
    'suggested_verdict',
    'final_verdict',
    'images',
    'screened',
    'out_of_domain',
    'failed',
    'flagged',
    'flagged_share',
    'flagged_share_low',
    'flagged_share_high',
    ...classes.map((c) => `class_${c}`),
    'signed_by',
    'signed_at',
    'sign_off_version',
    'created_at',
    'finished_at',
    'signed_out_of_domain_read',
    'signed_withheld_unread',
    'camera_warned',
  ];
  const rows = specimens.map((s): CsvCell[] => {
    const readings = signedReadings(s);
    return [
      s.id,
      s.accession,
      s.status,
      s.suggestedVerdict,
      s.finalVerdict,
      s.counts.images,
      s.counts.screened,
      s.counts.outOfDomain,
      s.counts.failed,
      s.counts.flagged,
      s.flaggedShare?.value,
      s.flaggedShare?.low,
      s.flaggedShare?.high,
      ...classes.map((c) => s.counts.byClass[c] ?? 0),
      s.signOff?.signer,
      isoOrNull(s.signOff?.signedAt),
      s.signOff?.version,
      isoOrNull(s.createdAt),
      isoOrNull(s.finishedAt),
      readings ? readCount(readings) : null,
      readings?.unreadWithheld,
      s.cameraWarned?.join(' '),
    ];
  });
  return csvTable(header, rows);
}

/** One row per image of a specimen, most suspicious first as given. */
export function specimenImagesCsv(specimen: Specimen, images: readonly SpecimenImageRow[]): string {
  const header = [
    'specimen_id',
    'accession',
    'result_id',
    'file',
    'status',
    'class',
    'p_ball',
    'flagged',
    'reviewed_class',
    'captured_at',
    'processed_at',
  ];
  const rows = images.map((i): CsvCell[] => [
    specimen.id,
    specimen.accession,
    i.resultId,
    i.file,
    i.status,
    i.className,
    i.pBall,
    i.flagged,
    i.reviewedClass,
    isoOrNull(i.capturedAt),
    isoOrNull(i.processedAt),
  ]);
  return csvTable(header, rows);
}
