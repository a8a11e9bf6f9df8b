/**
 * What the dashboard needs from the rest of the daemon. The plugin depends on this interface only,
 * so it can be tested with an in-memory fixture and wired to the real store and pipeline in
 * `deps-store.ts`. Every path to a file on disk is resolved here from the database by id: the
 * plugin never builds a path from anything in a request.
 */

import type { DomainReason } from '../../domain/applicability.js';
import type { HealthPayload } from '../../publish/payloads.js';
import type { ResultStatus } from '../../domain/result.js';
import type { UserRole } from '../../domain/roles.js';
import type { ImageRead } from './image-file.js';
import type { SpecimenDeps } from './specimen-deps.js';

export type { ImageRead, ResultStatus };
/** b-all: P(B-ALL) at or above the threshold; uncertain: inside the review band; benign: below. */
export type Flag = 'b-all' | 'uncertain' | 'benign';
export type ImageKind = 'original' | 'thumbnail' | 'mask' | 'segmented';
export const IMAGE_KINDS: readonly ImageKind[] = ['original', 'thumbnail', 'mask', 'segmented'];

export interface ReviewView {
  id: number;
  resultId: number;
  reviewer: string;
  /** The class the reviewer settled on (equal to the model's class when confirming). */
  class: string;
  /** What the model said, stored with the review so the audit trail stands on its own. */
  modelClass: string | null;
  note: string;
  /** ISO 8601 time the review was stored. */
  at: string;
  /** Full version of the model whose result was reviewed (names its exact weights), as stored with the review. */
  modelVersion: string | null;
  /** Flag threshold that result was decided with, as stored with the review. */
  threshold: number | null;
}

/** Why an image was not screened: unlike the images the model was trained on. */
export interface OutOfDomainView {
  /** "Cannot screen: unlike the images the model was trained on" — the one sentence people see. */
  message: string;
  /** Each reason, as a code and in words. */
  reasons: { code: DomainReason; text: string }[];
  /** The figures the judgement was made on. */
  scores: Record<string, number>;
}

export interface ResultView {
  id: number;
  /** File name as shown to people (may contain anything, including markup: always escape). */
  file: string;
  sha256: string;
  status: ResultStatus;
  source: 'capture' | 'upload';
  class: string | null;
  /** Probability of every class by class name, null when the image failed. */
  probabilities: Record<string, number> | null;
  /** P(B-ALL) = 1 - P(Benign). */
  pBall: number | null;
  /** null when there is no verdict (failed, or out of domain). */
  flag: Flag | null;
  /** Set only for an out-of-domain result: it has no verdict (neither flagged nor benign), and this says why. */
  outOfDomain?: OutOfDomainView | null;
  /** In the review queue: flagged or uncertain and not reviewed yet. */
  needsReview: boolean;
  /** The latest review, if any. */
  review: ReviewView | null;
  error: string | null;
  /** Milliseconds per pipeline stage (decode, segment, infer, store, ...). */
  timings: Record<string, number>;
  capturedAt: string | null;
  processedAt: string | null;
  images: Record<ImageKind, boolean>;
}

export interface ResultDetail extends ResultView {
  model: { name: string; version: string } | null;
  /** P(B-ALL) at or above this flagged the image: the threshold this result was decided with. */
  threshold: number | null;
  provider: string | null;
  width: number | null;
  height: number | null;
  /** Share of the image the segmentation kept as cells, and related numbers. */
  maskStats: Record<string, number> | null;
  /** MQTT delivery of this result's messages. */
  delivery: { state: 'off' | 'pending' | 'sent' | 'partial'; queued: number; sent: number };
  /** Every review ever stored for this result, oldest first (the audit history). */
  reviews: ReviewView[];
}

export interface ResultQuery {
  limit: number;
  /** Only results with an id lower than this (paging backwards). */
  before?: number;
  flaggedOnly?: boolean;
  needsReview?: boolean;
  /** Only the images that could not be screened (out of domain). */
  outOfDomainOnly?: boolean;
  class?: string;
  /** Processed-time bounds as ISO instants: from inclusive, to exclusive. */
  from?: string;
  to?: string;
  /** Case-insensitive substring of the file name. */
  search?: string;
}

export interface ReviewExport {
  resultId: number;
  file: string;
  sha256: string;
  /**
   * Where the classified bytes are, for a retraining script on this machine: set only when the
   * file there still hashes to `sha256` (checked at export time), null otherwise.
   */
  imagePath: string | null;
  /** verified: imagePath holds the classified bytes; changed: other bytes or a link there now; gone: no file. */
  original: 'verified' | 'changed' | 'gone';
  modelClass: string | null;
  pBall: number | null;
  reviewedClass: string;
  reviewer: string;
  note: string;
  reviewedAt: string;
  /** How many reviews the result has had (the export holds the latest). */
  reviewCount: number;
  /** Model version and flag threshold of the reviewed result, as recorded with the review. */
  modelVersion: string | null;
  threshold: number | null;
}

export interface StatusView {
  deviceId: string;
  model: { name: string; version: string } | null;
  provider: string | null;
  threshold: number | null;
  uncertainBand: [number, number] | null;
  queueDepth: number;
  processed: number;
  /** Images given no verdict: unlike the images the model was trained on. */
  outOfDomain: number;
  /** Out-of-domain images by reason (all kept results), most frequent first. */
  outOfDomainByReason: { code: DomainReason; text: string; count: number }[];
  failed: number;
  /** Images per minute over the last few minutes. */
  throughputPerMin: number;
  latencyMs: { p50: number | null; p95: number | null };
  broker: { enabled: boolean; connected: boolean; url: string | null };
  outboxBacklog: number;
  diskFreeBytes: number | null;
  lastImageAt: string | null;
  startedAt: string;
  /** Plain-language problems (capture folder missing, disk nearly full, ...); empty when healthy. */
  problems: string[];
  /**
   * The green balance of the images screened or refused only for their green or a contradicted
   * benign call, over the drift window, against the training images' highest (health's
   * colour_drift); null when the model has no reference.
   */
  colourBalance?: HealthPayload['colour_drift'] | null;
  /** The red cells' size over the latest captures measured, against the training images' (health's magnification); null when not watched. */
  magnification?: HealthPayload['magnification'] | null;
  /** Whether the capture files' time stamps agree with this station's clock (health's capture_clock). */
  captureClock?: HealthPayload['capture_clock'] | null;
  /** How the latest `blastwatch backup` went (health's backup); null when none was ever tried. */
  backup?: HealthPayload['backup'] | null;
}

export interface DailyCount {
  /** YYYY-MM-DD (UTC). */
  day: string;
  counts: Record<string, number>;
  /** Images that could not be screened (out of domain): in no class. */
  outOfDomain?: number;
  failed: number;
}

export interface DashboardMeta {
  deviceId: string;
  /** Class names in model order, with human labels. */
  classes: { name: string; label: string }[];
  /** The class that means "not leukaemia" (P(B-ALL) = 1 - P(benign class)). */
  benignClass: string;
}

export interface ResultEvents {
  on(event: 'result', listener: (result: ResultView) => void): unknown;
  off(event: 'result', listener: (result: ResultView) => void): unknown;
}

/** A named user as `http.users` holds one (see config/default.yaml). */
export interface DashboardUser {
  name: string;
  /** Absent: DEFAULT_USER_ROLE (reviewer). */
  role?: UserRole | undefined;
  /** `scrypt:N:r:p:salt:hash`, made by `blastwatch hash-password`; null/absent: no password login. */
  password_hash?: string | null | undefined;
  /** The hash of the user's API token (same format); null/absent: no token. */
  api_token_hash?: string | null | undefined;
}

export interface DashboardAuthConfig {
  /** Shared access token (Bearer header, or typed into the login form). */
  token: string | null;
  /** Role of whoever uses the shared token (`http.auth_token_role`); absent: reviewer. */
  tokenRole?: UserRole | undefined;
  users: DashboardUser[];
  /** True when the server listens on a loopback address: no login needed. */
  loopback: boolean;
}

export interface UploadOutcome {
  /** The specimen the upload was assigned to (an accession was given), when known at once. */
  specimenId?: number;
  /** Set when the same bytes were already recorded (the existing result). */
  id?: number;
  sha256: string;
  duplicate: boolean;
}

export interface DashboardDeps {
  meta(): DashboardMeta;
  listResults(q: ResultQuery): ResultView[];
  getResult(id: number): ResultDetail | undefined;
  /**
   * Where a result's original file was recorded, resolved from the database; undefined when it
   * has none to show (the daemon's own pictures are in store.media, not files). Its content is not
   * proven: what is served comes from `readImage`.
   */
  imagePath(id: number, kind: ImageKind): string | undefined;
  /**
   * A result's image bytes, read without following links; the original only while its bytes hash
   * to the result's sha256 (a 410 otherwise). undefined when the result has no such image.
   */
  readImage(id: number, kind: ImageKind): Promise<ImageRead | undefined>;
  /** Stores a review (audit row) and returns it. Throws ReviewError for an unknown id/class. */
  addReview(id: number, review: { reviewer: string; class: string; note: string }): ReviewView;
  reviewQueue(limit: number): ResultView[];
  /** Latest review per result; each original is re-hashed, so this reads every reviewed file. */
  exportReviews(): Promise<ReviewExport[]>;
  /** Hands uploaded bytes to the same pipeline as captured files. */
  /** `accession`: the image belongs to that specimen (created when new). */
  ingestUpload(fileName: string, bytes: Buffer, accession?: string): Promise<UploadOutcome>;
  status(): StatusView;
  dailyCounts(days: number): DailyCount[];
  events: ResultEvents;
  auth: DashboardAuthConfig;
  /** The specimen API (/api/specimens); absent: those routes are not served. */
  specimens?: SpecimenDeps;
}

/** A review the store refuses (unknown result or class): the client gets a 4xx with the message. */
export class ReviewError extends Error {
  override readonly name = 'ReviewError';
  constructor(
    message: string,
    readonly statusCode: 400 | 404 = 400,
  ) {
    super(message);
  }
}
