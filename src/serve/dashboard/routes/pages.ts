import { readdirSync, readFileSync, statSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { LOOPBACK_ACTOR } from '../../roles.js';
import type { DashboardContext } from '../context.js';
import { errorReply } from '../schemas.js';

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

export function defaultPublicDir(): string {
  return fileURLToPath(new URL('../public/', import.meta.url));
}

/**
 * The static files are read once at start-up into memory, keyed by their bare file name. A request
 * can only pick one of these keys: no path from a URL ever reaches the file system. (So the
 * browser's ES modules live side by side in public/ and import each other as `./name.js`.)
 */
export function loadAssets(dir: string): Map<string, Asset> {
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

const assetParams = {
  type: 'object',
  required: ['name'],
  properties: { name: { type: 'string', maxLength: 100 } },
} as const;

/** The two HTML pages and the files they load. */
export async function pageRoutes(
  app: FastifyInstance,
  opts: DashboardContext & { publicDir: string },
): Promise<void> {
  const { auth } = opts;
  const assets = loadAssets(opts.publicDir);

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

  app.get('/', { schema: { response: { '4xx': errorReply } } }, async (request, reply) => {
    if (request.dashboardIdentity?.kind === 'anonymous-loopback') {
      // Loopback: no login, but writes still need a session for the CSRF token.
      auth.setSessionCookie(request, reply, auth.sessions.create(LOOPBACK_ACTOR));
    }
    return sendAsset(reply, request, 'index.html');
  });

  app.get(
    '/login',
    { config: { dashboardPublic: true }, schema: { response: { '4xx': errorReply } } },
    async (request, reply) => {
      if (!auth.loginRequired) return reply.redirect('/');
      return sendAsset(reply, request, 'login.html');
    },
  );

  app.get<{ Params: { name: string } }>(
    '/assets/:name',
    { config: { dashboardPublic: true }, schema: { params: assetParams, response: { '4xx': errorReply } } },
    async (request, reply) => {
      const name = request.params.name;
      if (!request.dashboardIdentity && !PUBLIC_ASSETS.has(name))
        return reply.code(401).send({ error: 'login required' });
      return sendAsset(reply, request, name);
    },
  );
}
