/**
 * Item 8, dashboard attacks, against the REAL composed daemon (src/app.ts with the dashboard,
 * real store, real HTTP on a LAN bind with a token): test/dashboard/security.test.ts proves the
 * plugin alone over in-memory deps; this proves the assembled product over the wire, ops routes
 * included. Unauthenticated LAN access, traversal encodings, XSS in names and notes, CSRF,
 * brute-force login, oversized uploads.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { startDaemonHarness } from '../dashboard/harness.js';
import { multipartBody } from '../dashboard/multipart.js';
import { readResults, sampleImages } from './harness.js';
import { PROTECTED_ROUTES, TRAVERSAL_PROBES } from './hostile-inputs.js';

// The whole file (.taprc's 300 s is per file): slow on a shared 2-core machine.
t.setTimeout(900_000);

const TOKEN = 'reliability-lan-token-0123456789';

t.test('LAN bind: the assembled daemon refuses attacks and keeps its data', async (t) => {
  const h = await startDaemonHarness({ host: '0.0.0.0', token: TOKEN });
  t.teardown(() => h.close());
  const app = h.app!;
  const base = h.url;
  const samples = sampleImages();
  const XSS = '<img src=x onerror=alert(1)>.jpg';
  await h.drop(samples[0]!, XSS);
  await h.drop(samples[1]!, 'plain.jpg');
  const auth = { authorization: `Bearer ${TOKEN}` };

  // 1. Unauthenticated LAN access: everything but /healthz says 401 and leaks nothing.
  t.equal((await fetch(`${base}/healthz`)).status, 200, '/healthz is open (liveness probes)');
  for (const path of PROTECTED_ROUTES) {
    const res = await fetch(`${base}${path}`);
    const body = await res.text();
    t.equal(res.status, 401, `${path} → 401 without credentials`);
    t.notMatch(body, /onerror|plain\.jpg|sha256/, `${path} leaks nothing`);
  }
  const wrong = await fetch(`${base}/api/results`, {
    headers: { authorization: 'Bearer wrong-token-wrong-token' },
  });
  t.equal(wrong.status, 401, 'a wrong token is refused');
  t.equal((await fetch(`${base}/api/results`, { headers: auth })).status, 200, 'the right token works');

  // 2. Traversal encodings on the image route: nothing outside is read.
  const passwd = readFileSync('/etc/passwd', 'utf8').slice(0, 20);
  for (const probe of TRAVERSAL_PROBES) {
    const res = await fetch(`${base}${probe}`, { headers: auth });
    const body = await res.text();
    t.ok(res.status >= 400, `${probe} → ${res.status}`);
    t.notOk(body.includes(passwd) || body.includes('"devDependencies"'), `${probe} reads nothing outside`);
  }

  // 3. XSS: the hostile name comes back as JSON data, never as HTML; the page has a strict CSP.
  const list = await fetch(`${base}/api/dashboard/results`, { headers: auth });
  t.match(list.headers.get('content-type'), /application\/json/, 'results are JSON');
  t.ok((await list.text()).includes('<img src=x onerror=alert(1)>'), 'the name is data, not markup');
  const page = await fetch(`${base}/`, { headers: auth });
  const csp = page.headers.get('content-security-policy') ?? '';
  t.match(csp, /script-src 'self'/, 'CSP restricts scripts to the app');
  t.notMatch(csp, /unsafe-inline|unsafe-eval/, 'no inline script allowed');
  t.notOk((await page.text()).includes('onerror=alert'), 'the page itself carries no user data');

  // Log in (token) for a session: reviews and uploads are session + CSRF writes.
  const login = await fetch(`${base}/login`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      origin: base.replace('0.0.0.0', '127.0.0.1'),
      'sec-fetch-site': 'same-origin',
    },
    body: JSON.stringify({ token: TOKEN }),
  });
  t.equal(login.status, 200, 'token login');
  const cookie = (login.headers.get('set-cookie') ?? '').split(';')[0]!;
  const session = (await (await fetch(`${base}/api/dashboard/session`, { headers: { cookie } })).json()) as {
    csrf?: string;
    csrfToken?: string;
  };
  const csrf = session.csrf ?? session.csrfToken ?? '';
  t.ok(csrf.length > 10, 'a CSRF token for the session');
  const rows = readResults(app.config.data.dir);
  const target = rows.find((r) => r.file === 'plain.jpg')!;

  // 4. CSRF: a forged cross-site POST with the victim's cookie is refused and changes nothing.
  const note = '<script>alert("note")</script>';
  const forged = await fetch(`${base}/api/dashboard/results/${target.id}/review`, {
    method: 'POST',
    headers: {
      cookie,
      'content-type': 'application/json',
      origin: 'http://evil.example',
      'sec-fetch-site': 'cross-site',
    },
    body: JSON.stringify({ class: 'Benign', note, reviewer: 'mallory' }),
  });
  t.equal(forged.status, 403, 'forged cross-site review → 403');
  const noToken = await fetch(`${base}/api/dashboard/results/${target.id}/review`, {
    method: 'POST',
    headers: { cookie, 'content-type': 'application/json', origin: base, 'sec-fetch-site': 'same-origin' },
    body: JSON.stringify({ class: 'Benign', note, reviewer: 'mallory' }),
  });
  t.equal(noToken.status, 403, 'same-origin review without the CSRF token → 403');
  const detail = await fetch(`${base}/api/dashboard/results/${target.id}`, { headers: auth });
  t.notMatch(await detail.text(), /mallory/, 'no review stored by the forged requests');
  const legit = await fetch(`${base}/api/dashboard/results/${target.id}/review`, {
    method: 'POST',
    headers: {
      cookie,
      'x-csrf-token': csrf,
      'content-type': 'application/json',
      origin: base,
      'sec-fetch-site': 'same-origin',
    },
    body: JSON.stringify({ class: 'Benign', note, reviewer: 'Dr <b>Ada</b>' }),
  });
  t.equal(legit.status, 200, `a same-origin review with the CSRF token is accepted (${legit.status})`);
  const after = await fetch(`${base}/api/dashboard/results/${target.id}`, { headers: auth });
  t.match(after.headers.get('content-type'), /application\/json/, 'detail is JSON');
  t.ok(
    (await after.text()).includes('<script>alert(\\"note\\")</script>'),
    'the hostile note is stored verbatim as data',
  );

  // 5. Brute-force login: 429 after the limit, and the right token still cannot slip through then.
  let last = 0;
  let firstLimited = -1;
  for (let i = 0; i < 14; i++) {
    const res = await fetch(`${base}/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'sec-fetch-site': 'same-origin' },
      body: JSON.stringify({ token: `guess-${i}-xxxxxxxxxxxxxxxx` }),
    });
    last = res.status;
    if (last === 429 && firstLimited < 0) firstLimited = i;
  }
  t.equal(last, 429, `brute force rate-limited (429 from attempt ${firstLimited + 2})`);

  // 6. Oversized upload: refused with 413, nothing stored, nothing written.
  const before = readResults(app.config.data.dir).length;
  const big = Buffer.concat([
    readFileSync(samples[2]!),
    Buffer.alloc((app.config.http.upload_max_mb + 1) * 1024 * 1024, 1),
  ]);
  const mp = multipartBody('big.jpg', big);
  const up = await fetch(`${base}/api/dashboard/upload`, {
    method: 'POST',
    headers: {
      cookie,
      'x-csrf-token': csrf,
      origin: base,
      'sec-fetch-site': 'same-origin',
      'content-type': mp.contentType,
    },
    body: mp.body,
  });
  t.equal(up.status, 413, `oversized upload → 413 (${up.status})`);
  t.equal(readResults(app.config.data.dir).length, before, 'nothing stored');
  let uploads: string[] = [];
  try {
    uploads = readdirSync(join(app.config.data.dir, 'uploads'), { recursive: true }) as string[];
  } catch {
    /* no uploads folder: nothing written */
  }
  t.same(
    uploads.filter((f) => /\.(jpg|img)$/.test(f)),
    [],
    'no upload file left on disk',
  );
  t.equal((await fetch(`${base}/healthz`)).status, 200, 'daemon alive after the attacks');
});
