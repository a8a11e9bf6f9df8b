/**
 * Screenshots of the dashboard's main views for docs/dashboard.md, taken from the real daemon:
 * temporary capture and data folders, the bundled model in models/ (or the tiny test model when
 * none is built yet), sample smear images dropped one by one, a few reviews, one unreadable file,
 * one field the bundled model's gate withholds (a benign call its features contradict), and three
 * specimens (two filed by capture sub-folder, one captured in a session started in the
 * page; one signed, one reviewed with the keyboard).
 *
 *   node --import tsx scripts/screenshots.ts [--out docs/img] [--images 12] [--full-colour]
 *
 * Each PNG is re-encoded with a 256-colour palette (dithered; about half the bytes, the smears
 * still look like smears) unless --full-colour is given. The model's version and flag threshold
 * are printed: they must be the shipped model's, which the pictures show.
 *
 * Needs Debian's chromium (/usr/bin/chromium, or BLASTWATCH_CHROMIUM).
 */
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  renameSync,
  rmSync,
  writeFileSync,
  readFileSync,
  statSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { chromium, type Page } from 'playwright-core';
import sharp from 'sharp';
import { loadConfig } from '../src/config/load.js';
import { createApp } from '../src/app.js';
import { createLogger } from '../src/log.js';
// The same Chromium binary and flags as the browser tests (closed network: no background traffic).
import { CHROMIUM, CHROMIUM_ARGS } from '../test/dashboard/browser.js';

// Callbacks passed to page.evaluate/waitForFunction run in the browser, not in Node: minimal
// typings for the few DOM members they touch (the project compiles without the DOM lib).
interface PageImage {
  hidden?: boolean;
  complete: boolean;
  naturalWidth: number;
  src: string;
  getClientRects(): { length: number };
  getBoundingClientRect(): { top: number };
}
declare const document: {
  body: { dataset: Record<string, string | undefined> };
  querySelector(selector: string): PageImage | null;
  scrollingElement: { scrollWidth: number; clientWidth: number };
  title: string;
  images: ArrayLike<PageImage> & Iterable<PageImage>;
};
declare const window: { innerHeight: number };

const repo = fileURLToPath(new URL('../', import.meta.url));
const { values } = parseArgs({
  options: {
    out: { type: 'string', default: join(repo, 'docs/img') },
    images: { type: 'string', default: '12' },
    'full-colour': { type: 'boolean', default: false },
  },
});
const outDir = resolve(values.out as string);
const imageCount = Number(values.images);
const SAMPLES =
  process.env.BLASTWATCH_SAMPLES ??
  (existsSync('/work/shared/data/all-smears')
    ? '/work/shared/data/all-smears'
    : join(repo, 'test/fixtures/samples'));
if (!existsSync(CHROMIUM)) throw new Error(`install chromium: ${CHROMIUM} not found`);

const modelDir = existsSync(join(repo, 'models/model.json'))
  ? join(repo, 'models')
  : join(repo, 'test/fixtures/tiny-model');
const root = mkdtempSync(join(tmpdir(), 'bw-shots-'));
const capture = join(root, 'captures');
const staging = join(root, 'staging');
mkdirSync(capture);
mkdirSync(staging);
mkdirSync(outDir, { recursive: true });

const { config } = loadConfig(null, {
  BLASTWATCH_CAPTURE_DIR: capture,
  BLASTWATCH_DATA_DIR: join(root, 'data'),
  BLASTWATCH_MODEL_DIR: modelDir,
  BLASTWATCH_HTTP_HOST: '127.0.0.1',
  BLASTWATCH_HTTP_PORT: '0',
  BLASTWATCH_DEVICE_ID: 'scope-lab-2',
});
config.capture.stability_ms = 150;
config.capture.max_attempts = 1;
const log = createLogger({ level: 'warn', pretty: false });
const app = await createApp(config, log);
await app.start();
const shown = app.context.classifier.info;
console.log(
  `daemon at ${app.url} (model ${modelDir}: ${shown.name} ${shown.version}, flag threshold ${shown.threshold})`,
);
const written: string[] = [];

/** Puts `src` into the capture folder as `name`, or into its sub-folder `folder` (an accession number). */
async function drop(src: string, name: string, folder?: string): Promise<void> {
  const stored = app.bus.next('result:stored', ({ result }) => basename(result.file) === name);
  const dir = folder ? join(capture, folder) : capture;
  mkdirSync(dir, { recursive: true });
  copyFileSync(src, join(staging, name));
  renameSync(join(staging, name), join(dir, name));
  await stored;
}

// A realistic morning: images from every class, in an interleaved order.
const classes = ['Benign', 'Early', 'Pre', 'Pro'];
const perClass = classes.map((c) =>
  readdirSync(join(SAMPLES, c))
    .filter((f) => f.endsWith('.jpg'))
    .sort(),
);
for (let i = 0; i < imageCount; i++) {
  const files = perClass[i % 4] as string[];
  const file = files[(i * 7) % files.length] as string;
  await drop(join(SAMPLES, classes[i % 4] as string, file), `smear-${String(i + 1).padStart(3, '0')}.jpg`);
}
// One truncated file: shows how a failed image looks.
const truncated = join(staging, 'smear-broken.jpg');
writeFileSync(truncated, readFileSync(join(SAMPLES, 'Pro', perClass[3]![0]!)).subarray(0, 3000));
const failed = app.bus.next('result:stored', ({ result }) => result.file === 'smear-broken.jpg');
renameSync(truncated, join(capture, 'smear-broken.jpg'));
await failed;

// A blast the bundled model calls benign against its own features (test/fixtures/disagree/): the
// gate withholds the call and the field waits in the review queue for a person's reading.
const withheldSource = join(repo, 'test/fixtures/disagree/WBC-Malignant-Pre-153.jpg');
if (modelDir === join(repo, 'models')) await drop(withheldSource, 'smear-withheld.jpg');
const withheld = app.store.results.list({ limit: 5, search: 'smear-withheld.jpg' })[0];

// Two reviews of screened images so the history and the export have content.
const queue = app.store.results.list({ limit: 50, reviewQueue: true }).filter((r) => r.status === 'done');
const info = app.context.classifier.info;
if (queue[0])
  app.store.reviews.add({
    resultId: queue[0].id,
    reviewer: 'Dr M. Rahimi',
    className: queue[0].className ?? info.classes[0]!,
    note: 'Blasts with fine chromatin; agree.',
  });
if (queue[1])
  app.store.reviews.add({
    resultId: queue[1].id,
    reviewer: 'Dr M. Rahimi',
    className: info.classes[0]!,
    note: 'Hematogones; regenerating marrow.',
  });

// Two smears filed by capture sub-folder (the folder is the accession number): one with many
// B-ALL-class fields, one with benign fields only.
const pick = (cls: number, i: number) => {
  const files = perClass[cls] as string[];
  return join(SAMPLES, classes[cls] as string, files[(i * 5 + 3) % files.length] as string);
};
const SUSPICIOUS_SMEAR = 'H26-01187';
const BENIGN_SMEAR = 'H26-01188';
for (let i = 0; i < 10; i++) {
  await drop(
    pick(i % 3 === 0 ? 0 : 1 + (i % 3), i),
    `field-${String(i + 1).padStart(2, '0')}.jpg`,
    SUSPICIOUS_SMEAR,
  );
}
for (let i = 0; i < 8; i++) {
  await drop(pick(0, i + 20), `field-${String(i + 1).padStart(2, '0')}.jpg`, BENIGN_SMEAR);
}

const browser = await chromium.launch({
  executablePath: CHROMIUM,
  args: CHROMIUM_ARGS,
});

async function shot(page: Page, hash: string, view: string, file: string, fullPage = true): Promise<void> {
  await page.evaluate(() => delete document.body.dataset.ready).catch(() => undefined);
  await page.goto(`${app.url}/${hash}`);
  await page.waitForSelector(`body[data-ready="${view}"]`);
  // Lazy images below the fold never load in a viewport-only shot: wait for the visible ones.
  await page.waitForFunction(() =>
    [...document.images].every(
      (i) =>
        i.complete || i.getClientRects().length === 0 || i.getBoundingClientRect().top > window.innerHeight,
    ),
  );
  await page.waitForTimeout(1300); // let the "new" highlight fade
  await hideToast(page);
  await page.screenshot({ path: join(outDir, file), fullPage });
  written.push(join(outDir, file));
}

/** A message of the last action ("signed.") would cover part of the next picture. */
async function hideToast(page: Page): Promise<void> {
  await page.evaluate(() => {
    const toast = document.querySelector('#toast');
    if (toast) toast.hidden = true;
  });
}

/** A full-page shot of what the page shows now (after keyboard steps), once its images loaded. */
async function shotCurrent(page: Page, file: string): Promise<void> {
  await page.waitForFunction(() =>
    [...document.images].every(
      (i) =>
        i.complete || i.getClientRects().length === 0 || i.getBoundingClientRect().top > window.innerHeight,
    ),
  );
  await page.waitForTimeout(1300);
  await hideToast(page);
  await page.screenshot({ path: join(outDir, file), fullPage: true });
  written.push(join(outDir, file));
}

const desktop = await browser.newPage({ viewport: { width: 1280, height: 860 } });
await shot(desktop, '#/images', 'feed', 'feed.png', false);
const flagged =
  app.store.results.list({ limit: 50, flagged: true }).find((r) => r.review === null) ??
  app.store.results.list({ limit: 1 })[0];
await shot(desktop, `#/result/${flagged!.id}`, 'detail', 'detail.png');
await desktop.click('#detail-overlay button[data-kind="overlay"]');
await desktop.waitForFunction(() => {
  const layer = document.querySelector('.big-picture .mask-layer');
  return layer !== null && layer.complete && layer.naturalWidth > 0;
});
await desktop.screenshot({
  path: join(outDir, 'detail-overlay.png'),
  clip: { x: 0, y: 0, width: 1280, height: 760 },
});
written.push(join(outDir, 'detail-overlay.png'));
await desktop.click('#detail-overlay button[data-kind="segmented"]');
await desktop.waitForFunction(() => {
  const img = document.querySelector('.big-picture img:not(.mask-layer)');
  return img !== null && img.complete && img.src.endsWith('/segmented');
});
await desktop.screenshot({
  path: join(outDir, 'detail-segmented.png'),
  clip: { x: 0, y: 0, width: 1280, height: 760 },
});
written.push(join(outDir, 'detail-segmented.png'));
const reviewed = queue[0];
if (reviewed) await shot(desktop, `#/result/${reviewed.id}`, 'detail', 'review-history.png');
if (withheld?.status === 'out_of_domain')
  await shot(desktop, `#/result/${withheld.id}`, 'detail', 'withheld-reading.png');
await shot(desktop, '#/review', 'review', 'review.png', false);
await shot(desktop, '#/status', 'status', 'status.png');
await desktop.goto(`${app.url}/#/upload`);
await desktop.waitForSelector('body[data-ready="upload"]');
await desktop.setInputFiles('#upload-file', join(SAMPLES, 'Early', perClass[1]!.at(-1)!));
await desktop.waitForSelector('#upload-list .card .verdict');
await desktop.waitForTimeout(1300);
await desktop.screenshot({ path: join(outDir, 'upload.png') });
written.push(join(outDir, 'upload.png'));

// Specimens: one started as a session (its fields arrive while it is open), the two filed by
// folder finished (awaiting sign-off), the benign one signed; the specimen page reviewed a few
// fields with the keyboard.
await desktop.goto(`${app.url}/#/`);
await desktop.waitForSelector('body[data-ready="specimens"]');
await desktop.fill('#actor-name', 'Dr M. Rahimi');
await desktop.fill('#start-specimen input[name="accession"]', 'H26-01190');
await desktop.click('#start-specimen button[type="submit"]');
await desktop.waitForSelector('#specimen-list tr:has-text("H26-01190")');
for (let i = 0; i < 3; i++) await drop(pick(2, i + 40), `session-${i + 1}.jpg`);
for (const accession of [SUSPICIOUS_SMEAR, BENIGN_SMEAR]) {
  await desktop.click(`#specimen-list tr:has-text("${accession}") button.finish`);
  await desktop.waitForSelector(`#specimen-list tr:has-text("${accession}") .status-awaiting_signoff`);
}
await desktop.click(`#specimen-list a.accession:text("${BENIGN_SMEAR}")`);
await desktop.waitForSelector('body[data-ready="specimen"]');
await desktop.fill('#signer-name', 'Dr M. Rahimi');
await desktop.fill('#signoff-form textarea[name="comment"]', 'Eight fields, mature lymphocytes only.');
await desktop.click('#sign-button');
await desktop.click('#sign-confirm-yes');
await desktop.waitForSelector('#signed-box');
await shot(desktop, '#/', 'specimens', 'specimens.png', false);

const suspicious = `#/specimen/${await desktop.getAttribute(`#specimen-list tr:has-text("${SUSPICIOUS_SMEAR}")`, 'data-id')}`;
await desktop.goto(`${app.url}/${suspicious}`);
await desktop.waitForSelector('body[data-ready="specimen"]');
// Keys go to the page, not to the name field.
await desktop.click('#specimen-accession');
for (const key of ['r', 'r', '3', 'r']) await desktop.keyboard.press(key);
await desktop.waitForSelector('#inspector-position:text("Image 4 of")');
await shotCurrent(desktop, 'specimen.png');
await desktop.keyboard.press('?');
await desktop.screenshot({
  path: join(outDir, 'specimen-shortcuts.png'),
  clip: { x: 0, y: 0, width: 1280, height: 760 },
});
written.push(join(outDir, 'specimen-shortcuts.png'));
await desktop.keyboard.press('Escape');
const benign = `#/specimen/${await (async () => {
  await desktop.goto(`${app.url}/#/`);
  await desktop.waitForSelector('body[data-ready="specimens"]');
  return desktop.getAttribute(`#specimen-list tr:has-text("${BENIGN_SMEAR}")`, 'data-id');
})()}`;
await shot(desktop, benign, 'specimen', 'specimen-signed.png');

const phone = await browser.newPage({
  viewport: { width: 390, height: 844 },
  isMobile: true,
  hasTouch: true,
  deviceScaleFactor: 2,
});
await shot(phone, '#/images', 'feed', 'phone-feed.png', false);
await shot(phone, `#/result/${flagged!.id}`, 'detail', 'phone-detail.png', false);
await shot(phone, '#/', 'specimens', 'phone-specimens.png', false);
await shot(phone, suspicious, 'specimen', 'phone-specimen.png', false);

await browser.close();
await app.stop();
for (const path of written) {
  if (!values['full-colour']) {
    const png = await sharp(readFileSync(path))
      .png({ palette: true, quality: 90, effort: 10, compressionLevel: 9 })
      .toBuffer();
    writeFileSync(path, png);
  }
  console.log(`wrote ${path} (${Math.round(statSync(path).size / 1024)} KiB)`);
}
rmSync(root, { recursive: true, force: true });
