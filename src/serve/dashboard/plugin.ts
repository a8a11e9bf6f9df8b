import { createReadStream, readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createHash } from 'node:crypto';
import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import cookie from '@fastify/cookie';
import helmet from '@fastify/helmet';
import multipart from '@fastify/multipart';
import rateLimit from '@fastify/rate-limit';
import { DashboardAuth, SESSION_COOKIE, type Identity } from './auth.js';
import {
  IMAGE_KINDS,
  ReviewError,
  type DashboardDeps,
  type ImageKind,
  type ResultQuery,
  type ReviewExport,
} from './deps.js';

export interface DashboardOptions {
  deps: DashboardDeps;
  /** Largest upload in bytes (config http.upload_max_mb). */
  uploadMaxBytes: number;
  /** Login attempts per client address per window before 429. */
  loginRateLimit?: { max: number; timeWindowMs: number };
  sessionIdleTtlMs?: number;
  /** Folder of the static files; default `public/` beside this module. */
  publicDir?: string;
  /** Receives a check that accepts a request carrying a live dashboard session (for the ops API's hook). */
  onAuth?: (authenticate: (request: FastifyRequest) => boolean) => void;
}

declare module 'fastify' {
  interface FastifyRequest {
    dashboardIdentity: Identity | null;
  }
  interface FastifyContextConfig {
    /** Route reachable without logging in (login page and its assets). */
    dashboardPublic?: boolean;
  }
}

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

const ASSET_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
};

/** Assets the login page needs before anyone has logged in. */
const PUBLIC_ASSETS = new Set(['login.js', 'style.css', 'favicon.svg']);

interface Asset {
  body: Buffer;
  type: string;
  etag: string;
}

/**
 * The static files are read once at start-up into memory, keyed by their bare file name. A request
 * can only pick one of these keys: no path from a URL ever reaches the file system.
 */
function loadAssets(dir: string): Map<string, Asset> {
  const assets = new Map<string, Asset>();
  for (const name of readdirSync(dir)) {
    const type = ASSET_TYPES[extname(name)];
    if (!type || !statSync(join(dir, name)).isFile()) continue;
    const body = readFileSync(join(dir, name));
    assets.set(name, {
      body,
      type,
      etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 16)}"`,
    });
  }
  return assets;
}

export function defaultPublicDir(): string {
  return fileURLToPath(new URL('./public/', import.meta.url));
}

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

/** CSV cell: quoted, and a leading = + - @ neutralised so a spreadsheet does not run it as a formula. */
function csvCell(value: unknown): string {
  let s = value === null || value === undefined ? '' : String(value);
  if (/^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  return `"${s.replace(/"/g, '""')}"`;
}

export function reviewsToCsv(rows: ReviewExport[]): string {
  const header = [
    'result_id',
    'file',
    'sha256',
    'image_path',
    'model_class',
    'p_ball',
    'reviewed_class',
    'reviewer',
    'note',
    'reviewed_at',
    'review_count',
  ];
  const lines = [header.join(',')];
  for (const r of rows) {
    lines.push(
      [
        r.resultId,
        r.file,
        r.sha256,
        r.imagePath,
        r.modelClass,
        r.pBall,
        r.reviewedClass,
        r.reviewer,
        r.note,
        r.reviewedAt,
        r.reviewCount,
      ]
        .map(csvCell)
        .join(','),
    );
  }
  return lines.join('\r\n') + '\r\n';
}

/** The session id from a raw Cookie header (the ops API's scope has no cookie parser). */
function sessionIdFromHeader(header: string | undefined): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === SESSION_COOKIE) return part.slice(eq + 1).trim();
  }
  return undefined;
}

const MAX_EVENT_STREAMS = 64;

const ID_RE = /^[1-9][0-9]{0,14}$/;
const DAY_RE = /^\d{4}-\d{2}-\d{2}$/;

function parseId(raw: string): number | null {
  return ID_RE.test(raw) ? Number(raw) : null;
}

class BadRequest extends Error {
  readonly statusCode = 400;
}

function parseQuery(q: Record<string, string | undefined>, classes: Set<string>): ResultQuery {
  const out: ResultQuery = { limit: 50 };
  if (q.limit !== undefined) {
    const n = Number(q.limit);
    if (!Number.isInteger(n) || n < 1 || n > 500) throw new BadRequest('limit must be 1 to 500');
    out.limit = n;
  }
  if (q.before) {
    const id = parseId(q.before);
    if (id === null) throw new BadRequest('before must be a result id');
    out.before = id;
  }
  if (q.flagged === '1' || q.flagged === 'true') out.flaggedOnly = true;
  if (q.review === '1' || q.review === 'true') out.needsReview = true;
  if (q.class) {
    if (!classes.has(q.class)) throw new BadRequest('unknown class');
    out.class = q.class;
  }
  for (const key of ['from', 'to'] as const) {
    const v = q[key];
    if (v) {
      // A day (UTC) or an instant; the browser sends the local midnight as an instant.
      const t = Date.parse(v);
      if (v.length > 40 || Number.isNaN(t)) throw new BadRequest(`${key} must be a date or an ISO time`);
      out[key] =
        DAY_RE.test(v) && key === 'to' ? new Date(t + 86_400_000).toISOString() : new Date(t).toISOString();
    }
  }
  if (q.q) {
    if (q.q.length > 200) throw new BadRequest('search text too long');
    out.search = q.q;
  }
  return out;
}

/**
 * The LAN dashboard: pages, JSON API under /api/dashboard, live feed (SSE), images by id, review,
 * upload, status. Register it on the daemon's fastify instance; it is encapsulated (its helmet,
 * cookie, multipart and auth hook apply to its own routes only).
 */
export async function dashboardPlugin(app: FastifyInstance, opts: DashboardOptions): Promise<void> {
  const { deps } = opts;
  const auth = new DashboardAuth(deps.auth, opts.sessionIdleTtlMs ?? 12 * 3600_000);
  const assets = loadAssets(opts.publicDir ?? defaultPublicDir());
  const meta = deps.meta();
  const classNames = new Set(meta.classes.map((c) => c.name));
  const openStreams = new Set<ServerResponse>();

  if (!app.hasRequestDecorator('cookies')) await app.register(cookie);
  await app.register(helmet, {
    contentSecurityPolicy: {
      useDefaults: false,
      directives: {
        defaultSrc: ["'self'"],
        scriptSrc: ["'self'"],
        styleSrc: ["'self'"],
        imgSrc: ["'self'", 'blob:', 'data:'],
        connectSrc: ["'self'"],
        fontSrc: ["'self'"],
        objectSrc: ["'none'"],
        baseUri: ["'none'"],
        formAction: ["'self'"],
        frameAncestors: ["'none'"],
      },
    },
    // Plain HTTP on a lab LAN: HSTS would be ignored, and upgrade-insecure-requests would break it.
    strictTransportSecurity: false,
    referrerPolicy: { policy: 'no-referrer' },
    crossOriginResourcePolicy: { policy: 'same-origin' },
  });
  await app.register(rateLimit, { global: false });
  await app.register(multipart, {
    limits: { fileSize: opts.uploadMaxBytes, files: 1, fields: 4, parts: 6, fieldSize: 1024 },
  });

  app.decorateRequest('dashboardIdentity', null);
  opts.onAuth?.((request) => auth.sessions.get(sessionIdFromHeader(request.headers.cookie)) !== undefined);

  app.addHook('onRequest', async (request, reply) => {
    if (!auth.hostAllowed(request)) {
      return reply.code(403).type('text/plain').send('Host not allowed (use http://localhost or 127.0.0.1)');
    }
    request.dashboardIdentity = auth.identify(request);
    if (request.dashboardIdentity || request.routeOptions.config.dashboardPublic) return;
    const wantsHtml = request.method === 'GET' && (request.url === '/' || request.url.startsWith('/?'));
    if (wantsHtml) return reply.redirect('/login');
    return reply.code(401).header('www-authenticate', 'Bearer').send({ error: 'login required' });
  });

  /** preHandler for every state-changing route. */
  async function requireWrite(request: FastifyRequest, reply: FastifyReply) {
    const refusal = auth.writeRefusal(request, request.dashboardIdentity);
    if (refusal) return reply.code(403).send({ error: refusal });
  }

  app.setErrorHandler((error: Error & { statusCode?: number }, request, reply) => {
    const status = error.statusCode ?? (error instanceof ReviewError ? error.statusCode : 500);
    if (status >= 500) {
      request.log.error({ err: error }, 'dashboard request failed');
      return reply.code(500).send({ error: 'internal error: see the daemon log' });
    }
    return reply.code(status).send({ error: error.message });
  });

  // preClose, not onClose: the server waits for open responses before onClose hooks run, and a
  // live-feed stream never ends by itself, so a shutdown with a dashboard tab open would hang.
  app.addHook('preClose', async () => {
    for (const res of openStreams) res.end();
    openStreams.clear();
  });

  function sendAsset(reply: FastifyReply, request: FastifyRequest, name: string) {
    const asset = assets.get(name);
    if (!asset) return reply.code(404).send({ error: 'not found' });
    if (request.headers['if-none-match'] === asset.etag) return reply.code(304).send();
    return reply
      .header('cache-control', 'no-cache')
      .header('etag', asset.etag)
      .type(asset.type)
      .send(asset.body);
  }

  // ---- pages and assets ----
  app.get('/', async (request, reply) => {
    if (request.dashboardIdentity?.kind === 'anonymous-loopback') {
      // Loopback: no login, but writes still need a session for the CSRF token.
      auth.setSessionCookie(request, reply, auth.sessions.create('local', false));
    }
    return sendAsset(reply, request, 'index.html');
  });
  app.get('/login', { config: { dashboardPublic: true } }, async (request, reply) => {
    if (!auth.loginRequired) return reply.redirect('/');
    return sendAsset(reply, request, 'login.html');
  });
  app.get<{ Params: { name: string } }>(
    '/assets/:name',
    { config: { dashboardPublic: true } },
    async (request, reply) => {
      const name = request.params.name;
      if (!request.dashboardIdentity && !PUBLIC_ASSETS.has(name))
        return reply.code(401).send({ error: 'login required' });
      return sendAsset(reply, request, name);
    },
  );

  // ---- login / logout ----
  const loginLimit = opts.loginRateLimit ?? { max: 10, timeWindowMs: 60_000 };
  app.post<{ Body: { user?: unknown; password?: unknown; token?: unknown } }>(
    '/login',
    {
      config: {
        dashboardPublic: true,
        rateLimit: { max: loginLimit.max, timeWindow: loginLimit.timeWindowMs },
      },
      bodyLimit: 4096,
    },
    async (request, reply) => {
      const site = request.headers['sec-fetch-site'];
      if (typeof site === 'string' && site !== 'same-origin' && site !== 'none') {
        return reply.code(403).send({ error: 'cross-site request refused' });
      }
      const body = (request.body ?? {}) as Record<string, unknown>;
      const str = (v: unknown) => (typeof v === 'string' && v.length > 0 && v.length <= 512 ? v : undefined);
      const who = await auth.checkLogin({
        user: str(body.user),
        password: str(body.password),
        token: str(body.token),
      });
      if (!who) {
        request.log.warn({ user: str(body.user) ?? '(token)' }, 'dashboard login failed');
        return reply.code(401).send({ error: 'Wrong name, password or token.' });
      }
      const old = request.cookies?.bw_sid;
      if (old) auth.sessions.delete(old);
      auth.setSessionCookie(request, reply, auth.sessions.create(who.user, who.named));
      request.log.info({ user: who.user }, 'dashboard login');
      return { ok: true, user: who.user };
    },
  );
  app.post('/logout', { preHandler: requireWrite }, async (request, reply) => {
    const id = request.dashboardIdentity;
    if (id?.kind === 'session') auth.sessions.delete(id.session.id);
    auth.clearSessionCookie(reply);
    return { ok: true };
  });

  // ---- API ----
  app.get('/api/dashboard/session', async (request, reply) => {
    let identity = request.dashboardIdentity;
    if (identity?.kind === 'anonymous-loopback') {
      const session = auth.sessions.create('local', false);
      auth.setSessionCookie(request, reply, session);
      identity = { kind: 'session', session };
    }
    reply.header('cache-control', 'no-store');
    return {
      user: identity?.kind === 'session' ? identity.session.user : 'token',
      namedUser: identity?.kind === 'session' && identity.session.named,
      csrfToken: identity?.kind === 'session' ? identity.session.csrf : null,
      loginRequired: auth.loginRequired,
      meta: { ...meta, uploadMaxBytes: opts.uploadMaxBytes },
    };
  });

  app.get<{ Querystring: Record<string, string | undefined> }>(
    '/api/dashboard/results',
    async (request, reply) => {
      reply.header('cache-control', 'no-store');
      return deps.listResults(parseQuery(request.query, classNames));
    },
  );

  app.get<{ Params: { id: string } }>('/api/dashboard/results/:id', async (request, reply) => {
    const id = parseId(request.params.id);
    const result = id === null ? undefined : deps.getResult(id);
    if (!result) return reply.code(404).send({ error: 'no such result' });
    reply.header('cache-control', 'no-store');
    return result;
  });

  app.get<{ Params: { id: string; kind: string } }>(
    '/api/dashboard/results/:id/image/:kind',
    async (request, reply) => {
      const id = parseId(request.params.id);
      const kind = request.params.kind as ImageKind;
      if (id === null || !IMAGE_KINDS.includes(kind)) return reply.code(404).send({ error: 'not found' });
      const path = deps.imagePath(id, kind);
      const type = path ? IMAGE_TYPES[extname(path).toLowerCase()] : undefined;
      if (!path || !type) return reply.code(404).send({ error: 'no such image' });
      let size: number;
      try {
        const st = statSync(path);
        if (!st.isFile()) throw new Error('not a file');
        size = st.size;
      } catch {
        return reply.code(404).send({ error: 'image no longer on disk' });
      }
      return reply
        .type(type)
        .header('content-length', size)
        .header('cache-control', 'private, max-age=3600')
        .send(createReadStream(path));
    },
  );

  app.post<{ Params: { id: string }; Body: unknown }>(
    '/api/dashboard/results/:id/review',
    { preHandler: requireWrite, bodyLimit: 16 * 1024 },
    async (request, reply) => {
      const id = parseId(request.params.id);
      if (id === null) return reply.code(404).send({ error: 'no such result' });
      const body = (request.body ?? {}) as Record<string, unknown>;
      const identity = request.dashboardIdentity;
      // A named account signs its own reviews; the shared token / loopback user types a name.
      const reviewer =
        identity?.kind === 'session' && identity.session.named
          ? identity.session.user
          : typeof body.reviewer === 'string'
            ? body.reviewer.trim()
            : '';
      const cls = typeof body.class === 'string' ? body.class : '';
      const note = typeof body.note === 'string' ? body.note.trim() : '';
      if (!reviewer || reviewer.length > 80)
        return reply.code(400).send({ error: 'reviewer name: 1 to 80 characters' });
      if (!classNames.has(cls)) return reply.code(400).send({ error: 'unknown class' });
      if (note.length > 2000) return reply.code(400).send({ error: 'note: at most 2000 characters' });
      const review = deps.addReview(id, { reviewer, class: cls, note });
      request.log.info({ resultId: id, reviewer, class: cls }, 'review stored');
      return review;
    },
  );

  app.get<{ Querystring: { limit?: string } }>('/api/dashboard/review-queue', async (request, reply) => {
    const n = Number(request.query.limit ?? 100);
    reply.header('cache-control', 'no-store');
    return deps.reviewQueue(Number.isInteger(n) && n > 0 && n <= 500 ? n : 100);
  });

  app.get<{ Querystring: { format?: string } }>('/api/dashboard/reviews/export', async (request, reply) => {
    const format = request.query.format === 'csv' ? 'csv' : 'json';
    const rows = deps.exportReviews();
    const stamp = new Date().toISOString().slice(0, 10);
    reply.header('cache-control', 'no-store');
    reply.header('content-disposition', `attachment; filename="blastwatch-reviews-${stamp}.${format}"`);
    if (format === 'csv') return reply.type('text/csv; charset=utf-8').send(reviewsToCsv(rows));
    return reply.type('application/json; charset=utf-8').send(JSON.stringify(rows, null, 2));
  });

  app.post('/api/dashboard/upload', { preHandler: requireWrite }, async (request, reply) => {
    const file = await request.file();
    if (!file) return reply.code(400).send({ error: 'no file in the upload' });
    const bytes = await file.toBuffer(); // throws 413 past uploadMaxBytes
    const sniffed = sniffImageType(bytes);
    if (!sniffed) {
      return reply.code(415).send({ error: 'not an image: JPEG, PNG, TIFF or WebP files only' });
    }
    const name = cleanUploadName(file.filename, sniffed);
    const outcome = await deps.ingestUpload(name, bytes);
    request.log.info({ file: name, bytes: bytes.length, sha256: outcome.sha256 }, 'dashboard upload');
    return reply.code(202).send({ ...outcome, file: name });
  });

  app.get('/api/dashboard/status', async (_request, reply) => {
    reply.header('cache-control', 'no-store');
    return { status: deps.status(), daily: deps.dailyCounts(14), meta };
  });

  // ---- live feed: Server-Sent Events ----
  app.get('/api/dashboard/events', async (request, reply) => {
    // Each stream is cheap, but a small board should not hold an unbounded number of them.
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
    // A comment every 20 s keeps proxies and phones from dropping an idle stream.
    const ping = setInterval(() => res.write(': ping\n\n'), 20_000);
    ping.unref();
    const close = () => {
      clearInterval(ping);
      deps.events.off('result', onResult);
      openStreams.delete(res);
    };
    request.raw.on('close', close);
    res.on('close', close);
  });
}
