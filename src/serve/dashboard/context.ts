import type { FastifyReply, FastifyRequest } from 'fastify';
import type { FailureLimiter } from '../failure-limit.js';
import type { DashboardAuth, Identity } from './auth.js';
import type { DashboardDeps, DashboardMeta } from './deps.js';

declare module 'fastify' {
  interface FastifyRequest {
    dashboardIdentity: Identity | null;
  }
  interface FastifyContextConfig {
    /** Route reachable without logging in (login page and its assets). */
    dashboardPublic?: boolean;
  }
}

/**
 * What every route module of the dashboard receives as its plugin options: the deps, the auth
 * state, and what was read once at start-up. The route modules are registered as child plugins of
 * `dashboardPlugin`, so its hooks (Host check, identity, helmet) and error handler apply to them.
 */
export interface DashboardContext {
  deps: DashboardDeps;
  auth: DashboardAuth;
  /** `deps.meta()` as read at start-up (class names do not change while the daemon runs). */
  meta: DashboardMeta;
  classNames: readonly string[];
  uploadMaxBytes: number;
  /** Failed logins per client address (a successful login costs nothing). */
  loginFailures: FailureLimiter;
  /** Live-feed streams one identity may hold at once. */
  liveStreamsPerIdentity: number;
  /** preValidation hook of every state-changing route: refuses a write before its body is looked at. */
  requireWrite(request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | undefined>;
}

/** A 4xx whose message is shown to the user as it is. */
export class HttpError extends Error {
  constructor(
    readonly statusCode: number,
    message: string,
  ) {
    super(message);
  }
}
