// Months of specimens, in a real headless Chromium against the real daemon: the list shows the
// latest changes and every specimen not signed yet, however old, so one awaiting sign-off never
// drops out behind newer ones; the accession search finds a signed specimen of any age.
import t from 'tap';
import { launchBrowser, pageWithErrors } from './browser.js';
import { startDaemonHarness } from './harness.js';

interface ListedJson {
  id: number;
  accession: string;
  status: string;
}

t.test('an old specimen awaiting sign-off stays listed; the search finds any', async (t) => {
  const harness = await startDaemonHarness();
  t.teardown(() => harness.close());
  const store = harness.app!.store;
  const finished = (accession: string) => {
    const { specimen } = store.specimens.start(accession, 'dr-lee');
    store.specimens.finish(specimen.id, 'dr-lee');
    return specimen.id;
  };
  const signed = (accession: string) =>
    store.signOffs.sign(finished(accession), { verdict: 'insufficient', comment: null }, 'dr-lee');

  // The oldest: one waiting for its signature, one signed; then 220 newer, signed.
  finished('OLD-0001');
  signed('OLD-0002');
  signed('A_1');
  for (let i = 0; i < 220; i++) signed(`H26-${String(1000 + i).padStart(5, '0')}`);

  const list = async (query: string) =>
    (await (await fetch(`${harness.url}/api/specimens${query}`)).json()) as ListedJson[];
  const plain = await list('');
  t.equal(plain.length, 200, 'the latest 200 changes');
  t.notOk(
    plain.some((s) => s.accession === 'OLD-0001'),
    'without all_unsigned the old one is beyond them',
  );
  const working = await list('?all_unsigned=true');
  t.equal(working.length, 201);
  t.equal(working.at(-1)?.accession, 'OLD-0001', 'with it, the specimen awaiting sign-off too, oldest last');
  t.same(
    (await list('?q=old-000')).map((s) => s.accession),
    ['OLD-0002', 'OLD-0001'],
    'any case, any age',
  );
  t.same(
    (await list('?q=_')).map((s) => s.accession),
    ['A_1'],
    'an underscore is a character, not a wildcard',
  );
  t.equal((await fetch(`${harness.url}/api/specimens?q=`)).status, 400, 'an empty search is refused');

  const browser = await launchBrowser();
  t.teardown(() => browser.close());
  const { page, errors } = await pageWithErrors(browser);
  await page.goto(`${harness.url}/#/specimens/awaiting`);
  await page.waitForSelector('body[data-ready="specimens"]');
  const rows = page.locator('#specimen-list tbody tr');
  await rows.first().waitFor();
  t.equal(await rows.count(), 1);
  t.match(await rows.first().textContent(), /OLD-0001/, 'the old specimen is on the list to sign');
  t.match(await page.textContent('#specimen-filter [data-filter="awaiting"]'), /^Awaiting sign-off\s*1$/);

  await page.goto(`${harness.url}/#/`);
  await page.waitForSelector('body[data-ready="specimens"]');
  t.equal(
    await page.locator('#specimen-list tr', { hasText: 'OLD-0002' }).count(),
    0,
    'not among the latest',
  );
  await page.fill('#specimen-search', 'old-0002');
  await page.locator('#specimen-list tr', { hasText: 'OLD-0002' }).waitFor();
  t.equal(await rows.count(), 1, 'the search shows what it found, and only that');
  await page.fill('#specimen-search', 'nothing-like-it');
  await page.locator('#specimen-empty:not([hidden])').waitFor();
  t.equal(
    await page.textContent('#specimen-empty'),
    'No specimen here whose accession contains “nothing-like-it”.',
  );
  await page.fill('#specimen-search', '');
  await page.locator('#specimen-list tr', { hasText: 'H26-01219' }).waitFor();
  t.equal(await rows.count(), 201, 'cleared: the list again');
  t.same(errors, [], 'no script errors');
});
