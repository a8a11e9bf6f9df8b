/**
 * JSON schemas of the ops API (/healthz, /readyz, /metrics, /api/health, /api/results): fastify
 * validates the query with them (a bad value is a 400 naming the field) and serializes the replies
 * with them, so the public shape of a result is written down here once.
 */
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';

const str = { type: 'string' } as const;
const int = { type: 'integer' } as const;
const bool = { type: 'boolean' } as const;
const nullableStr = { type: ['string', 'null'] } as const;
const nullableNum = { type: ['number', 'null'] } as const;
/** An object whose keys are open (class names, stage names): every value passes as it is. */
const open = (nullable: boolean) => ({
  type: nullable ? ['object', 'null'] : 'object',
  additionalProperties: true,
});

/** The public JSON shape of a result (`resultJson`). */
const result = {
  type: 'object',
  properties: {
    id: int,
    file: str,
    sha256: nullableStr,
    status: str,
    class: nullableStr,
    p_ball: nullableNum,
    flag: { type: ['boolean', 'null'] },
    needs_review: { type: ['boolean', 'null'] },
    error: nullableStr,
    error_kind: nullableStr,
    probabilities: open(true),
    model: { type: ['object', 'null'], properties: { name: nullableStr, version: str } },
    captured_at: nullableStr,
    processed_at: str,
    timings: open(true),
    attempts: int,
    origin: str,
    review: {
      type: ['object', 'null'],
      properties: {
        id: int,
        result_id: int,
        reviewer: str,
        class: str,
        agrees: bool,
        note: nullableStr,
        created_at: int,
      },
    },
    delivery: { type: 'object', properties: { queued: int, sent: int } },
    domain: {
      type: ['object', 'null'],
      properties: {
        in: bool,
        reasons: { type: 'array', items: str },
        reasons_text: { type: 'array', items: str },
        scores: open(false),
      },
    },
  },
} as const;

export const opsSchemas = {
  /** `{ error, message }`: what the auth hook and a refused query answer. */
  error: { type: 'object', properties: { error: str, message: str } },
  liveness: { type: 'object', properties: { status: str, health: str, uptime_s: int } },
  readiness: { type: 'object', properties: { ready: bool, reasons: { type: 'array', items: str } } },
  /** The health snapshot (the retained MQTT message, schemas/mqtt/health.schema.json). */
  health: {
    type: 'object',
    additionalProperties: true,
    properties: {
      schema: str,
      device_id: str,
      state: str,
      problems: { type: 'array', items: str },
      uptime_s: int,
      queue_depth: int,
      in_flight: int,
      processed: open(false),
      latency_ms: open(false),
      outbox_backlog: int,
      model: open(true),
      disk_free_bytes: nullableNum,
      last_image_at: nullableStr,
      watcher: open(false),
      at: str,
    },
  },
  resultsQuery: {
    type: 'object',
    properties: {
      limit: { type: 'integer', minimum: 1, maximum: 1000, default: 50 },
      before: { type: 'integer', minimum: 1, maximum: Number.MAX_SAFE_INTEGER },
    },
  },
  results: { type: 'array', items: result },
} as const;

/** Keeps the ops API's error body `{ error, message }`; a schema refusal is `bad-request`. */
export function opsErrorHandler(error: FastifyError, request: FastifyRequest, reply: FastifyReply) {
  if (error.validation) {
    return reply.code(400).send({ error: 'bad-request', message: error.message });
  }
  const status = error.statusCode ?? 500;
  if (status >= 500) {
    request.log.error({ err: error }, 'ops request failed');
    return reply.code(500).send({ error: 'internal', message: 'internal error: see the daemon log' });
  }
  return reply.code(status).send({ error: error.code ?? 'error', message: error.message });
}
