import type { FastifyInstance } from 'fastify';
import { requireRole } from '../../roles.js';
import { HttpError, type DashboardContext } from '../context.js';
import type { ReviewExport } from '../deps.js';
import { errorReply, idParams, resultList, reviewBody, reviewExportRows, reviewSchema } from '../schemas.js';

/** CSV cell: quoted, and a leading = + - @ neutralised so a spreadsheet does not run it as a formula. */
function csvCell(value: unknown): string {
  let s = value === null || value === undefined ? '' : String(value);
  if (/^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  return `"${s.replace(/"/g, '""')}"`;
}

const CSV_COLUMNS: [header: string, key: keyof ReviewExport][] = [
  ['result_id', 'resultId'],
  ['file', 'file'],
  ['sha256', 'sha256'],
  ['image_path', 'imagePath'],
  ['original', 'original'],
  ['model_class', 'modelClass'],
  ['p_ball', 'pBall'],
  ['reviewed_class', 'reviewedClass'],
  ['reviewer', 'reviewer'],
  ['note', 'note'],
  ['reviewed_at', 'reviewedAt'],
  ['review_count', 'reviewCount'],
  // Appended (not next to model_class) so existing column positions stay as they were.
  ['model_version', 'modelVersion'],
  ['threshold', 'threshold'],
];

export function reviewsToCsv(rows: ReviewExport[]): string {
  const lines = [CSV_COLUMNS.map(([header]) => header).join(',')];
  for (const r of rows) lines.push(CSV_COLUMNS.map(([, key]) => csvCell(r[key])).join(','));
  return lines.join('\r\n') + '\r\n';
}

interface ReviewBody {
  class: string;
  note: string;
  reviewer?: string;
}

/** Storing a review, the review queue, and the export of every review for retraining. */
export async function reviewRoutes(app: FastifyInstance, opts: DashboardContext): Promise<void> {
  const { deps, requireWrite } = opts;

  app.post<{ Params: { id: number }; Body: ReviewBody }>(
    '/api/dashboard/results/:id/review',
    {
      preValidation: [requireWrite, requireRole('reviewer')],
      bodyLimit: 16 * 1024,
      schema: {
        params: idParams,
        body: reviewBody(opts.classNames),
        response: { 200: reviewSchema, '4xx': errorReply },
      },
    },
    async (request) => {
      const { id } = request.params;
      const body = request.body;
      const actor = request.actor;
      // A named account (login or its own API token) signs its own reviews; the shared token /
      // loopback user types a name.
      const reviewer = actor?.named ? actor.name : (body.reviewer ?? '').trim();
      if (!reviewer) throw new HttpError(400, 'reviewer name: 1 to 80 characters');
      const review = deps.addReview(id, { reviewer, class: body.class, note: body.note.trim() });
      request.log.info({ resultId: id, reviewer, class: body.class }, 'review stored');
      return review;
    },
  );

  app.get<{ Querystring: { limit: number } }>(
    '/api/dashboard/review-queue',
    {
      schema: {
        querystring: {
          type: 'object',
          properties: { limit: { type: 'integer', minimum: 1, maximum: 500, default: 100 } },
        },
        response: { 200: resultList, '4xx': errorReply },
      },
    },
    async (request, reply) => {
      reply.header('cache-control', 'no-store');
      return deps.reviewQueue(request.query.limit);
    },
  );

  app.get<{ Querystring: { format: 'csv' | 'json' } }>(
    '/api/dashboard/reviews/export',
    {
      schema: {
        querystring: {
          type: 'object',
          properties: { format: { type: 'string', enum: ['csv', 'json'], default: 'json' } },
        },
        // The JSON file is sent pretty-printed as it is (the schema documents its rows).
        response: { 200: reviewExportRows, '4xx': errorReply },
      },
    },
    async (request, reply) => {
      const { format } = request.query;
      const rows = await deps.exportReviews();
      const stamp = new Date().toISOString().slice(0, 10);
      reply.header('cache-control', 'no-store');
      reply.header('content-disposition', `attachment; filename="blastwatch-reviews-${stamp}.${format}"`);
      if (format === 'csv') return reply.type('text/csv; charset=utf-8').send(reviewsToCsv(rows));
      return reply.type('application/json; charset=utf-8').send(JSON.stringify(rows, null, 2));
    },
  );
}
