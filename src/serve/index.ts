import Fastify, { type FastifyInstance } from 'fastify';
import type { ResolvedConfig } from '../config/load.js';
import type { Logger } from '../log.js';
import type { ClassifierLike } from '../domain/ports.js';
import type { WorkItem } from '../domain/work-item.js';
import type { LisHttp } from '../lis/ports.js';
import type { HealthPayload } from '../publish/payloads.js';
import type { EventBus } from '../runtime/events.js';
import type { Metrics } from '../runtime/metrics.js';
import type { OnSignOff, Store } from '../store/index.js';
import { createAuthHook, DEFAULT_BEARER_LIMIT, FailureLimiter, type AuthPolicy } from './auth.js';
import { opsErrorHandler, opsSchemas } from './ops-schemas.js';
import { decorateActor } from './roles.js';
import { UserTokens } from './user-tokens.js';
import { resultJson } from './views.js';

export {
  bearerToken,
  createAuthHook,
  FailureLimiter,
  secretEquals,
  type Authenticator,
  type AuthPolicy,
  type BearerCredentials,
} from './auth.js';
export { hasRole, requireRole, type Actor, type UserRole } from './roles.js';
export { UserTokens } from './user-tokens.js';

/**
 * Everything an HTTP feature needs from the daemon; the dashboard plugin receives this object.
 * Paths to files are always resolved from the store by id (never from a request).
 */
export interface ServeContext {
  config: ResolvedConfig;
  log: Logger;
  store: Store;
  /** What the HTTP side uses of the pipeline: hand it an upload, refresh the disk gauge. */
  pipeline: { offer(item: WorkItem): string; diskFreeBytes(): number | null };
  bus: EventBus;
  metrics: Metrics;
  classifier: ClassifierLike;
  /** The same snapshot the retained MQTT health message carries. */
  health(): HealthPayload;
  readiness(): { ready: boolean; reasons: string[] };
  /** The health state alone, for /healthz (absent: /healthz says nothing about it). */
  healthState?(): 'ok' | 'degraded';
  mqtt(): { enabled: boolean; connected: boolean; url: string | null; error: string | null };
  /** Auth for non-loopback binds; the dashboard may push its session check into `authenticators`. */
  auth: AuthPolicy;
  startedAt: number;
  /**
   * Called inside the transaction of every specimen sign-off and amendment (the laboratory
   * system's outbox writes its rows there, so both commit together); absent: nothing else is written.
   */
  onSignOff?: OnSignOff;
  /** Specimen reports (PDF), CSV exports and the LIS destinations, for the dashboard. */
  lis?: LisHttp;
}

/** A feature mounted on the server (the dashboard): registered after the ops routes. */
export type ServerPlugin = (app: FastifyInstance, ctx: ServeContext) => Promise<void>;

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
      const backlog = ctx.store.outbox.backlog();
      ctx.metrics.outboxBacklog.set(backlog.count);
      ctx.metrics.outboxAlerts.set(backlog.alerts);
      ctx.metrics.outboxOldestAge.set(
        backlog.oldestCreatedAt === null ? 0 : Math.round((Date.now() - backlog.oldestCreatedAt) / 1000),
      );
      const health = ctx.health();
      ctx.metrics.healthDegraded.set(health.state === 'degraded' ? 1 : 0);
      ctx.metrics.outOfDomainShare.set(health.domain_drift?.share ?? 0);
      ctx.metrics.greenBalanceMedian.set(health.colour_drift?.median ?? 0);
      ctx.metrics.greenBalanceHigh.set(health.colour_drift?.high ?? 0);
      ctx.metrics.redCellRadiusMedian.set(health.magnification?.median ?? 0);
      ctx.metrics.redCellRadiusLow.set(health.magnification?.low ?? 0);
      ctx.metrics.redCellRadiusHigh.set(health.magnification?.high ?? 0);
      ctx.metrics.capturesAhead.set(health.capture_clock?.ahead ?? 0);
      ctx.metrics.capturesBeforeSession.set(health.capture_clock?.before_session ?? 0);
      ctx.metrics.capturesLongBeforeSession.set(health.capture_clock?.long_before_session ?? 0);
      const lastOk = health.backup?.last_ok_at;
      ctx.metrics.backupLastOk.set(lastOk ? Date.parse(lastOk) / 1000 : 0);
      ctx.metrics.backupOk.set(health.backup?.ok ? 1 : 0);
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
      return ctx.store.results.list({ limit, ...(before !== undefined ? { before } : {}) }).map(resultJson);
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

  // Liveness: answering at all proves the event loop turns, so it is always 200 (a degraded daemon
  // must not be restarted for a broker outage). Open on every bind (load balancers, Docker
  // HEALTHCHECK); it reveals only the health state word, so a monitor that polls nothing else
  // still sees "degraded" (the problems are on /api/health, behind auth).
  app.get('/healthz', { schema: { response: { 200: opsSchemas.liveness } } }, async () => ({
    status: 'ok',
    ...(ctx.healthState ? { health: ctx.healthState() } : {}),
    uptime_s: Math.round((Date.now() - ctx.startedAt) / 1000),
  }));

  decorateActor(app);
  // One count of failed Bearer tokens per address, and one cache of verified user tokens, for
  // the ops API and the dashboard alike; the token role and users come from the config unless
  // the caller set them.
  const auth: AuthPolicy = {
    ...ctx.auth,
    tokenRole: ctx.auth.tokenRole ?? ctx.config.http.auth_token_role,
    userTokens: ctx.auth.userTokens ?? new UserTokens(() => ctx.config.http.users),
    bearerFailures: ctx.auth.bearerFailures ?? new FailureLimiter(DEFAULT_BEARER_LIMIT),
  };
  const served: ServeContext = { ...ctx, auth };
  await app.register(async (ops) => opsRoutes(ops, served));

  for (const plugin of plugins) await plugin(app, served);
  return app;
}
