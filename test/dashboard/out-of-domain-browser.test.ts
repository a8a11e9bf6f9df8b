// An out-of-domain image in a real headless Chromium against the real daemon (tiny model, a gate
// that refuses dark frames): the card and the detail page say "Cannot screen" with the reason in
// words and show no verdict (the detail page offers a reading, with no class chosen), the filter
// finds it, the status page counts it by reason.
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import type { Page } from 'playwright-core';
import { darkFrame, darkFrameGate } from '../helpers/dark-frame-gate.js';
import { launchBrowser } from './browser.js';
import { startDaemonHarness } from './harness.js';
import { sample } from './memory-deps.js';

declare const document: {
  body: { dataset: Record<string, string | undefined> };
  querySelectorAll(selector: string): ArrayLike<unknown>;
};

const CANNOT_SCREEN = 'Cannot screen: unlike the images the model was trained on.';

t.test('the dashboard on an out-of-domain image', async (t) => {
  const harness = await startDaemonHarness({ gate: darkFrameGate() });
  t.teardown(() => harness.close());
  const dark = join(tmpdir(), `bw-dark-${process.pid}.jpg`);
  writeFileSync(dark, await darkFrame(42));
  await harness.drop(sample('Pro', 0), 'smear.jpg');
  await harness.drop(dark, 'dark-frame.jpg');
  const browser = await launchBrowser();
  t.teardown(() => browser.close());
  const page: Page = await browser.context.newPage();
  const pageErrors: string[] = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  const open = async (hash: string, view: string) => {
    await page.evaluate(() => delete document.body.dataset.ready).catch(() => undefined);
    await page.goto(`${harness.url}/${hash}`);
    await page.waitForSelector(`body[data-ready="${view}"]`);
  };

  await open('#/images', 'feed');
  const card = page.locator('#feed-list .card', { hasText: 'dark-frame.jpg' });
  await card.waitFor();
  t.equal(await card.locator('.badge').first().textContent(), 'Cannot screen');
  const text = (await card.textContent()) ?? '';
  t.match(text, CANNOT_SCREEN);
  t.match(text, 'the picture is too dark');
  t.notMatch(text, /Chance of B-ALL|Most likely|Looks benign|Possible B-ALL/, 'no verdict of any kind');
  t.equal(await card.locator('.bars li').count(), 0, 'no probabilities');
  t.match(await page.locator('#feed-list .card', { hasText: 'smear.jpg' }).textContent(), /Chance of B-ALL/);

  await page.check('#filters input[name="out_of_domain"]');
  await page.waitForFunction(() => document.querySelectorAll('#feed-list .card').length === 1);
  t.same(await page.locator('#feed-list .card .file').allTextContents(), ['dark-frame.jpg'], 'the filter');

  await card.locator('a.file').click();
  await page.waitForSelector('body[data-ready="detail"]');
  const detail = (await page.textContent('#view-detail')) ?? '';
  t.match(detail, CANNOT_SCREEN);
  t.match(detail, /Checked on\s*meanLuma \d/);
  t.notMatch(detail, /Chance of B-ALL/);
  // No verdict to confirm, but a person may record what she sees: the form offers no class.
  t.equal(await page.locator('#review-form button[value="confirm"]').count(), 0, 'no verdict to confirm');
  t.match(await page.textContent('#review-form h2'), 'Your reading');
  t.equal(await page.inputValue('#review-class'), '', 'no class chosen by default');

  await open('#/status', 'status');
  t.match(
    await page.textContent('#status-grid'),
    /Cannot screen\s*1 unlike the training images: the picture is too dark \(1\)/,
  );
  t.same(pageErrors, [], 'no script errors');
});
