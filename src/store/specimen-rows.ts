/**
 * The specimen tables' rows and their mapping to the domain types. Only src/store/ sees rows.
 */
import type Database from 'better-sqlite3';
import { isCameraWatch, type CameraWatch } from '../domain/camera-warning.js';
import type { Result } from '../domain/result.js';
import {
  suggestVerdict,
  wilsonInterval,
  type Specimen,
  type SpecimenCounts,
  type SpecimenSignOff,
  type SpecimenStatus,
  type SpecimenVerdict,
  type VerdictRule,
} from '../domain/specimen.js';
import type { SpecimenAction, SpecimenAuditEntry } from '../domain/specimen-change.js';
import { WITHHELD_FOR_REVIEW } from './results.js';

export interface SpecimenRow {
  id: number;
  accession: string;
  status: SpecimenStatus;
  suggested_verdict: SpecimenVerdict;
  final_verdict: SpecimenVerdict | null;
  counts: string;
  revision: number;
  created_at: number;
  updated_at: number;
  finished_at: number | null;
  /** Joined: 1 when a session is open on the specimen. */
  session_open: number;
  /** Joined by LISTED_SPECIMEN_SELECT only: its withheld fields that wait for a reading. */
  unread_withheld?: number;
  /** Joined by LISTED_SPECIMEN_SELECT only: the camera watches that warned, comma-separated. */
  camera_warned?: string | null;
}

export interface SignOffRow {
  id: number;
  specimen_id: number;
  version: number;
  verdict: SpecimenVerdict;
  comment: string | null;
  reason: string | null;
  signer: string;
  signed_at: number;
  suggested_verdict: SpecimenVerdict;
  counts: string;
}

export interface AuditRow {
  id: number;
  specimen_id: number;
  actor: string;
  action: SpecimenAction;
  at: number;
  details: string;
}

const SESSION_OPEN = `EXISTS (
  SELECT 1 FROM specimen_sessions x WHERE x.specimen_id = s.id AND x.finished_at IS NULL
) AS session_open`;

export const SPECIMEN_SELECT = `SELECT s.*, ${SESSION_OPEN} FROM specimens s`;

/**
 * How many of specimen `s`'s out-of-domain fields ask for a person and have no reading yet: what
 * ResultsTable.outOfDomainReadings counts as unread, as it stands now. Its parameters are
 * REVIEW_QUEUE_REASONS.
 */
const UNREAD_WITHHELD = `(
  SELECT count(*) FROM specimen_images m JOIN results r ON r.id = m.result_id
  WHERE m.specimen_id = s.id AND r.status = 'out_of_domain' AND ${WITHHELD_FOR_REVIEW}
    AND NOT EXISTS (SELECT 1 FROM reviews v WHERE v.result_id = r.id)
) AS unread_withheld`;

/** The camera watches that warned while specimen `s`'s images arrived (camera-warnings.ts), in order. */
const CAMERA_WARNED = `(
  SELECT group_concat(watch, ',') FROM (
    SELECT watch FROM specimen_camera_warnings w WHERE w.specimen_id = s.id ORDER BY first_at, watch
  )
) AS camera_warned`;

/**
 * SPECIMEN_SELECT with each specimen's unread withheld fields and camera warnings, for the list a person scans
 * before signing; its first parameters are REVIEW_QUEUE_REASONS. Kept out of SPECIMEN_SELECT
 * because every landing image reads its specimen back, and this scans the specimen's images.
 */
export const LISTED_SPECIMEN_SELECT = `SELECT s.*, ${SESSION_OPEN}, ${UNREAD_WITHHELD}, ${CAMERA_WARNED} FROM specimens s`;

export const EMPTY_COUNTS: SpecimenCounts = {
  images: 0,
  screened: 0,
  outOfDomain: 0,
  failed: 0,
  flagged: 0,
  byClass: {},
};

export function toSignOff(r: SignOffRow): SpecimenSignOff {
  return {
    version: r.version,
    verdict: r.verdict,
    comment: r.comment,
    reason: r.reason,
    signer: r.signer,
    signedAt: r.signed_at,
    suggestedVerdict: r.suggested_verdict,
  };
}

export function toAuditEntry(r: AuditRow): SpecimenAuditEntry {
  return {
    id: r.id,
    specimenId: r.specimen_id,
    actor: r.actor,
    action: r.action,
    at: r.at,
    details: JSON.parse(r.details) as Record<string, unknown>,
  };
}

/** flagged / screened with its 95 % Wilson interval; null before anything was screened. */
export function flaggedShare(c: SpecimenCounts): Specimen['flaggedShare'] {
  if (c.screened === 0) return null;
  return { value: c.flagged / c.screened, ...wilsonInterval(c.flagged, c.screened) };
}

export function toSpecimen(r: SpecimenRow, signOff: SpecimenSignOff | null): Specimen {
  const counts = JSON.parse(r.counts) as SpecimenCounts;
  return {
    id: r.id,
    accession: r.accession,
    status: r.status,
    suggestedVerdict: r.suggested_verdict,
    finalVerdict: r.final_verdict,
    counts,
    flaggedShare: flaggedShare(counts),
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    finishedAt: r.finished_at,
    signOff,
    revision: r.revision,
    sessionOpen: r.session_open === 1,
    ...(r.unread_withheld !== undefined ? { unreadWithheld: r.unread_withheld } : {}),
    ...(r.camera_warned !== undefined ? { cameraWarned: cameraWatches(r.camera_warned) } : {}),
  };
}

const cameraWatches = (joined: string | null): CameraWatch[] =>
  joined === null ? [] : joined.split(',').filter((w): w is CameraWatch => isCameraWatch(w));

/**
 * The counts with one more member result, as `countMembers` would find them: an image landing
 * costs no scan of the specimen's other images (a per-day folder of thousands stays cheap).
 */
export function withMember(
  c: SpecimenCounts,
  r: Pick<Result, 'status' | 'className' | 'flag'>,
): SpecimenCounts {
  const screened = r.status === 'done' && r.className !== null;
  const byClass = { ...c.byClass };
  if (screened) byClass[r.className as string] = (byClass[r.className as string] ?? 0) + 1;
  return {
    images: c.images + 1,
    screened: c.screened + (screened ? 1 : 0),
    outOfDomain: c.outOfDomain + (r.status === 'out_of_domain' ? 1 : 0),
    failed: c.failed + (r.status === 'failed' || r.status === 'quarantined' ? 1 : 0),
    flagged: c.flagged + (screened && r.flag === true ? 1 : 0),
    byClass: Object.fromEntries(Object.entries(byClass).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))),
  };
}

/**
 * Counts from the member results themselves (never incremented), so they equal the images'
 * results whatever happened before: a crash, a re-run, a manual assignment. Screened = classified
 * in domain (status done); failed = failed or quarantined. Each result is one member, so the
 * same bytes captured twice (one result) count once.
 */
export function countMembers(db: Database.Database, rule: VerdictRule) {
  const totals = db.prepare<[number], Record<string, number | null>>(
    `SELECT count(*) AS images,
       sum(r.status = 'done' AND r.class IS NOT NULL) AS screened,
       sum(r.status = 'out_of_domain') AS out_of_domain,
       sum(r.status IN ('failed', 'quarantined')) AS failed,
       sum(r.status = 'done' AND r.class IS NOT NULL AND r.flag = 1) AS flagged
     FROM specimen_images m JOIN results r ON r.id = m.result_id WHERE m.specimen_id = ?`,
  );
  const classes = db.prepare<[number], { class: string; n: number }>(
    `SELECT r.class AS class, count(*) AS n FROM specimen_images m JOIN results r ON r.id = m.result_id
     WHERE m.specimen_id = ? AND r.status = 'done' AND r.class IS NOT NULL GROUP BY r.class ORDER BY r.class`,
  );
  return (specimenId: number): { counts: SpecimenCounts; suggested: SpecimenVerdict } => {
    const t = totals.get(specimenId) ?? {};
    const byClass: Record<string, number> = {};
    for (const row of classes.all(specimenId)) byClass[row.class] = row.n;
    const counts: SpecimenCounts = {
      images: t.images ?? 0,
      screened: t.screened ?? 0,
      outOfDomain: t.out_of_domain ?? 0,
      failed: t.failed ?? 0,
      flagged: t.flagged ?? 0,
      byClass,
    };
    return { counts, suggested: suggestVerdict(counts, rule) };
  };
}
