import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { FailureLimiter, type FailureLimit } from './failure-limit.js';

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

/** Another way to authenticate a request (the dashboard's session cookie). */
export type Authenticator = (req: FastifyRequest) => boolean | Promise<boolean>;

export interface AuthPolicy {
  /** True when the server listens on loopback only: no credentials asked. */
  loopback: boolean;
  token: string | null;
  /** Extra authenticators (e.g. dashboard sessions); any one accepting is enough. */
  authenticators: Authenticator[];
  /** Failed Bearer attempts per address, shared by every route that takes a token. */
  bearerFailures?: FailureLimiter;
}

/**
 * `onRequest` hook for the ops API: on a loopback bind everything is open (only this machine can
 * connect); on any other bind a valid Bearer token or an accepting authenticator is required.
 * Wrong tokens count against the client's address: after the limit it gets 429 until the window
 * ends, whatever token it sends.
 */
export function createAuthHook(policy: AuthPolicy) {
  const failures = policy.bearerFailures ?? new FailureLimiter(DEFAULT_BEARER_LIMIT);
  return async function authHook(req: FastifyRequest, reply: FastifyReply): Promise<void> {
    if (policy.loopback) return;
    const token = bearerToken(req);
    if (token !== null && policy.token !== null) {
      const refused = refuseLimitedBearer(failures, req, reply);
      if (refused) return void (await refused);
      if (secretEquals(token, policy.token)) return;
      noteBearerFailure(failures, req);
    }
    for (const auth of policy.authenticators) if (await auth(req)) return;
    await reply
      .code(401)
      .header('www-authenticate', 'Bearer realm="blastwatch"')
      .send({ error: 'unauthorized', message: 'send Authorization: Bearer <http.auth_token>' });
  };
}
