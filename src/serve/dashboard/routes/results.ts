import type { FastifyInstance } from 'fastify';
import { HttpError, type DashboardContext } from '../context.js';
import type { ResultQuery } from '../deps.js';
import { errorReply, idParams, resultDetail, resultList, resultsQuerystring } from '../schemas.js';

/** The query string as the schema leaves it (types coerced, `limit` defaulted). */
export interface ResultsQuerystring {
  limit: number;
  before?: number;
  flagged?: string;
  review?: string;
  out_of_domain?: string;
  class?: string;
  from?: string;
  to?: string;
  q?: string;
}

const DAY_RE = /^\d{4}-\d{2}-\d{2}$/;
const yes = (v: string | undefined) => v === '1' || v === 'true';

/** The validated query string as the deps' query: times become UTC instants, a `to` day is inclusive. */
export function toResultQuery(q: ResultsQuerystring): ResultQuery {
  const out: ResultQuery = { limit: q.limit };
  if (q.before !== undefined) out.before = q.before;
  if (yes(q.flagged)) out.flaggedOnly = true;
  if (yes(q.review)) out.needsReview = true;
  if (yes(q.out_of_domain)) out.outOfDomainOnly = true;
  if (q.class) out.class = q.class;
  for (const key of ['from', 'to'] as const) {
    const v = q[key];
    if (!v) continue;
    // The pattern admits the shape; a date that does not exist (2026-02-31T25:00) still fails here.
    const t = Date.parse(v);
    if (Number.isNaN(t)) throw new HttpError(400, `querystring/${key} must be a date or an ISO time`);
    out[key] =
      DAY_RE.test(v) && key === 'to' ? new Date(t + 86_400_000).toISOString() : new Date(t).toISOString();
  }
  if (q.q) out.search = q.q;
  return out;
}

/** The feed (filtered, paged) and one result's detail. */
export async function resultRoutes(app: FastifyInstance, opts: DashboardContext): Promise<void> {
  const { deps } = opts;

  app.get<{ Querystring: ResultsQuerystring }>(
    '/api/dashboard/results',
    {
      schema: {
        querystring: resultsQuerystring(opts.classNames),
        response: { 200: resultList, '4xx': errorReply },
      },
    },
    async (request, reply) => {
      reply.header('cache-control', 'no-store');
      return deps.listResults(toResultQuery(request.query));
    },
  );

  app.get<{ Params: { id: number } }>(
    '/api/dashboard/results/:id',
    { schema: { params: idParams, response: { 200: resultDetail, '4xx': errorReply } } },
    async (request, reply) => {
      const result = deps.getResult(request.params.id);
      if (!result) return reply.code(404).send({ error: 'no such result' });
      reply.header('cache-control', 'no-store');
      return result;
    },
  );
}
