import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { LisHttp } from '../../lis/ports.js';
import cookie from '@fastify/cookie';
import helmet from '@fastify/helmet';
import multipart from '@fastify/multipart';
import {
  actorForBearer,
  FailureLimiter,
  noteBearerFailure,
  presentedBearer,
  refuseLimitedBearer,
} from '../auth.js';
import { decorateActor, requireRole, type Actor } from '../roles.js';
import type { UserTokens } from '../user-tokens.js';
import { actorOf, DashboardAuth, SESSION_COOKIE, type BearerVerdict } from './auth.js';
import type { DashboardContext } from './context.js';
import { ReviewError, type DashboardDeps } from './deps.js';
import { imageRoutes } from './routes/images.js';
import { lisRoutes } from './routes/lis.js';
import { liveRoutes } from './routes/live.js';
import { defaultPublicDir, pageRoutes } from './routes/pages.js';
import { resultRoutes } from './routes/results.js';
import { reviewRoutes } from './routes/reviews.js';
import { sessionRoutes } from './routes/session.js';
import { SPECIMEN_ROLE_GUARDS, specimenRoutes, type SpecimenGuards } from './routes/specimens.js';
import { statusRoutes } from './routes/status.js';
import { uploadRoutes } from './routes/upload.js';

export { defaultPublicDir } from './routes/pages.js';
export { reviewsToCsv } from './routes/reviews.js';
export { cleanUploadName, sniffImageType } from './routes/upload.js';

export interface DashboardOptions {
  deps: DashboardDeps;
  /** Largest upload in bytes (config http.upload_max_mb). */
  uploadMaxBytes: number;
  /** Failed logins per client address per window before 429 (successful ones do not count). */
  loginRateLimit?: { max: number; timeWindowMs: number } | undefined;
  /**
   * Failed Bearer tokens per client address, shared with the ops API; default: a count of the
   * dashboard's own with the login limit.
   */
  bearerFailures?: FailureLimiter | undefined;
  /** Verified user API tokens, shared with the ops API; default: the dashboard's own over deps.auth.users. */
  userTokens?: UserTokens | undefined;
  /** Live-feed streams one identity (named user, the shared token, a local session) may hold. */
  liveStreamsPerIdentity?: number | undefined;
  sessionIdleTtlMs?: number;
  /** Folder of the static files; default `public/` beside this module. */
  publicDir?: string;
  /**
   * Role checks of the specimen writes (start, finish, assign, sign, amend), run after the write
   * check: the one place to require a role; default SPECIMEN_ROLE_GUARDS (the reviewer role for each).
   */
  specimenGuards?: SpecimenGuards;
  /** Specimen reports, exports and the LIS status (routes/lis.ts); absent = those routes are not served. */
  lis?: LisHttp | undefined;
  /** Receives a check that returns the actor of a request's live dashboard session (for the ops API's hook). */
  onAuth?: (authenticate: (request: FastifyRequest) => Actor | null) => void;
}

/** The session id from a raw Cookie header (the ops API's scope has no cookie parser). */
function sessionIdFromHeader(header: string | undefined): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === SESSION_COOKIE) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/** Security headers: a strict CSP (scripts only from this server, no inline code), no framing. */
async function registerSecurityPlugins(app: FastifyInstance, uploadMaxBytes: number): Promise<void> {
  if (!app.hasRequestDecorator('cookies')) await app.register(cookie);
  await app.register(helmet, {
    contentSecurityPolicy: {
      useDefaults: false,
      directives: {
        defaultSrc: ["'self'"],
        scriptSrc: ["'self'"],
        styleSrc: ["'self'"],
        imgSrc: ["'self'", 'blob:', 'data:'],
        connectSrc: ["'self'"],
        fontSrc: ["'self'"],
        objectSrc: ["'none'"],
        baseUri: ["'none'"],
        formAction: ["'self'"],
        frameAncestors: ["'none'"],
      },
    },
    // Plain HTTP on a lab LAN: HSTS would be ignored, and upgrade-insecure-requests would break it.
    strictTransportSecurity: false,
    referrerPolicy: { policy: 'no-referrer' },
    crossOriginResourcePolicy: { policy: 'same-origin' },
  });
  await app.register(multipart, {
    limits: { fileSize: uploadMaxBytes, files: 1, fields: 4, parts: 6, fieldSize: 1024 },
  });
}

/** 4xx: the message is for the user (schema errors name the field); 5xx: logged, not shown. */
function dashboardErrorHandler(
  error: FastifyError | ReviewError,
  request: FastifyRequest,
  reply: FastifyReply,
) {
  const status = error.statusCode ?? 500;
  if (status >= 500) {
    request.log.error({ err: error }, 'dashboard request failed');
    return reply.code(500).send({ error: 'internal error: see the daemon log' });
  }
  return reply.code(status).send({ error: error.message });
}

/**
 * The LAN dashboard: pages, JSON API under /api/dashboard, live feed (SSE), images by id, review,
 * upload, status. Register it on the daemon's fastify instance; it is encapsulated (its helmet,
 * cookie, multipart and auth hook apply to its own routes only). Each group of routes is a child
 * plugin in `routes/`, declaring the JSON schemas of its requests and replies.
 */
export async function dashboardPlugin(app: FastifyInstance, opts: DashboardOptions): Promise<void> {
  const { deps } = opts;
  const auth = new DashboardAuth(deps.auth, opts.sessionIdleTtlMs ?? 12 * 3600_000, opts.userTokens);
  const meta = deps.meta();
  const loginLimit = opts.loginRateLimit ?? { max: 10, timeWindowMs: 60_000 };
  const bearerFailures = opts.bearerFailures ?? new FailureLimiter(loginLimit);

  await registerSecurityPlugins(app, opts.uploadMaxBytes);
  app.decorateRequest('dashboardIdentity', null);
  decorateActor(app);
  opts.onAuth?.((request) => auth.sessions.get(sessionIdFromHeader(request.headers.cookie))?.actor ?? null);

  // Runs before body parsing and validation: an unauthenticated request learns nothing else.
  app.addHook('onRequest', async (request, reply) => {
    if (!auth.hostAllowed(request)) {
      return reply.code(403).type('text/plain').send('Host not allowed (use http://localhost or 127.0.0.1)');
    }
    let bearer: BearerVerdict = { kind: 'absent' };
    const token = presentedBearer(request, auth.bearer);
    if (token !== null) {
      // Refused before the token is checked: a user token costs a slow hash per guess.
      const refused = refuseLimitedBearer(bearerFailures, request, reply, (s) => ({
        error: `too many failed tokens from this address: try again in ${s} s`,
      }));
      if (refused) return refused;
      const actor = await actorForBearer(token, auth.bearer);
      if (actor) bearer = { kind: 'accepted', actor };
      else {
        bearer = { kind: 'refused' };
        noteBearerFailure(bearerFailures, request);
      }
    }
    request.dashboardIdentity = auth.identify(request, bearer);
    request.actor = actorOf(request.dashboardIdentity);
    if (request.dashboardIdentity || request.routeOptions.config.dashboardPublic) return;
    const wantsHtml = request.method === 'GET' && (request.url === '/' || request.url.startsWith('/?'));
    if (wantsHtml) return reply.redirect('/login');
    return reply.code(401).header('www-authenticate', 'Bearer').send({ error: 'login required' });
  });
  app.setErrorHandler(dashboardErrorHandler);

  const context: DashboardContext = {
    deps,
    auth,
    meta,
    classNames: meta.classes.map((c) => c.name),
    uploadMaxBytes: opts.uploadMaxBytes,
    loginFailures: new FailureLimiter(loginLimit),
    liveStreamsPerIdentity: opts.liveStreamsPerIdentity ?? 8,
    async requireWrite(request, reply) {
      const refusal = auth.writeRefusal(request, request.dashboardIdentity);
      if (refusal) return reply.code(403).send({ error: refusal });
      return undefined;
    },
  };
  await app.register(pageRoutes, { ...context, publicDir: opts.publicDir ?? defaultPublicDir() });
  await app.register(sessionRoutes, context);
  await app.register(resultRoutes, context);
  await app.register(imageRoutes, context);
  await app.register(reviewRoutes, context);
  await app.register(uploadRoutes, context);
  await app.register(statusRoutes, context);
  await app.register(liveRoutes, context);
  if (deps.specimens)
    await app.register(specimenRoutes, {
      ...context,
      specimens: deps.specimens,
      guards: opts.specimenGuards ?? SPECIMEN_ROLE_GUARDS,
    });
  if (opts.lis)
    await app.register(lisRoutes, {
      ...context,
      lisDeps: opts.lis,
      requireReviewer: [context.requireWrite, requireRole('reviewer')],
    });
}
