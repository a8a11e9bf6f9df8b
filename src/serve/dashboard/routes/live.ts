import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { FastifyInstance } from 'fastify';
import type { Identity, SessionStore } from '../auth.js';
import type { DashboardContext } from '../context.js';
import { errorReply } from '../schemas.js';

/** Each stream is cheap, but a small board should not hold an unbounded number of them. */
const MAX_EVENT_STREAMS = 64;
/** A comment this often keeps proxies and phones from dropping an idle stream. */
const PING_MS = 20_000;

/**
 * Whose streams count together toward the per-identity limit: a named user across all her
 * sessions, the shared token however it is presented (header or a session opened with it), and on
 * loopback each browser session. New sessions therefore buy no extra slots.
 */
function streamOwner(identity: Identity | null): string {
  if (!identity || identity.kind === 'anonymous-loopback') return 'loopback';
  const actor = identity.kind === 'session' ? identity.session.actor : identity.actor;
  if (actor.named) return `user:${actor.name}`;
  if (actor.via === 'shared-token') return 'token';
  return identity.kind === 'session' ? `session:${identity.session.id}` : 'loopback';
}

/**
 * Ends a stream with its session: at once on logout or eviction, and at the session's expiry by a
 * timer (moved later while the session is used elsewhere), so an idle stream does not outlive it.
 * Returns the function that stops watching.
 */
function watchSession(sessions: SessionStore, sessionId: string, end: () => void): () => void {
  if (sessions.expiresAt(sessionId) === null) {
    end();
    return () => undefined;
  }
  let timer: NodeJS.Timeout | undefined;
  const arm = () => {
    const at = sessions.expiresAt(sessionId);
    if (at === null) return end();
    timer = setTimeout(arm, at - Date.now() + 5);
    timer.unref();
  };
  const stopListening = sessions.onEnd(sessionId, end);
  arm();
  return () => {
    clearTimeout(timer);
    stopListening();
  };
}

/**
 * The live feed: Server-Sent Events, `event: result` with the same JSON as a list item, and
 * `event: specimen` with a changed specimen as /api/specimens lists it. The reply
 * is hijacked (a stream that never ends), so its 200 has no response schema.
 *
 * A stream opened with a session lives only as long as the session: it ends at logout, and at
 * expiry (a timer set to the session's expiry, so an idle stream ends too); each event checks
 * the session again before it is written.
 */
export async function liveRoutes(app: FastifyInstance, opts: DashboardContext): Promise<void> {
  const { deps, auth, liveStreamsPerIdentity } = opts;
  const openStreams = new Set<ServerResponse>();
  const streamsByOwner = new Map<string, number>();

  // preClose, not onClose: the server waits for open responses before onClose hooks run, and a
  // live-feed stream never ends by itself, so a shutdown with a dashboard tab open would hang.
  app.addHook('preClose', async () => {
    for (const res of openStreams) res.end();
    openStreams.clear();
  });

  app.get(
    '/api/dashboard/events',
    { schema: { response: { '4xx': errorReply, 503: errorReply } } },
    async (request, reply) => {
      if (openStreams.size >= MAX_EVENT_STREAMS) {
        return reply.code(503).header('retry-after', '10').send({ error: 'too many live connections' });
      }
      const identity = request.dashboardIdentity;
      const owner = streamOwner(identity);
      const held = streamsByOwner.get(owner) ?? 0;
      if (held >= liveStreamsPerIdentity) {
        return reply
          .code(429)
          .header('retry-after', '10')
          .send({ error: `too many live connections for this login (${held} open: close a tab)` });
      }
      const sessionId = identity?.kind === 'session' ? identity.session.id : null;
      const headers = reply.getHeaders() as OutgoingHttpHeaders;
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, {
        ...headers,
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-store',
        'x-accel-buffering': 'no',
        connection: 'keep-alive',
      });
      res.write('retry: 3000\n\n');
      openStreams.add(res);
      streamsByOwner.set(owner, held + 1);

      let closed = false;
      let stopWatchingSession = (): void => undefined;
      const sessionAlive = () => sessionId === null || auth.sessions.peek(sessionId) !== undefined;
      const onResult = (result: unknown) => {
        if (!sessionAlive()) return end();
        res.write(`event: result\ndata: ${JSON.stringify(result)}\n\n`);
      };
      // `event: specimen`: the changed specimen as /api/specimens lists it.
      const onSpecimen = (specimenId: number) => {
        if (!sessionAlive()) return end();
        const specimen = deps.specimens?.get(specimenId);
        if (specimen) res.write(`event: specimen\ndata: ${JSON.stringify(specimen)}\n\n`);
      };
      const ping = setInterval(() => (sessionAlive() ? res.write(': ping\n\n') : end()), PING_MS);
      ping.unref();
      const close = () => {
        if (closed) return;
        closed = true;
        clearInterval(ping);
        stopWatchingSession();
        deps.events.off('result', onResult);
        deps.specimens?.events.off('specimen', onSpecimen);
        openStreams.delete(res);
        const left = (streamsByOwner.get(owner) ?? 1) - 1;
        if (left > 0) streamsByOwner.set(owner, left);
        else streamsByOwner.delete(owner);
      };
      const end = () => {
        close();
        res.end();
      };
      deps.events.on('result', onResult);
      deps.specimens?.events.on('specimen', onSpecimen);
      request.raw.on('close', close);
      res.on('close', close);
      if (sessionId !== null) stopWatchingSession = watchSession(auth.sessions, sessionId, end);
    },
  );
}
