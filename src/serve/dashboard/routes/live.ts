import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { FastifyInstance } from 'fastify';
import type { DashboardContext } from '../context.js';
import { errorReply } from '../schemas.js';

/** Each stream is cheap, but a small board should not hold an unbounded number of them. */
const MAX_EVENT_STREAMS = 64;
/** A comment this often keeps proxies and phones from dropping an idle stream. */
const PING_MS = 20_000;

/**
 * The live feed: Server-Sent Events, `event: result` with the same JSON as a list item. The reply
 * is hijacked (a stream that never ends), so its 200 has no response schema.
 */
export async function liveRoutes(app: FastifyInstance, opts: DashboardContext): Promise<void> {
  const { deps } = opts;
  const openStreams = new Set<ServerResponse>();

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
      const onResult = (result: unknown) => {
        res.write(`event: result\ndata: ${JSON.stringify(result)}\n\n`);
      };
      deps.events.on('result', onResult);
      const ping = setInterval(() => res.write(': ping\n\n'), PING_MS);
      ping.unref();
      const close = () => {
        clearInterval(ping);
        deps.events.off('result', onResult);
        openStreams.delete(res);
      };
      request.raw.on('close', close);
      res.on('close', close);
    },
  );
}
