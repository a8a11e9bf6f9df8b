/**
 * JSON schemas of the dashboard's HTTP API. Fastify validates requests against them (ajv: a bad
 * value is a 400 that names the field) and serializes replies with them (fast-json-stringify: only
 * the listed properties leave the server). The shapes mirror the types in `deps.ts`; an open map
 * (probabilities, timings, counts) is an object whose values are numbers.
 */
import { IMAGE_KINDS } from './deps.js';

const str = { type: 'string' } as const;
const int = { type: 'integer' } as const;
const num = { type: 'number' } as const;
const bool = { type: 'boolean' } as const;
const nullableStr = { type: ['string', 'null'] } as const;
const nullableNum = { type: ['number', 'null'] } as const;
const numberMap = { type: 'object', additionalProperties: { type: 'number' } } as const;
const modelSchema = {
  type: ['object', 'null'],
  properties: { name: str, version: str },
} as const;

/** Every error reply of the dashboard: `{ error: "what went wrong, for people" }`. */
export const errorReply = {
  type: 'object',
  properties: { error: str },
} as const;

/** A positive result id in the path (`/results/:id`); anything else is a 400. */
export const idParams = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'integer', minimum: 1, maximum: Number.MAX_SAFE_INTEGER } },
} as const;

export const imageParams = {
  type: 'object',
  required: ['id', 'kind'],
  properties: { ...idParams.properties, kind: { type: 'string', enum: [...IMAGE_KINDS] } },
} as const;

export const reviewSchema = {
  type: 'object',
  properties: {
    id: int,
    resultId: int,
    reviewer: str,
    class: str,
    modelClass: nullableStr,
    note: str,
    at: str,
    modelVersion: nullableStr,
    threshold: nullableNum,
  },
} as const;

const resultViewProperties = {
  id: int,
  file: str,
  sha256: str,
  status: str,
  source: str,
  class: nullableStr,
  probabilities: { ...numberMap, type: ['object', 'null'] },
  pBall: nullableNum,
  flag: nullableStr,
  outOfDomain: {
    type: ['object', 'null'],
    properties: {
      message: str,
      reasons: { type: 'array', items: { type: 'object', properties: { code: str, text: str } } },
      scores: numberMap,
    },
  },
  needsReview: bool,
  review: { ...reviewSchema, type: ['object', 'null'] },
  error: nullableStr,
  timings: numberMap,
  capturedAt: nullableStr,
  processedAt: nullableStr,
  images: {
    type: 'object',
    properties: Object.fromEntries(IMAGE_KINDS.map((kind) => [kind, bool])),
  },
} as const;

/** A result as listed (feed, review queue, live feed). */
export const resultView = { type: 'object', properties: resultViewProperties } as const;

export const resultList = { type: 'array', items: resultView } as const;

/** One result with everything the detail page shows. */
export const resultDetail = {
  type: 'object',
  properties: {
    ...resultViewProperties,
    model: modelSchema,
    threshold: nullableNum,
    provider: nullableStr,
    width: { type: ['integer', 'null'] },
    height: { type: ['integer', 'null'] },
    maskStats: { ...numberMap, type: ['object', 'null'] },
    delivery: { type: 'object', properties: { state: str, queued: int, sent: int } },
    reviews: { type: 'array', items: reviewSchema },
  },
} as const;

export const metaSchema = {
  type: 'object',
  properties: {
    deviceId: str,
    classes: { type: 'array', items: { type: 'object', properties: { name: str, label: str } } },
    benignClass: str,
    uploadMaxBytes: int,
  },
} as const;

export const sessionReply = {
  type: 'object',
  properties: {
    user: str,
    namedUser: bool,
    /** viewer, reviewer or admin; null when nobody is logged in. */
    role: nullableStr,
    csrfToken: nullableStr,
    loginRequired: bool,
    meta: metaSchema,
  },
} as const;

export const statusReply = {
  type: 'object',
  properties: {
    status: {
      type: 'object',
      properties: {
        deviceId: str,
        model: modelSchema,
        provider: nullableStr,
        threshold: nullableNum,
        uncertainBand: { type: ['array', 'null'], items: num },
        queueDepth: int,
        processed: int,
        outOfDomain: int,
        outOfDomainByReason: {
          type: 'array',
          items: { type: 'object', properties: { code: str, text: str, count: int } },
        },
        failed: int,
        throughputPerMin: num,
        latencyMs: { type: 'object', properties: { p50: nullableNum, p95: nullableNum } },
        broker: { type: 'object', properties: { enabled: bool, connected: bool, url: nullableStr } },
        outboxBacklog: int,
        diskFreeBytes: nullableNum,
        lastImageAt: nullableStr,
        startedAt: str,
        problems: { type: 'array', items: str },
        colourBalance: {
          type: ['object', 'null'],
          properties: { measured: int, median: nullableNum, high: num, drifting: bool },
        },
        magnification: {
          type: ['object', 'null'],
          properties: {
            window: int,
            measured: int,
            median: nullableNum,
            low: num,
            high: num,
            differs: { type: ['string', 'null'], enum: ['smaller', 'larger', null] },
            called: bool,
          },
        },
        backup: {
          type: ['object', 'null'],
          properties: {
            last_attempt_at: str,
            ok: bool,
            error: { type: ['string', 'null'] },
            last_ok_at: { type: ['string', 'null'] },
            last_ok_file: { type: ['string', 'null'] },
          },
        },
        captureClock: {
          type: ['object', 'null'],
          properties: {
            captures: int,
            ahead: int,
            max_ahead_s: num,
            before_session: int,
            long_before_session: int,
            max_long_before_s: num,
          },
        },
      },
    },
    daily: {
      type: 'array',
      items: { type: 'object', properties: { day: str, counts: numberMap, outOfDomain: int, failed: int } },
    },
    meta: metaSchema,
  },
} as const;

/** The review export, one row per reviewed result (sent pretty-printed as a file, or as CSV). */
export const reviewExportRows = {
  type: 'array',
  items: {
    type: 'object',
    properties: {
      resultId: int,
      file: str,
      sha256: str,
      imagePath: nullableStr,
      original: { type: 'string', enum: ['verified', 'changed', 'gone'] },
      modelClass: nullableStr,
      pBall: nullableNum,
      reviewedClass: str,
      reviewer: str,
      note: str,
      reviewedAt: str,
      reviewCount: int,
      modelVersion: nullableStr,
      threshold: nullableNum,
    },
  },
} as const;

export const uploadReply = {
  type: 'object',
  properties: { id: int, sha256: str, duplicate: bool, file: str, specimenId: int },
} as const;

export const okReply = {
  type: 'object',
  properties: { ok: bool, user: str, role: str },
} as const;

/** Query of `GET /api/dashboard/results`; `class` is limited to the model's classes at start-up. */
export function resultsQuerystring(classNames: readonly string[]) {
  const flag = { type: 'string', enum: ['', '0', '1', 'false', 'true'] } as const;
  // A day (YYYY-MM-DD, a UTC day) or an ISO instant (the browser sends the local midnight).
  const time = {
    type: 'string',
    maxLength: 40,
    pattern: '^$|^\\d{4}-\\d{2}-\\d{2}(T\\d{2}:\\d{2}(:\\d{2}(\\.\\d{1,9})?)?(Z|[+-]\\d{2}:?\\d{2})?)?$',
  } as const;
  return {
    type: 'object',
    additionalProperties: false,
    properties: {
      limit: { type: 'integer', minimum: 1, maximum: 500, default: 50 },
      before: { type: 'integer', minimum: 1, maximum: Number.MAX_SAFE_INTEGER },
      flagged: flag,
      review: flag,
      out_of_domain: flag,
      class: { type: 'string', enum: ['', ...classNames] },
      from: time,
      to: time,
      q: { type: 'string', maxLength: 200 },
    },
  } as const;
}

/** Body of `POST /api/dashboard/results/:id/review`. */
export function reviewBody(classNames: readonly string[]) {
  return {
    type: 'object',
    required: ['class'],
    additionalProperties: false,
    properties: {
      class: { type: 'string', enum: [...classNames] },
      note: { type: 'string', maxLength: 2000, default: '' },
      // Ignored for a named account (it signs its own reviews); required otherwise (the handler).
      reviewer: { type: 'string', maxLength: 80 },
    },
  } as const;
}

export const loginBody = {
  type: 'object',
  additionalProperties: false,
  properties: {
    user: { type: 'string', maxLength: 512 },
    password: { type: 'string', maxLength: 512 },
    token: { type: 'string', maxLength: 512 },
  },
} as const;
