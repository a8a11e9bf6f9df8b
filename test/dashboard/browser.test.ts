// The dashboard in a real headless Chromium against the real daemon (tiny model, temp folders):
// live arrival, overlay toggle, review queue, upload, phone layout, and a hostile file name.
import t from 'tap';
import type { Page } from 'playwright-core';
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
  querySelectorAll(
    selector: string,
  ): ArrayLike<{ textContent: string | null }> & Iterable<{ textContent: string | null }>;
  scrollingElement: { scrollWidth: number; clientWidth: number };
  title: string;
  images: ArrayLike<PageImage> & Iterable<PageImage>;
};

const XSS_NAME = '<img src=x onerror=alert(1)>.jpg';

let harness: DashboardHarness;
let browser: Awaited<ReturnType<typeof launchBrowser>>;
const dialogs: string[] = [];
const pageErrors: string[] = [];

t.before(async () => {
  harness = await startHarness();
  // Something in the feed and in the review queue before the page opens.
  await harness.drop(sample('Pro', 0), 'seed-pro-001.jpg');
  await harness.drop(sample('Pre', 0), 'seed-pre-001.jpg');
  await harness.drop(sample('Benign', 0), 'seed-benign-001.jpg');
  browser = await launchBrowser();
});
t.teardown(async () => {
  await browser?.close();
  await harness?.close();
});

async function open(page: Page, hash: string, view: string): Promise<void> {
  await page.evaluate(() => delete document.body.dataset.ready).catch(() => undefined);
  await page.goto(`${harness.url}/${hash}`);
  await page.waitForSelector(`body[data-ready="${view}"]`);
}

async function newPage(): Promise<Page> {
  const page = await browser.context.newPage();
  page.on('dialog', (d) => {
    dialogs.push(d.message());
    void d.dismiss();
  });
  page.on('pageerror', (e) => pageErrors.push(e.message));
  return page;
}

t.test('a new image appears live, and a hostile file name is shown as text', async (t) => {
  const page = await newPage();
  await open(page, '#/images', 'feed');
  await page.waitForSelector('#live-state.on');
  t.match(await page.textContent('.disclaimer'), /Screening aid — not a diagnosis/);
  const before = await page.locator('#feed-list .card').count();

  await harness.drop(sample('Pro', 1), 'live-arrival.jpg');
  const card = page.locator('#feed-list .card', { hasText: 'live-arrival.jpg' });
  await card.waitFor({ timeout: 20_000 });
  t.equal(await page.locator('#feed-list .card').count(), before + 1, 'one more card, without a reload');
  t.equal(
    await page.locator('#feed-list .card').first().locator('.file').textContent(),
    'live-arrival.jpg',
    'newest first',
  );
  t.match(await card.textContent(), /Chance of B-ALL: \d/, 'P(B-ALL) shown');
  t.equal(await card.locator('.bars li').count(), 4, 'a bar per class');

  await harness.drop(sample('Pre', 1), XSS_NAME);
  const xss = page.locator('#feed-list .card .file', { hasText: XSS_NAME });
  await xss.waitFor({ timeout: 20_000 });
  t.equal(await xss.textContent(), XSS_NAME, 'the name is visible as text');
  t.equal(await page.locator('img[src="x"]').count(), 0, 'no element was made from the name');
  // Open its detail page too: the name lands in a heading and the history there.
  await xss.click();
  await page.waitForSelector('body[data-ready="detail"]');
  t.equal(await page.textContent('#view-detail h1.file'), XSS_NAME);
  await page.waitForTimeout(300);
  t.same(dialogs, [], 'no script ran (no alert dialog)');
  await page.close();
});

t.test('the overlay toggles between original, mask and segmented', async (t) => {
  const page = await newPage();
  await open(page, '#/images', 'feed');
  const firstImg = page.locator('#feed-list .card .picture img').first();
  t.match(await firstImg.getAttribute('src'), /\/image\/thumbnail$/);
  await page.click('#feed-overlay button[data-kind="mask"]');
  t.match(await firstImg.getAttribute('src'), /\/image\/mask$/);
  await page.waitForFunction(() => {
    const img = document.querySelector('#feed-list .card .picture img');
    return img !== null && img.complete && img.naturalWidth > 0;
  });
  await page.click('#feed-overlay button[data-kind="segmented"]');
  t.match(await firstImg.getAttribute('src'), /\/image\/segmented$/);
  t.equal(await page.getAttribute('#feed-overlay button[data-kind="segmented"]', 'aria-pressed'), 'true');

  // Detail page: full-size original, then the segmented image.
  await firstImg.click();
  await page.waitForSelector('body[data-ready="detail"]');
  const big = page.locator('.big-picture img:not(.mask-layer)');
  t.match(await big.getAttribute('src'), /\/image\/original$/);
  await page.click('#detail-overlay button[data-kind="overlay"]');
  t.match(await big.getAttribute('src'), /\/image\/original$/);
  t.ok(
    await page.locator('.big-picture .mask-layer').isVisible(),
    'overlay: the mask lies over the original',
  );
  t.match(await page.getAttribute('.big-picture .mask-layer', 'src'), /\/image\/mask$/);
  await page.click('#detail-overlay button[data-kind="segmented"]');
  t.match(await big.getAttribute('src'), /\/image\/segmented$/);
  t.notOk(await page.locator('.big-picture .mask-layer').isVisible(), 'no overlay on the segmented view');
  await page.waitForFunction(() => {
    const img = document.querySelector('.big-picture img:not(.mask-layer)');
    return img !== null && img.complete && img.naturalWidth > 0 && img.src.endsWith('/segmented');
  });
  t.match(await page.textContent('#view-detail .facts'), /Model/);
  await page.close();
});

t.test('a review takes the image out of the queue and keeps its history', async (t) => {
  const page = await newPage();
  await open(page, '#/review', 'review');
  const cards = page.locator('#review-list .card');
  const before = await cards.count();
  t.ok(before >= 1, `queue has ${before} images`);
  const name = await cards.first().locator('.file').textContent();
  await cards.first().locator('.file').click();
  await page.waitForSelector('body[data-ready="detail"]');
  await page.fill('#review-form input[name="reviewer"]', 'Dr Test');
  await page.fill('#review-form textarea[name="note"]', 'lymphoblasts, fine chromatin');
  await page.click('#review-form button[value="confirm"]');
  await page.waitForSelector('table.history tbody tr');
  t.match(await page.textContent('table.history'), /Dr Test.*confirmed.*lymphoblasts, fine chromatin/s);
  await open(page, '#/review', 'review');
  t.equal(await cards.count(), before - 1, 'the queue shrank by one');
  t.equal(
    await page.locator('#review-list .card .file', { hasText: name ?? '' }).count(),
    0,
    'the reviewed image left it',
  );
  t.equal(await page.textContent('#queue-count'), before - 1 > 0 ? String(before - 1) : '');
  // The export holds the review.
  const exported = await page.evaluate(async () =>
    (await fetch('/api/dashboard/reviews/export?format=json')).json(),
  );
  t.ok(
    (exported as { reviewer: string; note: string }[]).some(
      (r) => r.reviewer === 'Dr Test' && r.note.includes('chromatin'),
    ),
  );
  await page.close();
});

t.test('an uploaded image goes through the pipeline and shows its result', async (t) => {
  const page = await newPage();
  await open(page, '#/upload', 'upload');
  t.equal(await page.getAttribute('#upload-camera', 'capture'), 'environment');
  t.equal(await page.getAttribute('#upload-camera', 'accept'), 'image/*');
  await page.setInputFiles('#upload-file', sample('Early', 1));
  const result = page.locator('#upload-list .card .verdict');
  await result.waitFor({ timeout: 30_000 });
  t.match(await page.textContent('#upload-list'), /WBC-Malignant-Early-324\.jpg/);
  t.match(await result.textContent(), /Most likely/);
  await page.close();
});

t.test('filters and search narrow the feed; the status panel shows the daemon', async (t) => {
  const page = await newPage();
  await open(page, '#/images', 'feed');
  await page.waitForSelector('#feed-list .card');
  await page.fill('#filters input[name="q"]', 'seed-');
  await page.waitForFunction(() => {
    const files = [...document.querySelectorAll('#feed-list .card .file')].map((e) => e.textContent ?? '');
    return files.length === 3 && files.every((f) => f.startsWith('seed-'));
  });
  t.pass('search by file name leaves the three seed images');
  await page.fill('#filters input[name="q"]', '');
  // The tiny model may flag every image: compare the cards with what the server answered.
  const answer = page.waitForResponse((r) => r.url().includes('/api/dashboard/results?flagged=1'));
  await page.check('#filters input[name="flagged"]');
  const flagged = (await (await answer).json()) as { file: string; pBall: number }[];
  await page.waitForFunction(
    (n) => document.querySelectorAll('#feed-list .card').length === n,
    flagged.length,
  );
  t.same(
    await page.locator('#feed-list .card .file').allTextContents(),
    flagged.map((r) => r.file),
    'the feed shows exactly the flagged results',
  );
  t.equal(
    await page.locator('#feed-list .card .badge', { hasText: 'Looks benign' }).count(),
    0,
    'no benign card',
  );
  t.equal(await page.locator('#feed-list .card .badge', { hasText: 'Could not be read' }).count(), 0);

  await open(page, '#/status', 'status');
  t.match(await page.textContent('#status-grid'), /tiny/);
  t.ok((await page.locator('#daily-chart svg rect').count()) >= 1, 'the day chart has bars');
  t.match(
    await page.locator('#daily-chart svg rect title').first().textContent(),
    /^\d{4}-\d{2}-\d{2}: \d+ \S/,
    'each bar says its day, count and what it counts',
  );
  const legend = await page.locator('#daily-chart .legend li').allTextContents();
  t.same(legend.slice(-2), ['Cannot screen', 'Unreadable'], 'the legend ends with the two non-results');
  t.equal(legend.length, 4 + 2, 'one legend entry per class, then the two');
  await page.close();
});

t.test('phone viewport: no horizontal scrolling', async (t) => {
  const phone = await browser.phone();
  t.teardown(() => phone.close());
  const page = await phone.newPage();
  for (const [hash, view] of [
    ['#/', 'specimens'],
    ['#/images', 'feed'],
    ['#/review', 'review'],
    ['#/upload', 'upload'],
    ['#/status', 'status'],
    ['#/result/1', 'detail'],
  ] as const) {
    await page.goto(`${harness.url}/${hash}`);
    await page.waitForSelector(`body[data-ready="${view}"]`);
    const [scrollWidth, clientWidth] = await page.evaluate(() => [
      document.scrollingElement.scrollWidth,
      document.scrollingElement.clientWidth,
    ]);
    t.ok(scrollWidth <= clientWidth, `${view}: scrollWidth ${scrollWidth} <= clientWidth ${clientWidth}`);
    await page.evaluate(() => delete document.body.dataset.ready);
  }
});

t.test('no script errors on any page', async (t) => {
  t.same(pageErrors, []);
});
