import { createHash } from 'node:crypto';
import { DOMAIN_REASON_TEXT, type DomainCheck, type DomainReason } from '../domain/applicability.js';
import type { Result, StageTimings } from '../domain/result.js';
import type { OutboxDraft } from '../store/index.js';

/**
 * MQTT payloads. Versioned by `schema` (a consumer checks it and refuses what it does not
 * know); documented in docs/mqtt.md with JSON schemas in schemas/mqtt/. Change a payload in a
 * compatible way (add fields) without bumping; anything else is a new schema version.
 */
export const RESULT_SCHEMA = 'blastwatch/result/1';
/**
 * A result with no verdict (status `out_of_domain`): class, p_ball, flag and needs_review are
 * null. A new version because those fields change type: a consumer that knows only /1 skips the
 * message, rather than reading a null flag as "not flagged" and the image as benign.
 */
export const RESULT_NO_VERDICT_SCHEMA = 'blastwatch/result/2';
export const ALERT_SCHEMA = 'blastwatch/alert/1';
export const HEALTH_SCHEMA = 'blastwatch/health/1';

export const STATUS_ONLINE = 'online';
export const STATUS_OFFLINE = 'offline';

export const NOTICE = 'Screening aid: a flag asks a hematologist to look; it is not a diagnosis.';
export const NO_VERDICT_NOTICE =
  'Cannot screen: unlike the images the model was trained on. No verdict: neither flagged nor benign.';

/** The gate's judgement as published: `in`, the reason codes, the figures it was made on. */
export interface DomainPayload {
  in: boolean;
  reasons: DomainReason[];
  scores: Record<string, number>;
}

/**
 * Stable event id: the same result (bytes + model version) on the same topic always has the
 * same id, across retries, restarts and re-deliveries, so a consumer can dedupe on it.
 */
export function eventId(sha256: string, modelVersion: string, topic: 'result' | 'alert'): string {
  const h = createHash('sha256').update(`${sha256}\n${modelVersion}\n${topic}`).digest('hex');
  // UUID-shaped (version nibble 5 style) so it fits consumers that store UUIDs.
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-${((parseInt(h.slice(16, 17), 16) & 3) | 8).toString(16)}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

export interface ClassificationPayloadInput {
  deviceId: string;
  resultId: number;
  file: string;
  sha256: string;
  className: string;
  probabilities: Record<string, number>;
  pBall: number;
  flag: boolean;
  needsReview: boolean;
  threshold: number;
  uncertainBand: [number, number] | null;
  model: { name: string; version: string; execution_provider: string; precision: string };
  capturedAt: number | null;
  processedAt: number;
  timings: StageTimings;
  /** The gate's judgement (in domain here); absent or null for a result judged by no gate. */
  domain?: DomainCheck | null;
}

/** What a result without a verdict is published from: no class, probabilities or decision. */
export type NoVerdictPayloadInput = Omit<
  ClassificationPayloadInput,
  'className' | 'probabilities' | 'pBall' | 'flag' | 'needsReview' | 'domain'
> & { domain: DomainCheck };

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());
const round = (v: number): number => Math.round(v * 1e6) / 1e6;

export interface ResultPayload {
  schema: typeof RESULT_SCHEMA | typeof ALERT_SCHEMA;
  status: 'done';
  event_id: string;
  device_id: string;
  result_id: number;
  file: string;
  sha256: string;
  class: string;
  probabilities: Record<string, number>;
  p_ball: number;
  flag: boolean;
  needs_review: boolean;
  threshold: number;
  uncertain_band: [number, number] | null;
  model: { name: string; version: string; execution_provider: string; precision: string };
  captured_at: string | null;
  processed_at: string;
  timings_ms: StageTimings;
  notice: string;
  domain: DomainPayload | null;
}

/** `<prefix>/result` for an image the gate refused: the same fields, none of them a verdict. */
export interface NoVerdictPayload extends Omit<
  ResultPayload,
  'schema' | 'status' | 'class' | 'probabilities' | 'p_ball' | 'flag' | 'needs_review' | 'domain'
> {
  schema: typeof RESULT_NO_VERDICT_SCHEMA;
  status: 'out_of_domain';
  class: null;
  probabilities: null;
  p_ball: null;
  flag: null;
  needs_review: null;
  domain: DomainPayload;
}

const roundScores = (scores: Record<string, number>): Record<string, number> =>
  Object.fromEntries(Object.entries(scores).map(([k, v]) => [k, round(v)]));

function domainPayload(d: DomainCheck): DomainPayload {
  return { in: d.in, reasons: [...d.reasons], scores: roundScores(d.scores) };
}

export function resultPayload(input: ClassificationPayloadInput, topic: 'result' | 'alert'): ResultPayload {
  const probabilities: Record<string, number> = {};
  for (const [k, v] of Object.entries(input.probabilities)) probabilities[k] = round(v);
  return {
    schema: topic === 'result' ? RESULT_SCHEMA : ALERT_SCHEMA,
    status: 'done',
    event_id: eventId(input.sha256, input.model.version, topic),
    device_id: input.deviceId,
    result_id: input.resultId,
    file: input.file,
    sha256: input.sha256,
    class: input.className,
    probabilities,
    p_ball: round(input.pBall),
    flag: input.flag,
    needs_review: input.needsReview,
    threshold: input.threshold,
    uncertain_band: input.uncertainBand,
    model: input.model,
    captured_at: iso(input.capturedAt),
    processed_at: iso(input.processedAt) as string,
    timings_ms: input.timings,
    notice: NOTICE,
    domain: input.domain ? domainPayload(input.domain) : null,
  };
}

/** The `result` message of an out-of-domain image (there is never an alert for one). */
export function noVerdictPayload(input: NoVerdictPayloadInput): NoVerdictPayload {
  const reasons = input.domain.reasons.map((r) => DOMAIN_REASON_TEXT[r]).join('; ');
  return {
    schema: RESULT_NO_VERDICT_SCHEMA,
    status: 'out_of_domain',
    event_id: eventId(input.sha256, input.model.version, 'result'),
    device_id: input.deviceId,
    result_id: input.resultId,
    file: input.file,
    sha256: input.sha256,
    class: null,
    probabilities: null,
    p_ball: null,
    flag: null,
    needs_review: null,
    threshold: input.threshold,
    uncertain_band: input.uncertainBand,
    model: input.model,
    captured_at: iso(input.capturedAt),
    processed_at: iso(input.processedAt) as string,
    timings_ms: input.timings,
    notice: reasons ? `${NO_VERDICT_NOTICE} Why: ${reasons}.` : NO_VERDICT_NOTICE,
    domain: domainPayload(input.domain),
  };
}

/** What a result payload needs besides the Result: the device and the model that ran. */
export interface PayloadContext {
  deviceId: string;
  uncertainBand: [number, number] | null;
  model: { name: string; version: string; execution_provider: string; precision: string };
}

/**
 * The outbox rows for a new result: `result` for every classification, `alert` as well when it
 * is flagged; only `result` (with no verdict) for an out-of-domain image; none for a failure.
 * Handed to the pipeline by the composition root so the rows are written in the result's own
 * transaction.
 */
export function outboxMessages(ctx: PayloadContext): (result: Result) => OutboxDraft[] {
  return (r) => {
    if (r.status === 'out_of_domain' && r.sha256 !== null && r.domain !== null) {
      const payload = noVerdictPayload({
        deviceId: ctx.deviceId,
        resultId: r.id,
        file: r.file,
        sha256: r.sha256,
        threshold: r.threshold ?? 0,
        uncertainBand: ctx.uncertainBand,
        model: ctx.model,
        capturedAt: r.capturedAt,
        processedAt: r.processedAt,
        timings: r.timings ?? {},
        domain: r.domain,
      });
      return [{ eventId: payload.event_id, topic: 'result', payload: JSON.stringify(payload) }];
    }
    if (r.status !== 'done' || r.sha256 === null) return [];
    const input: ClassificationPayloadInput = {
      deviceId: ctx.deviceId,
      resultId: r.id,
      file: r.file,
      sha256: r.sha256,
      className: r.className ?? '',
      probabilities: r.probabilities ?? {},
      pBall: r.pBall ?? 0,
      flag: r.flag === true,
      needsReview: r.needsReview === true,
      threshold: r.threshold ?? 0,
      uncertainBand: ctx.uncertainBand,
      model: ctx.model,
      capturedAt: r.capturedAt,
      processedAt: r.processedAt,
      timings: r.timings ?? {},
      domain: r.domain,
    };
    const topics: ('result' | 'alert')[] = input.flag ? ['result', 'alert'] : ['result'];
    return topics.map((topic) => ({
      eventId: eventId(input.sha256, ctx.model.version, topic),
      topic,
      payload: JSON.stringify(resultPayload(input, topic)),
    }));
  };
}

export interface HealthPayload {
  schema: typeof HEALTH_SCHEMA;
  device_id: string;
  state: 'ok' | 'degraded';
  problems: string[];
  uptime_s: number;
  queue_depth: number;
  in_flight: number;
  /** Results per status; `out_of_domain`: images given no verdict (unlike the training images). */
  processed: { done: number; out_of_domain?: number; failed: number; quarantined: number; flagged: number };
  latency_ms: { p50: number | null; p95: number | null };
  outbox_backlog: number;
  /** Present when MQTT is configured: the broker connection and what waits for it. */
  mqtt?: {
    connected: boolean;
    disconnected_since: string | null;
    alerts_waiting: number;
    oldest_waiting_at: string | null;
  };
  /**
   * The share of out-of-domain images among the latest captures (gate.drift_window), against
   * gate.drift_share; `drifting` puts the problem in `problems`. Absent when the database is closed.
   */
  domain_drift?: {
    window: number;
    judged: number;
    out_of_domain: number;
    share: number | null;
    limit: number;
    drifting: boolean;
  };
  /**
   * The median green balance of the latest captures screened or refused only for their green or
   * a contradicted benign call against the training pictures' highest (src/gate/colour-drift.ts);
   * `drifting` puts the problem in `problems`. Absent when the model has no reference or the
   * database is closed.
   */
  colour_drift?: {
    window: number;
    measured: number;
    median: number | null;
    high: number;
    drifting: boolean;
  };
  /**
   * The median red-cell radius (px) of the latest captures measured, against the range of the
   * training images' medians (src/gate/magnification-watch.ts): `differs` (`smaller` / `larger`,
   * with at least half a window measured); `called` when it differs while neither domain_drift
   * nor colour_drift is called (a changed white balance or exposure moves the measure too), and
   * then the problem is in `problems`. Absent when the model has no reference or
   * gate.magnification_watch is false.
   */
  magnification?: {
    window: number;
    measured: number;
    median: number | null;
    low: number;
    high: number;
    differs: 'smaller' | 'larger' | null;
    called: boolean;
  };
  /**
   * Whether the capture files' time stamps agree with this station's clock, over the latest
   * captures (src/store/capture-clock.ts); either count above 0 puts a problem in `problems`.
   * Absent when the database is closed.
   */
  capture_clock?: {
    captures: number;
    ahead: number;
    max_ahead_s: number;
    before_session: number;
    /**
     * Captures that arrived during the open session stamped more than 10 minutes before it
     * started, in no specimen; from 3 on, a problem (a clock far behind). And the most any was.
     */
    long_before_session: number;
    max_long_before_s: number;
  };
  /**
   * How the latest `blastwatch backup` went (data.dir/backup-status.json); absent when none was
   * ever tried. A failed one, or none that worked for 48 hours, puts a problem in `problems`.
   */
  backup?: {
    last_attempt_at: string;
    ok: boolean;
    error: string | null;
    last_ok_at: string | null;
    last_ok_file: string | null;
  };
  model: { name: string; version: string; execution_provider: string; precision: string } | null;
  disk_free_bytes: number | null;
  last_image_at: string | null;
  watcher: {
    running: boolean;
    dir_available: boolean;
    last_scan_at: string | null;
    last_error: string | null;
  };
  at: string;
}
