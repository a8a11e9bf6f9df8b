/**
 * Attempts on authentication and request parsing: routes without credentials, wrong and
 * lowercase tokens, traversal encodings, SQL in parameters, repeated parameters, guessing.
 */
import { readFileSync } from 'node:fs';
import { PROTECTED_ROUTES, TRAVERSAL_PROBES } from '../../test/reliability/hostile-inputs.js';
import { bearer, login, sameOrigin } from './api.js';
import { skip, verdict, type Attempt } from './attempt.js';

/** The API routes a script reads with a token (ops API and dashboard API). */
const TOKEN_READABLE = [
  '/api/results?limit=1',
  '/api/health',
  '/metrics',
  '/api/dashboard/results?limit=1',
  '/api/dashboard/status',
  '/api/dashboard/session',
];

/** What a leak would look like in a refusal: file names, hashes, result fields. */
const LEAK = /sha256|"file"|p_ball|onerror|\.jpg/;

const authRequired: Attempt = {
  name: 'auth-required',
  expects: 'every route but /healthz and /login answers 401 without credentials and leaks nothing',
  async run(ctx) {
    const tried = `GET ${PROTECTED_ROUTES.length} routes without credentials`;
    if (ctx.loopbackOnly)
      return skip(tried, 'the installation listens on loopback only (no login by design)');
    const bad: string[] = [];
    for (const path of PROTECTED_ROUTES) {
      const res = await ctx.target.fetch(path);
      if (res.status !== 401 || LEAK.test(res.body)) bad.push(`${path} ${res.status}`);
    }
    const health = await ctx.target.fetch('/healthz');
    const keys = health.status === 200 ? Object.keys(JSON.parse(health.body) as object).sort() : [];
    if (LEAK.test(health.body)) bad.push(`/healthz leaks: ${health.body.slice(0, 80)}`);
    return verdict(
      bad.length === 0,
      tried,
      bad.length === 0
        ? `all 401; /healthz ${health.status} {${keys.join(',')}}`
        : `not refused: ${bad.join(', ')}`,
    );
  },
};

const wrongToken: Attempt = {
  name: 'wrong-token',
  expects: 'a wrong Bearer token or a made-up session cookie is 401 on the ops and dashboard APIs',
  async run(ctx) {
    const tried = 'wrong Bearer token and forged bw_sid cookie on /api/results, /api/dashboard/results';
    if (ctx.loopbackOnly) return skip(tried, 'loopback-only installation');
    const statuses: number[] = [];
    for (const path of ['/api/results', '/api/dashboard/results']) {
      statuses.push(
        (
          await ctx.target.fetch(path, {
            headers: { authorization: 'Bearer not-the-token-0123456789abcdef' },
          })
        ).status,
      );
      statuses.push(
        (await ctx.target.fetch(path, { headers: { cookie: 'bw_sid=forged-session-id-0123456789' } })).status,
      );
    }
    const ok = (await ctx.target.fetch('/api/results?limit=1', { headers: bearer(ctx) })).status;
    return verdict(
      statuses.every((s) => s === 401) && ok === 200,
      tried,
      `wrong: ${statuses.join(',')}; right token: ${ok}`,
    );
  },
};

const lowercaseBearer: Attempt = {
  name: 'lowercase-bearer',
  expects: 'the auth scheme is case-insensitive (RFC 9110): `bearer <token>` is accepted on every API',
  async run(ctx) {
    const tried = `authorization: "bearer <token>" (and "BEARER") on ${TOKEN_READABLE.length} API routes`;
    const refused: string[] = [];
    for (const scheme of ['bearer', 'BEARER']) {
      for (const path of TOKEN_READABLE) {
        const res = await ctx.target.fetch(path, {
          headers: { authorization: `${scheme} ${ctx.creds.token}` },
        });
        if (res.status === 401 || res.status === 403) refused.push(`${scheme} ${path} ${res.status}`);
      }
    }
    return verdict(
      refused.length === 0,
      tried,
      refused.length === 0 ? 'accepted everywhere' : `refused: ${refused.join(', ')}`,
    );
  },
};

const traversal: Attempt = {
  name: 'traversal',
  expects: 'traversal encodings on the image and asset routes are 4xx and read nothing outside',
  async run(ctx) {
    const tried = `${TRAVERSAL_PROBES.length} encoded ../ paths sent byte for byte, with the token`;
    let passwd = 'root:x:0:0:';
    try {
      passwd = readFileSync('/etc/passwd', 'utf8').slice(0, 20);
    } catch {
      /* not Linux: the usual first line */
    }
    const bad: string[] = [];
    for (const path of TRAVERSAL_PROBES) {
      const res = await ctx.target.raw('GET', path, bearer(ctx));
      const leaked = res.body.includes(passwd) || res.body.includes('"devDependencies"');
      if (res.status < 400 || leaked) bad.push(`${path} ${res.status}${leaked ? ' LEAKED' : ''}`);
    }
    return verdict(bad.length === 0, tried, bad.length === 0 ? 'all 4xx, nothing read' : bad.join(', '));
  },
};

const sqlInjection: Attempt = {
  name: 'sql-injection',
  expects:
    'SQL in numeric parameters is 400; in the search text it is data (no rows); the database keeps answering',
  async run(ctx) {
    const tried = 'OR 1=1, ;DROP TABLE, UNION SELECT in limit/before/id/class/q';
    const must400 = [
      '/api/results?limit=1%20OR%201=1',
      '/api/results?before=1;DROP%20TABLE%20results',
      '/api/dashboard/results?before=1%20UNION%20SELECT%20*%20FROM%20reviews',
      '/api/dashboard/results/1%20OR%201=1',
      "/api/dashboard/results?class=Benign'%20OR%201=1--",
    ];
    const bad: string[] = [];
    for (const path of must400) {
      const s = (await ctx.target.fetch(path, { headers: bearer(ctx) })).status;
      if (s !== 400) bad.push(`${path} ${s}`);
    }
    for (const q of [
      "' OR '1'='1",
      "x'); DROP TABLE results; --",
      '" UNION SELECT password_hash FROM users --',
    ]) {
      const res = await ctx.target.fetch(`/api/dashboard/results?q=${encodeURIComponent(q)}`, {
        headers: bearer(ctx),
      });
      const rows = res.status === 200 ? (JSON.parse(res.body) as unknown[]) : null;
      if (rows === null || rows.length > 0) bad.push(`q=${q} ${res.status} ${rows?.length ?? ''} rows`);
    }
    const after = await ctx.target.fetch('/api/results?limit=1', { headers: bearer(ctx) });
    if (after.status !== 200) bad.push(`results afterwards ${after.status}`);
    return verdict(
      bad.length === 0,
      tried,
      bad.length === 0 ? '400s, searches matched nothing, results still 200' : bad.join(', '),
    );
  },
};

const repeatedQuery: Attempt = {
  name: 'repeated-query',
  expects: 'a repeated query parameter is 400 (never 500)',
  async run(ctx) {
    const tried = 'limit=1&limit=2 on /api/results and /api/dashboard/results, before=1&before=2';
    const statuses: string[] = [];
    let ok = true;
    for (const path of [
      '/api/results?limit=1&limit=2',
      '/api/dashboard/results?limit=1&limit=2',
      '/api/dashboard/results?before=1&before=2',
    ]) {
      const s = (await ctx.target.fetch(path, { headers: bearer(ctx) })).status;
      statuses.push(String(s));
      if (s !== 400) ok = false;
    }
    return verdict(ok, tried, statuses.join(', '));
  },
};

/** Successful logins must not use up the failed-login budget (a shared bench PC logs in all day). */
const loginSuccessNotLimited: Attempt = {
  name: 'login-success-not-limited',
  expects: 'successful logins do not count toward the login rate limit (12 in a row all 200)',
  async run(ctx) {
    const tried = '12 successful logins in a row';
    const statuses: number[] = [];
    for (let i = 0; i < 12; i++) statuses.push((await login(ctx)).status);
    return verdict(
      statuses.every((s) => s === 200),
      tried,
      statuses.join(','),
    );
  },
};

const loginBruteForce: Attempt = {
  name: 'login-brute-force',
  expects: 'wrong logins are 429 after the limit, and then even the right token is refused for the window',
  async run(ctx) {
    const tried = '14 wrong tokens on POST /login, then the right one';
    let first429 = -1;
    let last = 0;
    for (let i = 0; i < 14; i++) {
      const res = await ctx.target.fetch('/login', {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...sameOrigin(ctx) },
        body: JSON.stringify({ token: `guess-${i}-${ctx.runId}-xxxxxxxx` }),
      });
      last = res.status;
      if (last === 429 && first429 < 0) first429 = i + 1;
    }
    const right = (await login(ctx)).status;
    return verdict(
      last === 429 && right === 429,
      tried,
      `429 from guess ${first429}; the right token then ${right}`,
    );
  },
};

const bearerBruteForce: Attempt = {
  name: 'bearer-brute-force',
  expects: 'wrong Bearer tokens are 429 after a limit (and logged), like wrong logins',
  async run(ctx) {
    const tried = '30 wrong Bearer tokens on /api/results';
    if (ctx.loopbackOnly) return skip(tried, 'loopback-only installation');
    const counts: Record<number, number> = {};
    for (let i = 0; i < 30; i++) {
      const s = (
        await ctx.target.fetch('/api/results?limit=1', {
          headers: { authorization: `Bearer guess-${i}-${ctx.runId}-0123456789abcdef` },
        })
      ).status;
      counts[s] = (counts[s] ?? 0) + 1;
    }
    const seen = Object.entries(counts)
      .map(([s, n]) => `${n}×${s}`)
      .join(', ');
    return verdict((counts[429] ?? 0) > 0, tried, `${seen} (the log line is checked by the test suite)`);
  },
};

/** Run in this order, before anything that exhausts a rate limit. */
export const authAttempts: Attempt[] = [
  authRequired,
  wrongToken,
  lowercaseBearer,
  traversal,
  sqlInjection,
  repeatedQuery,
];

/** Run last: each one may leave this client rate-limited for the installation's window. */
export const rateLimitAttempts: Attempt[] = [loginSuccessNotLimited, loginBruteForce, bearerBruteForce];
