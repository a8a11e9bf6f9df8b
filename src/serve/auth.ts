import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';

/**
 * Constant-time comparison of two secrets. Both sides are hashed first so that the comparison
 * takes the same time whatever the lengths (timingSafeEqual itself needs equal lengths).
 */
export function secretEquals(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

/** The token from `Authorization: Bearer <token>`, or null. */
export function bearerToken(req: FastifyRequest): string | null {
  const h = req.headers.authorization;
  if (typeof h !== 'string') return null;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(h);
  return m ? (m[1] as string) : null;
}

/** Another way to authenticate a request (the dashboard's session cookie). */
export type Authenticator = (req: FastifyRequest) => boolean | Promise<boolean>;

export interface AuthPolicy {
  /** True when the server listens on loopback only: no credentials asked. */
  loopback: boolean;
  token: string | null;
  /** Extra authenticators (e.g. dashboard sessions); any one accepting is enough. */
  authenticators: Authenticator[];
}

/**
 * `onRequest` hook for the ops API: on a loopback bind everything is open (only this machine can
 * connect); on any other bind a valid Bearer token or an accepting authenticator is required.
 */
export function createAuthHook(policy: AuthPolicy) {
  return async function authHook(req: FastifyRequest, reply: FastifyReply): Promise<void> {
    if (policy.loopback) return;
    const token = bearerToken(req);
    if (token !== null && policy.token !== null && secretEquals(token, policy.token)) return;
    for (const auth of policy.authenticators) if (await auth(req)) return;
    await reply
      .code(401)
      .header('www-authenticate', 'Bearer realm="blastwatch"')
      .send({ error: 'unauthorized', message: 'send Authorization: Bearer <http.auth_token>' });
  };
}
