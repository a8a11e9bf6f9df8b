/** The installation's API as the attempts use it: logins, sessions, uploads, result look-ups. */
import { createHash } from 'node:crypto';
import { multipartBody } from '../../test/dashboard/multipart.js';
import { poll, type AttackContext } from './attempt.js';
import type { Reply } from './target.js';

export const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

export const bearer = (ctx: AttackContext) => ({ authorization: `Bearer ${ctx.creds.token}` });

/** Headers of a same-origin browser request to the installation. */
export function sameOrigin(ctx: AttackContext): Record<string, string> {
  return { origin: ctx.target.base.origin, 'sec-fetch-site': 'same-origin' };
}

export interface Session {
  cookie: string;
  csrf: string;
  /** The Set-Cookie header of the login reply (its attributes are checked against logout's). */
  setCookie: string;
}

/** Logs in with the named user when given, else the shared token; null when refused. */
export async function login(ctx: AttackContext): Promise<{ session: Session | null; status: number }> {
  const { user, password, token } = ctx.creds;
  const body = user && password ? { user, password } : { token };
  const res = await ctx.target.fetch('/login', {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...sameOrigin(ctx) },
    body: JSON.stringify(body),
  });
  if (res.status !== 200) return { session: null, status: res.status };
  const setCookie = res.headers.get('set-cookie') ?? '';
  const cookie = setCookie.split(';')[0] ?? '';
  const who = await ctx.target.fetch('/api/dashboard/session', { headers: { cookie } });
  const csrf = (JSON.parse(who.body) as { csrfToken?: string | null }).csrfToken ?? '';
  return { session: { cookie, csrf, setCookie }, status: res.status };
}

/** Sends an upload (multipart, one file) with the given headers. */
export function upload(
  ctx: AttackContext,
  name: string,
  bytes: Buffer,
  headers: Record<string, string>,
): Promise<Reply> {
  const mp = multipartBody(name, bytes);
  return ctx.target.fetch(
    '/api/dashboard/upload',
    { method: 'POST', headers: { ...headers, 'content-type': mp.contentType }, body: mp.body },
    30_000,
  );
}

/** A result as /api/results shows it (the fields the attempts read). */
export interface ApiResult {
  id: number;
  file: string;
  sha256: string;
  status: string;
  error: string | null;
  error_kind: string | null;
}

/** The newest results (up to 1000): this run's files are among them. */
export async function recentResults(ctx: AttackContext): Promise<ApiResult[]> {
  const res = await ctx.target.fetch('/api/results?limit=1000', { headers: bearer(ctx) });
  if (res.status !== 200) throw new Error(`/api/results → ${res.status}`);
  return JSON.parse(res.body) as ApiResult[];
}

/** The base name of a result's file (the API gives the path relative to the capture folder). */
export const baseName = (file: string) => file.split('/').pop() ?? file;

/** Waits until every name has a result matching `settled`; returns them by name (missing ones absent). */
export async function waitForResults(
  ctx: AttackContext,
  names: string[],
  ms: number,
  settled: (r: ApiResult) => boolean = (r) => r.status !== 'pending',
): Promise<Map<string, ApiResult[]>> {
  let byName = new Map<string, ApiResult[]>();
  await poll(
    async () => {
      byName = new Map();
      for (const r of await recentResults(ctx)) {
        const n = baseName(r.file);
        if (names.includes(n)) byName.set(n, [...(byName.get(n) ?? []), r]);
      }
      return names.every((n) => byName.get(n)?.some(settled)) ? true : undefined;
    },
    ms,
    500,
  );
  return byName;
}

/** The bytes the image route serves for a result's original (status and sha256). */
export async function servedOriginal(
  ctx: AttackContext,
  id: number,
): Promise<{ status: number; sha: string; bytes: Buffer }> {
  const res = await ctx.target.fetch(`/api/dashboard/results/${id}/image/original`, { headers: bearer(ctx) });
  return { status: res.status, sha: sha256(res.bytes), bytes: res.bytes };
}
