// A camera recording green brighter, in a real headless Chromium against the real daemon with the
// bundled model: its gate refuses the fields greener than any training image and screens the
// rest, and the status page says, over the latest of them, that the white balance is not the
// training camera's.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import type { Page } from 'playwright-core';
import { parseCameraShift } from '../../scripts/camera-shifts.js';
import { repoRoot, sampleImages, until } from '../daemon/helpers.js';
import { launchBrowser } from './browser.js';
import { startDaemonHarness } from './harness.js';

t.test('the status page names a camera recording green brighter than the training camera', async (t) => {
  const harness = await startDaemonHarness({ modelDir: join(repoRoot, 'models'), driftWindow: 6 });
  t.teardown(() => harness.close());
  const dir = mkdtempSync(join(tmpdir(), 'bw-green-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const samples = sampleImages().slice(0, 12);
  const browser = await launchBrowser();
  t.teardown(() => browser.close());
  const page: Page = await browser.context.newPage();
  const pageErrors: string[] = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  const status = async (): Promise<{ grid: string; problems: string }> => {
    // A fresh load each time: the same hash again would not render the page anew.
    await page.goto('about:blank');
    await page.goto(`${harness.url}/#/status`);
    await page.waitForSelector('body[data-ready="status"]');
    return {
      grid: (await page.textContent('#status-grid')) ?? '',
      problems: (await page.textContent('#status-problems')) ?? '',
    };
  };

  for (const [i, path] of samples.slice(0, 6).entries()) await harness.drop(path, `clean-${i}.jpg`);
  // The magnification watch measures once the daemon has been idle for a moment: on a busy machine
  // that comes later than the last result.
  await until(
    async () => {
      const health = (await (await fetch(`${harness.url}/api/health`)).json()) as {
        magnification?: { measured: number };
      };
      return (health.magnification?.measured ?? 0) > 0;
    },
    30_000,
    'the magnification watch to measure a capture',
  );
  const clean = await status();
  t.match(
    clean.grid,
    /White balance \(green\)\s*like the training camera: median 0\.9\d\d over the last 6 images screened or refused only for their green or a contradicted benign call; training images at most 1\.0\d\d/,
  );

  // The magnification watch measures the same captures once the daemon is idle; its window is the
  // training range's (50), so six captures are shown but not judged.
  t.match(
    clean.grid,
    /Magnification \(red-cell size\)\s*median radius \d+\.\d\d px over the last \d captures measured; training images \d\.\d\d–\d\.\d\d px; judged from 25 captures on/,
  );

  const green = parseCameraShift('gains:1,1.15,1');
  for (const [i, path] of samples.entries()) {
    const file = join(dir, `green-${i}.png`);
    writeFileSync(file, (await green.apply(readFileSync(path), path)).bytes);
    await harness.drop(file, `green-${i}.png`);
  }
  const shifted = await status();
  t.match(shifted.grid, /White balance \(green\)\s*green brighter than the training camera: median 1\.\d{3}/);
  const results = (await (await fetch(`${harness.url}/api/results?limit=100`)).json()) as {
    file: string;
    domain: { reasons: string[] } | null;
  }[];
  t.ok(
    results.some((r) => r.file.startsWith('green-') && r.domain?.reasons.includes('green_balance')),
    'fields greener than any training image are refused for it',
  );
  t.match(
    shifted.problems,
    /white balance changed\? The camera records green brighter than the training camera did/,
  );
  t.same(pageErrors, [], 'no script errors');
});
