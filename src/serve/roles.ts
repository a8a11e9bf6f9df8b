import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { roleIncludes, type UserRole } from '../domain/roles.js';

export { DEFAULT_USER_ROLE, roleIncludes, USER_ROLES, type UserRole } from '../domain/roles.js';

/**
 * Who a request acts for, once authenticated: set by the auth hooks of the ops API and of the
 * dashboard, read by routes as `request.actor` (null: nobody proved anything).
 */
export interface Actor {
  /** A configured user's name; otherwise what the identity is: "token" (the shared token), "local" (loopback). */
  name: string;
  role: UserRole;
  /** True for an `http.users` entry: the name is a person's (or a script's) own and signs what it does. */
  named: boolean;
  /**
   * How the request proved it: a login session opened with a password, a user's API token, the
   * shared `http.auth_token` (header or login form), or a loopback bind that asks nobody.
   */
  via: 'password' | 'api-token' | 'shared-token' | 'loopback';
}

declare module 'fastify' {
  interface FastifyRequest {
    /** Who this request acts for; null until an auth hook proved it (and on public routes). */
    actor: Actor | null;
  }
}

/**
 * Whoever reaches a loopback-only server without logging in: the person at the bench machine,
 * who can read the config and the database files anyway, so nothing is kept from her. A
 * single-user device (`npx blastwatch run`) therefore works with no users configured.
 */
export const LOOPBACK_ACTOR: Readonly<Actor> = Object.freeze({
  name: 'local',
  role: 'admin',
  named: false,
  via: 'loopback',
});

/** Adds `request.actor` to a server; safe to call from every plugin that sets it. */
export function decorateActor(app: FastifyInstance): void {
  if (!app.hasRequestDecorator('actor')) app.decorateRequest('actor', null);
}

/** A refused request: 401 without an identity, 403 with one whose role is too weak. */
export class AccessRefusal extends Error {
  override readonly name = 'AccessRefusal';
  constructor(
    readonly statusCode: 401 | 403,
    /** The ops API's error word (its error body is `{ error: code, message }`). */
    readonly code: 'unauthorized' | 'forbidden',
    message: string,
  ) {
    super(message);
  }
}

function describe(actor: Actor): string {
  if (actor.named) return `user "${actor.name}"`;
  if (actor.via === 'shared-token') return 'the shared access token';
  return 'this login';
}

/** True when the request acts for someone holding `needed` or a stronger role. */
export function hasRole(request: FastifyRequest, needed: UserRole): boolean {
  return request.actor !== null && roleIncludes(request.actor.role, needed);
}

/**
 * A route hook that lets a request through only when it acts for `needed` or a stronger role
 * (admin ⊇ reviewer ⊇ viewer). Use it as `onRequest`, `preValidation` or `preHandler` of a route
 * registered under an auth hook (the dashboard plugin or the ops API), e.g.
 * `{ preValidation: requireRole('reviewer') }`; earlier hooks refuse before the body is read.
 * It throws AccessRefusal, so the scope's error handler shapes the body; the message names the
 * role needed.
 */
export function requireRole(needed: UserRole) {
  return async function roleCheck(request: FastifyRequest, _reply: FastifyReply): Promise<void> {
    const actor = request.actor;
    if (!actor) {
      throw new AccessRefusal(
        401,
        'unauthorized',
        `log in or send Authorization: Bearer <token>: this needs the ${needed} role`,
      );
    }
    if (!roleIncludes(actor.role, needed)) {
      request.log.info(
        { user: actor.name, role: actor.role, needed, path: request.url.split('?')[0] },
        'role too weak',
      );
      throw new AccessRefusal(
        403,
        'forbidden',
        `this needs the ${needed} role; ${describe(actor)} has the ${actor.role} role`,
      );
    }
  };
}
