import type { FastifyInstance } from 'fastify';
import type { DashboardContext } from '../context.js';
import { errorReply, statusReply } from '../schemas.js';

/** How many days the status page's chart shows. */
const CHART_DAYS = 14;

/** The status panel: the daemon's health in plain words, and results per day by class. */
export async function statusRoutes(app: FastifyInstance, opts: DashboardContext): Promise<void> {
  const { deps, meta } = opts;
  app.get(
    '/api/dashboard/status',
    { schema: { response: { 200: statusReply, '4xx': errorReply } } },
    async (_request, reply) => {
      reply.header('cache-control', 'no-store');
      return { status: deps.status(), daily: deps.dailyCounts(CHART_DAYS), meta };
    },
  );
}
