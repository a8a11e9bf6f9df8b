// Authentication over time on a LAN bind: the live feed ends with its session, streams are limited
// per identity, Bearer guesses are rate-limited and logged, only failed logins count, and logout
// clears the cookie with the attributes it was set with.
import t from 'tap';
import { hashPassword } from '../../src/runtime/password.js';
import { startFixtureServer, type FixtureServer } from './fixture-server.js';
import { sample } from './memory-deps.js';

const TOKEN = 'lan-token-0123456789abcdef';
const PASSWORD = 'microscope-42';
const passwordHash = await hashPassword(PASSWORD);

function cookieFrom(res: { headers: Record<string, unknown> }): string {
  const raw = res.headers['set-cookie'];
  const first = Array.isArray(raw) ? raw[0] : String(raw);
  return String(first).split(';')[0]!;
}

/** A Set-Cookie line's attributes (lower-case names), without the name=value pair. */
function cookieAttributes(line: string): Map<string, string> {
  const attrs = new Map<string, string>();
  for (const part of line.split(';').slice(1)) {
    const [k, v = ''] = part.trim().split('=');
    attrs.set(k!.toLowerCase(), v);
  }
  return attrs;
}

/** An SSE stream read over a real connection, with a deadline on every wait. */
async function openStream(url: string, headers: Record<string, string>) {
  const res = await fetch(url, { headers });
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let text = '';
  let ended = false;
  const pump = (async () => {
    for (;;) {
      const { done, value } = await reader.read().catch(() => ({ done: true, value: undefined }));
      if (done) break;
      text += decoder.decode(value);
    }
    ended = true;
  })();
  return {
    status: res.status,
    get text() {
      return text;
    },
    get ended() {
      return ended;
    },
    /** True when `pattern` shows up within `ms`. */
    async waitFor(pattern: RegExp, ms = 3000) {
      const until = Date.now() + ms;
      while (!pattern.test(text) && !ended && Date.now() < until) await sleep(20);
      return pattern.test(text);
    },
    /** True when the server ended the stream within `ms`. */
    async waitEnd(ms = 3000) {
      await Promise.race([pump, sleep(ms)]);
      return ended;
    },
    cancel: () => reader.cancel().catch(() => undefined),
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function login(s: FixtureServer, payload: object) {
  const res = await fetch(`${s.url}/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'sec-fetch-site': 'same-origin' },
    body: JSON.stringify(payload),
  });
  if (res.status !== 200) throw new Error(`login answered ${res.status}`);
  const cookie = res.headers.get('set-cookie')!.split(';')[0]!;
  const session = await fetch(`${s.url}/api/dashboard/session`, { headers: { cookie } });
  const csrf = ((await session.json()) as { csrfToken: string }).csrfToken;
  return { cookie, csrf };
}

function publish(s: FixtureServer, file: string) {
  return s.deps.publish(
    s.deps.addResult({ file, className: 'Pro', pBall: 0.9, imagePath: sample('Pro', 0) }),
  );
}

t.test('logging out ends the live feed of that session (real HTTP stream)', async (t) => {
  const s = await startFixtureServer({
    loopback: false,
    token: TOKEN,
    users: [{ name: 'dr-lee', password_hash: passwordHash }],
  });
  t.teardown(() => s.close());
  const { cookie, csrf } = await login(s, { user: 'dr-lee', password: PASSWORD });
  const other = await login(s, { user: 'dr-lee', password: PASSWORD });
  const stream = await openStream(`${s.url}/api/dashboard/events`, { cookie });
  const otherStream = await openStream(`${s.url}/api/dashboard/events`, { cookie: other.cookie });
  t.teardown(() => otherStream.cancel());
  t.equal(stream.status, 200);
  t.ok(await stream.waitFor(/retry: 3000/), 'the stream opened');
  await publish(s, 'before-logout.jpg');
  t.ok(await stream.waitFor(/"file":"before-logout\.jpg"/), 'a result arrives while logged in');

  const out = await fetch(`${s.url}/logout`, {
    method: 'POST',
    headers: { cookie, 'x-csrf-token': csrf, 'sec-fetch-site': 'same-origin' },
  });
  t.equal(out.status, 200, 'logged out');
  await publish(s, 'after-logout.jpg');
  const ended = await stream.waitEnd(2000);
  if (!ended) await stream.cancel();
  t.ok(ended, 'the server ended the stream at logout');
  t.notMatch(stream.text, /after-logout\.jpg/, 'no result reaches the logged-out stream');
  t.ok(await otherStream.waitFor(/"file":"after-logout\.jpg"/), "another session's stream goes on");
  const reopen = await fetch(`${s.url}/api/dashboard/events`, { headers: { cookie } });
  t.equal(reopen.status, 401, 'the old cookie cannot open a new stream');
  await reopen.body?.cancel();
});

t.test('an idle stream ends when its session expires', async (t) => {
  const s = await startFixtureServer({
    loopback: false,
    users: [{ name: 'dr-lee', password_hash: passwordHash }],
    // Long enough that a loaded machine opens the stream before it lapses.
    sessionIdleTtlMs: 1500,
  });
  t.teardown(() => s.close());
  const { cookie } = await login(s, { user: 'dr-lee', password: PASSWORD });
  const stream = await openStream(`${s.url}/api/dashboard/events`, { cookie });
  t.ok(await stream.waitFor(/retry: 3000/), 'the stream opened');
  const ended = await stream.waitEnd(6000);
  if (!ended) await stream.cancel();
  t.ok(ended, 'the server ended the stream when the session expired, with no event to trigger it');
  await publish(s, 'after-expiry.jpg');
  await sleep(100);
  t.notMatch(stream.text, /after-expiry\.jpg/, 'nothing reaches it afterwards');
});

t.test('live streams are limited per identity, with a 429; other identities still connect', async (t) => {
  const s = await startFixtureServer({
    loopback: false,
    token: TOKEN,
    users: [{ name: 'dr-lee', password_hash: passwordHash }],
    liveStreamsPerIdentity: 3,
  });
  t.teardown(() => s.close());
  const bearer = { authorization: `Bearer ${TOKEN}` };
  const streams: Awaited<ReturnType<typeof openStream>>[] = [];
  for (let i = 0; i < 3; i++) streams.push(await openStream(`${s.url}/api/dashboard/events`, bearer));
  t.teardown(() => Promise.all(streams.map((x) => x.cancel())));
  t.same(
    streams.map((x) => x.status),
    [200, 200, 200],
    'up to the limit',
  );
  const over = await fetch(`${s.url}/api/dashboard/events`, { headers: bearer });
  t.equal(over.status, 429, 'one more from the same token: 429');
  if (over.status === 429) t.match(((await over.json()) as { error: string }).error, /too many live/);
  else await over.body?.cancel();
  // A token login is the same identity as the token itself: new sessions do not buy more slots.
  const tokenSession = await login(s, { token: TOKEN });
  const viaSession = await fetch(`${s.url}/api/dashboard/events`, {
    headers: { cookie: tokenSession.cookie },
  });
  t.equal(viaSession.status, 429, 'a session opened with the same token shares its limit');
  await viaSession.body?.cancel();
  const lee = await login(s, { user: 'dr-lee', password: PASSWORD });
  const leeStream = await openStream(`${s.url}/api/dashboard/events`, { cookie: lee.cookie });
  t.teardown(() => leeStream.cancel());
  t.equal(leeStream.status, 200, 'a named user still gets a stream');
  await streams[0]!.cancel();
  let again = 0;
  for (let i = 0; i < 50 && again !== 200; i++) {
    await sleep(20);
    const res = await fetch(`${s.url}/api/dashboard/events`, { headers: bearer });
    again = res.status;
    await res.body?.cancel();
  }
  t.equal(again, 200, 'a closed stream frees its slot');
});

t.test('Bearer guesses on the dashboard: 429 after the limit, logged with the address only', async (t) => {
  const logLines: Record<string, unknown>[] = [];
  const s = await startFixtureServer({
    loopback: false,
    token: TOKEN,
    loginRateLimit: { max: 4, timeWindowMs: 60_000 },
    logLines,
    listen: false,
  });
  t.teardown(() => s.close());
  const codes: number[] = [];
  for (let i = 0; i < 6; i++) {
    const res = await s.app.inject({
      url: '/api/dashboard/results',
      headers: { authorization: `Bearer guess-${i}-xxxxxxxxxxxxxxxx` },
    });
    codes.push(res.statusCode);
  }
  t.same(codes, [401, 401, 401, 401, 429, 429], 'four failures, then 429');
  const blocked = await s.app.inject({
    url: '/api/dashboard/results',
    headers: { authorization: `Bearer ${TOKEN}` },
  });
  t.equal(blocked.statusCode, 429, 'even the right token waits out the window');
  const warnings = logLines.filter((l) => l.level === 40 && /bearer/i.test(String(l.msg)));
  t.ok(warnings.length >= 4, `failures are logged at warn (${warnings.length})`);
  t.equal(warnings[0]?.ip, '127.0.0.1', 'with the address');
  t.notMatch(JSON.stringify(logLines), /guess-\d|lan-token/, 'never the token');
});

t.test('the Bearer scheme is case-insensitive on the dashboard', async (t) => {
  const s = await startFixtureServer({ loopback: false, token: TOKEN, listen: false });
  t.teardown(() => s.close());
  for (const scheme of ['Bearer', 'bearer', 'BEARER'])
    t.equal(
      (
        await s.app.inject({
          url: '/api/dashboard/results',
          headers: { authorization: `${scheme} ${TOKEN}` },
        })
      ).statusCode,
      200,
      `${scheme} <token>`,
    );
});

t.test('successful logins do not count toward the login rate limit; failures do', async (t) => {
  const s = await startFixtureServer({
    loopback: false,
    users: [{ name: 'dr-lee', password_hash: passwordHash }],
    loginRateLimit: { max: 3, timeWindowMs: 60_000 },
    listen: false,
  });
  t.teardown(() => s.close());
  const attempt = (password: string) =>
    s.app.inject({ method: 'POST', url: '/login', payload: { user: 'dr-lee', password } });
  const good: number[] = [];
  for (let i = 0; i < 8; i++) good.push((await attempt(PASSWORD)).statusCode);
  t.same(good, Array(8).fill(200), 'eight logins in a minute, all accepted');
  const bad: number[] = [];
  for (let i = 0; i < 4; i++) bad.push((await attempt(`wrong-${i}`)).statusCode);
  t.same(bad, [401, 401, 401, 429], 'three failures, then 429');
  t.equal((await attempt(PASSWORD)).statusCode, 429, 'then even the right password waits');
});

t.test('logout clears the cookie with the attributes it was set with', async (t) => {
  const s = await startFixtureServer({
    loopback: false,
    users: [{ name: 'dr-lee', password_hash: passwordHash }],
    listen: false,
  });
  t.teardown(() => s.close());
  const loginRes = await s.app.inject({
    method: 'POST',
    url: '/login',
    payload: { user: 'dr-lee', password: PASSWORD },
  });
  const cookie = cookieFrom(loginRes);
  const csrf = (await s.app.inject({ url: '/api/dashboard/session', headers: { cookie } })).json().csrfToken;
  const out = await s.app.inject({
    method: 'POST',
    url: '/logout',
    headers: { cookie, 'x-csrf-token': csrf },
  });
  t.equal(out.statusCode, 200);
  const set = cookieAttributes(String(loginRes.headers['set-cookie']));
  const cleared = cookieAttributes(String(out.headers['set-cookie']));
  t.match(String(out.headers['set-cookie']), /^bw_sid=;/, 'the same cookie, emptied');
  t.ok(
    cleared.has('max-age') ? cleared.get('max-age') === '0' : /1970/.test(cleared.get('expires') ?? ''),
    'expired',
  );
  for (const name of ['max-age', 'expires']) {
    set.delete(name);
    cleared.delete(name);
  }
  t.same(Object.fromEntries(cleared), Object.fromEntries(set), 'path, SameSite, Secure, HttpOnly as set');
  t.equal(cleared.get('samesite')?.toLowerCase(), 'strict');
  t.ok(cleared.has('httponly'));
  t.equal(cleared.get('path'), '/');
});
