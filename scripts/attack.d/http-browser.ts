/**
 * Attempts a hostile web page or a careless browser could make: markup in names and notes,
 * forged cross-site writes, hostile uploads, sessions that outlive a logout, a live feed hogged by
 * one identity. Uploads and the review are made on this run's own upload only.
 */
import { readFileSync } from 'node:fs';
import { jpegVariant, sampleImages } from '../../test/daemon/helpers.js';
import {
  bearer,
  login,
  recentResults,
  sameOrigin,
  sha256,
  upload,
  type ApiResult,
  type Session,
} from './api.js';
import { fail, poll, sleep, skip, verdict, type Attempt, type AttackContext } from './attempt.js';
import type { LiveStream } from './target.js';

const XSS_NAME = '<img src=x onerror=alert(1)>.jpg';
const XSS_NOTE = '<script>alert("note")</script>';

/** State shared by the attempts of one run (the upload the review and CSRF attempts target). */
interface BrowserState {
  upload: ApiResult | null;
  classes: string[];
  uploadMaxBytes: number;
}

function sampleJpeg(ctx: AttackContext, tag: string): Buffer {
  return jpegVariant(readFileSync(sampleImages()[0]!), `${ctx.runId}-${tag}`);
}

async function meta(ctx: AttackContext, state: BrowserState): Promise<void> {
  if (state.classes.length > 0) return;
  const res = await ctx.target.fetch('/api/dashboard/session', { headers: bearer(ctx) });
  const body = JSON.parse(res.body) as { meta?: { classes?: { name: string }[]; uploadMaxBytes?: number } };
  state.classes = (body.meta?.classes ?? []).map((c) => c.name);
  state.uploadMaxBytes = body.meta?.uploadMaxBytes ?? 0;
}

async function needSession(ctx: AttackContext): Promise<Session> {
  const { session, status } = await login(ctx);
  if (!session) throw new Error(`login refused (${status}): check --token/--user/--password`);
  return session;
}

const review = (ctx: AttackContext, id: number, headers: Record<string, string>, body: object) =>
  ctx.target.fetch(`/api/dashboard/results/${id}/review`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });

export function browserAttempts(): Attempt[] {
  const state: BrowserState = { upload: null, classes: [], uploadMaxBytes: 0 };

  const xssCsp: Attempt = {
    name: 'xss-csp',
    expects:
      "the page has a strict CSP (script-src 'self', no unsafe-inline/eval, no framing); APIs answer JSON",
    async run(ctx) {
      const tried = 'GET / and /api/dashboard/results with the token';
      const page = await ctx.target.fetch('/', { headers: bearer(ctx) });
      const csp = page.headers.get('content-security-policy') ?? '';
      const list = await ctx.target.fetch('/api/dashboard/results?limit=5', { headers: bearer(ctx) });
      const ok =
        page.status === 200 &&
        /script-src 'self'/.test(csp) &&
        !/unsafe-inline|unsafe-eval/.test(csp) &&
        /frame-ancestors 'none'/.test(csp) &&
        page.headers.get('x-content-type-options') === 'nosniff' &&
        /application\/json/.test(list.headers.get('content-type') ?? '');
      return verdict(
        ok,
        tried,
        `page ${page.status}, CSP "${csp.slice(0, 90)}…", list ${list.headers.get('content-type')}`,
      );
    },
  };

  const xssFileName: Attempt = {
    name: 'xss-file-name',
    expects: 'an upload named with markup is stored and returned as JSON data, never as HTML',
    async run(ctx) {
      const name = `${ctx.runId}-${XSS_NAME}`;
      const tried = `upload "${name}" with the token`;
      const bytes = sampleJpeg(ctx, 'xss');
      const up = await upload(ctx, name, bytes, bearer(ctx));
      if (up.status !== 202) return fail(tried, `upload ${up.status} ${up.body.slice(0, 120)}`);
      const sha = sha256(bytes);
      state.upload =
        (await poll(
          async () => (await recentResults(ctx)).find((r) => r.sha256 === sha && r.status !== 'pending'),
          30_000,
        )) ?? null;
      const list = await ctx.target.fetch(`/api/dashboard/results?q=${encodeURIComponent(ctx.runId)}`, {
        headers: bearer(ctx),
      });
      const page = await ctx.target.fetch('/', { headers: bearer(ctx) });
      const asData =
        list.body.includes('<img src=x onerror=alert(1)>') &&
        /application\/json/.test(list.headers.get('content-type') ?? '');
      return verdict(
        asData && !page.body.includes('onerror') && state.upload !== null,
        tried,
        `202; result ${state.upload ? `#${state.upload.id} ${state.upload.status}` : 'not stored within 30 s'}; ` +
          `name in JSON ${asData}; page carries it ${page.body.includes('onerror')}`,
      );
    },
  };

  const xssReview: Attempt = {
    name: 'xss-review',
    expects: 'a review note and reviewer with markup are stored verbatim and returned as JSON data',
    async run(ctx) {
      const tried = `review ${XSS_NOTE} by "Dr <b>X</b>" on this run's upload`;
      if (state.upload?.status !== 'done') return skip(tried, "this run's upload was not classified");
      await meta(ctx, state);
      const res = await review(
        ctx,
        state.upload.id,
        { ...bearer(ctx), ...sameOrigin(ctx) },
        {
          class: state.classes[0],
          note: XSS_NOTE,
          reviewer: 'Dr <b>X</b>',
        },
      );
      const detail = await ctx.target.fetch(`/api/dashboard/results/${state.upload.id}`, {
        headers: bearer(ctx),
      });
      const verbatim = detail.body.includes('<script>alert(\\"note\\")</script>');
      const json = /application\/json/.test(detail.headers.get('content-type') ?? '');
      return verdict(
        res.status === 200 && verbatim && json,
        tried,
        `review ${res.status}; stored verbatim ${verbatim}; JSON ${json}`,
      );
    },
  };

  const csrfReview: Attempt = {
    name: 'csrf-review',
    expects:
      'a cross-site review with the victim cookie, or a same-origin one without the CSRF token, is 403 and stores nothing',
    async run(ctx) {
      const tried = 'POST review with the session cookie from http://evil.example, then without X-CSRF-Token';
      if (!state.upload) return skip(tried, "this run's upload was not stored");
      await meta(ctx, state);
      const s = await needSession(ctx);
      const body = { class: state.classes[0], note: 'forged', reviewer: `mallory-${ctx.runId}` };
      const forged = await review(
        ctx,
        state.upload.id,
        { cookie: s.cookie, origin: 'http://evil.example', 'sec-fetch-site': 'cross-site' },
        body,
      );
      const noToken = await review(ctx, state.upload.id, { cookie: s.cookie, ...sameOrigin(ctx) }, body);
      const plainForm = await ctx.target.fetch(`/api/dashboard/results/${state.upload.id}/review`, {
        method: 'POST',
        headers: {
          cookie: s.cookie,
          'content-type': 'application/x-www-form-urlencoded',
          origin: 'http://evil.example',
        },
        body: 'class=Benign&note=forged',
      });
      const detail = await ctx.target.fetch(`/api/dashboard/results/${state.upload.id}`, {
        headers: bearer(ctx),
      });
      const stored = detail.body.includes(`mallory-${ctx.runId}`);
      return verdict(
        forged.status === 403 && noToken.status === 403 && plainForm.status >= 400 && !stored,
        tried,
        `cross-site ${forged.status}, no token ${noToken.status}, form post ${plainForm.status}; stored ${stored}`,
      );
    },
  };

  const csrfUploadLogout: Attempt = {
    name: 'csrf-upload-logout',
    expects: 'a cross-site upload or logout with the victim cookie is 403; the session survives',
    async run(ctx) {
      const tried = 'cross-site upload and logout with the session cookie';
      const s = await needSession(ctx);
      const evil = { cookie: s.cookie, origin: 'http://evil.example', 'sec-fetch-site': 'cross-site' };
      const up = await upload(ctx, `${ctx.runId}-forged.jpg`, sampleJpeg(ctx, 'forged'), evil);
      const out = await ctx.target.fetch('/logout', { method: 'POST', headers: evil });
      const still = await ctx.target.fetch('/api/dashboard/session', { headers: { cookie: s.cookie } });
      return verdict(
        up.status === 403 && out.status === 403 && still.status === 200,
        tried,
        `upload ${up.status}, logout ${out.status}, session afterwards ${still.status}`,
      );
    },
  };

  const oversizedUpload: Attempt = {
    name: 'oversized-upload',
    expects: 'an upload over http.upload_max_mb is 413 and nothing is stored',
    async run(ctx) {
      await meta(ctx, state);
      const size = state.uploadMaxBytes + 1024 * 1024;
      const tried = `upload of ${(size / 1048576).toFixed(1)} MB`;
      if (state.uploadMaxBytes <= 0) return skip(tried, 'the session did not report uploadMaxBytes');
      const big = Buffer.concat([sampleJpeg(ctx, 'big'), Buffer.alloc(size, 1)]);
      const res = await upload(ctx, `${ctx.runId}-big.jpg`, big, bearer(ctx));
      const stored = (await recentResults(ctx)).some((r) => r.sha256 === sha256(big));
      return verdict(res.status === 413 && !stored, tried, `${res.status}; stored ${stored}`);
    },
  };

  const truncatedUpload: Attempt = {
    name: 'truncated-upload',
    expects: 'a multipart body cut off mid-file (no closing boundary) is 400, never 500',
    async run(ctx) {
      const tried = 'upload whose multipart body stops halfway through the file';
      const bytes = sampleJpeg(ctx, 'cut');
      const boundary = `----attack${ctx.runId}`;
      const head = `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${ctx.runId}-cut.jpg"\r\nContent-Type: image/jpeg\r\n\r\n`;
      const body = Buffer.concat([Buffer.from(head), bytes.subarray(0, bytes.length >> 1)]);
      const res = await ctx.target.fetch('/api/dashboard/upload', {
        method: 'POST',
        headers: { ...bearer(ctx), 'content-type': `multipart/form-data; boundary=${boundary}` },
        body,
      });
      return verdict(res.status === 400, tried, `${res.status} ${res.body.slice(0, 100)}`);
    },
  };

  const uploadNotImage: Attempt = {
    name: 'upload-not-image',
    expects: 'an upload that is not an image (HTML/script with a .jpg name) is 415',
    async run(ctx) {
      const tried = 'upload of an HTML page named x.jpg';
      const html = Buffer.from('<html><script>alert(document.cookie)</script></html>');
      const res = await upload(ctx, `${ctx.runId}-page.jpg`, html, bearer(ctx));
      return verdict(res.status === 415, tried, String(res.status));
    },
  };

  const logoutCookie: Attempt = {
    name: 'logout-cookie-samesite',
    expects:
      "logout's cookie-clearing Set-Cookie carries the login cookie's attributes (SameSite=Strict, HttpOnly, Path=/)",
    async run(ctx) {
      const tried = 'log in, log out, compare the Set-Cookie attributes';
      const s = await needSession(ctx);
      const out = await ctx.target.fetch('/logout', {
        method: 'POST',
        headers: { cookie: s.cookie, 'x-csrf-token': s.csrf, ...sameOrigin(ctx) },
      });
      const cleared = out.headers.get('set-cookie') ?? '';
      const attrs = (c: string) =>
        ['samesite=strict', 'httponly', 'path=/'].filter((a) =>
          c.toLowerCase().replace(/;\s*/g, ';').split(';').includes(a),
        );
      const want = attrs(s.setCookie);
      const got = attrs(cleared);
      return verdict(
        out.status === 200 && want.length === 3 && want.every((a) => got.includes(a)),
        tried,
        `login: ${want.join(' ')}; logout ${out.status}: ${cleared.slice(0, 120) || '(no Set-Cookie)'}`,
      );
    },
  };

  const logoutEndsFeed: Attempt = {
    name: 'logout-ends-live-feed',
    expects: "after logout the session's live feed (SSE) ends within 5 s",
    async run(ctx) {
      const tried = 'open /api/dashboard/events with a session, log out';
      const s = await needSession(ctx);
      const stream = await ctx.target.stream('/api/dashboard/events', { cookie: s.cookie });
      try {
        if (stream.status !== 200) return fail(tried, `stream ${stream.status}`);
        const out = await ctx.target.fetch('/logout', {
          method: 'POST',
          headers: { cookie: s.cookie, 'x-csrf-token': s.csrf, ...sameOrigin(ctx) },
        });
        const t0 = Date.now();
        await Promise.race([stream.ended, sleep(5000)]);
        const ended = stream.endedAt !== null;
        return verdict(
          ended,
          tried,
          `logout ${out.status}; stream ${ended ? `ended ${Math.max(0, stream.endedAt! - t0)} ms after the logout reply` : 'still open after 5 s'}`,
        );
      } finally {
        stream.close();
      }
    },
  };

  const feedPerIdentity: Attempt = {
    name: 'live-feed-per-identity',
    expects:
      'one identity cannot take every live-feed slot: 429 after a per-identity limit, never 503 for others',
    async run(ctx) {
      const tried = 'open up to 40 live-feed streams with one token';
      const streams: LiveStream[] = [];
      const counts: Record<number, number> = {};
      try {
        for (let i = 0; i < 40; i++) {
          const s = await ctx.target.stream('/api/dashboard/events', bearer(ctx));
          streams.push(s);
          counts[s.status] = (counts[s.status] ?? 0) + 1;
          if (s.status === 429) break;
        }
      } finally {
        for (const s of streams) s.close();
      }
      const seen = Object.entries(counts)
        .map(([s, n]) => `${n}×${s}`)
        .join(', ');
      return verdict((counts[429] ?? 0) > 0 && !counts[503], tried, seen);
    },
  };

  return [
    xssCsp,
    xssFileName,
    xssReview,
    csrfReview,
    csrfUploadLogout,
    oversizedUpload,
    truncatedUpload,
    uploadNotImage,
    logoutCookie,
    logoutEndsFeed,
    feedPerIdentity,
  ];
}
