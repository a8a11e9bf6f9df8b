// A blast the bundled model calls benign against its own features, in a real headless Chromium
// against the real daemon: the gate withholds the call, so the card says "Cannot screen" with the
// reason in words and no verdict, and the API records the reason and the margin; a benign field
// whose features agree is screened as usual.
import { join } from 'node:path';
import t from 'tap';
import type { Page } from 'playwright-core';
import { repoRoot } from '../daemon/helpers.js';
import { launchBrowser } from './browser.js';
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
  t.same(pageErrors, [], 'no script errors');
});
