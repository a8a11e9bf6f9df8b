import Fastify, { type FastifyInstance } from 'fastify';
import type { Config } from '../config/schema.js';
import type { Logger } from '../log.js';
import type { EventBus } from '../pipeline/events.js';
import type { Metrics } from '../pipeline/metrics.js';
import type { Pipeline } from '../pipeline/index.js';
import type { ClassifierLike } from '../pipeline/ports.js';
import type { HealthPayload } from '../publish/payloads.js';
import type { ResultRow, Store } from '../store/index.js';
import { createAuthHook, type AuthPolicy } from './auth.js';
import { opsErrorHandler, opsSchemas } from './ops-schemas.js';

export { bearerToken, createAuthHook, secretEquals, type Authenticator, type AuthPolicy } from './auth.js';

/**
 * Everything an HTTP feature needs from the daemon; the dashboard plugin receives this object.
 * Paths to files are always resolved from the store by id (never from a request).
 */
export interface ServeContext {
  config: Config;
  log: Logger;
  store: Store;
  pipeline: Pipeline;
  bus: EventBus;
  metrics: Metrics;
  classifier: ClassifierLike;
  /** The same snapshot the retained MQTT health message carries. */
  health(): HealthPayload;
  readiness(): { ready: boolean; reasons: string[] };
  mqtt(): { enabled: boolean; connected: boolean; url: string | null; error: string | null };
  /** Auth for non-loopback binds; the dashboard may push its session check into `authenticators`. */
  auth: AuthPolicy;
  startedAt: number;
}

/** A feature mounted on the server (the dashboard): registered after the ops routes. */
export type ServerPlugin = (app: FastifyInstance, ctx: ServeContext) => Promise<void>;

/** The public JSON shape of a result on /api/results. */
export function resultJson(r: ResultRow) {
  return {
    id: r.id,
    file: r.file,
    sha256: r.sha256,
    status: r.status,
    class: r.class,
    p_ball: r.p_ball,
    flag: r.flag,
    needs_review: r.needs_review,
    error: r.error,
    error_kind: r.error_kind,
    probabilities: r.probabilities,
    model: r.model_version === null ? null : { name: r.model_name, version: r.model_version },
    captured_at: r.captured_at === null ? null : new Date(r.captured_at).toISOString(),
    processed_at: new Date(r.processed_at).toISOString(),
    timings: r.timings,
    attempts: r.attempts,
    origin: r.origin,
    review: r.review,
    delivery: r.delivery,
  };
}

/**
 * The ops API behind the auth hook (open on loopback, Bearer token or dashboard session on a LAN
 * bind): readiness, Prometheus metrics, the health snapshot and the results.
 */
async function opsRoutes(ops: FastifyInstance, ctx: ServeContext): Promise<void> {
  ops.addHook('onRequest', createAuthHook(ctx.auth));
  ops.setErrorHandler(opsErrorHandler);

  ops.get(
    '/readyz',
    {
      schema: {
        response: { 200: opsSchemas.readiness, 503: opsSchemas.readiness, '4xx': opsSchemas.error },
      },
    },
    async (_req, reply) => {
      const r = ctx.readiness();
      return reply.code(r.ready ? 200 : 503).send({ ready: r.ready, reasons: r.reasons });
    },
  );

  // Prometheus text exposition, sent as the string it is (the 200 schema documents the type).
  ops.get(
    '/metrics',
    { schema: { response: { 200: { type: 'string' }, '4xx': opsSchemas.error } } },
    async (_req, reply) => {
      const backlog = ctx.store.outboxBacklog();
      ctx.metrics.outboxBacklog.set(backlog.count);
      ctx.pipeline.diskFreeBytes();
      return reply
        .type('text/plain; version=0.0.4; charset=utf-8')
        .header('cache-control', 'no-store')
        .send(ctx.metrics.registry.render());
    },
  );

  ops.get(
    '/api/health',
    { schema: { response: { 200: opsSchemas.health, '4xx': opsSchemas.error } } },
    async () => ctx.health(),
  );

  ops.get<{ Querystring: { limit: number; before?: number } }>(
    '/api/results',
    {
      schema: {
        querystring: opsSchemas.resultsQuery,
        response: { 200: opsSchemas.results, '4xx': opsSchemas.error },
      },
    },
    async (req) => {
      const { limit, before } = req.query;
      return ctx.store.listResults({ limit, ...(before !== undefined ? { before } : {}) }).map(resultJson);
    },
  );
}

export async function createHttpServer(
  ctx: ServeContext,
  plugins: ServerPlugin[] = [],
): Promise<FastifyInstance> {
  const app = Fastify({
    // Request lines at info would flood journald (the dashboard polls); errors still get through.
    loggerInstance: ctx.log.child({ component: 'http' }, { level: 'warn' }),
    // Small bodies only on the ops API; the dashboard raises it for its upload route.
    bodyLimit: 1024 * 1024,
    return503OnClosing: true,
    // Live-feed (SSE) connections never go idle: close them on shutdown instead of waiting.
    forceCloseConnections: true,
  }) as unknown as FastifyInstance;

  // Liveness: answering at all proves the event loop turns. Open on every bind (load balancers,
  // Docker HEALTHCHECK); it reveals nothing.
  app.get('/healthz', { schema: { response: { 200: opsSchemas.liveness } } }, async () => ({
    status: 'ok',
    uptime_s: Math.round((Date.now() - ctx.startedAt) / 1000),
  }));

  await app.register(async (ops) => opsRoutes(ops, ctx));

  for (const plugin of plugins) await plugin(app, ctx);
  return app;
}
