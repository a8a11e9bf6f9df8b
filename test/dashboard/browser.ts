/** Launching Debian's Chromium for the dashboard's browser tests (never skipped: CI installs it). */
import { existsSync } from 'node:fs';
import { chromium, type Browser, type BrowserContext } from 'playwright-core';

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
