// A capture that arrives while a specimen session runs but is stamped before "Start specimen"
// (the camera PC's clock behind this station's, or a picture taken just before the click), in a
// real headless Chromium against the real daemon: the session does not take it, and the open
// specimen's page says so live, with the file and how far before the start it is stamped; the
// health API names it too; one click adds it to the specimen. A clock far behind, beyond any near
// miss, is called from its count.
import t from 'tap';
import { launchBrowser, pageWithErrors, startSessionInPage } from './browser.js';
import { startDaemonHarness } from './harness.js';
import { sample } from './memory-deps.js';

const ACCESSION = 'H26-00777';

t.test('a capture stamped before its session started is shown on the specimen page', async (t) => {
  const harness = await startDaemonHarness();
  t.teardown(() => harness.close());
  const browser = await launchBrowser();
  t.teardown(() => browser.close());
  const { page, errors: pageErrors } = await pageWithErrors(browser);
  await startSessionInPage(page, harness.url, ACCESSION, 'Dr Clock');
  await harness.drop(sample('Pre', 0), 'field-01.jpg');
  const list = (await (await fetch(`${harness.url}/api/specimens`)).json()) as {
    id: number;
    accession: string;
  }[];
  const id = list.find((s) => s.accession === ACCESSION)!.id;

  await page.goto(`${harness.url}/#/specimen/${id}`);
  await page.waitForSelector('body[data-ready="specimen"]');
  t.equal(await page.locator('#before-start').count(), 0, 'nothing to say yet');

  // The writer's clock is 90 s behind: the file reads as taken before the session started.
  await harness.drop(sample('Pro', 0), 'field-02.jpg', new Date(Date.now() - 90_000));
  const notice = page.locator('#before-start');
  await notice.waitFor({ timeout: 10_000 });
  const text = (await notice.textContent()) ?? '';
  t.match(text, "1 capture arrived during this specimen's session but is stamped before it started");
  t.match(text, 'field-02.jpg');
  const before = Number(/\(([\d.]+) s before the start\)/.exec(text)?.[1]);
  t.ok(before > 30 && before <= 90, `stamped ${before} s before the start`);
  t.match(text, 'NTP');
  t.equal(await page.locator('#gallery .tile').count(), 1, 'the session holds field-01 only');

  const health = (await (await fetch(`${harness.url}/api/health`)).json()) as {
    problems: string[];
    capture_clock: { before_session: number };
  };
  t.equal(health.capture_clock.before_session, 1);
  t.ok(
    health.problems.some((p) => p.includes(`field-02.jpg (${ACCESSION},`)),
    'the health problem names the file and the specimen',
  );

  // The status page says it in one line, for the lab's IT.
  const { page: statusPage } = await pageWithErrors(browser);
  await statusPage.goto(`${harness.url}/#/status`);
  await statusPage.waitForSelector('body[data-ready="status"]');
  t.match(
    await statusPage.textContent('#status-grid'),
    /Capture clock\s*of the last 2 captures: 1 left out of the open session \(stamped before its start\)\. Check the clocks \(NTP\)\./,
  );
  await statusPage.close();

  // She decides it belongs here: one click adds it, and the notice and the health problem go.
  await notice.locator('button.add-left-out').click();
  await page.waitForSelector('#before-start', { state: 'detached' });
  await page.waitForFunction(() => {
    const tiles = (
      globalThis as unknown as { document: { querySelectorAll(s: string): { length: number } } }
    ).document.querySelectorAll('#gallery .tile');
    return tiles.length === 2;
  });
  const after = (await (await fetch(`${harness.url}/api/health`)).json()) as {
    capture_clock: { before_session: number };
  };
  t.equal(after.capture_clock.before_session, 0, 'assigned: no longer a problem');
  const detail = (await (await fetch(`${harness.url}/api/specimens/${id}`)).json()) as {
    counts: { images: number };
    captures_before_start: unknown[];
  };
  t.match(detail, { counts: { images: 2 }, captures_before_start: [] });

  // A writer's clock 20 minutes behind: no capture of the session reaches it, and no near miss
  // says why. Health counts them and, from three on, calls the clock; the status page says so.
  const behind = [sample('Benign', 0), sample('Early', 0), sample('Pro', 1)];
  for (const [i, path] of behind.entries())
    await harness.drop(path, `field-0${i + 3}.jpg`, new Date(Date.now() - 20 * 60_000));
  const far = (await (await fetch(`${harness.url}/api/health`)).json()) as {
    problems: string[];
    capture_clock: { long_before_session: number; max_long_before_s: number };
  };
  t.equal(far.capture_clock.long_before_session, 3);
  const farBefore = far.capture_clock.max_long_before_s;
  t.ok(farBefore > 10 * 60 && farBefore <= 20 * 60, `stamped ${farBefore} s before the start`);
  t.ok(
    far.problems.some((p) =>
      p.startsWith(
        `capture clock far behind? 3 captures arrived during the open specimen session (${ACCESSION})`,
      ),
    ),
    'health calls the clock far behind',
  );
  const { page: farStatus } = await pageWithErrors(browser);
  await farStatus.goto(`${harness.url}/#/status`);
  await farStatus.waitForSelector('body[data-ready="status"]');
  t.match(
    await farStatus.textContent('#status-grid'),
    /Capture clock\s*of the last 5 captures: 3 left out of the open session, stamped up to 20 min before its start \(a clock far behind\?\)\. Check the clocks \(NTP\)\./,
  );
  await farStatus.close();
  t.same(pageErrors, [], 'no script errors');
});
