/**
 * The domain result: what the store returns and what the MQTT payloads, the HTTP API and the
 * dashboard map from. camelCase; the database rows stay inside src/store/.
 */
import type { DomainCheck } from './applicability.js';

/** `out_of_domain`: classified but unlike the training images, so given no verdict (see domain/applicability.ts). */
export type ResultStatus = 'done' | 'out_of_domain' | 'failed' | 'quarantined';
export type Origin = 'capture' | 'upload';

/** Stage timings in milliseconds, as recorded per result. */
export interface StageTimings {
  queueMs?: number;
  readMs?: number;
  decodeMs?: number;
  segmentMs?: number;
  tensorMs?: number;
  /** From handing the tensors to the inference worker to having its answer on this thread. */
  inferMs?: number;
  /** The model's run alone, in the worker (part of inferMs). */
  modelMs?: number;
  /** The out-of-domain gate's checks. */
  gateMs?: number;
  storeMs?: number;
  totalMs?: number;
}

/** A person's review of a result (the audit history keeps every one). */
export interface Review {
  id: number;
  resultId: number;
  reviewer: string;
  className: string;
  /** The reviewer's class equals the model's. */
  agrees: boolean;
  note: string | null;
  createdAt: number;
  /** Version of the model whose result was reviewed (recorded with the review; null only if the result had none). */
  modelVersion: string | null;
  /** Flag threshold that result was decided with. */
  threshold: number | null;
}

/** What a result is written with (the store adds id, media, review and delivery). */
export interface NewResult {
  status: ResultStatus;
  sha256: string | null;
  path: string;
  file: string;
  origin: Origin;
  size: number | null;
  className?: string | null;
  classIndex?: number | null;
  pBall?: number | null;
  flag?: boolean | null;
  needsReview?: boolean | null;
  probabilities?: Record<string, number> | null;
  modelName?: string | null;
  modelVersion?: string | null;
  threshold?: number | null;
  errorKind?: string | null;
  error?: string | null;
  attempts?: number;
  capturedAt: number | null;
  processedAt: number;
  timings?: StageTimings | null;
  image?: Record<string, unknown> | null;
  maskStats?: Record<string, unknown> | null;
  /** The out-of-domain gate's judgement; null when the image was never judged (failed, or stored before the gate). */
  domain?: DomainCheck | null;
}

export interface Result {
  id: number;
  status: ResultStatus;
  sha256: string | null;
  /** Where the image is now (the capture path, or where it was moved to). */
  path: string;
  /** The name shown to people (relative to the capture folder, or `upload/<name>`). */
  file: string;
  origin: Origin;
  size: number | null;
  className: string | null;
  classIndex: number | null;
  pBall: number | null;
  flag: boolean | null;
  needsReview: boolean | null;
  probabilities: Record<string, number> | null;
  modelName: string | null;
  modelVersion: string | null;
  threshold: number | null;
  errorKind: string | null;
  error: string | null;
  attempts: number;
  capturedAt: number | null;
  processedAt: number;
  timings: StageTimings | null;
  image: Record<string, unknown> | null;
  maskStats: Record<string, unknown> | null;
  /**
   * The out-of-domain gate's judgement: `in`, the reasons when not, and the figures it was made
   * on. null when the image was never judged (failed, or stored before the gate existed).
   */
  domain: DomainCheck | null;
  /** Thumbnail, mask and segmented image were written. */
  media: boolean;
  /** Latest review, when one exists. */
  review: Review | null;
  /** MQTT delivery: messages queued for this result and how many a broker acknowledged. */
  delivery: { queued: number; sent: number };
}

/** The Result a NewResult becomes once written with `id` (no media, review or delivery yet). */
export function resultOf(id: number, r: NewResult, queued: number): Result {
  return {
    id,
    status: r.status,
    sha256: r.sha256,
    path: r.path,
    file: r.file,
    origin: r.origin,
    size: r.size,
    className: r.className ?? null,
    classIndex: r.classIndex ?? null,
    pBall: r.pBall ?? null,
    flag: r.flag ?? null,
    needsReview: r.needsReview ?? null,
    probabilities: r.probabilities ?? null,
    modelName: r.modelName ?? null,
    modelVersion: r.modelVersion ?? null,
    threshold: r.threshold ?? null,
    errorKind: r.errorKind ?? null,
    error: r.error ?? null,
    attempts: r.attempts ?? 1,
    capturedAt: r.capturedAt,
    processedAt: r.processedAt,
    timings: r.timings ? { ...r.timings } : null,
    image: r.image ?? null,
    maskStats: r.maskStats ?? null,
    domain: r.domain ?? null,
    media: false,
    review: null,
    delivery: { queued, sent: 0 },
  };
}
