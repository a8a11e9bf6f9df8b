// The downloads of the dashboard in a real headless Chromium against the real daemon: the signed
// report (PDF) and the images (CSV) on the specimen page, "Export CSV" on the list. Each link is
// followed from inside the page, so the session cookie is the one the browser sends.
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import type { Page } from 'playwright-core';
import { launchBrowser } from './browser.js';
import { startDaemonHarness, type DashboardHarness } from './harness.js';
import { SAMPLES } from './memory-deps.js';

// Callbacks passed to page.evaluate run in the browser, not in Node (no DOM lib here).
declare const document: {
  body: { dataset: Record<string, string | undefined> };
  scrollingElement: { scrollWidth: number; clientWidth: number };
};

const SIGNED = 'H26-EXP-01';
const UNSIGNED = 'H26-EXP-02';

function smear(cls: string, i: number): string {
  const names = readdirSync(join(SAMPLES, cls))
    .filter((n) => n.endsWith('.jpg'))
    .sort();
  return join(SAMPLES, cls, names[i % names.length] as string);
}

interface Fetched {
  status: number;
  type: string | null;
  disposition: string | null;
  /** The first bytes as Latin-1 text (a PDF starts with "%PDF-"). */
  head: string;
  text: string;
}

/** GET `href` from inside the page: same origin, the page's session cookie. */
async function fetchInPage(page: Page, href: string): Promise<Fetched> {
  return page.evaluate(async (url) => {
    const res = await fetch(url, { credentials: 'same-origin' });
    const bytes = new Uint8Array(await res.arrayBuffer());
    return {
      status: res.status,
      type: res.headers.get('content-type'),
      disposition: res.headers.get('content-disposition'),
      head: String.fromCharCode(...bytes.slice(0, 8)),
      text: new TextDecoder().decode(bytes),
    };
  }, href);
}

/** A write of the specimen API from inside the page, with the session's CSRF token. */
async function postInPage(page: Page, path: string, body: object): Promise<{ id: number; status: string }> {
  return page.evaluate(
    async ([url, data]) => {
      const session = (await (await fetch('/api/dashboard/session')).json()) as { csrfToken: string };
      const res = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-csrf-token': session.csrfToken },
        body: JSON.stringify(data),
      });
      if (!res.ok) throw new Error(`${url}: HTTP ${res.status} ${await res.text()}`);
      return (await res.json()) as { id: number; status: string };
    },
    [path, body] as const,
  );
}

let harness: DashboardHarness;
let browser: Awaited<ReturnType<typeof launchBrowser>>;
const pageErrors: string[] = [];
let signedId = 0;
let unsignedId = 0;

t.before(async () => {
  harness = await startDaemonHarness();
  browser = await launchBrowser();
});
t.teardown(async () => {
  await browser?.close();
  await harness?.close();
});

async function newPage(): Promise<Page> {
  const page = await browser.context.newPage();
  page.on('pageerror', (e) => pageErrors.push(e.message));
  return page;
}

async function open(page: Page, hash: string, view: string): Promise<void> {
  await page.evaluate(() => delete document.body.dataset.ready).catch(() => undefined);
  await page.goto(`${harness.url}/${hash}`);
  await page.waitForSelector(`body[data-ready="${view}"]`);
}

t.test('two specimens: one to sign, one left open', async (t) => {
  const page = await newPage();
  await open(page, '#/', 'specimens');
  // A started specimen collects what is captured until it is finished.
  signedId = (await postInPage(page, '/api/specimens', { accession: SIGNED, reviewer: 'Dr Export' })).id;
  await harness.drop(smear('Pro', 0), 'exp-01.jpg');
  await harness.drop(smear('Benign', 0), 'exp-02.jpg');
  const finished = await postInPage(page, `/api/specimens/${signedId}/finish`, { reviewer: 'Dr Export' });
  t.equal(finished.status, 'awaiting_signoff');
  unsignedId = (await postInPage(page, '/api/specimens', { accession: UNSIGNED, reviewer: 'Dr Export' })).id;
  await harness.drop(smear('Pre', 0), 'exp-03.jpg');
  t.not(signedId, unsignedId);
  await page.close();
});

t.test('before the signature: no report link, the sentence instead; the images CSV', async (t) => {
  const page = await newPage();
  await open(page, `#/specimen/${unsignedId}`, 'specimen');
  t.equal(await page.locator('#report-pdf').count(), 0, 'no link to a report that does not exist');
  t.equal(await page.locator('a[href$="/report.pdf"]').count(), 0, 'no dead link anywhere on the page');
  t.match(
    await page.textContent('#report-pending'),
    /report \(PDF\) is available once the specimen is signed/,
  );
  t.equal(
    (await fetchInPage(page, `/api/specimens/${unsignedId}/report.pdf`)).status,
    409,
    'the server has no report yet either',
  );

  const csvLink = page.locator('#images-csv');
  t.equal(await csvLink.getAttribute('href'), `/api/specimens/${unsignedId}/images.csv`);
  t.equal(await csvLink.getAttribute('download'), '', 'a download link');
  t.ok(await csvLink.isVisible(), 'the images CSV link is visible');
  const csv = await fetchInPage(page, (await csvLink.getAttribute('href'))!);
  t.equal(csv.status, 200);
  t.match(csv.type, /^text\/csv\b/);
  const lines = csv.text.trimEnd().split('\r\n');
  t.match(lines[0], /^"specimen_id","accession","result_id","file",/, 'a header row');
  t.equal(lines.length, 2, 'the header and the one image');
  t.match(lines[1], new RegExp(`"${UNSIGNED}".*"exp-03\\.jpg"`), "the specimen's image");
  await page.close();
});

t.test('signing shows the report link of version 1, and it downloads a PDF', async (t) => {
  const page = await newPage();
  await open(page, `#/specimen/${signedId}`, 'specimen');
  t.equal(await page.locator('#report-pdf').count(), 0, 'not before the signature');
  await page.fill('#signer-name', 'Dr Export');
  await page.click('#sign-button');
  await page.click('#sign-confirm-yes');
  await page.waitForSelector('#signed-box');
  const link = page.locator('#report-pdf');
  await link.waitFor();
  t.equal(await page.locator('#report-pending').count(), 0, 'the sentence is gone');
  t.ok(await link.isVisible(), 'the report link is visible');
  t.equal((await link.textContent())?.trim(), 'Report v1 (PDF)', 'names the signed version');
  const href = await link.getAttribute('href');
  t.equal(href, `/api/specimens/${signedId}/report.pdf`);
  t.equal(await link.getAttribute('download'), '', 'a download link');

  const pdf = await fetchInPage(page, href!);
  t.equal(pdf.status, 200);
  t.equal(pdf.type, 'application/pdf');
  t.match(pdf.head, /^%PDF-/, 'the body is a PDF');
  t.match(pdf.disposition, new RegExp(`filename="blastwatch-${SIGNED}-v1\\.pdf"`));

  // Clicked, the browser downloads it itself, under the server's name.
  const [download] = await Promise.all([page.waitForEvent('download'), link.click()]);
  t.equal(download.suggestedFilename(), `blastwatch-${SIGNED}-v1.pdf`);
  t.equal(await download.failure(), null, 'the download completed');

  const images = await fetchInPage(page, (await page.getAttribute('#images-csv', 'href'))!);
  t.equal(images.status, 200);
  t.match(images.type, /^text\/csv\b/);
  t.equal(images.text.trimEnd().split('\r\n').length, 3, 'the header and the two images');
  await page.close();
});

t.test('after an amendment the link names version 2', async (t) => {
  const page = await newPage();
  await open(page, `#/specimen/${signedId}`, 'specimen');
  const before = (await page.evaluate(
    async (id) => (await fetch(`/api/specimens/${id}`)).json(),
    signedId,
  )) as { final_verdict: string };
  const changed = before.final_verdict === 'suspicious' ? 'insufficient' : 'suspicious';
  const amended = await postInPage(page, `/api/specimens/${signedId}/amend`, {
    verdict: changed,
    reason: 'Second look at the fields.',
    version: 1,
    reviewer: 'Dr Export',
  });
  t.equal(amended.status, 'amended');
  // Loaded afresh (the same address again is no navigation): what the next visit shows.
  await page.evaluate(() => delete document.body.dataset.ready);
  await page.reload();
  await page.waitForSelector('body[data-ready="specimen"]');
  t.equal((await page.textContent('#report-pdf'))?.trim(), 'Report v2 (PDF)');
  const pdf = await fetchInPage(page, (await page.getAttribute('#report-pdf', 'href'))!);
  t.equal(pdf.status, 200);
  t.match(pdf.head, /^%PDF-/);
  t.match(pdf.disposition, /-v2\.pdf"/, 'the report of the amended version');
  await page.close();
});

t.test('the list: Export CSV lists every specimen', async (t) => {
  const page = await newPage();
  await open(page, '#/', 'specimens');
  const link = page.locator('#specimens-csv');
  t.ok(await link.isVisible(), 'Export CSV is visible');
  t.equal((await link.textContent())?.trim(), 'Export CSV');
  t.equal(await link.getAttribute('href'), '/api/specimens.csv');
  t.equal(await link.getAttribute('download'), '', 'a download link');
  const csv = await fetchInPage(page, (await link.getAttribute('href'))!);
  t.equal(csv.status, 200);
  t.match(csv.type, /^text\/csv\b/);
  const lines = csv.text.trimEnd().split('\r\n');
  t.match(lines[0], /^"id","accession","status",/, 'a header row');
  t.ok(
    lines.some((l) => l.startsWith(`${signedId},"${SIGNED}","amended",`)),
    'the amended specimen',
  );
  t.ok(
    lines.some((l) => l.startsWith(`${unsignedId},"${UNSIGNED}","open",`)),
    'the open specimen',
  );
  await page.close();
});

t.test('on a phone the downloads fit: no sideways scrolling, links visible', async (t) => {
  const phone = await browser.phone();
  t.teardown(() => phone.close());
  const page = await phone.newPage();
  page.on('pageerror', (e) => pageErrors.push(e.message));
  for (const [hash, view, link] of [
    ['#/', 'specimens', '#specimens-csv'],
    [`#/specimen/${signedId}`, 'specimen', '#report-pdf'],
    [`#/specimen/${unsignedId}`, 'specimen', '#images-csv'],
  ] as const) {
    await open(page, hash, view);
    t.ok(await page.locator(link).isVisible(), `${hash}: ${link} is visible`);
    const [scrollWidth, clientWidth] = await page.evaluate(() => [
      document.scrollingElement.scrollWidth,
      document.scrollingElement.clientWidth,
    ]);
    t.ok(scrollWidth <= clientWidth, `${hash}: scrollWidth ${scrollWidth} <= clientWidth ${clientWidth}`);
  }
});

t.test('no script errors on any page', async (t) => {
  t.same(pageErrors, []);
});
