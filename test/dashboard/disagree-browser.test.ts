// A blast the bundled model calls benign against its own features, in a real headless Chromium
// against the real daemon: the gate withholds the call, so the card says "Cannot screen" with the
// reason in words and no verdict, and the API records the reason and the margin; a benign field
// whose features agree is screened as usual. The withheld field waits in the review queue, and a
// reviewer records the class she sees. Read as a B-ALL class, the reading is named at sign-off
// and travels in the signed report.
import { join } from 'node:path';
import t from 'tap';
import type { Page } from 'playwright-core';
import { repoRoot } from '../daemon/helpers.js';
import { pdfText } from '../lis/pdf-text.js';
import { launchBrowser, pageWithErrors, startSessionInPage } from './browser.js';
import { startDaemonHarness } from './harness.js';
import { sample } from './memory-deps.js';

const DISAGREE = join(repoRoot, 'test/fixtures/disagree/WBC-Malignant-Pre-153.jpg');

t.test('a benign call its features contradict is withheld, in the API and on the dashboard', async (t) => {
  const harness = await startDaemonHarness({ modelDir: join(repoRoot, 'models') });
  t.teardown(() => harness.close());
  await harness.drop(sample('Benign', 0), 'benign.jpg');
  await harness.drop(DISAGREE, 'pre-153.jpg');

  const results = (await (await fetch(`${harness.url}/api/results?limit=10`)).json()) as {
    file: string;
    status: string;
    flag: boolean | null;
    domain: { in: boolean; reasons: string[]; reasons_text: string[]; scores: Record<string, number> } | null;
  }[];
  const withheld = results.find((r) => r.file === 'pre-153.jpg');
  t.match(withheld, {
    status: 'out_of_domain',
    flag: null,
    domain: { in: false, reasons: ['features_disagree'] },
  });
  t.ok((withheld?.domain?.scores.featureMargin ?? 0) > 0, 'its features lie nearer a B-ALL class');
  const benign = results.find((r) => r.file === 'benign.jpg');
  t.match(
    benign,
    { status: 'done', flag: false, domain: { in: true } },
    'an agreeing benign call is screened',
  );
  t.ok((benign?.domain?.scores.featureMargin ?? 0) < 0, 'its features lie nearer the benign class');

  const browser = await launchBrowser();
  t.teardown(() => browser.close());
  const page: Page = await browser.context.newPage();
  const pageErrors: string[] = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  await page.goto(`${harness.url}/#/images`);
  await page.waitForSelector('body[data-ready="feed"]');
  const card = page.locator('#feed-list .card', { hasText: 'pre-153.jpg' });
  await card.waitFor();
  const text = (await card.textContent()) ?? '';
  t.match(text, 'Cannot screen');
  t.match(text, 'the model calls it benign, yet its view of the cells lies nearer a B-ALL class');
  t.notMatch(text, /Chance of B-ALL|Looks benign|Possible B-ALL/, 'no verdict of any kind');

  // Its reason asks a person to look, so it waits in the review queue, where a reviewer records
  // the class she sees: there is no model class to confirm, so none is chosen for her.
  await page.goto(`${harness.url}/#/review`);
  await page.waitForSelector('body[data-ready="review"]');
  const queued = page.locator('#review-list .card', { hasText: 'pre-153.jpg' });
  await queued.waitFor();
  t.match((await queued.textContent()) ?? '', 'Cannot screen', 'queued without a verdict');
  await queued.locator('.file').click();
  await page.waitForSelector('body[data-ready="detail"]');
  t.match(await page.textContent('#review-form h2'), 'Your reading');
  t.equal(await page.inputValue('#review-class'), '', 'no class chosen for the reviewer');
  t.equal(await page.locator('#review-form button[value="confirm"]').count(), 0, 'nothing to confirm');
  await page.fill('#review-form input[name="reviewer"]', 'Dr Test');
  await page.click('#review-form button[value="save"]');
  t.ok(
    await page.$eval(
      '#review-class',
      (el) => (el as unknown as { validity: { valueMissing: boolean } }).validity.valueMissing,
    ),
    'saving without a class is refused by the form',
  );
  t.match(await page.textContent('#view-detail .review-block'), 'No reviews yet.');
  await page.selectOption('#review-class', 'Pre-B');
  await page.fill('#review-form textarea[name="note"]', 'blasts, fine chromatin');
  await page.click('#review-form button[value="save"]');
  await page.waitForSelector('table.history tbody tr');
  t.match(
    await page.textContent('table.history'),
    /Dr Test.*own reading \(no model verdict\).*blasts, fine chromatin/s,
  );
  t.match(await page.textContent('#view-detail .detail-info'), 'Cannot screen', 'still no verdict');
  const queue = (await (await fetch(`${harness.url}/api/dashboard/review-queue`)).json()) as {
    file: string;
  }[];
  t.notOk(
    queue.some((r) => r.file === 'pre-153.jpg'),
    'reviewed: out of the queue',
  );
  const exported = (await (
    await fetch(`${harness.url}/api/dashboard/reviews/export?format=json`)
  ).json()) as {
    file: string;
    modelClass: string | null;
    reviewedClass: string;
  }[];
  t.match(exported, [{ file: 'pre-153.jpg', modelClass: null, reviewedClass: 'Pre-B' }]);
  t.same(pageErrors, [], 'no script errors');
});

t.test('keyboard review on the specimen page: a withheld field needs a class chosen', async (t) => {
  const harness = await startDaemonHarness({ modelDir: join(repoRoot, 'models') });
  t.teardown(() => harness.close());
  const browser = await launchBrowser();
  t.teardown(() => browser.close());
  const { page, errors: pageErrors } = await pageWithErrors(browser);
  await startSessionInPage(page, harness.url, 'H26-00153', 'Dr Keys');
  // A second tab on the specimens list, kept current by the live feed while the fields land and
  // while the other tab reads them.
  const { page: listPage, errors: listErrors } = await pageWithErrors(browser);
  await listPage.goto(`${harness.url}/#/`);
  await listPage.waitForSelector('body[data-ready="specimens"]');
  await harness.drop(sample('Benign', 0), 'field-01.jpg');
  await harness.drop(DISAGREE, 'field-02.jpg');
  const list = (await (await fetch(`${harness.url}/api/specimens`)).json()) as {
    id: number;
    accession: string;
    unread_withheld: number;
  }[];
  const specimen = list.find((s) => s.accession === 'H26-00153');
  t.ok(specimen, 'the session made the specimen');
  t.equal(specimen?.unread_withheld, 1, 'the API counts the withheld field nobody has read');

  // The list says which specimen still has a field waiting for a person, and filters them.
  const toRead = listPage.locator(`#specimen-list tr[data-id="${specimen!.id}"] .badge.to-read`);
  await toRead.waitFor();
  t.equal(await toRead.textContent(), '1 field to read', 'the badge appeared live, as the field landed');
  t.match(
    await toRead.getAttribute('title'),
    /^Withheld by the model: it could not screen .* before signing\.$/,
  );
  const toReadTab = listPage.locator('#specimen-filter a[data-filter="unread"]');
  t.equal(await toReadTab.locator('.count').textContent(), '1');
  await toReadTab.click();
  await listPage.waitForSelector('#specimen-filter a[data-filter="unread"][aria-current="page"]');
  t.same(
    await listPage
      .locator('#specimen-list tbody tr')
      .evaluateAll((rows) => rows.map((r) => (r as unknown as { dataset: { id: string } }).dataset.id)),
    [String(specimen!.id)],
    'the "To read" filter lists it',
  );
  await listPage.locator('#specimen-filter a[data-filter="all"]').click();
  await listPage.waitForSelector('#specimen-filter a[data-filter="all"][aria-current="page"]');
  await toRead.waitFor();

  await page.goto(`${harness.url}/#/specimen/${specimen!.id}`);
  await page.waitForSelector('body[data-ready="specimen"]');
  await page.waitForSelector('#inspector-position:text("Image 1 of 2")');
  // The same specimen open in a third tab, whose notice must follow a reading taken elsewhere.
  const { page: otherPage, errors: otherErrors } = await pageWithErrors(browser);
  await otherPage.goto(`${harness.url}/#/specimen/${specimen!.id}`);
  await otherPage.waitForSelector('body[data-ready="specimen"]');
  const otherUnread = otherPage.locator('#unread-withheld');
  await otherUnread.waitFor();
  t.ok(await otherUnread.isVisible(), 'the other tab warns too');
  // Keys go to the page, not to a field that happens to hold the focus.
  await page.evaluate(() =>
    (
      globalThis as unknown as { document: { activeElement: { blur(): void } | null } }
    ).document.activeElement?.blur(),
  );
  await page.keyboard.press('j');
  await page.waitForSelector('#inspector-position:text("Image 2 of 2")');
  t.match(await page.textContent('#inspector'), 'Cannot screen', 'the withheld field, without a verdict');
  const withheldId = Number(await page.getAttribute('#gallery .tile.current', 'data-id'));
  const reviewOf = async () =>
    (await (await fetch(`${harness.url}/api/dashboard/results/${withheldId}`)).json()) as {
      status: string;
      review: { class: string; reviewer: string } | null;
    };

  // The specimen's counts leave the withheld field out, so the sign-off says it has not been read,
  // and so does the confirmation before a signature.
  const unread = page.locator('#unread-withheld');
  t.ok(await unread.isVisible(), 'the sign-off form warns');
  t.notOk(await page.locator('#count-read').isVisible(), 'nothing read yet: no line of readings');
  t.match(await unread.textContent(), /^1 field was withheld as a benign call .* nobody has read it yet/);
  await page.keyboard.press('s');
  await page.waitForSelector('#sign-confirm[open]');
  t.match(await page.textContent('#sign-confirm-text'), /^1 field was withheld .* H26-00153: /);
  await page.keyboard.press('Escape');
  await page.waitForSelector('#sign-confirm', { state: 'hidden' });

  // r alone has no model class to confirm: it is refused, and nothing is stored.
  await page.keyboard.press('r');
  await page.waitForSelector('#toast:text("choose the class you see")');
  t.match(await reviewOf(), { status: 'out_of_domain', review: null }, 'no review without a class');

  await page.keyboard.press('3');
  t.equal(
    await page.getAttribute('#inspector .class-choice button[data-class="Pre-B"]', 'aria-pressed'),
    'true',
  );
  await page.keyboard.press('r');
  await page.waitForSelector('#inspector-review:text("Reviewed as")');
  t.match(await reviewOf(), { status: 'out_of_domain', review: { class: 'Pre-B', reviewer: 'Dr Keys' } });
  t.ok(await page.locator(`#gallery .tile.reviewed[data-id="${withheldId}"]`).count(), 'the tile shows it');
  t.notOk(await unread.isVisible(), 'read: the sign-off no longer warns');
  await toRead.waitFor({ state: 'detached' });
  t.pass('read in the other tab: the badge left the list, live');
  t.equal(await toReadTab.locator('.count').textContent(), '', 'and the "To read" tab counts none');
  await otherUnread.waitFor({ state: 'hidden' });
  t.pass('the specimen open in the other tab no longer warns, live');
  t.equal(
    await otherPage.textContent('#count-read'),
    'Read by a person where the model gave no verdict — Pre-B: 1',
    'and names the reading there too',
  );
  // One tab from here on: a modal dialog belongs to the tab in front.
  await listPage.close();
  await otherPage.close();
  const specimenJson = (await (await fetch(`${harness.url}/api/specimens/${specimen!.id}`)).json()) as {
    status: string;
  };
  t.equal(specimenJson.status, 'open', 'nothing was signed by the cancelled confirmation');

  t.equal(
    await page.textContent('#count-read'),
    'Read by a person where the model gave no verdict — Pre-B: 1',
    'the counts name the reading beside them',
  );

  // Read as a B-ALL class: the counts still leave the field out, so the sign-off says so, and a
  // verdict other than "Suspicious" is questioned before it is signed.
  const readAsBall = page.locator('#read-as-ball');
  t.ok(await readAsBall.isVisible(), 'the sign-off form names the B-ALL reading');
  t.match(
    await readAsBall.textContent(),
    /^1 field the model could not screen was read as a B-ALL class \(Pre-B 1\)\. The counts/,
  );
  t.equal(
    await page.getAttribute('#signoff-form input[name="verdict"]:checked', 'value'),
    'insufficient',
    'one screened image: the rule suggests insufficient',
  );
  await page.keyboard.press('s');
  await page.waitForSelector('#sign-confirm[open]');
  t.match(
    await page.textContent('#sign-confirm-text'),
    /^1 field the model could not screen was read as a B-ALL class \(Pre-B 1\), and the verdict is not "Suspicious"\. H26-00153: /,
  );
  // A close event of the earlier, cancelled confirmation that arrives only now must not answer this
  // one: the reviewer's "Sign" below still signs.
  await page.evaluate(() =>
    (
      globalThis as unknown as {
        document: { getElementById(id: string): { dispatchEvent(e: unknown): boolean } };
      }
    ).document
      .getElementById('sign-confirm')
      .dispatchEvent(new Event('close')),
  );
  await page.click('#sign-confirm-yes');
  // The panel redrawn as signed: the signature was stored and the page read it back.
  await page.waitForSelector(`#signoff-panel[data-key="${specimen!.id}:signed:1"]`);

  // The signed report sends the reading to the laboratory.
  const pdf = await fetch(`${harness.url}/api/specimens/${specimen!.id}/report.pdf`);
  t.equal(pdf.status, 200);
  const { text } = await pdfText(Buffer.from(await pdf.arrayBuffer()));
  t.match(text, /Out of the model domain 1/);
  t.match(text, /Out of domain, read as Pre-B 1/);
  t.match(text, /Withheld benign calls not read 0/);
  t.match(text, /field-02\.jpg\s*read as Pre-B by Dr Keys/, "the field's picture, with who read it");
  t.same([...pageErrors, ...listErrors, ...otherErrors], [], 'no script errors');
});
