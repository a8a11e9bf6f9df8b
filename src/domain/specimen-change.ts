/**
 * What happens to a specimen, as the store records it and the outputs (MQTT change feed, live
 * feed, audit view) map from. camelCase; the rows stay inside src/store/.
 */
import type { CameraWatch } from './camera-warning.js';
import type { AssignmentSource, OutOfDomainReadings, Specimen, SpecimenVerdict } from './specimen.js';

/** Each kind of change; every one is also an audit entry. */
export type SpecimenAction =
  | 'created'
  | 'image_added'
  | 'images_assigned'
  /** A captured image named a signed specimen: it stays unassigned (a signed specimen is locked). */
  | 'image_refused'
  | 'session_started'
  | 'finished'
  | 'signed'
  | 'amended'
  | 'sign_refused'
  | 'amend_refused'
  /**
   * A camera warning was raised and counted images of the specimen that had arrived before it,
   * in the window it was judged on: a change after the fact, maybe after the signature.
   */
  | 'camera_warning_counted';

/** One change of a specimen: its state before (null when it was created by it) and after. */
export interface SpecimenChange {
  action: SpecimenAction;
  /** Who did it: a user name, or `system` for the daemon's own assignment of a captured image. */
  actor: string;
  at: number;
  before: Specimen | null;
  after: Specimen;
  /** For a signature or an amendment: people's readings of the out-of-domain fields at that moment. */
  readings?: OutOfDomainReadings;
  /** For a signature or an amendment: the camera watches that warned while its images arrived. */
  cameraWarned?: CameraWatch[];
}

/** A row of the append-only audit trail. */
export interface SpecimenAuditEntry {
  id: number;
  specimenId: number;
  actor: string;
  action: SpecimenAction;
  at: number;
  details: Record<string, unknown>;
}

/** Where a new image's specimen comes from, before the store looks at open sessions. */
export interface AssignmentHint {
  /** The accession the path (folder or pattern) or the upload names; null when none. */
  accession: string | null;
  source: Extract<AssignmentSource, 'folder' | 'pattern' | 'upload'>;
  /** An upload's accession is the user's explicit choice: it wins over an open session. */
  explicit: boolean;
}

/** A sign-off or amendment as a reviewer submits it. */
export interface SignOffInput {
  verdict: SpecimenVerdict;
  comment: string | null;
}

export interface AmendInput extends SignOffInput {
  reason: string;
}

/** Lab agreement between the model's suggestion and the reviewer's latest verdict. */
export interface SpecimenAgreement {
  /** Specimens with a sign-off. */
  signed: number;
  /** Of them, the latest verdict equals the suggestion recorded with it. */
  agreed: number;
  /** agreed / signed, null when nothing is signed yet. */
  rate: number | null;
}
