/** Launching Debian's Chromium for the dashboard's browser tests (never skipped: CI installs it). */
import { existsSync } from 'node:fs';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';

export const CHROMIUM = process.env.BLASTWATCH_CHROMIUM ?? '/usr/bin/chromium';
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export interface TestBrowser {
  browser: Browser;
  /** The desktop context (1280×900). */
  context: BrowserContext;
  /** A phone-sized context (390×844, touch, mobile). */
  phone(): Promise<BrowserContext>;
  close(): Promise<void>;
}

/** One Chromium per test file; playwright gives each launch a fresh temporary profile. */
export async function launchBrowser(): Promise<TestBrowser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`install chromium: ${CHROMIUM} not found (Debian: apt-get install chromium)`);
  }
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true });
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  return {
    browser,
    context,
    phone: () =>
      browser.newContext({
        viewport: { width: 390, height: 844 },
        isMobile: true,
        hasTouch: true,
        deviceScaleFactor: 2,
      }),
    close: () => browser.close(),
  };
}

/** A new desktop page that records the page's script errors in `errors`. */
export async function pageWithErrors(b: TestBrowser): Promise<{ page: Page; errors: string[] }> {
  const page = await b.context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  return { page, errors };
}

/** Starts a specimen session from the specimens page as a person would ("Start specimen"). */
export async function startSessionInPage(
  page: Page,
  url: string,
  accession: string,
  actor: string,
): Promise<void> {
  await page.goto(`${url}/#/`);
  await page.waitForSelector('body[data-ready="specimens"]');
  await page.fill('#actor-name', actor);
  await page.fill('#start-specimen input[name="accession"]', accession);
  await page.click('#start-specimen button[type="submit"]');
  await page.locator('#specimen-list tr', { hasText: accession }).waitFor();
}
