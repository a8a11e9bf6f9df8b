import { createHash } from 'node:crypto';
import type { CameraWatch } from '../domain/camera-warning.js';
import { readCount, type Specimen, type SpecimenCounts } from '../domain/specimen.js';
import type { SpecimenAction, SpecimenChange } from '../domain/specimen-change.js';
import type { OutboxDraft } from '../store/index.js';
import { NOTICE } from './payloads.js';

/**
 * The `<prefix>/specimen` change feed: one message per change of a specimen, written to the
 * outbox in the change's own transaction. Documented in docs/mqtt.md, schema in
 * schemas/mqtt/specimen.schema.json.
 */
export const SPECIMEN_SCHEMA = 'blastwatch/specimen/1';

/**
 * Stable event id of a change: the specimen (device, id, creation time) and its revision, so a
 * re-delivery of the same change carries the same id and every change a new one.
 */
export function specimenEventId(
  deviceId: string,
  s: Pick<Specimen, 'id' | 'createdAt' | 'revision'>,
): string {
  const h = createHash('sha256')
    .update(`${deviceId}\nspecimen\n${s.id}\n${s.createdAt}\n${s.revision ?? 0}`)
    .digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-${((parseInt(h.slice(16, 17), 16) & 3) | 8).toString(16)}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

export interface SpecimenStatePayload {
  status: Specimen['status'];
  suggested_verdict: Specimen['suggestedVerdict'];
  final_verdict: Specimen['finalVerdict'];
  counts: {
    images: number;
    screened: number;
    out_of_domain: number;
    failed: number;
    flagged: number;
    by_class: Record<string, number>;
  };
  signer: string | null;
  sign_off_version: number | null;
}

export interface SpecimenPayload {
  schema: typeof SPECIMEN_SCHEMA;
  event_id: string;
  device_id: string;
  specimen_id: number;
  accession: string;
  revision: number;
  change: SpecimenAction;
  actor: string;
  at: string;
  before: SpecimenStatePayload | null;
  after: SpecimenStatePayload;
  /** Signatures and amendments only: what the signed report says of the fields the model could not screen. */
  readings?: {
    read: number;
    by_class: Record<string, number>;
    unread_withheld: number;
  };
  /** Signatures and amendments only: the camera watches that warned while its images arrived. */
  camera_warned?: CameraWatch[];
  notice: string;
}

/** Counts in the snake_case of every public payload. */
export function countsJson(c: SpecimenCounts): SpecimenStatePayload['counts'] {
  return {
    images: c.images,
    screened: c.screened,
    out_of_domain: c.outOfDomain,
    failed: c.failed,
    flagged: c.flagged,
    by_class: { ...c.byClass },
  };
}

function state(s: Specimen): SpecimenStatePayload {
  return {
    status: s.status,
    suggested_verdict: s.suggestedVerdict,
    final_verdict: s.finalVerdict,
    counts: countsJson(s.counts),
    signer: s.signOff?.signer ?? null,
    sign_off_version: s.signOff?.version ?? null,
  };
}

export function specimenPayload(deviceId: string, change: SpecimenChange): SpecimenPayload {
  const { after } = change;
  return {
    schema: SPECIMEN_SCHEMA,
    event_id: specimenEventId(deviceId, after),
    device_id: deviceId,
    specimen_id: after.id,
    accession: after.accession,
    revision: after.revision ?? 0,
    change: change.action,
    actor: change.actor,
    at: new Date(change.at).toISOString(),
    before: change.before === null ? null : state(change.before),
    after: state(after),
    ...(change.readings
      ? {
          readings: {
            read: readCount(change.readings),
            by_class: { ...change.readings.byClass },
            unread_withheld: change.readings.unreadWithheld,
          },
        }
      : {}),
    ...(change.cameraWarned ? { camera_warned: [...change.cameraWarned] } : {}),
    notice: NOTICE,
  };
}

/** The outbox rows of one change (handed to the store by the composition root). */
export function specimenMessages(deviceId: string): (change: SpecimenChange) => OutboxDraft[] {
  return (change) => {
    const payload = specimenPayload(deviceId, change);
    return [{ eventId: payload.event_id, topic: 'specimen', payload: JSON.stringify(payload) }];
  };
}
