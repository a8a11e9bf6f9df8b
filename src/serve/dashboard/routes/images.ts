import { extname } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { DashboardContext } from '../context.js';
import type { ImageKind } from '../deps.js';
import { errorReply, imageParams } from '../schemas.js';

const IMAGE_TYPES: Record<string, string> = {
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.png': 'image/png',
  '.webp': 'image/webp',
  '.gif': 'image/gif',
  '.bmp': 'image/bmp',
  '.tif': 'image/tiff',
  '.tiff': 'image/tiff',
};

/**
 * A result's images by id and kind: the path always comes from the deps, never from the URL, and
 * the bytes sent are the ones the deps read and checked (an original only while it still hashes to
 * what was classified; otherwise 410 and the dashboard shows the thumbnail instead).
 */
export async function imageRoutes(app: FastifyInstance, opts: DashboardContext): Promise<void> {
  const { deps } = opts;

  app.get<{ Params: { id: number; kind: ImageKind } }>(
    '/api/dashboard/results/:id/image/:kind',
    { schema: { params: imageParams, response: { '4xx': errorReply } } },
    async (request, reply) => {
      const read = await deps.readImage(request.params.id, request.params.kind);
      if (!read) return reply.code(404).send({ error: 'no such image' });
      if (!read.ok) return reply.code(read.status).send({ error: read.error });
      const type = read.type ?? IMAGE_TYPES[extname(read.path).toLowerCase()];
      if (!type) return reply.code(404).send({ error: 'no such image' });
      return reply.type(type).header('cache-control', 'private, max-age=3600').send(read.bytes);
    },
  );
}
