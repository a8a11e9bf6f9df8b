/** TEST FIXTURE: the dashboard plugin on a bare fastify with in-memory deps (no daemon). */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { dashboardPlugin } from '../../src/serve/dashboard/plugin.js';
import type { UserRole } from '../../src/domain/roles.js';
import type { DashboardUser } from '../../src/serve/dashboard/deps.js';
import { createMemoryDeps, type MemoryDeps } from './memory-deps.js';

export interface FixtureServer {
  app: FastifyInstance;
  deps: MemoryDeps;
  url: string;
  close(): Promise<void>;
}

export async function startFixtureServer(
  opts: {
    loopback?: boolean;
    token?: string | null;
    /** Role of the shared token (http.auth_token_role); default reviewer. */
    tokenRole?: UserRole;
    users?: DashboardUser[];
    loginRateLimit?: { max: number; timeWindowMs: number };
    uploadMaxBytes?: number;
    sessionIdleTtlMs?: number;
    liveStreamsPerIdentity?: number;
    /** Receives the server's log lines (warn and above) as parsed JSON objects. */
    logLines?: Record<string, unknown>[];
    listen?: boolean;
  } = {},
): Promise<FixtureServer> {
  const workDir = mkdtempSync(join(tmpdir(), 'bw-dash-'));
  const deps = await createMemoryDeps({
    workDir,
    auth: {
      loopback: opts.loopback ?? true,
      token: opts.token ?? null,
      tokenRole: opts.tokenRole,
      users: opts.users ?? [],
    },
  });
  const lines = opts.logLines;
  const app = lines
    ? (Fastify({
        loggerInstance: pino(
          { level: 'warn' },
          { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) },
        ),
      }) as unknown as FastifyInstance)
    : Fastify({ logger: false });
  await app.register(dashboardPlugin, {
    deps,
    uploadMaxBytes: opts.uploadMaxBytes ?? 2 * 1024 * 1024,
    loginRateLimit: opts.loginRateLimit,
    ...(opts.sessionIdleTtlMs !== undefined ? { sessionIdleTtlMs: opts.sessionIdleTtlMs } : {}),
    ...(opts.liveStreamsPerIdentity !== undefined
      ? { liveStreamsPerIdentity: opts.liveStreamsPerIdentity }
      : {}),
  });
  let url = '';
  if (opts.listen !== false) url = await app.listen({ host: '127.0.0.1', port: 0 });
  else await app.ready();
  return {
    app,
    deps,
    url,
    async close() {
      deps.dispose();
      await app.close();
      await deps.settled().catch(() => undefined);
      rmSync(workDir, { recursive: true, force: true });
    },
  };
}
