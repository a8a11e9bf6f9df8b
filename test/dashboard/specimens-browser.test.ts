// The specimen workflow in a real headless Chromium against the real daemon (tiny model, real
// SQLite, real smear images dropped into the capture folder): start a session, capture, review
// with the keyboard, sign, lose a sign-off race, amend; the list and the phone layout.
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import type { Page } from 'playwright-core';
import { launchBrowser } from './browser.js';
import { startDaemonHarness, type DashboardHarness } from './harness.js';
import { SAMPLES as COMMITTED_SAMPLES } from './memory-deps.js';

// Callbacks passed to page.evaluate/waitForFunction run in the browser, not in Node: minimal
// typings for the few DOM members they touch (the project compiles without the DOM lib).
declare const document: {
  body: { dataset: Record<string, string | undefined> };
  querySelector(selector: string): { textContent: string | null; open?: boolean } | null;
  scrollingElement: { scrollWidth: number; clientWidth: number };
};

/** The whole data set when it is there (the shared data folder), else the committed samples. */
const SHARED_SAMPLES = fileURLToPath(new URL('../../../shared/data/all-smears', import.meta.url));
const SAMPLES =
  process.env.BLASTWATCH_SAMPLES ?? (existsSync(SHARED_SAMPLES) ? SHARED_SAMPLES : COMMITTED_SAMPLES);
function smear(cls: string, i: number): string {
  const names = readdirSync(join(SAMPLES, cls))
    .filter((n) => n.endsWith('.jpg'))
    .sort();
  return join(SAMPLES, cls, names[i % names.length] as string);
}

const ACCESSION = 'H26-00042';
const FIELDS: [cls: string, index: number][] = [
  ['Pro', 0],
  ['Pro', 1],
  ['Pre', 0],
  ['Early', 0],
  ['Benign', 0],
  ['Benign', 1],
];

interface SpecimenJson {
  id: number;
  accession: string;
  status: string;
  suggested_verdict: string;
  final_verdict: string | null;
  counts: { images: number; screened: number; out_of_domain: number; failed: number; flagged: number };
  flagged_share: { value: number; low: number; high: number } | null;
  images?: { id: number; file: string; class: string | null; p_ball: number | null; status: string }[];
}

/** A share as the page writes it: one decimal, all of them exactly 100 %. */
function shareText(v: number): string {
  if (v === 1) return '100 %';
  if (v >= 0.9995) return '>99.9 %';
  if (v > 0 && v < 0.0005) return '<0.1 %';
  return `${(v * 100).toFixed(1)} %`;
}

let harness: DashboardHarness;
let browser: Awaited<ReturnType<typeof launchBrowser>>;
let scratch: string;
const pageErrors: string[] = [];

t.before(async () => {
  harness = await startDaemonHarness();
  browser = await launchBrowser();
  scratch = mkdtempSync(join(tmpdir(), 'bw-specimen-ui-'));
});
t.teardown(async () => {
  await browser?.close();
  await harness?.close();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
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

async function specimenJson(page: Page, id: number): Promise<SpecimenJson> {
  return (await page.evaluate(
    async (sid) => (await fetch(`/api/specimens/${sid}`)).json(),
    id,
  )) as SpecimenJson;
}

async function specimenByAccession(page: Page, accession: string): Promise<SpecimenJson | undefined> {
  const list = (await page.evaluate(async () => (await fetch('/api/specimens')).json())) as SpecimenJson[];
  return list.find((s) => s.accession === accession);
}

/** Keys go to the page, not to a form field that happens to hold the focus. */
async function press(page: Page, ...keys: string[]): Promise<void> {
  await page.evaluate(() =>
    (document as unknown as { activeElement: { blur(): void } }).activeElement.blur(),
  );
  for (const key of keys) await page.keyboard.press(key);
}

let specimenId = 0;

t.test('a session collects the captured images, live, and Finish closes it', async (t) => {
  const page = await newPage();
  await open(page, '#/', 'specimens');
  t.match(await page.textContent('.disclaimer'), /Screening aid — not a diagnosis/);
  // No named account on loopback: the person types her name once (the browser remembers it).
  await page.fill('#actor-name', 'Dr Keys');
  await page.fill('#start-specimen input[name="accession"]', ACCESSION);
  await page.click('#start-specimen button[type="submit"]');
  const row = page.locator('#specimen-list tr', { hasText: ACCESSION });
  await row.waitFor();
  t.match(await row.textContent(), /Open/, 'the new specimen is open');
  const created = await specimenByAccession(page, ACCESSION);
  t.ok(created, 'the API knows the specimen');
  specimenId = created!.id;

  // The microscope writes the fields into the capture folder; a damaged file comes with them.
  for (const [i, [cls, n]] of FIELDS.entries()) {
    await harness.drop(smear(cls, n), `field-${String(i + 1).padStart(2, '0')}.jpg`);
  }
  const junk = join(scratch, 'not-an-image.jpg');
  writeFileSync(junk, 'this is no picture at all, just text that ends up in the capture folder\n');
  await harness.drop(junk, 'field-07.jpg');
  await page.waitForFunction(
    (acc) => {
      const r = [
        ...(
          document as unknown as { querySelectorAll(s: string): Iterable<{ textContent: string }> }
        ).querySelectorAll('#specimen-list tr'),
      ].find((x) => x.textContent.includes(acc));
      return r !== undefined && r.textContent.includes('7 images');
    },
    ACCESSION,
    { timeout: 20_000 },
  );
  t.pass('the row counts the seven images without a reload');

  await row.locator('button.finish').click();
  await page.waitForFunction(
    (acc) =>
      [
        ...(
          document as unknown as { querySelectorAll(s: string): Iterable<{ textContent: string }> }
        ).querySelectorAll('#specimen-list tr'),
      ].some((x) => x.textContent.includes(acc) && x.textContent.includes('Awaiting sign-off')),
    ACCESSION,
  );
  const finished = await specimenJson(page, specimenId);
  t.equal(finished.status, 'awaiting_signoff');
  t.equal(finished.counts.images, 7);
  t.equal(finished.counts.failed + finished.counts.out_of_domain, 1, 'the text file cannot be screened');

  // A field captured after Finish no longer joins the specimen.
  await harness.drop(smear('Pre', 1), 'after-finish.jpg');
  t.equal((await specimenJson(page, specimenId)).counts.images, 7);
  await page.close();
});

t.test('the specimen page shows counts, the rule and the gallery by class', async (t) => {
  const page = await newPage();
  await open(page, '#/', 'specimens');
  await page.click(`#specimen-list a.accession:text("${ACCESSION}")`);
  await page.waitForSelector('body[data-ready="specimen"]');
  const api = await specimenJson(page, specimenId);
  t.equal(await page.textContent('#specimen-accession'), ACCESSION);
  t.equal(await page.textContent('#count-images'), String(api.counts.images));
  t.equal(await page.textContent('#count-screened'), String(api.counts.screened));
  t.equal(await page.textContent('#count-flagged'), String(api.counts.flagged));
  const share = api.flagged_share!;
  t.equal(
    await page.textContent('#flagged-share'),
    `${shareText(share.value)} (95 % CI ${shareText(share.low)} – ${shareText(share.high)})`,
    "the API's flagged share and its Wilson interval",
  );
  const words: Record<string, RegExp> = {
    suspicious: /Suspicious/,
    insufficient: /Insufficient/,
    no_suspicious_cells: /No suspicious cells found/,
  };
  t.match(await page.textContent('#suggestion'), words[api.suggested_verdict]!, 'the suggestion in words');
  t.match(
    await page.textContent('#verdict-rule'),
    /Rule: .*suspicious.*insufficient.*no suspicious cells found/is,
  );
  const text = (await page.textContent('#view-specimen')) ?? '';
  t.notMatch(text, /\bnegative\b|\bnormal\b/i, 'never "negative" or "normal"');

  // The gallery: one group per predicted class, P(B-ALL) descending inside each, then the
  // images that cannot be screened apart.
  const screened = (api.images ?? []).filter((i) => i.status === 'done');
  const classes = new Set(screened.map((i) => i.class));
  t.equal(await page.locator('#gallery h3.group-head:not(.cannot)').count(), classes.size);
  for (const group of await page.locator('#gallery .tiles').all()) {
    const shown = await group.locator('.tile-p').allTextContents();
    if (shown.every((s) => s === 'Cannot screen')) continue;
    const values = shown.map((s) => Number.parseFloat(s.replace('>', '').replace('<', '')));
    t.same(
      values,
      [...values].sort((a, b) => b - a),
      'sorted by P(B-ALL) within the class',
    );
  }
  t.match(await page.textContent('#gallery h3.group-head.cannot'), /Cannot screen \(1\)/);
  t.equal(await page.locator('#gallery .tile').count(), 7);
  await page.close();
});

t.test('keyboard review: move, choose a class, mark reviewed, help', async (t) => {
  const page = await newPage();
  await open(page, `#/specimen/${specimenId}`, 'specimen');
  await page.fill('#signer-name', 'Dr Keys');
  t.match(await page.textContent('#inspector-position'), /Image 1 of 7/);
  await press(page, 'j', 'j', 'k');
  t.match(await page.textContent('#inspector-position'), /Image 2 of 7/, 'j twice, k once');
  await press(page, 'ArrowRight', 'ArrowLeft');
  t.match(await page.textContent('#inspector-position'), /Image 2 of 7/, 'arrows too');
  const firstId = Number(await page.getAttribute('#gallery .tile.current', 'data-id'));

  const classNames = await page
    .locator('#inspector .class-choice button')
    .evaluateAll((bs) => bs.map((b) => (b as unknown as { dataset: { class: string } }).dataset.class));
  t.equal(classNames.length, 4, 'one button per class');
  await press(page, '1');
  t.equal(
    await page.getAttribute(`#inspector .class-choice button[data-class="${classNames[0]}"]`, 'aria-pressed'),
    'true',
    '1 chooses the first class',
  );
  await press(page, 'r');
  await page.waitForSelector('#inspector-position:text("Image 3 of 7")');
  t.ok(
    await page.locator(`#gallery .tile.reviewed[data-id="${firstId}"]`).count(),
    'the tile shows the review',
  );
  const reviewed = (await page.evaluate(
    async (id) => (await fetch(`/api/dashboard/results/${id}`)).json(),
    firstId,
  )) as { review: { class: string; reviewer: string } | null };
  t.same(
    { class: reviewed.review?.class, reviewer: reviewed.review?.reviewer },
    { class: classNames[0], reviewer: 'Dr Keys' },
    'stored through the review API with the chosen class',
  );

  // r alone confirms the model's class.
  const secondId = Number(await page.getAttribute('#gallery .tile.current', 'data-id'));
  await press(page, 'r');
  await page.waitForSelector('#inspector-position:text("Image 4 of 7")');
  const second = (await page.evaluate(
    async (id) => (await fetch(`/api/dashboard/results/${id}`)).json(),
    secondId,
  )) as { class: string; review: { class: string } | null };
  t.equal(second.review?.class, second.class, "r confirms the model's class");

  await press(page, '?');
  t.ok(await page.locator('#shortcut-help').isVisible(), '? shows the shortcuts');
  t.match(await page.textContent('#shortcut-help'), /next image.*previous image.*sign/s);
  await page.keyboard.press('Escape');
  t.notOk(await page.locator('#shortcut-help').isVisible(), 'Esc closes them');
  await page.close();
});

t.test('sign with the keyboard; a second reviewer who signs late is told', async (t) => {
  // The late reviewer's page was opened before the signature and has no live feed (a stalled
  // phone): it still shows the sign form.
  const late = await browser.browser.newContext({ viewport: { width: 1280, height: 900 } });
  t.teardown(() => late.close());
  await late.route('**/api/dashboard/events', (route) => route.abort());
  const latePage = await late.newPage();
  latePage.on('pageerror', (e) => pageErrors.push(e.message));
  await latePage.goto(`${harness.url}/#/specimen/${specimenId}`);
  await latePage.waitForSelector('body[data-ready="specimen"]');
  await latePage.fill('#signer-name', 'Dr Late');

  const page = await newPage();
  await open(page, `#/specimen/${specimenId}`, 'specimen');
  const suggested = (await specimenJson(page, specimenId)).suggested_verdict;
  t.equal(
    await page.getAttribute(`#signoff-form input[name="verdict"][value="${suggested}"]`, 'checked'),
    '',
    'the verdict defaults to the suggestion',
  );
  await page.fill('#signer-name', 'Dr Keys');
  await page.fill('#signoff-form textarea[name="comment"]', 'Fields reviewed one by one.');
  await press(page, 's');
  await page.waitForSelector('#sign-confirm[open]');
  t.match(await page.textContent('#sign-confirm-text'), new RegExp(`${ACCESSION}.*Dr Keys`));
  await page.click('#sign-confirm-yes');
  await page.waitForSelector('#signed-box');
  t.match(await page.textContent('#signed-box'), /Signed by Dr Keys/);
  t.match(await page.textContent('#signed-box'), /Fields reviewed one by one/);
  t.equal(await page.locator('#signoff-form').count(), 0, 'locked: no sign form any more');
  t.match(await page.textContent('.specimen-head'), /Signed/);
  t.equal(await page.locator('#versions tbody tr').count(), 1);
  t.match(await page.textContent('#audit'), /signed/);
  const signed = await specimenJson(page, specimenId);
  t.equal(signed.status, 'signed');
  t.equal(signed.final_verdict, suggested);

  // The late reviewer overrides the verdict and signs: refused, told who won, nothing lost.
  const other = ['suspicious', 'insufficient', 'no_suspicious_cells'].find((v) => v !== suggested)!;
  await latePage.check(`#signoff-form input[name="verdict"][value="${other}"]`);
  await latePage.click('#sign-button');
  await latePage.click('#sign-confirm-yes');
  await latePage.waitForSelector('#signoff-conflict');
  t.match(await latePage.textContent('#signoff-conflict'), /Someone else signed this specimen first/);
  t.match(await latePage.textContent('#signed-box'), /Dr Keys/, "the winner's sign-off is shown");
  t.match(await latePage.textContent('#audit'), /sign refused/, 'the refused attempt is in the audit trail');
  const after = await specimenJson(page, specimenId);
  t.equal(after.final_verdict, suggested, 'the first signature stands');
  await page.close();
});

t.test('an amendment needs a reason and becomes a new version', async (t) => {
  const page = await newPage();
  await open(page, `#/specimen/${specimenId}`, 'specimen');
  const before = await specimenJson(page, specimenId);
  const changed = before.final_verdict === 'suspicious' ? 'insufficient' : 'suspicious';
  await page.click('#amend-button');
  await page.check(`#amend-form input[name="verdict"][value="${changed}"]`);
  await page.click('#amend-sign');
  t.notOk(await page.locator('#sign-confirm').isVisible(), 'no reason: not even asked to confirm');
  await page.fill('#amend-form textarea[name="reason"]', 'Second look at field 3: blasts after all.');
  await page.click('#amend-sign');
  await page.click('#sign-confirm-yes');
  await page.waitForSelector('.specimen-head .badge.status-amended');
  t.equal(await page.locator('#versions tbody tr').count(), 2, 'two versions');
  t.match(await page.textContent('#versions'), /Second look at field 3/);
  t.match(await page.textContent('#signed-box'), /Amendment 1, signed by Dr Keys/);
  t.match(await page.textContent('#audit'), /amended/);
  const after = await specimenJson(page, specimenId);
  t.equal(after.status, 'amended');
  t.equal(after.final_verdict, changed);

  await open(page, '#/specimens/signed', 'specimens');
  const row = page.locator('#specimen-list tr', { hasText: ACCESSION });
  t.match(await row.textContent(), /Amended/);
  t.match(await row.textContent(), /Signed: /, 'the list shows the final verdict');
  await page.close();
});

t.test('on a phone: an upload with an accession number, and no sideways scrolling', async (t) => {
  const phone = await browser.phone();
  t.teardown(() => phone.close());
  const page = await phone.newPage();
  page.on('pageerror', (e) => pageErrors.push(e.message));
  await page.goto(`${harness.url}/#/upload`);
  await page.waitForSelector('body[data-ready="upload"]');
  await page.fill('#upload-accession', 'H26-00077');
  await page.setInputFiles('#upload-file', smear('Pre', 2));
  await page.locator('#upload-list .card .verdict').waitFor({ timeout: 30_000 });
  const uploaded = await specimenByAccession(page, 'H26-00077');
  t.equal(uploaded?.counts.images, 1, 'the upload made and joined its specimen');

  for (const [hash, view] of [
    ['#/', 'specimens'],
    ['#/specimens/unassigned', 'specimens'],
    [`#/specimen/${specimenId}`, 'specimen'],
  ] as const) {
    await page.evaluate(() => delete document.body.dataset.ready);
    await page.goto(`${harness.url}/${hash}`);
    await page.waitForSelector(`body[data-ready="${view}"]`);
    const [scrollWidth, clientWidth] = await page.evaluate(() => [
      document.scrollingElement.scrollWidth,
      document.scrollingElement.clientWidth,
    ]);
    t.ok(scrollWidth <= clientWidth, `${hash}: scrollWidth ${scrollWidth} <= clientWidth ${clientWidth}`);
  }
});

t.test('unassigned images can be given to a specimen', async (t) => {
  // "after-finish.jpg" arrived with no session running and no sub-folder.
  const page = await newPage();
  await open(page, '#/specimens/unassigned', 'specimens');
  const pick = page.locator('#unassigned-list .pick', { hasText: 'after-finish.jpg' });
  await pick.waitFor();
  await page.fill('#start-specimen input[name="accession"]', 'H26-00099');
  await page.click('#start-specimen button[type="submit"]');
  await page.waitForFunction(() =>
    [
      ...(
        document as unknown as { querySelectorAll(s: string): Iterable<{ textContent: string }> }
      ).querySelectorAll('#assign-target option'),
    ].some((o) => o.textContent.includes('H26-00099')),
  );
  const target = await specimenByAccession(page, 'H26-00099');
  await page.selectOption('#assign-target', String(target!.id));
  await pick.locator('input[type="checkbox"]').check();
  await page.click('#assign-form button[type="submit"]');
  await page
    .locator('#unassigned-list .pick', { hasText: 'after-finish.jpg' })
    .waitFor({ state: 'detached' });
  const after = await specimenJson(page, target!.id);
  t.ok(
    (after.images ?? []).some((i) => i.file.endsWith('after-finish.jpg')),
    'the image now belongs to the specimen',
  );
  await page.close();
});

t.test('no script errors on any page', async (t) => {
  t.same(pageErrors, []);
});
