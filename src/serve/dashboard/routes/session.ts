import type { FastifyInstance } from 'fastify';
import { LOOPBACK_ACTOR } from '../../roles.js';
import { actorOf, SESSION_COOKIE } from '../auth.js';
import type { DashboardContext } from '../context.js';
import { errorReply, loginBody, okReply, sessionReply } from '../schemas.js';

interface LoginBody {
  user?: string;
  password?: string;
  token?: string;
}

/**
 * Log in (failures limited per address), log out, and who the page is talking for (with the
 * CSRF token).
 */
export async function sessionRoutes(app: FastifyInstance, opts: DashboardContext): Promise<void> {
  const { auth, meta, requireWrite, loginFailures } = opts;

  app.post<{ Body: LoginBody }>(
    '/login',
    {
      config: { dashboardPublic: true },
      bodyLimit: 4096,
      schema: { body: loginBody, response: { 200: okReply, '4xx': errorReply } },
    },
    async (request, reply) => {
      // Only failures count: a user who logs in and out all day never locks herself out.
      const retryAfterS = loginFailures.retryAfterS(request.ip);
      if (retryAfterS > 0) {
        if (loginFailures.firstRefusal(request.ip))
          request.log.warn(
            { ip: request.ip, retryAfterS },
            'too many failed logins from this address: refusing',
          );
        return reply
          .code(429)
          .header('retry-after', String(retryAfterS))
          .send({ error: `Too many failed attempts: try again in ${retryAfterS} s.` });
      }
      const site = request.headers['sec-fetch-site'];
      if (typeof site === 'string' && site !== 'same-origin' && site !== 'none') {
        return reply.code(403).send({ error: 'cross-site request refused' });
      }
      const { user, password, token } = request.body ?? {};
      const who = await auth.checkLogin({ user, password, token });
      if (!who) {
        const failures = loginFailures.fail(request.ip);
        request.log.warn({ user: user || '(token)', ip: request.ip, failures }, 'dashboard login failed');
        return reply.code(401).send({ error: 'Wrong name, password or token.' });
      }
      const old = request.cookies?.[SESSION_COOKIE];
      if (old) auth.sessions.delete(old);
      auth.setSessionCookie(request, reply, auth.sessions.create(who));
      request.log.info({ user: who.name, role: who.role }, 'dashboard login');
      return { ok: true, user: who.name, role: who.role };
    },
  );

  app.post(
    '/logout',
    { preValidation: requireWrite, schema: { response: { 200: okReply, '4xx': errorReply } } },
    async (request, reply) => {
      const id = request.dashboardIdentity;
      if (id?.kind === 'session') auth.sessions.delete(id.session.id);
      auth.clearSessionCookie(request, reply);
      return { ok: true };
    },
  );

  app.get(
    '/api/dashboard/session',
    { schema: { response: { 200: sessionReply, '4xx': errorReply } } },
    async (request, reply) => {
      let identity = request.dashboardIdentity;
      if (identity?.kind === 'anonymous-loopback') {
        const session = auth.sessions.create(LOOPBACK_ACTOR);
        auth.setSessionCookie(request, reply, session);
        identity = { kind: 'session', session };
      }
      reply.header('cache-control', 'no-store');
      const actor = actorOf(identity);
      return {
        user: actor?.name ?? 'token',
        namedUser: actor?.named ?? false,
        role: actor?.role ?? null,
        csrfToken: identity?.kind === 'session' ? identity.session.csrf : null,
        loginRequired: auth.loginRequired,
        meta: { ...meta, uploadMaxBytes: opts.uploadMaxBytes },
      };
    },
  );
}
