/**
 * The specimen: one patient's smear, known to the lab by its accession number. A hematologist
 * reports specimens, not images; the daemon groups each image's result into one, aggregates live,
 * suggests a verdict by an explicit rule, and a reviewer signs it.
 */
import type { CameraWatch, SpecimenCameraWarning } from './camera-warning.js';

/** open: images may still arrive; awaiting_signoff: finished, not signed; signed; amended: signed again after a change. */
export type SpecimenStatus = 'open' | 'awaiting_signoff' | 'signed' | 'amended';

/** A screen never says "negative": the most it says is that it found nothing suspicious. */
export type SpecimenVerdict = 'suspicious' | 'insufficient' | 'no_suspicious_cells';

export const SPECIMEN_VERDICTS: readonly SpecimenVerdict[] = [
  'suspicious',
  'insufficient',
  'no_suspicious_cells',
];

/** How an image came to belong to its specimen. */
export type AssignmentSource = 'folder' | 'pattern' | 'session' | 'upload' | 'manual';

export type UserRole = 'viewer' | 'reviewer' | 'admin';

export interface SpecimenCounts {
  /** Every image assigned to the specimen, whatever its outcome. */
  images: number;
  /** Images the model gave a verdict on (in domain, classified). */
  screened: number;
  outOfDomain: number;
  failed: number;
  /** Screened images flagged B-ALL. */
  flagged: number;
  /** Screened images per predicted class name. */
  byClass: Record<string, number>;
}

/** The rule that turns counts into a suggested verdict (config `specimen.rule`). */
export interface VerdictRule {
  /** Fewer screened images than this (and nothing flagged) is `insufficient`. */
  minScreened: number;
  /** At least this many flagged images is `suspicious`. */
  minFlagged: number;
  /** A flagged share of screened images at or above this is `suspicious`. */
  minFlaggedShare: number;
}

/**
 * The suggested verdict. A flagged image is never hidden by a small count: `suspicious` wins over
 * `insufficient`.
 */
export function suggestVerdict(
  c: Pick<SpecimenCounts, 'screened' | 'flagged'>,
  rule: VerdictRule,
): SpecimenVerdict {
  const share = c.screened > 0 ? c.flagged / c.screened : 0;
  if (c.flagged > 0 && (c.flagged >= rule.minFlagged || share >= rule.minFlaggedShare)) return 'suspicious';
  if (c.screened < rule.minScreened) return 'insufficient';
  return 'no_suspicious_cells';
}

/** The rule in words, as the dashboard and the report show it. */
export function describeRule(rule: VerdictRule): string {
  const share = `${Math.round(rule.minFlaggedShare * 1000) / 10} %`;
  return (
    `Suspicious when at least ${rule.minFlagged} screened image${rule.minFlagged === 1 ? ' is' : 's are'} flagged B-ALL ` +
    `or the flagged share is at least ${share}; insufficient when fewer than ${rule.minScreened} images were screened; ` +
    `otherwise no suspicious cells found.`
  );
}

/**
 * Wilson score interval for a binomial proportion (Wilson 1927), 95 % by default (z = 1.959964).
 * Well behaved at 0 and n, unlike the normal approximation, which matters for small specimens.
 */
export function wilsonInterval(
  successes: number,
  n: number,
  z = 1.959963984540054,
): { low: number; high: number } {
  if (n <= 0) return { low: 0, high: 1 };
  const p = successes / n;
  const z2 = z * z;
  const denom = 1 + z2 / n;
  const centre = (p + z2 / (2 * n)) / denom;
  const half = (z * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n))) / denom;
  return { low: Math.max(0, centre - half), high: Math.min(1, centre + half) };
}

export interface SpecimenSignOff {
  version: number;
  verdict: SpecimenVerdict;
  comment: string | null;
  /** Required for an amendment (version > 1). */
  reason: string | null;
  signer: string;
  signedAt: number;
  /** The model's suggestion at the moment of signing. */
  suggestedVerdict: SpecimenVerdict;
}

export interface Specimen {
  id: number;
  accession: string;
  status: SpecimenStatus;
  suggestedVerdict: SpecimenVerdict;
  /** Null until signed. */
  finalVerdict: SpecimenVerdict | null;
  counts: SpecimenCounts;
  /** 95 % Wilson interval of flagged / screened. */
  flaggedShare: { value: number; low: number; high: number } | null;
  createdAt: number;
  updatedAt: number;
  finishedAt: number | null;
  /** The latest sign-off (version 1 = first signature, higher = amendments). */
  signOff: SpecimenSignOff | null;
  /** One more on every change (the MQTT change feed's sequence per specimen). */
  revision?: number;
  /** A session ("Start specimen") is open on it: new captures belong to it until "Finish". */
  sessionOpen?: boolean;
  /**
   * Its out-of-domain fields that ask for a person (src/domain/review.ts) and nobody has read yet,
   * where the specimen was read for a person to scan (the list): the counts leave them out.
   */
  unreadWithheld?: number;
  /** The camera watches that warned while its images arrived, where read for the list. */
  cameraWarned?: CameraWatch[];
}

/**
 * What people read of a specimen's out-of-domain fields, up to the moment of a signature. The
 * counts leave those fields out (the model gave them no verdict), so a class a person recorded for
 * one of them reaches the laboratory only through this; and a withheld benign call that nobody
 * read is said, not left for the reader of the report to infer.
 */
export interface OutOfDomainReadings {
  /** Out-of-domain fields with a reading, per the class read (each field's latest reading). */
  byClass: Record<string, number>;
  /** Out-of-domain fields that ask for a person (src/domain/review.ts) and had no reading. */
  unreadWithheld: number;
  /** The fields read, in the order they were read, for the report's pictures. */
  images: Array<{ resultId: number; file: string; className: string; reviewer: string }>;
}

/** How many out-of-domain fields were read, whatever the class. */
export const readCount = (r: OutOfDomainReadings): number =>
  Object.values(r.byClass).reduce((sum, n) => sum + n, 0);

/**
 * What a signed (or amended) specimen sends to the laboratory information system: everything the
 * HL7 message, the FHIR bundle and the PDF report need, frozen at the moment of signing.
 */
export interface SpecimenReport {
  specimen: Specimen;
  signOff: SpecimenSignOff;
  /** true for a signature after the first (HL7 result status C, FHIR `amended`). */
  amended: boolean;
  model: { name: string; version: string; threshold: number };
  /** The most suspicious screened images first (by P(B-ALL)), for the report's thumbnails. */
  topImages: Array<{ resultId: number; file: string; className: string | null; pBall: number | null }>;
  /** People's readings of the fields the model could not screen, as they stood at this signature. */
  readings: OutOfDomainReadings;
  /**
   * The camera warnings its images arrived under (src/domain/camera-warning.ts); absent in
   * reports written before specimens kept them.
   */
  cameraWarnings?: SpecimenCameraWarning[];
  deviceId: string;
  rule: VerdictRule;
}
