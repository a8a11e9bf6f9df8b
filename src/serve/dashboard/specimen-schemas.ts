/**
 * JSON schemas of the specimen API (/api/specimens...): requests validated, replies serialized
 * with them (only the listed properties leave the server). Shapes: src/serve/specimen-views.ts.
 */
import { CAMERA_WATCHES } from '../../domain/camera-warning.js';
import { ACCESSION_RE } from '../../domain/specimen-assignment.js';
import { SPECIMEN_VERDICTS } from '../../domain/specimen.js';
import { opsSchemas } from '../ops-schemas.js';

const str = { type: 'string' } as const;
const int = { type: 'integer' } as const;
const num = { type: 'number' } as const;
const bool = { type: 'boolean' } as const;
const nullableStr = { type: ['string', 'null'] } as const;
const verdict = { type: 'string', enum: [...SPECIMEN_VERDICTS] } as const;
const statuses = ['open', 'awaiting_signoff', 'signed', 'amended'] as const;

const signOff = {
  type: 'object',
  properties: {
    version: int,
    verdict: str,
    comment: nullableStr,
    reason: nullableStr,
    signer: str,
    signed_at: str,
    suggested_verdict: str,
  },
} as const;

const specimenProperties = {
  id: int,
  accession: str,
  status: str,
  suggested_verdict: str,
  final_verdict: nullableStr,
  counts: {
    type: 'object',
    properties: {
      images: int,
      screened: int,
      out_of_domain: int,
      failed: int,
      flagged: int,
      by_class: { type: 'object', additionalProperties: int },
    },
  },
  flagged_share: { type: ['object', 'null'], properties: { value: num, low: num, high: num } },
  rule: str,
  session_open: bool,
  /** Its withheld fields that ask for a person and nobody has read yet (the counts leave them out). */
  unread_withheld: int,
  /** The camera watches that warned while its images arrived (src/domain/camera-warning.ts). */
  camera_warned: { type: 'array', items: { type: 'string', enum: [...CAMERA_WATCHES] } },
  revision: int,
  created_at: str,
  updated_at: str,
  finished_at: nullableStr,
  sign_off: { ...signOff, type: ['object', 'null'] },
} as const;

export const specimenItem = { type: 'object', properties: specimenProperties } as const;
export const specimenList = { type: 'array', items: specimenItem } as const;

export const specimenDetail = {
  type: 'object',
  properties: {
    ...specimenProperties,
    images: opsSchemas.results,
    sign_offs: { type: 'array', items: signOff },
    audit: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          id: int,
          actor: str,
          action: str,
          at: str,
          details: { type: 'object', additionalProperties: true },
        },
      },
    },
    captures_before_start: {
      type: 'array',
      items: {
        type: 'object',
        properties: { result_id: int, file: str, before_s: { type: 'number' } },
      },
    },
    camera_warnings: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          watch: { type: 'string', enum: [...CAMERA_WATCHES] },
          text: str,
          images: int,
          first_at: str,
          last_at: str,
        },
      },
    },
  },
} as const;

export const specimenListQuery = {
  type: 'object',
  properties: {
    status: { type: 'string', enum: [...statuses] },
    /** Part of an accession number, any case: the specimens whose accession contains it. */
    q: { type: 'string', minLength: 1, maxLength: 64 },
    limit: { type: 'integer', minimum: 1, maximum: 1000, default: 200 },
    /** Every specimen not signed yet as well, beyond `limit` (what the dashboard's list shows). */
    all_unsigned: { type: 'boolean', default: false },
  },
} as const;

export const unassignedQuery = {
  type: 'object',
  properties: { limit: { type: 'integer', minimum: 1, maximum: 1000, default: 200 } },
} as const;

/** The typed name of whoever writes, for identities that are no named user (shared token, loopback). */
const reviewerName = { type: 'string', minLength: 1, maxLength: 80 } as const;
const comment = { type: ['string', 'null'], maxLength: 4000 } as const;

export const startBody = {
  type: 'object',
  required: ['accession'],
  additionalProperties: false,
  properties: { accession: { type: 'string', pattern: ACCESSION_RE.source }, reviewer: reviewerName },
} as const;

export const actorBody = {
  type: ['object', 'null'],
  additionalProperties: false,
  properties: { reviewer: reviewerName },
} as const;

export const signBody = {
  type: 'object',
  required: ['verdict'],
  additionalProperties: false,
  properties: { verdict, comment, reviewer: reviewerName },
} as const;

export const amendBody = {
  type: 'object',
  required: ['verdict', 'reason'],
  additionalProperties: false,
  properties: {
    verdict,
    comment,
    reason: { type: 'string', minLength: 1, maxLength: 4000, pattern: '\\S' },
    /** The sign-off version the reviewer saw; a later amendment in between makes this one a 409. */
    version: { type: 'integer', minimum: 1 },
    reviewer: reviewerName,
  },
} as const;

export const assignBody = {
  type: 'object',
  required: ['result_ids'],
  additionalProperties: false,
  properties: {
    result_ids: {
      type: 'array',
      minItems: 1,
      maxItems: 1000,
      items: { type: 'integer', minimum: 1, maximum: Number.MAX_SAFE_INTEGER },
    },
    reviewer: reviewerName,
  },
} as const;

export const agreementReply = {
  type: 'object',
  properties: { signed: int, agreed: int, rate: { type: ['number', 'null'] } },
} as const;
