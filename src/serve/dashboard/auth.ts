import { randomBytes } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { bearerToken } from '../auth.js';
import type { DashboardAuthConfig } from './deps.js';
import { secretsEqual, verifyPassword, hashPassword } from '../../runtime/password.js';

/**
 * Who is asking, and may they write?
 *
 * Reading needs an identity unless the server is on loopback. Writing (review, upload, logout)
 * ALWAYS needs one of:
 *  - `Authorization: Bearer <token>`: a browser never attaches it on its own, so a cross-site page
 *    cannot forge it;
 *  - a session cookie (HttpOnly, SameSite=Strict) AND the session's CSRF token in the
 *    `X-CSRF-Token` header. A cross-site form cannot set a custom header, and a cross-site fetch
 *    with one needs a CORS preflight that this server never grants.
 * On top of that, a request the browser labels cross-site (Sec-Fetch-Site) or whose Origin is not
 * this host is refused before anything else. On loopback the Host header must be a loopback name,
 * which stops DNS-rebinding pages from talking to the "no login" local dashboard.
 */

export const SESSION_COOKIE = 'bw_sid';
export const CSRF_HEADER = 'x-csrf-token';

export interface Session {
  id: string;
  /** Reviewer identity: a configured user name, "token" for the shared token, "local" on loopback. */
  user: string;
  /** True when `user` is a named account (it then signs reviews; the form cannot change it). */
  named: boolean;
  csrf: string;
  createdAt: number;
  lastSeen: number;
}

export type Identity =
  { kind: 'bearer'; user: string } | { kind: 'session'; session: Session } | { kind: 'anonymous-loopback' };

/** What the request's `Authorization: Bearer` says: nothing, the right token, or a wrong one. */
export type BearerVerdict = 'absent' | 'accepted' | 'refused';

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

  create(user: string, named: boolean): Session {
    this.sweep();
    if (this.sessions.size >= this.maxSessions) {
      // Drop the oldest: a flood of logins must not grow memory without bound.
      const oldest = this.sessions.keys().next().value;
      if (oldest !== undefined) this.end(oldest);
    }
    const now = Date.now();
    const session: Session = {
      id: randomBytes(32).toString('base64url'),
      user,
      named,
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
  /** A hash to verify against when the user name is unknown, so timing does not reveal names. */
  private dummyHash: Promise<string> | null = null;

  constructor(
    readonly config: DashboardAuthConfig,
    sessionIdleTtlMs: number,
  ) {
    this.sessions = new SessionStore(sessionIdleTtlMs);
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

  /**
   * The request's Bearer token against `http.auth_token`, parsed like the ops API does. Without a
   * configured token a Bearer header is ignored (there is no secret to guess).
   */
  checkBearer(request: FastifyRequest): BearerVerdict {
    const token = bearerToken(request);
    if (token === null || !this.config.token) return 'absent';
    return secretsEqual(token, this.config.token) ? 'accepted' : 'refused';
  }

  /** Who is asking; a wrong Bearer token is nobody, even with a session cookie. */
  identify(request: FastifyRequest, bearer: BearerVerdict = this.checkBearer(request)): Identity | null {
    if (bearer === 'accepted') return { kind: 'bearer', user: 'token' };
    if (bearer === 'refused') return null;
    const session = this.sessions.get(request.cookies?.[SESSION_COOKIE]);
    if (session) return { kind: 'session', session };
    if (this.config.loopback) return { kind: 'anonymous-loopback' };
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

  /** Checks a login; returns the identity to open a session for, or null. */
  async checkLogin(body: {
    user?: string;
    password?: string;
    token?: string;
  }): Promise<{ user: string; named: boolean } | null> {
    if (body.token) {
      return this.config.token && secretsEqual(body.token, this.config.token)
        ? { user: 'token', named: false }
        : null;
    }
    if (!body.user || !body.password) return null;
    const account = this.config.users.find((u) => u.name === body.user);
    if (!account) {
      this.dummyHash ??= hashPassword('not-a-real-password');
      await verifyPassword(body.password, await this.dummyHash);
      return null;
    }
    return (await verifyPassword(body.password, account.password_hash))
      ? { user: account.name, named: true }
      : null;
  }

  setSessionCookie(request: FastifyRequest, reply: FastifyReply, session: Session): void {
    reply.setCookie(SESSION_COOKIE, session.id, sessionCookieOptions(request));
  }

  /** Clears the cookie with exactly the attributes it was set with, or browsers keep it. */
  clearSessionCookie(request: FastifyRequest, reply: FastifyReply): void {
    reply.clearCookie(SESSION_COOKIE, sessionCookieOptions(request));
  }
}
