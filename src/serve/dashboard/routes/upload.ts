import { extname } from 'node:path';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { requireRole } from '../../roles.js';
import { validAccession } from '../../../domain/specimen-assignment.js';
import { HttpError, type DashboardContext } from '../context.js';
import { errorReply, uploadReply } from '../schemas.js';

/**
 * What a file's first bytes say it is; uploads are accepted by content, not by name or header.
 * The same formats the decoder reads (src/decode): JPEG, PNG, TIFF, WebP.
 */
export function sniffImageType(bytes: Buffer): '.jpg' | '.png' | '.tif' | '.webp' | null {
  const starts = (sig: string | number[], at = 0) => {
    const b = typeof sig === 'string' ? Buffer.from(sig, 'latin1') : Buffer.from(sig);
    return bytes.length >= at + b.length && bytes.subarray(at, at + b.length).equals(b);
  };
  if (starts([0xff, 0xd8, 0xff])) return '.jpg';
  if (starts([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return '.png';
  if (starts('II*\0') || starts('MM\0*')) return '.tif';
  if (starts('RIFF') && starts('WEBP', 8)) return '.webp';
  return null;
}

/** A display-safe, file-system-safe base name for an upload (markup stays: it is escaped on display). */
export function cleanUploadName(raw: string | undefined, sniffed: string): string {
  let name = (raw ?? '').split(/[\\/]/).pop() ?? '';
  // eslint-disable-next-line no-control-regex
  name = name.replace(/[\u0000-\u001f\u007f]/g, '').trim();
  name = name.replace(/^\.+/, '');
  if (name.length > 150) name = name.slice(0, 150);
  if (!name) name = 'upload';
  const ext = extname(name).toLowerCase();
  const allowed = sniffed === '.jpg' ? ['.jpg', '.jpeg'] : sniffed === '.tif' ? ['.tif', '.tiff'] : [sniffed];
  if (!allowed.includes(ext)) name += sniffed;
  return name;
}

/**
 * The uploaded file's name and bytes. @fastify/multipart's own errors carry their status (413 too
 * large, 406 not multipart); what the multipart parser throws on a broken body (cut off, no
 * boundary, a malformed part header) is the client's fault, so it is a 400, never a 500.
 */
async function readUpload(
  request: FastifyRequest,
): Promise<{ filename: string; bytes: Buffer; accession: string | undefined }> {
  try {
    const file = await request.file();
    if (!file) throw new HttpError(400, 'no file in the upload');
    const bytes = await file.toBuffer();
    const field = file.fields.accession;
    const value = field && !Array.isArray(field) && field.type === 'field' ? String(field.value) : undefined;
    return { filename: file.filename, bytes, accession: value?.trim() || undefined };
  } catch (err) {
    if (typeof (err as { statusCode?: unknown }).statusCode === 'number') throw err;
    throw new HttpError(400, `the upload is incomplete or not valid multipart: ${(err as Error).message}`);
  }
}

/**
 * An image sent from a phone or a desktop goes into the same pipeline as a captured one. It needs
 * the reviewer role: an upload adds a result to the lab's record (and to a specimen's counts) as
 * much as a review changes one, so a viewer (a wall display, a student) may not.
 */
export async function uploadRoutes(app: FastifyInstance, opts: DashboardContext): Promise<void> {
  const { deps, requireWrite } = opts;

  // The body is multipart/form-data with one `file` part and an optional `accession` field sent
  // before it (the specimen the image belongs to), read by @fastify/multipart in the handler (its
  // limits are set where the dashboard registers it); the schema covers the replies.
  app.post(
    '/api/dashboard/upload',
    {
      preValidation: [requireWrite, requireRole('reviewer')],
      schema: { response: { 202: uploadReply, '4xx': errorReply } },
    },
    async (request, reply) => {
      const { filename, bytes, accession } = await readUpload(request);
      if (accession !== undefined && !validAccession(accession))
        return reply
          .code(400)
          .send({ error: 'accession: 1 to 64 letters, digits, dots, dashes or underscores' });
      const sniffed = sniffImageType(bytes);
      if (!sniffed) {
        return reply.code(415).send({ error: 'not an image: JPEG, PNG, TIFF or WebP files only' });
      }
      const name = cleanUploadName(filename, sniffed);
      const outcome = await deps.ingestUpload(name, bytes, accession);
      request.log.info({ file: name, bytes: bytes.length, sha256: outcome.sha256 }, 'dashboard upload');
      return reply.code(202).send({ ...outcome, file: name });
    },
  );
}
