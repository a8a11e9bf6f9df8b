import { z } from 'zod';
import { authToken, httpUsers, millis, seconds, specimenSection, topicPrefix, userRole } from './checks.js';

/**
 * The configuration schema. Keys mirror config/default.yaml one to one (snake_case), so an error's
 * key path is exactly what the user has to edit. Every object is strict: an unknown key is
 * almost always a typo, and a typo silently ignored is a setting silently not applied.
 */
const nullableString = z.string().min(1).nullable();
const port = z.number().int().min(0).max(65535);
const positiveInt = z.number().int().positive();
const nonNegativeInt = z.number().int().min(0);
const probability = z.number().min(0).max(1);

export const executionProviderSchema = z.enum(['cuda', 'cpu']);
export type ExecutionProviderName = z.infer<typeof executionProviderSchema>;

export const configSchema = z.strictObject({
  device_id: z
    .string()
    .regex(/^[A-Za-z0-9_.-]+$/, 'letters, digits, dot, dash and underscore only (it is part of MQTT topics)')
    .nullable(),
  log: z.strictObject({
    level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal']),
    pretty: z.union([z.boolean(), z.literal('auto')]),
  }),
  capture: z.strictObject({
    dir: z.string().min(1),
    recursive: z.boolean(),
    extensions: z.array(z.string().regex(/^\.[A-Za-z0-9]+$/, 'an extension like .jpg')).min(1),
    ignore: z.array(z.string().min(1)),
    use_polling: z.boolean(),
    poll_interval_ms: millis(100, 60_000),
    require_mount: z.boolean(),
    stability_ms: millis(0, 600_000),
    rescan_interval_s: seconds(1, 86_400),
    retry_backoff_ms: millis(10, 600_000),
    max_attempts: positiveInt,
    move_processed_to: nullableString,
    move_quarantined_to: nullableString,
    dir_probe_interval_ms: millis(50, 600_000).nullable(),
  }),
  data: z.strictObject({
    dir: z.string().min(1),
    retention_days: nonNegativeInt,
    retention_max_rows: nonNegativeInt,
    min_free_disk_mb: nonNegativeInt,
    maintenance_interval_s: seconds(10, 86_400),
  }),
  image: z.strictObject({
    max_input_pixels: positiveInt,
    max_file_mb: z.number().positive(),
  }),
  segment: z.strictObject({
    k: z.number().int().min(2).max(32),
    threshold: z.number().int().min(0).max(255),
    min_object_area: nonNegativeInt,
    min_hole_area: nonNegativeInt,
  }),
  model: z.strictObject({
    dir: nullableString,
    execution_providers: z.array(executionProviderSchema).min(1),
    threads: nonNegativeInt,
    threshold: probability.nullable(),
    uncertain_band: z
      .tuple([probability, probability])
      .refine(([lo, hi]) => lo <= hi, 'low must not exceed high')
      .nullable(),
  }),
  gate: z.strictObject({
    drift_window: z.number().int().min(5).max(10_000),
    drift_share: z.number().gt(0).lt(1),
    magnification_watch: z.boolean(),
  }),
  pipeline: z.strictObject({
    concurrency: z.number().int().min(1).max(64),
    queue_max: positiveInt,
  }),
  mqtt: z.strictObject({
    url: z
      .string()
      .regex(/^(mqtts?|wss?):\/\/.+/, 'a URL starting with mqtt://, mqtts://, ws:// or wss://')
      .nullable(),
    username: nullableString,
    password: nullableString,
    client_id: nullableString,
    topic_prefix: topicPrefix.nullable(),
    ca_file: nullableString,
    cert_file: nullableString,
    key_file: nullableString,
    reject_unauthorized: z.boolean(),
    keepalive_s: seconds(1, 3600),
    health_interval_s: seconds(1, 86_400),
    shutdown_flush_ms: millis(0, 60_000),
    reconnect_ms: millis(50, 300_000),
  }),
  http: z.strictObject({
    host: z.string().min(1),
    port,
    auth_token: authToken.nullable(),
    auth_token_role: userRole,
    users: httpUsers,
    upload_max_mb: z.number().positive(),
    live_streams_per_identity: z.number().int().min(1).max(64),
  }),
  specimen: specimenSection,
  lis: z.strictObject({
    lab_name: nullableString,
    receiving_application: nullableString,
    receiving_facility: nullableString,
    accession_system: z.url('a URI such as urn:oid:1.2.3 or https://lab.example/accession').nullable(),
    mllp: z
      .strictObject({
        host: z.string().min(1),
        // 2575 is the port IANA registered for HL7 over MLLP.
        port: port.default(2575),
        ack_timeout_ms: millis(100, 600_000).default(30_000),
        connect_timeout_ms: millis(100, 600_000).default(10_000),
      })
      .nullable(),
    file_dir: nullableString,
    fhir: z
      .strictObject({
        base_url: z.url({ protocol: /^https?$/, error: 'an http:// or https:// URL' }),
        token: nullableString.default(null),
        timeout_ms: millis(100, 600_000).default(30_000),
      })
      .nullable(),
    fhir_dir: nullableString,
    retry_min_ms: millis(10, 3_600_000),
    retry_max_ms: millis(10, 3_600_000),
  }),
});

export type Config = z.infer<typeof configSchema>;
