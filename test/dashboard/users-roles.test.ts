// Named users with roles on a LAN bind, through the real dashboard plugin on fastify: each user's
// own API token acts as that user, a role too weak for a write is a 403 that names the role
// needed, a login session carries the user's role, and the loopback bench keeps working.
import t, { type Test } from 'tap';
import { readFileSync } from 'node:fs';
import { hashPassword, newApiToken } from '../../src/runtime/password.js';
import { startFixtureServer, type FixtureServer } from './fixture-server.js';
import { sample } from './memory-deps.js';
import { multipartBody } from './multipart.js';

const SHARED_TOKEN = 'lan-token-0123456789abcdef';
const PASSWORD = 'microscope-42';
const token = { vera: newApiToken(), rex: newApiToken(), ada: newApiToken() };
const [passwordHash, veraTokenHash, rexTokenHash, adaTokenHash] = await Promise.all([
  hashPassword(PASSWORD),
  hashPassword(token.vera),
  hashPassword(token.rex),
  hashPassword(token.ada),
]);

/** A viewer with password and token, an API-only reviewer, an admin, and an entry without a role. */
const USERS = [
  { name: 'vera', role: 'viewer' as const, password_hash: passwordHash, api_token_hash: veraTokenHash },
  { name: 'rex', role: 'reviewer' as const, api_token_hash: rexTokenHash },
  { name: 'ada', role: 'admin' as const, password_hash: passwordHash, api_token_hash: adaTokenHash },
  { name: 'old-entry', password_hash: passwordHash },
];

async function lanServer(t: Test, extra: Parameters<typeof startFixtureServer>[0] = {}) {
  const s = await startFixtureServer({
    loopback: false,
    token: SHARED_TOKEN,
    users: USERS,
    listen: false,
    ...extra,
  });
  t.teardown(() => s.close());
  s.deps.addResult({ file: 'a.jpg', className: 'Pre', pBall: 0.9, imagePath: sample('Pre', 0) });
  return s;
}

const bearer = (value: string) => ({ authorization: `Bearer ${value}` });

function review(s: FixtureServer, headers: Record<string, string>, reviewer?: string) {
  return s.app.inject({
    method: 'POST',
    url: '/api/dashboard/results/1/review',
    headers,
    payload: { class: 'Benign', note: 'hematogones', ...(reviewer ? { reviewer } : {}) },
  });
}

function upload(s: FixtureServer, headers: Record<string, string>) {
  const { body, contentType } = multipartBody('phone.jpg', readFileSync(sample('Pro', 0)));
  return s.app.inject({
    method: 'POST',
    url: '/api/dashboard/upload',
    headers: { ...headers, 'content-type': contentType },
    payload: body,
  });
}

async function login(s: FixtureServer, payload: object) {
  const res = await s.app.inject({ method: 'POST', url: '/login', payload });
  if (res.statusCode !== 200) return { status: res.statusCode, headers: {} as Record<string, string> };
  const cookie = String(res.headers['set-cookie']).split(';')[0]!;
  const session = await s.app.inject({ url: '/api/dashboard/session', headers: { cookie } });
  const body = session.json() as { user: string; role: string; csrfToken: string; namedUser: boolean };
  return { status: 200, body, headers: { cookie, 'x-csrf-token': body.csrfToken } };
}

t.test("each user's own token acts as that user, with her role; a wrong token is a 401", async (t) => {
  const s = await lanServer(t);
  for (const [name, role] of [
    ['vera', 'viewer'],
    ['rex', 'reviewer'],
    ['ada', 'admin'],
  ] as const) {
    const res = await s.app.inject({ url: '/api/dashboard/session', headers: bearer(token[name]) });
    t.equal(res.statusCode, 200, `${name}'s token opens the API`);
    t.match(res.json(), { user: name, role, namedUser: true }, `${name} acts as herself`);
    t.equal(
      (await s.app.inject({ url: '/api/dashboard/results', headers: bearer(token[name]) })).statusCode,
      200,
      `${name} may read`,
    );
  }
  const wrong = await s.app.inject({
    url: '/api/dashboard/results',
    headers: bearer(newApiToken()),
  });
  t.equal(wrong.statusCode, 401, 'a token nobody has');
  const cut = await s.app.inject({ url: '/api/dashboard/results', headers: bearer(token.rex.slice(0, -1)) });
  t.equal(cut.statusCode, 401, 'a token one character short');
  const shared = await s.app.inject({ url: '/api/dashboard/session', headers: bearer(SHARED_TOKEN) });
  t.match(
    shared.json(),
    { user: 'token', role: 'reviewer', namedUser: false },
    'the shared token is a reviewer',
  );
});

t.test('a viewer cannot review or upload (403 naming the role); a reviewer and an admin can', async (t) => {
  const s = await lanServer(t);
  const refused = await review(s, bearer(token.vera));
  t.equal(refused.statusCode, 403, 'viewer may not review');
  t.match(refused.json().error, /needs the reviewer role; user "vera" has the viewer role/);
  t.equal(s.deps.getResult(1)!.reviews.length, 0, 'nothing stored for the viewer');
  const refusedUpload = await upload(s, bearer(token.vera));
  t.equal(refusedUpload.statusCode, 403, 'viewer may not upload');
  t.match(refusedUpload.json().error, /reviewer role/);
  t.equal(s.deps.uploads.length, 0, 'no upload reached the pipeline');

  const byReviewer = await review(s, bearer(token.rex), 'someone else');
  t.equal(byReviewer.statusCode, 200, 'reviewer may review');
  t.equal(byReviewer.json().reviewer, 'rex', "a user's token signs with her own name, not the typed one");
  const byAdmin = await review(s, bearer(token.ada));
  t.equal(byAdmin.statusCode, 200, 'admin may review (admin includes reviewer)');
  t.equal(byAdmin.json().reviewer, 'ada');
  t.equal((await upload(s, bearer(token.rex))).statusCode, 202, 'reviewer may upload');
  t.equal(s.deps.uploads.length, 1);
});

t.test(
  'a password login carries the role into its session; an entry without a role is a reviewer',
  async (t) => {
    const s = await lanServer(t);
    const vera = await login(s, { user: 'vera', password: PASSWORD });
    t.equal(vera.status, 200);
    t.match(vera.body, { user: 'vera', role: 'viewer', namedUser: true }, 'the session says viewer');
    t.equal((await review(s, vera.headers)).statusCode, 403, "the viewer's session may not review");
    const ada = await login(s, { user: 'ada', password: PASSWORD });
    t.match(ada.body, { user: 'ada', role: 'admin' });
    t.equal((await review(s, ada.headers)).statusCode, 200, "the admin's session may");
    const old = await login(s, { user: 'old-entry', password: PASSWORD });
    t.match(old.body, { role: 'reviewer' }, 'role left out: reviewer, what every user could do before');
    t.equal((await review(s, old.headers)).statusCode, 200);

    t.equal(
      (await login(s, { user: 'rex', password: PASSWORD })).status,
      401,
      'an API-only user has no password',
    );
    t.equal((await login(s, { token: token.rex })).status, 401, "a user's API token is not a login");
    const shared = await login(s, { token: SHARED_TOKEN });
    t.match(shared.body, { user: 'token', role: 'reviewer', namedUser: false }, 'the shared token logs in');
    const logout = await s.app.inject({ method: 'POST', url: '/logout', headers: vera.headers });
    t.equal(logout.statusCode, 200, 'anyone may log out, a viewer too');
  },
);

t.test('http.auth_token_role: a viewer-only shared token reads but cannot write', async (t) => {
  const s = await lanServer(t, { tokenRole: 'viewer' });
  t.equal(
    (await s.app.inject({ url: '/api/dashboard/results', headers: bearer(SHARED_TOKEN) })).statusCode,
    200,
  );
  const refused = await review(s, bearer(SHARED_TOKEN), 'Dr Who');
  t.equal(refused.statusCode, 403);
  t.match(refused.json().error, /needs the reviewer role; the shared access token has the viewer role/);
  const session = await login(s, { token: SHARED_TOKEN });
  t.match(session.body, { role: 'viewer' }, 'a login with the shared token gets its role too');
  t.equal((await review(s, session.headers, 'Dr Who')).statusCode, 403);
});

t.test('wrong user tokens count against the address like any wrong Bearer token', async (t) => {
  const s = await lanServer(t, { loginRateLimit: { max: 3, timeWindowMs: 60_000 } });
  const codes: number[] = [];
  for (let i = 0; i < 4; i++)
    codes.push(
      (await s.app.inject({ url: '/api/dashboard/results', headers: bearer(newApiToken()) })).statusCode,
    );
  t.same(codes, [401, 401, 401, 429], 'three failures, then 429');
  const blocked = await s.app.inject({ url: '/api/dashboard/results', headers: bearer(token.ada) });
  t.equal(blocked.statusCode, 429, 'even a right token waits out the window');
});

t.test('loopback with no users: the person at the bench reviews as before (local admin)', async (t) => {
  const s = await startFixtureServer({ loopback: true, listen: false });
  t.teardown(() => s.close());
  s.deps.addResult({ file: 'b.jpg', className: 'Pre', pBall: 0.9, imagePath: sample('Pre', 0) });
  const page = await s.app.inject({ url: '/api/dashboard/session' });
  const cookie = String(page.headers['set-cookie']).split(';')[0]!;
  t.match(page.json(), { user: 'local', role: 'admin', namedUser: false });
  const res = await review(s, { cookie, 'x-csrf-token': page.json().csrfToken }, 'Dr Bench');
  t.equal(res.statusCode, 200, 'a review from the local session is stored');
  t.equal(res.json().reviewer, 'Dr Bench', 'with the name typed in the form');
});

t.test('loopback with users: a token still names its user, and a viewer is still a viewer', async (t) => {
  const s = await startFixtureServer({ loopback: true, users: USERS, listen: false });
  t.teardown(() => s.close());
  s.deps.addResult({ file: 'c.jpg', className: 'Pre', pBall: 0.9, imagePath: sample('Pre', 0) });
  const viewer = await review(s, { ...bearer(token.vera), host: '127.0.0.1' });
  t.equal(viewer.statusCode, 403, 'her token makes her vera, not the local admin');
  const rex = await review(s, { ...bearer(token.rex), host: '127.0.0.1' });
  t.equal(rex.statusCode, 200);
  t.equal(rex.json().reviewer, 'rex');
});
