import { createReadStream, statSync } from 'node:fs';
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

/** The size of a regular file, or null when it is gone (retention, a moved capture folder). */
function fileSize(path: string): number | null {
  try {
    const st = statSync(path);
    return st.isFile() ? st.size : null;
  } catch {
    return null;
  }
}

/** A result's images by id and kind: the path always comes from the deps, never from the URL. */
export async function imageRoutes(app: FastifyInstance, opts: DashboardContext): Promise<void> {
  const { deps } = opts;

  app.get<{ Params: { id: number; kind: ImageKind } }>(
    '/api/dashboard/results/:id/image/:kind',
    { schema: { params: imageParams, response: { '4xx': errorReply } } },
    async (request, reply) => {
      const path = deps.imagePath(request.params.id, request.params.kind);
      const type = path ? IMAGE_TYPES[extname(path).toLowerCase()] : undefined;
      if (!path || !type) return reply.code(404).send({ error: 'no such image' });
      const size = fileSize(path);
      if (size === null) return reply.code(404).send({ error: 'image no longer on disk' });
      return reply
        .type(type)
        .header('content-length', size)
        .header('cache-control', 'private, max-age=3600')
        .send(createReadStream(path));
    },
  );
}
