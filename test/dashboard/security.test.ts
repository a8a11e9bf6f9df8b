// Security of the dashboard plugin: LAN auth, login rate limit, CSRF, traversal, headers, uploads.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { hashPassword, verifyPassword } from '../../src/runtime/password.js';
import { reviewsToCsv } from '../../src/serve/dashboard/plugin.js';
import { startFixtureServer } from './fixture-server.js';
import { sample } from './memory-deps.js';
import { multipartBody } from './multipart.js';

const TOKEN = 'lan-token-0123456789abcdef';
const jpeg = readFileSync(sample('Pro', 0));

function cookieFrom(res: { headers: Record<string, unknown> }): string {
  const raw = res.headers['set-cookie'];
  const first = Array.isArray(raw) ? raw[0] : String(raw);
  return String(first).split(';')[0]!;
}

t.test('password hashes: scrypt, salted, verified', async (t) => {
  const h1 = await hashPassword('correct horse');
  const h2 = await hashPassword('correct horse');
  t.match(h1, /^scrypt:16384:8:1:/);
  t.not(h1, h2, 'salted');
  t.ok(await verifyPassword('correct horse', h1));
  t.notOk(await verifyPassword('correct hors', h1));
  t.notOk(await verifyPassword('x', 'scrypt:garbage'));
});

t.test('LAN mode: every dashboard route needs a login', async (t) => {
  const s = await startFixtureServer({ loopback: false, token: TOKEN, listen: false });
  t.teardown(() => s.close());
  s.deps.addResult({
    file: 'a.jpg',
    className: 'Pro',
    pBall: 0.97,
    imagePath: sample('Pro', 0),
  });
  await s.deps.settled();
  for (const url of [
    '/api/dashboard/results',
    '/api/dashboard/results/1',
    '/api/dashboard/results/1/image/original',
    '/api/dashboard/review-queue',
    '/api/dashboard/reviews/export?format=csv',
    '/api/dashboard/status',
    '/api/dashboard/events',
    '/api/dashboard/session',
    '/assets/app.js',
  ]) {
    const res = await s.app.inject({ url });
    t.equal(res.statusCode, 401, `${url} -> 401`);
    t.notMatch(res.body, /a\.jpg|Pro-B/, `${url} leaks nothing`);
  }
  const page = await s.app.inject({ url: '/' });
  t.equal(page.statusCode, 302);
  t.equal(page.headers.location, '/login');
  const wrong = await s.app.inject({
    url: '/api/dashboard/results',
    headers: { authorization: 'Bearer wrong-token-xxxxxxxx' },
  });
  t.equal(wrong.statusCode, 401, 'wrong token');
  const ok = await s.app.inject({
    url: '/api/dashboard/results',
    headers: { authorization: `Bearer ${TOKEN}` },
  });
  t.equal(ok.statusCode, 200, 'token works');
  t.equal(ok.json()[0].file, 'a.jpg');
  const login = await s.app.inject({ url: '/login' });
  t.equal(login.statusCode, 200, 'login page is public');
  t.equal((await s.app.inject({ url: '/assets/login.js' })).statusCode, 200, 'its script too');
});

t.test(
  'login: user/password session with a SameSite=Strict HttpOnly cookie; brute force gets 429',
  async (t) => {
    const hash = await hashPassword('s3cret-pass');
    const s = await startFixtureServer({
      loopback: false,
      token: null,
      users: [{ name: 'dr-lee', password_hash: hash }],
      loginRateLimit: { max: 5, timeWindowMs: 60_000 },
      listen: false,
    });
    t.teardown(() => s.close());
    const good = await s.app.inject({
      method: 'POST',
      url: '/login',
      payload: { user: 'dr-lee', password: 's3cret-pass' },
    });
    t.equal(good.statusCode, 200);
    const setCookie = String(good.headers['set-cookie']);
    t.match(setCookie, /HttpOnly/i);
    t.match(setCookie, /SameSite=Strict/i);
    const cookie = cookieFrom(good);
    const session = await s.app.inject({ url: '/api/dashboard/session', headers: { cookie } });
    t.equal(session.statusCode, 200);
    t.equal(session.json().user, 'dr-lee');
    t.ok(session.json().csrfToken, 'a CSRF token comes with the session');

    const codes: number[] = [];
    for (let i = 0; i < 8; i++) {
      const res = await s.app.inject({
        method: 'POST',
        url: '/login',
        payload: { user: 'dr-lee', password: `guess${i}` },
      });
      codes.push(res.statusCode);
    }
    t.same(codes.slice(0, 4), [401, 401, 401, 401], 'wrong passwords are refused');
    t.equal(codes.at(-1), 429, 'then the address is rate-limited');
    const blocked = await s.app.inject({
      method: 'POST',
      url: '/login',
      payload: { user: 'dr-lee', password: 's3cret-pass' },
    });
    t.equal(blocked.statusCode, 429, 'even the right password waits out the window');
  },
);

t.test('writes: CSRF token, Origin and Sec-Fetch-Site are checked, even on loopback', async (t) => {
  const s = await startFixtureServer({ loopback: true, listen: false });
  t.teardown(() => s.close());
  s.deps.addResult({
    file: 'b.jpg',
    className: 'Early',
    pBall: 0.55,
    imagePath: sample('Early', 0),
  });
  await s.deps.settled();
  const host = 'localhost:8080';
  const sessionRes = await s.app.inject({ url: '/api/dashboard/session', headers: { host } });
  const cookie = cookieFrom(sessionRes);
  const csrf = sessionRes.json().csrfToken as string;
  const review = { reviewer: 'Dr Who', class: 'Benign', note: 'hematogones' };
  const post = (headers: Record<string, string>, payload: unknown = review) =>
    s.app.inject({
      method: 'POST',
      url: '/api/dashboard/results/1/review',
      headers: { host, ...headers },
      payload: payload as object,
    });

  t.equal((await post({})).statusCode, 403, 'no cookie, no token: refused');
  t.equal((await post({ cookie })).statusCode, 403, 'cookie without CSRF token: refused');
  t.equal((await post({ cookie, 'x-csrf-token': 'forged' })).statusCode, 403, 'wrong CSRF token: refused');
  t.equal(
    (await post({ cookie, 'x-csrf-token': csrf, 'sec-fetch-site': 'cross-site' })).statusCode,
    403,
    'browser-labelled cross-site request: refused',
  );
  t.equal(
    (await post({ cookie, 'x-csrf-token': csrf, origin: 'http://evil.example' })).statusCode,
    403,
    'foreign Origin: refused',
  );
  // A classic forged form post: urlencoded body, cross-site, cookie attached by an old browser.
  const forged = await s.app.inject({
    method: 'POST',
    url: '/api/dashboard/results/1/review',
    headers: {
      host,
      cookie,
      origin: 'http://evil.example',
      'content-type': 'application/x-www-form-urlencoded',
    },
    payload: 'reviewer=x&class=Benign',
  });
  t.ok(
    forged.statusCode >= 400 && forged.statusCode < 500,
    `forged form post refused (${forged.statusCode})`,
  );
  t.equal(s.deps.getResult(1)!.reviews.length, 0, 'no review was stored by any refused request');

  const ok = await post({
    cookie,
    'x-csrf-token': csrf,
    origin: `http://${host}`,
    'sec-fetch-site': 'same-origin',
  });
  t.equal(ok.statusCode, 200, 'same-origin request with the token: stored');
  t.equal(s.deps.getResult(1)!.reviews.length, 1);

  const rebinding = await s.app.inject({ url: '/api/dashboard/results', headers: { host: 'evil.example' } });
  t.equal(rebinding.statusCode, 403, 'loopback dashboard refuses foreign Host headers (DNS rebinding)');

  const upload = multipartBody('x.jpg', jpeg);
  const up = await s.app.inject({
    method: 'POST',
    url: '/api/dashboard/upload',
    headers: { host, cookie, 'content-type': upload.contentType },
    payload: upload.body,
  });
  t.equal(up.statusCode, 403, 'upload without CSRF token refused');
  t.equal(s.deps.uploads.length, 0);
});

t.test('reviews: validation, named users sign their own, CSV export neutralises formulas', async (t) => {
  const hash = await hashPassword('pw-for-test');
  const s = await startFixtureServer({
    loopback: false,
    token: TOKEN,
    users: [{ name: 'dr-lee', password_hash: hash }],
    listen: false,
  });
  t.teardown(() => s.close());
  s.deps.addResult({
    file: '=cmd.jpg',
    className: 'Pro',
    pBall: 0.9,
    imagePath: sample('Pro', 1),
  });
  const login = await s.app.inject({
    method: 'POST',
    url: '/login',
    payload: { user: 'dr-lee', password: 'pw-for-test' },
  });
  const cookie = cookieFrom(login);
  const csrf = (await s.app.inject({ url: '/api/dashboard/session', headers: { cookie } })).json().csrfToken;
  const headers = { cookie, 'x-csrf-token': csrf };
  const bad = await s.app.inject({
    method: 'POST',
    url: '/api/dashboard/results/1/review',
    headers,
    payload: { class: 'Nope' },
  });
  t.equal(bad.statusCode, 400);
  const missing = await s.app.inject({
    method: 'POST',
    url: '/api/dashboard/results/99/review',
    headers,
    payload: { class: 'Pro' },
  });
  t.equal(missing.statusCode, 404);
  const ok = await s.app.inject({
    method: 'POST',
    url: '/api/dashboard/results/1/review',
    headers,
    payload: { reviewer: 'someone else', class: 'Pre', note: '=HYPERLINK("http://x")' },
  });
  t.equal(ok.statusCode, 200);
  t.equal(ok.json().reviewer, 'dr-lee', 'a named account signs its own reviews');
  const csv = await s.app.inject({
    url: '/api/dashboard/reviews/export?format=csv',
    headers: { authorization: `Bearer ${TOKEN}` },
  });
  t.equal(csv.statusCode, 200);
  t.match(
    csv.headers['content-disposition'],
    /attachment; filename="blastwatch-reviews-\d{4}-\d{2}-\d{2}\.csv"/,
  );
  t.match(csv.body, /"'=cmd\.jpg"/, 'file name cannot run as a formula');
  t.match(csv.body, /"'=HYPERLINK\(""http:\/\/x""\)"/, 'note cannot run as a formula');
  const json = await s.app.inject({
    url: '/api/dashboard/reviews/export?format=json',
    headers: { authorization: `Bearer ${TOKEN}` },
  });
  t.equal(json.json()[0].reviewedClass, 'Pre');
  t.equal(reviewsToCsv([]).trim().split(',')[0], 'result_id');
});

t.test('traversal probes read nothing outside', async (t) => {
  const s = await startFixtureServer({ loopback: true, listen: false });
  t.teardown(() => s.close());
  s.deps.addResult({
    file: 'c.jpg',
    className: 'Pro',
    pBall: 0.9,
    imagePath: sample('Pro', 2),
  });
  await s.deps.settled();
  const probes = [
    '/assets/..%2f..%2f..%2f..%2fpackage.json',
    '/assets/%2e%2e%2f%2e%2e%2f%2e%2e%2f%2e%2e%2fpackage.json',
    '/assets/..%252f..%252f..%252f..%252fpackage.json',
    '/assets/%252e%252e%252fpackage.json',
    '/assets/..%5c..%5c..%5c..%5cpackage.json',
    '/assets/....//....//package.json',
    '/api/dashboard/results/1/image/..%2f..%2f..%2f..%2f..%2fetc%2fpasswd',
    '/api/dashboard/results/1/image/%2e%2e%2f%2e%2e%2fetc%2fpasswd',
    '/api/dashboard/results/..%2f..%2fetc%2fpasswd/image/original',
    '/api/dashboard/results/1%2f..%2f..%2fetc/image/original',
    '/api/dashboard/results/%2e%2e/image/original',
    '/api/dashboard/results/1/image/original%00.png',
    '/%2e%2e/%2e%2e/%2e%2e/etc/passwd',
    '/..%2f..%2f..%2fetc%2fpasswd',
  ];
  for (const url of probes) {
    const res = await s.app.inject({ url, headers: { host: 'localhost' } });
    t.ok(res.statusCode === 404 || res.statusCode === 400, `${url} -> ${res.statusCode}`);
    t.notMatch(res.body, /root:x:0|"name": "blastwatch"|devDependencies/, `${url} leaks no file`);
  }
  const real = await s.app.inject({
    url: '/api/dashboard/results/1/image/original',
    headers: { host: 'localhost' },
  });
  t.equal(real.statusCode, 200, 'the image itself is served by id');
  t.equal(real.headers['content-type'], 'image/jpeg');
  t.equal(real.rawPayload.length, readFileSync(sample('Pro', 2)).length);
});

t.test('headers: strict CSP without inline script, no framing, nosniff', async (t) => {
  const s = await startFixtureServer({ loopback: true, listen: false });
  t.teardown(() => s.close());
  const res = await s.app.inject({ url: '/', headers: { host: '127.0.0.1:8080' } });
  t.equal(res.statusCode, 200);
  const csp = String(res.headers['content-security-policy']);
  t.match(csp, /script-src 'self'/);
  t.notMatch(csp, /unsafe-inline|unsafe-eval/);
  t.match(csp, /frame-ancestors 'none'/);
  t.notMatch(csp, /upgrade-insecure-requests/, 'plain-HTTP LAN keeps working');
  t.equal(res.headers['x-content-type-options'], 'nosniff');
  t.notMatch(res.body, /<script>(?!<\/script>)|<script(?![^>]*src=)[^>]*>/, 'no inline script in the page');
  t.match(res.body, /Screening aid — not a diagnosis/);
});

t.test('uploads: type sniffed from content, size limited, name cleaned', async (t) => {
  const s = await startFixtureServer({ loopback: true, listen: false, uploadMaxBytes: 64 * 1024 });
  t.teardown(() => s.close());
  const host = 'localhost';
  const sessionRes = await s.app.inject({ url: '/api/dashboard/session', headers: { host } });
  const headers = {
    host,
    cookie: cookieFrom(sessionRes),
    'x-csrf-token': sessionRes.json().csrfToken as string,
  };
  const send = (name: string, bytes: Buffer, type?: string) => {
    const m = multipartBody(name, bytes, type);
    return s.app.inject({
      method: 'POST',
      url: '/api/dashboard/upload',
      headers: { ...headers, 'content-type': m.contentType },
      payload: m.body,
    });
  };
  const text = await send('evil.jpg', Buffer.from('<script>alert(1)</script>'), 'image/jpeg');
  t.equal(text.statusCode, 415, 'not an image by content: refused');
  const big = await send('big.jpg', Buffer.concat([jpeg, Buffer.alloc(80 * 1024)]));
  t.equal(big.statusCode, 413, 'over the size limit: refused');
  t.equal(s.deps.uploads.length, 0, 'nothing reached the pipeline');
  const ok = await send('..\\..\\etc/<b onclick=x>smear.jpg', jpeg);
  t.equal(ok.statusCode, 202);
  t.equal(
    ok.json().file,
    '<b onclick=x>smear.jpg',
    'directories stripped; markup kept as text, escaped on display',
  );
  const noExt = await send('photo', jpeg);
  t.equal(noExt.json().file, 'photo.jpg', 'extension follows the content');
  const bmp = await send(
    'scan.bmp',
    readFileSync(fileURLToPath(new URL('../fixtures/bad/sample.bmp', import.meta.url))),
  );
  t.equal(bmp.statusCode, 415, 'BMP: the decoder cannot read it, so it is refused at the door');
  const png = await send(
    'scan',
    await sharp(jpeg).resize(64, 64).png().toBuffer(),
    'application/octet-stream',
  );
  t.equal(png.statusCode, 202, 'PNG accepted whatever the declared type');
  t.equal(png.json().file, 'scan.png');
  t.equal(s.deps.uploads.length, 3);
});

t.test('live feed: a result is pushed to an open stream, and shutdown ends the stream', async (t) => {
  const s = await startFixtureServer({ loopback: true });
  const res = await fetch(`${s.url}/api/dashboard/events`);
  t.equal(res.status, 200);
  t.match(res.headers.get('content-type'), /^text\/event-stream/);
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let text = '';
  const readUntil = async (pattern: RegExp) => {
    while (!pattern.test(text)) {
      const { done, value } = await reader.read();
      if (done) return false;
      text += decoder.decode(value);
    }
    return true;
  };
  t.ok(await readUntil(/retry: 3000/));
  await s.deps.publish(
    s.deps.addResult({ file: 'pushed.jpg', className: 'Pro', pBall: 0.9, imagePath: sample('Pro', 0) }),
  );
  t.ok(
    await readUntil(/event: result\ndata: \{.*"file":"pushed\.jpg"/),
    'the result arrives as an SSE event',
  );
  // A tab left open must not keep the daemon from stopping (it would hang until SIGKILL).
  await s.close();
  t.equal(await readUntil(/never/), false, 'the stream ended when the server closed');
});

t.test(
  'requests are checked against the route schemas: a bad or repeated parameter is a 400 naming it',
  async (t) => {
    const s = await startFixtureServer({ loopback: true, listen: false });
    t.teardown(() => s.close());
    s.deps.addResult({ file: 'd.jpg', className: 'Pro', pBall: 0.9, imagePath: sample('Pro', 0) });
    await s.deps.settled();
    const host = 'localhost';
    for (const [url, field] of [
      ['/api/dashboard/results?q=a&q=b', 'q'],
      ['/api/dashboard/results?limit=1&limit=2', 'limit'],
      ['/api/dashboard/results?limit=0', 'limit'],
      ['/api/dashboard/results?before=x', 'before'],
      ['/api/dashboard/results?class=Nope', 'class'],
      ['/api/dashboard/results?flagged=yes', 'flagged'],
      ['/api/dashboard/results?from=yesterday', 'from'],
      ['/api/dashboard/results?to=2026-02-31T25:00:00Z', 'to'],
      ['/api/dashboard/results?q=' + 'x'.repeat(201), 'q'],
      ['/api/dashboard/review-queue?limit=x', 'limit'],
      ['/api/dashboard/reviews/export?format=xml', 'format'],
      ['/api/dashboard/results/abc', 'id'],
      ['/api/dashboard/results/1/image/thumb', 'kind'],
    ] as const) {
      const res = await s.app.inject({ url, headers: { host } });
      t.equal(res.statusCode, 400, `${url.slice(0, 60)} -> 400`);
      t.match(res.json().error, new RegExp(`\\b${field}\\b`), `the error names ${field}`);
    }
    const ok = await s.app.inject({
      url: '/api/dashboard/results?flagged=1&class=Pro&q=d.',
      headers: { host },
    });
    t.equal(ok.json().length, 1, 'valid filters still answer');
  },
);

t.test('replies are serialized by the schemas without losing a field', async (t) => {
  const s = await startFixtureServer({ loopback: true, listen: false });
  t.teardown(() => s.close());
  const r = s.deps.addResult({
    file: 'e.jpg',
    className: 'Early',
    pBall: 0.5,
    imagePath: sample('Early', 0),
  });
  s.deps.addFailure('broken.jpg', 'truncated JPEG');
  await s.deps.settled();
  const host = 'localhost';
  const sessionRes = await s.app.inject({ url: '/api/dashboard/session', headers: { host } });
  const headers = { host, cookie: cookieFrom(sessionRes), 'x-csrf-token': sessionRes.json().csrfToken };
  const review = await s.app.inject({
    method: 'POST',
    url: `/api/dashboard/results/${r.id}/review`,
    headers,
    payload: { reviewer: 'Dr Who', class: 'Benign', note: 'hematogones' },
  });
  t.same(review.json(), s.deps.getResult(r.id)!.reviews[0], 'the stored review');
  const json = (url: string) => s.app.inject({ url, headers: { host } }).then((res) => res.json());
  t.same(await json('/api/dashboard/results'), s.deps.listResults({ limit: 50 }), 'the list, failures too');
  t.same(await json(`/api/dashboard/results/${r.id}`), s.deps.getResult(r.id), 'the detail');
  t.same(await json('/api/dashboard/review-queue'), s.deps.reviewQueue(100), 'the queue');
  const status = await json('/api/dashboard/status');
  // The fixture's startedAt is the time of the call: compare everything else.
  const expected = { ...s.deps.status(), startedAt: status.status.startedAt };
  t.same(status, { status: expected, daily: s.deps.dailyCounts(14), meta: s.deps.meta() }, 'the status');
  t.same(sessionRes.json().meta, { ...s.deps.meta(), uploadMaxBytes: 2 * 1024 * 1024 }, 'the session');
});

t.test('a broken multipart upload is a 4xx, never a 500', async (t) => {
  const s = await startFixtureServer({ loopback: true, listen: false });
  t.teardown(() => s.close());
  const host = 'localhost';
  const sessionRes = await s.app.inject({ url: '/api/dashboard/session', headers: { host } });
  const headers = { host, cookie: cookieFrom(sessionRes), 'x-csrf-token': sessionRes.json().csrfToken };
  const whole = multipartBody('cut.jpg', jpeg);
  const cases: [string, string, Buffer | string][] = [
    ['cut off halfway', whole.contentType, whole.body.subarray(0, whole.body.length >> 1)],
    ['no boundary', 'multipart/form-data', 'garbage'],
    ['a boundary that never comes', 'multipart/form-data; boundary=xyz', 'garbage'],
    ['not multipart', 'application/json', '{}'],
  ];
  for (const [what, contentType, payload] of cases) {
    const res = await s.app.inject({
      method: 'POST',
      url: '/api/dashboard/upload',
      headers: { ...headers, 'content-type': contentType },
      payload,
    });
    t.ok(res.statusCode >= 400 && res.statusCode < 500, `${what} -> ${res.statusCode}`);
    t.type(res.json().error, 'string', `${what}: a message for the user`);
  }
  t.equal(s.deps.uploads.length, 0, 'nothing reached the pipeline');
});

t.test('every ES module the page imports is served from /assets/, as JavaScript', async (t) => {
  const s = await startFixtureServer({ loopback: true, listen: false });
  t.teardown(() => s.close());
  const page = await s.app.inject({ url: '/', headers: { host: 'localhost' } });
  t.match(page.body, /<script type="module" src="\/assets\/app\.js"><\/script>/);
  const seen = new Set<string>();
  const queue = ['app.js'];
  while (queue.length) {
    const name = queue.shift()!;
    if (seen.has(name)) continue;
    seen.add(name);
    const res = await s.app.inject({ url: `/assets/${name}`, headers: { host: 'localhost' } });
    t.equal(res.statusCode, 200, `${name} is served`);
    t.match(res.headers['content-type'], /^text\/javascript/, `${name} as JavaScript`);
    for (const m of res.body.matchAll(/^import [^;]+ from '\.\/([\w-]+\.js)';$/gm)) queue.push(m[1]!);
  }
  t.ok(seen.size >= 6, `the page loads ${[...seen].join(', ')}`);
});
