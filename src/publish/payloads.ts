import { createHash } from 'node:crypto';
import type { Result, StageTimings } from '../domain/result.js';
import type { OutboxDraft } from '../store/index.js';

/**
 * MQTT payloads. Versioned by `schema` (a consumer checks it and refuses what it does not
 * know); documented in docs/mqtt.md with JSON schemas in schemas/mqtt/. Change a payload in a
 * compatible way (add fields) without bumping; anything else is a new schema version.
 */
export const RESULT_SCHEMA = 'blastwatch/result/1';
export const ALERT_SCHEMA = 'blastwatch/alert/1';
export const HEALTH_SCHEMA = 'blastwatch/health/1';

export const STATUS_ONLINE = 'online';
export const STATUS_OFFLINE = 'offline';

export const NOTICE = 'Screening aid: a flag asks a hematologist to look; it is not a diagnosis.';

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
}

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());
const round = (v: number): number => Math.round(v * 1e6) / 1e6;

export interface ResultPayload {
  schema: typeof RESULT_SCHEMA | typeof ALERT_SCHEMA;
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
}

export function resultPayload(input: ClassificationPayloadInput, topic: 'result' | 'alert'): ResultPayload {
  const probabilities: Record<string, number> = {};
  for (const [k, v] of Object.entries(input.probabilities)) probabilities[k] = round(v);
  return {
    schema: topic === 'result' ? RESULT_SCHEMA : ALERT_SCHEMA,
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
 * is flagged; none for a failure. Handed to the pipeline by the composition root so the rows are
 * written in the result's own transaction.
 */
export function outboxMessages(ctx: PayloadContext): (result: Result) => OutboxDraft[] {
  return (r) => {
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
  processed: { done: number; failed: number; quarantined: number; flagged: number };
  latency_ms: { p50: number | null; p95: number | null };
  outbox_backlog: number;
  /** Present when MQTT is configured: the broker connection and what waits for it. */
  mqtt?: {
    connected: boolean;
    disconnected_since: string | null;
    alerts_waiting: number;
    oldest_waiting_at: string | null;
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
