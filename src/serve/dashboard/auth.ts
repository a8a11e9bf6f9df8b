import { randomBytes } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { DEFAULT_USER_ROLE } from '../../domain/roles.js';
import { secretsEqual, verifyPassword, hashPassword } from '../../runtime/password.js';
import { sharedTokenActor, type BearerCredentials } from '../auth.js';
import { LOOPBACK_ACTOR, type Actor } from '../roles.js';
import { UserTokens } from '../user-tokens.js';
import type { DashboardAuthConfig } from './deps.js';

/**
 * Who is asking, and may they write?
 *
 * Reading needs an identity unless the server is on loopback. Writing (review, upload, logout)
 * ALWAYS needs one of:
 *  - `Authorization: Bearer <token>` (the shared token or a user's own): a browser never attaches
 *    it on its own, so a cross-site page cannot forge it;
 *  - a session cookie (HttpOnly, SameSite=Strict) AND the session's CSRF token in the
 *    `X-CSRF-Token` header. A cross-site form cannot set a custom header, and a cross-site fetch
 *    with one needs a CORS preflight that this server never grants.
 * On top of that, a request the browser labels cross-site (Sec-Fetch-Site) or whose Origin is not
 * this host is refused before anything else. On loopback the Host header must be a loopback name,
 * which stops DNS-rebinding pages from talking to the "no login" local dashboard.
 * Whether the identity's role allows a write is each route's `requireRole` (../roles.ts).
 */

export const SESSION_COOKIE = 'bw_sid';
export const CSRF_HEADER = 'x-csrf-token';

export interface Session {
  id: string;
  /**
   * Whom the session acts for: a configured user (it then signs reviews; the form cannot change
   * the name), the shared token ("token") or, on loopback, the local actor ("local").
   */
  actor: Actor;
  csrf: string;
  createdAt: number;
  lastSeen: number;
}

export type Identity =
  | { kind: 'bearer'; actor: Actor }
  | { kind: 'session'; session: Session }
  | { kind: 'anonymous-loopback'; actor: Actor };

/** What the request's `Authorization: Bearer` says: nothing, a valid token (whose), or a wrong one. */
export type BearerVerdict = { kind: 'absent' } | { kind: 'accepted'; actor: Actor } | { kind: 'refused' };

/** Whom an identity acts for (null: nobody). */
export function actorOf(identity: Identity | null): Actor | null {
  if (!identity) return null;
  return identity.kind === 'session' ? identity.session.actor : identity.actor;
}

const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]', '::1']);

export function isLoopbackAddress(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

function hostnameOf(hostHeader: string): string {
  // [::1]:8080 -> [::1]; 127.0.0.1:8080 -> 127.0.0.1
  if (hostHeader.startsWith('[')) return hostHeader.slice(0, hostHeader.indexOf(']') + 1);
  const colon = hostHeader.lastIndexOf(':');
  return (colon === -1 ? hostHeader : hostHeader.slice(0, colon)).toLowerCase();
}

function sessionCookieOptions(request: FastifyRequest) {
  return {
    path: '/',
    httpOnly: true,
    sameSite: 'strict',
    secure: request.protocol === 'https',
  } as const;
}

export class SessionStore {
  private readonly sessions = new Map<string, Session>();
  /** Called when a session ends (logout, expiry, eviction): its live streams close. */
  private readonly endListeners = new Map<string, Set<() => void>>();
  constructor(
    private readonly idleTtlMs: number,
    private readonly maxSessions = 1000,
  ) {}

  create(actor: Actor): Session {
    this.sweep();
    if (this.sessions.size >= this.maxSessions) {
      // Drop the oldest: a flood of logins must not grow memory without bound.
      const oldest = this.sessions.keys().next().value;
      if (oldest !== undefined) this.end(oldest);
    }
    const now = Date.now();
    const session: Session = {
      id: randomBytes(32).toString('base64url'),
      actor,
      csrf: randomBytes(32).toString('base64url'),
      createdAt: now,
      lastSeen: now,
    };
    this.sessions.set(session.id, session);
    return session;
  }

  /** The live session with this id, marked as just used; undefined when unknown or expired. */
  get(id: string | undefined): Session | undefined {
    const session = this.peek(id);
    if (session) session.lastSeen = Date.now();
    return session;
  }

  /** The live session with this id without marking it used (an open stream is not activity). */
  peek(id: string | undefined): Session | undefined {
    if (!id) return undefined;
    const session = this.sessions.get(id);
    if (!session) return undefined;
    if (Date.now() - session.lastSeen > this.idleTtlMs) {
      this.end(id);
      return undefined;
    }
    return session;
  }

  /** When the session expires unless it is used before then (ms since the epoch), or null. */
  expiresAt(id: string): number | null {
    const session = this.peek(id);
    return session ? session.lastSeen + this.idleTtlMs : null;
  }

  delete(id: string): void {
    this.end(id);
  }

  /** Calls `listener` once when the session ends; returns the function that cancels it. */
  onEnd(id: string, listener: () => void): () => void {
    let listeners = this.endListeners.get(id);
    if (!listeners) this.endListeners.set(id, (listeners = new Set()));
    listeners.add(listener);
    return () => {
      listeners.delete(listener);
      if (listeners.size === 0 && this.endListeners.get(id) === listeners) this.endListeners.delete(id);
    };
  }

  private end(id: string): void {
    this.sessions.delete(id);
    const listeners = this.endListeners.get(id);
    this.endListeners.delete(id);
    for (const listener of listeners ?? []) listener();
  }

  private sweep(): void {
    const now = Date.now();
    for (const [id, s] of this.sessions) if (now - s.lastSeen > this.idleTtlMs) this.end(id);
  }
}

export class DashboardAuth {
  readonly sessions: SessionStore;
  /** What a Bearer header is checked against (see presentedBearer / actorForBearer in ../auth.ts). */
  readonly bearer: BearerCredentials;
  /** A hash to verify against when the user name is unknown, so timing does not reveal names. */
  private dummyHash: Promise<string> | null = null;

  constructor(
    readonly config: DashboardAuthConfig,
    sessionIdleTtlMs: number,
    /** Shared with the ops API in the daemon, so a token verified by one is known to the other. */
    userTokens: UserTokens = new UserTokens(() => config.users),
  ) {
    this.sessions = new SessionStore(sessionIdleTtlMs);
    this.bearer = { token: config.token, tokenRole: config.tokenRole, userTokens };
  }

  get loginRequired(): boolean {
    return !this.config.loopback;
  }

  /** Host header check for loopback binds (DNS rebinding). */
  hostAllowed(request: FastifyRequest): boolean {
    if (!this.config.loopback) return true;
    const host = request.headers.host;
    return typeof host === 'string' && LOOPBACK_HOSTS.has(hostnameOf(host));
  }

  /** Who is asking; a wrong Bearer token is nobody, even with a session cookie. */
  identify(request: FastifyRequest, bearer: BearerVerdict): Identity | null {
    if (bearer.kind === 'accepted') return { kind: 'bearer', actor: bearer.actor };
    if (bearer.kind === 'refused') return null;
    const session = this.sessions.get(request.cookies?.[SESSION_COOKIE]);
    if (session) return { kind: 'session', session };
    if (this.config.loopback) return { kind: 'anonymous-loopback', actor: LOOPBACK_ACTOR };
    return null;
  }

  /** Why a write must be refused, or null when it may proceed. */
  writeRefusal(request: FastifyRequest, identity: Identity | null): string | null {
    const site = request.headers['sec-fetch-site'];
    if (typeof site === 'string' && site !== 'same-origin' && site !== 'none') {
      return 'cross-site request refused';
    }
    const origin = request.headers.origin;
    if (typeof origin === 'string' && origin !== 'null') {
      let originHost: string;
      try {
        originHost = new URL(origin).host;
      } catch {
        return 'bad Origin header';
      }
      if (originHost !== request.headers.host) return 'cross-origin request refused';
    } else if (origin === 'null') {
      return 'opaque origin refused';
    }
    if (!identity) return 'not logged in';
    if (identity.kind === 'bearer') return null;
    if (identity.kind === 'anonymous-loopback') return 'missing session (reload the page)';
    const sent = request.headers[CSRF_HEADER];
    if (typeof sent !== 'string' || !secretsEqual(sent, identity.session.csrf))
      return 'missing or wrong CSRF token';
    return null;
  }

  /**
   * Checks a login; returns whom to open a session for, or null. The login form takes the shared
   * token but not a user's API token: a person logs in with her password, a token is for scripts.
   */
  async checkLogin(body: { user?: string; password?: string; token?: string }): Promise<Actor | null> {
    if (body.token) {
      return this.config.token && secretsEqual(body.token, this.config.token)
        ? sharedTokenActor(this.config.tokenRole)
        : null;
    }
    if (!body.user || !body.password) return null;
    const account = this.config.users.find((u) => u.name === body.user);
    if (!account?.password_hash) {
      // Unknown name, or a user without a password (API only): as slow as a wrong password.
      this.dummyHash ??= hashPassword('not-a-real-password');
      await verifyPassword(body.password, await this.dummyHash);
      return null;
    }
    if (!(await verifyPassword(body.password, account.password_hash))) return null;
    return { name: account.name, role: account.role ?? DEFAULT_USER_ROLE, named: true, via: 'password' };
  }

  setSessionCookie(request: FastifyRequest, reply: FastifyReply, session: Session): void {
    reply.setCookie(SESSION_COOKIE, session.id, sessionCookieOptions(request));
  }

  /** Clears the cookie with exactly the attributes it was set with, or browsers keep it. */
  clearSessionCookie(request: FastifyRequest, reply: FastifyReply): void {
    reply.clearCookie(SESSION_COOKIE, sessionCookieOptions(request));
  }
}
