// LAN mode in a real browser: login page, session, logout, and a forged cross-site POST from a
// hostile page on another port (same site for cookies, so only the CSRF defences stand).
import t from 'tap';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { hashPassword } from '../../src/runtime/password.js';
import { launchBrowser } from './browser.js';
import { startHarness, type DashboardHarness } from './harness.js';
import { sample } from './memory-deps.js';

// Callbacks passed to page.evaluate/waitForFunction run in the browser, not in Node: minimal
// typings for the few DOM members they touch (the project compiles without the DOM lib).
interface PageImage {
  complete: boolean;
  naturalWidth: number;
  src: string;
  getClientRects(): { length: number };
  getBoundingClientRect(): { top: number };
}
declare const document: {
  body: { dataset: Record<string, string | undefined> };
  querySelector(selector: string): PageImage | null;
  scrollingElement: { scrollWidth: number; clientWidth: number };
  title: string;
  images: ArrayLike<PageImage> & Iterable<PageImage>;
};

/** The browser's EventSource, as far as the logout test uses it. */
declare const EventSource: new (url: string) => {
  readyState: number;
  addEventListener(type: string, listener: (event: { data: string }) => void): void;
};
interface FeedProbe {
  source: InstanceType<typeof EventSource>;
  files: string[];
}

const SAMPLE = sample('Pro', 2);
const TOKEN = 'browser-lan-token-0123456789';

let harness: DashboardHarness;
let browser: Awaited<ReturnType<typeof launchBrowser>>;
let evil: Server;
let evilUrl = '';

t.before(async () => {
  harness = await startHarness({
    host: '0.0.0.0',
    token: TOKEN,
    users: [{ name: 'dr-lee', password_hash: await hashPassword('microscope-42') }],
  });
  await harness.drop(SAMPLE, 'lan-target.jpg');
  // The attacker's page: a form posted to the dashboard and a credentialed "simple" fetch.
  const target = `${harness.url}/api/dashboard/results/1/review`;
  // multipart/form-data is a CORS "simple" type: this upload reaches the server unless CSRF checks stop it.
  const jpegB64 = readFileSync(SAMPLE).toString('base64');
  const uploadTarget = `${harness.url}/api/dashboard/upload`;
  const html = `<!doctype html><html><body>
    <form id="f" method="POST" action="${target}" enctype="text/plain" target="sink">
      <input name='{"reviewer":"attacker","class":"Benign","note":"x' value='"}'>
    </form>
    <iframe name="sink"></iframe>
    <script>
      fetch(${JSON.stringify(target)}, { method: 'POST', mode: 'no-cors', credentials: 'include',
        headers: { 'content-type': 'text/plain' },
        body: JSON.stringify({ reviewer: 'attacker', class: 'Benign', note: 'fetch' }) })
        .finally(() => {
          const bytes = Uint8Array.from(atob('${jpegB64}'), (c) => c.charCodeAt(0));
          const form = new FormData();
          form.append('file', new Blob([bytes], { type: 'image/jpeg' }), 'forged-upload.jpg');
          return fetch(${JSON.stringify(uploadTarget)}, { method: 'POST', mode: 'no-cors', credentials: 'include', body: form });
        })
        .finally(() => { document.getElementById('f').submit(); setTimeout(() => document.title = 'done', 800); });
    </script></body></html>`;
  evil = createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/html' }).end(html));
  await new Promise<void>((resolve) => evil.listen(0, '127.0.0.1', resolve));
  evilUrl = `http://127.0.0.1:${(evil.address() as AddressInfo).port}/`;
  browser = await launchBrowser();
});
t.teardown(async () => {
  await browser?.close();
  await new Promise((resolve) => evil?.close(resolve));
  await harness?.close();
});

t.test('login required; wrong password refused; right one opens the dashboard', async (t) => {
  const page = await browser.context.newPage();
  await page.goto(`${harness.url}/`);
  await page.waitForURL(/\/login$/);
  await page.fill('#login-user input[name="user"]', 'dr-lee');
  await page.fill('#login-user input[name="password"]', 'wrong-password');
  await page.click('#login-user button[type="submit"]');
  await page.waitForSelector('#login-error:not([hidden])');
  t.match(await page.textContent('#login-error'), /Wrong name, password or token/);
  await page.fill('#login-user input[name="password"]', 'microscope-42');
  await page.click('#login-user button[type="submit"]');
  await page.waitForSelector('body[data-ready="specimens"]');
  t.equal(await page.textContent('#user-name'), 'dr-lee');
  await page.click('.tabs a[data-view="feed"]');
  await page.waitForSelector('body[data-ready="feed"]');
  t.equal(await page.locator('#feed-list .card', { hasText: 'lan-target.jpg' }).count(), 1);
  await page.close();
});

t.test('a hostile page on another origin cannot post a review with the victim session', async (t) => {
  const page = await browser.context.newPage();
  await page.goto(evilUrl);
  await page.waitForFunction(() => document.title === 'done', undefined, { timeout: 15_000 });
  await page.waitForTimeout(300);
  const check = await browser.context.newPage();
  await check.goto(`${harness.url}/#/result/1`);
  await check.waitForSelector('body[data-ready="detail"]');
  t.equal(await check.locator('table.history tbody tr').count(), 0, 'no review was stored');
  const names = await check.evaluate(async () =>
    ((await (await fetch('/api/dashboard/results?limit=50')).json()) as { file: string }[]).map(
      (r) => r.file,
    ),
  );
  t.notOk(
    names.some((n) => n.includes('forged-upload')),
    'the forged upload reached no pipeline',
  );
  t.match(await check.textContent('#view-detail'), /No reviews yet/);
  // The same form from the dashboard itself works (the session is live).
  await check.selectOption('#review-class', { index: 0 });
  await check.click('#review-form button[value="save"]');
  await check.waitForSelector('table.history tbody tr');
  t.match(await check.textContent('table.history'), /dr-lee/, 'a named user signs the review');
  await check.close();
  await page.close();
});

t.test('logging out ends the session', async (t) => {
  // Another tab of the same browser holding a live feed: the browser's own EventSource, with the
  // session cookie, recording what it receives.
  const watcher = await browser.context.newPage();
  await watcher.goto(`${harness.url}/healthz`);
  await watcher.evaluate(
    () =>
      new Promise<void>((resolve) => {
        const source = new EventSource('/api/dashboard/events');
        const files: string[] = [];
        (globalThis as unknown as { probe: FeedProbe }).probe = { source, files };
        source.addEventListener('open', () => resolve());
        source.addEventListener('result', (e) => files.push((JSON.parse(e.data) as { file: string }).file));
      }),
  );
  const page = await browser.context.newPage();
  await page.goto(`${harness.url}/#/images`);
  await page.waitForSelector('body[data-ready="feed"]');
  if (harness.kind === 'daemon') {
    const ops = await page.evaluate(async () => (await fetch('/api/results?limit=1')).status);
    t.equal(ops, 200, "the ops API accepts the dashboard's session");
  }
  await page.click('#logout');
  await page.waitForURL(/\/login$/);
  const status = await page.evaluate(async () => (await fetch('/api/dashboard/results')).status);
  t.equal(status, 401);
  if (harness.kind === 'daemon') {
    const ops = await page.evaluate(async () => (await fetch('/api/results?limit=1')).status);
    t.equal(ops, 401, 'nor the ops API');
  }
  await harness.drop(sample('Early', 1), 'after-logout.jpg');
  await watcher.waitForTimeout(1000);
  const probe = await watcher.evaluate(() => {
    const { source, files } = (globalThis as unknown as { probe: FeedProbe }).probe;
    return { files, open: source.readyState === 1 };
  });
  t.notOk(probe.files.includes('after-logout.jpg'), 'the feed left open receives no result after logout');
  t.notOk(probe.open, 'the server ended it');
  await watcher.close();
  await page.close();
});
