import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { DEFAULT_USER_ROLE, type UserRole } from '../domain/roles.js';
import { FailureLimiter, type FailureLimit } from './failure-limit.js';
import { LOOPBACK_ACTOR, type Actor } from './roles.js';
import type { UserTokens } from './user-tokens.js';

export { FailureLimiter, type FailureLimit } from './failure-limit.js';

/** Failed Bearer attempts per client address per window before 429 (as for the login form). */
export const DEFAULT_BEARER_LIMIT: FailureLimit = { max: 10, timeWindowMs: 60_000 };

/**
 * Constant-time comparison of two secrets. Both sides are hashed first so that the comparison
 * takes the same time whatever the lengths (timingSafeEqual itself needs equal lengths).
 */
export function secretEquals(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

/**
 * The token from `Authorization: Bearer <token>`, or null. The one parser of that header for
 * every route: the scheme name is case-insensitive (RFC 7235 §2.1), so `bearer` works too.
 */
export function bearerToken(req: FastifyRequest): string | null {
  const h = req.headers.authorization;
  if (typeof h !== 'string') return null;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(h);
  return m ? (m[1] as string) : null;
}

/**
 * Sends 429 when the client's address has used up its failed Bearer attempts and returns the
 * reply (to be returned by the hook); null when it may try. Logged once per address and window.
 */
export function refuseLimitedBearer(
  limiter: FailureLimiter,
  req: FastifyRequest,
  reply: FastifyReply,
  body: (retryAfterS: number) => object = (s) => ({
    error: 'too-many-requests',
    message: `too many failed tokens from this address; retry in ${s} s`,
  }),
): FastifyReply | null {
  const retryAfterS = limiter.retryAfterS(req.ip);
  if (retryAfterS === 0) return null;
  if (limiter.firstRefusal(req.ip))
    req.log.warn({ ip: req.ip, retryAfterS }, 'too many failed Bearer tokens from this address: refusing');
  return reply.code(429).header('retry-after', String(retryAfterS)).send(body(retryAfterS));
}

/** Counts a wrong Bearer token against the client's address, and logs it (never the token). */
export function noteBearerFailure(limiter: FailureLimiter, req: FastifyRequest): void {
  const failures = limiter.fail(req.ip);
  req.log.warn(
    { ip: req.ip, method: req.method, path: req.url.split('?')[0], failures },
    'wrong Bearer token',
  );
}

/**
 * What a Bearer token is checked against: the shared `http.auth_token` (acting with `tokenRole`)
 * and the users' own API tokens.
 */
export interface BearerCredentials {
  token: string | null;
  /** Role of whoever presents the shared token (`http.auth_token_role`); default DEFAULT_USER_ROLE. */
  tokenRole?: UserRole | undefined;
  /** Per-user API tokens (`http.users[].api_token_hash`); absent: none. */
  userTokens?: UserTokens | undefined;
}

/** The actor of the shared token: unnamed (it may be anyone holding it). */
export function sharedTokenActor(role: UserRole = DEFAULT_USER_ROLE): Actor {
  return { name: 'token', role, named: false, via: 'shared-token' };
}

/**
 * The request's Bearer token when something could match it, else null: without a shared token
 * and without user tokens a Bearer header is ignored (there is no secret to guess).
 */
export function presentedBearer(req: FastifyRequest, credentials: BearerCredentials): string | null {
  const token = bearerToken(req);
  if (token === null) return null;
  if (credentials.token === null && !credentials.userTokens?.configured) return null;
  return token;
}

/** Whom a Bearer token stands for: the shared token, a user's own, or nobody (null). */
export async function actorForBearer(token: string, credentials: BearerCredentials): Promise<Actor | null> {
  if (credentials.token !== null && secretEquals(token, credentials.token))
    return sharedTokenActor(credentials.tokenRole);
  const owner = await credentials.userTokens?.verify(token);
  return owner ? { name: owner.name, role: owner.role, named: true, via: 'api-token' } : null;
}

/**
 * Another way to authenticate a request (the dashboard's session cookie): the actor it proves,
 * or true when it accepts without saying who (then the request may read, as a viewer), or
 * false / null.
 */
export type Authenticator = (req: FastifyRequest) => Actor | boolean | null | Promise<Actor | boolean | null>;

/** The actor of an authenticator that accepted without naming anyone: reading only. */
const UNNAMED_SESSION_ACTOR: Readonly<Actor> = Object.freeze({
  name: 'session',
  role: 'viewer',
  named: false,
  via: 'password',
});

export interface AuthPolicy extends BearerCredentials {
  /** True when the server listens on loopback only: no credentials asked. */
  loopback: boolean;
  /** Extra authenticators (e.g. dashboard sessions); any one accepting is enough. */
  authenticators: Authenticator[];
  /** Failed Bearer attempts per address, shared by every route that takes a token. */
  bearerFailures?: FailureLimiter;
}

/**
 * `onRequest` hook for the ops API. It sets `request.actor`: the owner of a valid Bearer token
 * (shared or a user's), else whom an authenticator accepts, else on a loopback bind the local
 * actor (only this machine can connect, so everything is open as before); on any other bind
 * nobody is a 401. Wrong tokens count against the client's address: after the limit it gets 429
 * until the window ends, whatever token it sends.
 */
export function createAuthHook(policy: AuthPolicy) {
  const failures = policy.bearerFailures ?? new FailureLimiter(DEFAULT_BEARER_LIMIT);
  return async function authHook(req: FastifyRequest, reply: FastifyReply): Promise<void> {
    const token = presentedBearer(req, policy);
    if (token !== null) {
      const refused = refuseLimitedBearer(failures, req, reply);
      if (refused) return void (await refused);
      const actor = await actorForBearer(token, policy);
      if (actor) {
        req.actor = actor;
        return;
      }
      noteBearerFailure(failures, req);
    }
    for (const auth of policy.authenticators) {
      const accepted = await auth(req);
      if (!accepted) continue;
      req.actor = accepted === true ? UNNAMED_SESSION_ACTOR : accepted;
      return;
    }
    if (policy.loopback) {
      req.actor = LOOPBACK_ACTOR;
      return;
    }
    await reply.code(401).header('www-authenticate', 'Bearer realm="blastwatch"').send({
      error: 'unauthorized',
      message: 'send Authorization: Bearer <token> (http.auth_token or your own)',
    });
  };
}
