/**
 * A result's images are the bytes that were classified, against the REAL daemon (src/app.ts, the
 * tiny model, real capture folder and image files, the dashboard over HTTP): a capture file
 * swapped for a symlink or a hard link to the daemon's secrets, a name overwritten with other
 * bytes, a directory on the way replaced by a link, an upload, and the review export.
 */
import { createHash } from 'node:crypto';
import {
  copyFileSync,
  linkSync,
  mkdirSync,
  readFileSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { basename, dirname, join } from 'node:path';
import t, { type Test } from 'tap';
import type { App } from '../../src/app.js';
import type { Result } from '../../src/domain/result.js';
import { launchBrowser } from '../dashboard/browser.js';
import { startDaemonHarness } from '../dashboard/harness.js';
import { sample } from '../dashboard/memory-deps.js';
import { multipartBody } from '../dashboard/multipart.js';

t.setTimeout(600_000);

// Runs in the browser (the project compiles without the DOM lib).
declare const document: {
  querySelector(selector: string): { complete: boolean; naturalWidth: number } | null;
};

const SECRET = 'auth_token: the-daemon-secret-token-0123456789\npassword_hash: scrypt:16384:8:1:xx:yy\n';
const TOKEN = 'image-route-test-token-0123456789';
const AUTH = { authorization: `Bearer ${TOKEN}` };
const sha = (b: Buffer | Uint8Array) => createHash('sha256').update(b).digest('hex');

/** Writes `bytes` at `rel` under the capture folder (staged then renamed in, as a camera does). */
async function capture(app: App, rel: string, bytes: Buffer, inPlace = false): Promise<Result> {
  const dir = app.context.config.capture.dir;
  const target = join(dir, rel);
  const stored = app.bus.next(
    'result:stored',
    ({ result }) => result.file.endsWith(basename(rel)) && result.sha256 === sha(bytes),
  );
  mkdirSync(dirname(target), { recursive: true });
  if (inPlace) writeFileSync(target, bytes);
  else {
    const staged = join(dir, '..', `staged-${basename(rel)}`);
    writeFileSync(staged, bytes);
    renameSync(staged, target);
  }
  return (await stored).result;
}

async function original(base: string, id: number): Promise<{ status: number; body: Buffer }> {
  const res = await fetch(`${base}/api/dashboard/results/${id}/image/original`, { headers: AUTH });
  return { status: res.status, body: Buffer.from(await res.arrayBuffer()) };
}

t.test('the image route serves only the bytes that were classified', async (t) => {
  const h = await startDaemonHarness({ token: TOKEN });
  t.teardown(() => h.close());
  const app = h.app!;
  const base = h.url;
  const captureDir = app.context.config.capture.dir;
  const root = dirname(captureDir);
  // Stands for the daemon's config file: readable by the daemon, never by the dashboard.
  const secretPath = join(root, 'blastwatch.yml');
  writeFileSync(secretPath, SECRET);
  const images = [0, 1, 2].map((i) => readFileSync(sample('Pro', i))).concat(readFileSync(sample('Pre', 0)));
  const images2 = [0, 1, 2].map((i) => readFileSync(sample('Benign', i)));

  /** What the route gives for a result: its own bytes (200, matching sha256) or a clear refusal. */
  async function ownBytesOrRefused(t: Test, r: Result, what: string): Promise<number> {
    const got = await original(base, r.id);
    t.notMatch(got.body.toString('latin1'), /the-daemon-secret-token/, `${what}: the secret is not served`);
    if (got.status === 200) t.equal(sha(got.body), r.sha256, `${what}: 200 only with the classified bytes`);
    else {
      t.ok([404, 410].includes(got.status), `${what}: refused (${got.status})`);
      t.match(JSON.parse(got.body.toString('utf8')), { error: String }, `${what}: says why`);
    }
    return got.status;
  }

  await t.test('unchanged original: served, and it is the classified bytes', async (t) => {
    const r = await capture(app, 'plain.jpg', images[0]!);
    const got = await original(base, r.id);
    t.equal(got.status, 200);
    t.equal(sha(got.body), r.sha256);
  });

  await t.test('capture file swapped for a symlink to the config', async (t) => {
    const r = await capture(app, 'swapped-symlink.jpg', images[1]!);
    const path = join(captureDir, 'swapped-symlink.jpg');
    rmSync(path);
    symlinkSync(secretPath, path);
    t.equal(await ownBytesOrRefused(t, r, 'symlink'), 410, 'the original is gone: 410');
    const thumb = await fetch(`${base}/api/dashboard/results/${r.id}/image/thumbnail`, { headers: AUTH });
    t.equal(thumb.status, 200, "the daemon's own thumbnail is still there to fall back to");
  });

  await t.test('the detail page falls back to the thumbnail and says why', async (t) => {
    const r = app.context.store.results.list({ limit: 100, search: 'swapped-symlink' })[0]!;
    const browser = await launchBrowser();
    t.teardown(() => browser.close());
    const page = await browser.context.newPage();
    await page.goto(`${base}/#/result/${r.id}`);
    await page.waitForSelector('body[data-ready="detail"]');
    const big = page.locator('.big-picture img:not(.mask-layer)');
    await page.waitForFunction(() => {
      const img = document.querySelector('.big-picture img:not(.mask-layer)');
      return img !== null && img.complete && img.naturalWidth > 0;
    });
    t.match(await big.getAttribute('src'), /\/image\/thumbnail$/, "the daemon's own thumbnail is shown");
    t.match(await page.locator('.picture-note').textContent(), /changed on disk after it was classified/);
    t.ok(await page.locator('.picture-note').isVisible(), 'the reviewer is told');
  });

  await t.test('capture file swapped for a hard link to the config', async (t) => {
    const r = await capture(app, 'swapped-hardlink.jpg', images[2]!);
    const path = join(captureDir, 'swapped-hardlink.jpg');
    rmSync(path);
    linkSync(secretPath, path);
    t.equal(await ownBytesOrRefused(t, r, 'hard link'), 410);
  });

  await t.test('one name overwritten twice: three results, each with its own bytes', async (t) => {
    const first = await capture(app, 'same-name.jpg', images2[0]!);
    const second = await capture(app, 'same-name.jpg', images2[1]!);
    // The third in place (same inode, new bytes), as some camera software saves.
    const third = await capture(app, 'same-name.jpg', images2[2]!, true);
    t.equal(new Set([first.id, second.id, third.id]).size, 3, 'three results');
    t.equal(new Set([first.sha256, second.sha256, third.sha256]).size, 3, 'three different images');
    t.equal(await ownBytesOrRefused(t, first, 'first'), 410, 'the first bytes are no longer on disk');
    t.equal(await ownBytesOrRefused(t, second, 'second'), 410, 'nor the second');
    t.equal(await ownBytesOrRefused(t, third, 'third'), 200, 'the newest is served');
    const thumbs = await Promise.all(
      [first, second, third].map(async (r) =>
        sha(
          Buffer.from(
            await (
              await fetch(`${base}/api/dashboard/results/${r.id}/image/thumbnail`, { headers: AUTH })
            ).arrayBuffer(),
          ),
        ),
      ),
    );
    t.equal(new Set(thumbs).size, 3, 'each result keeps its own thumbnail');
  });

  await t.test('a directory on the way replaced by a symlink', async (t) => {
    const r = await capture(app, 'slide-7/cell.jpg', images[3]!);
    const elsewhere = join(root, 'elsewhere');
    mkdirSync(elsewhere);
    linkSync(secretPath, join(elsewhere, 'cell.jpg'));
    renameSync(join(captureDir, 'slide-7'), join(root, 'slide-7-moved'));
    symlinkSync(elsewhere, join(captureDir, 'slide-7'));
    t.equal(await ownBytesOrRefused(t, r, 'directory link'), 410);
    // The same bytes behind the link are still not read through it.
    rmSync(join(elsewhere, 'cell.jpg'));
    copyFileSync(join(root, 'slide-7-moved', 'cell.jpg'), join(elsewhere, 'cell.jpg'));
    t.equal((await original(base, r.id)).status, 410, 'a path through a link is refused');
  });

  await t.test('an upload is served from data.dir/uploads', async (t) => {
    const bytes = readFileSync(sample('Early', 1));
    const { body, contentType } = multipartBody('from-browser.jpg', bytes);
    const res = await fetch(`${base}/api/dashboard/upload`, {
      method: 'POST',
      headers: { ...AUTH, 'content-type': contentType },
      body,
    });
    t.equal(res.status, 202);
    const { id } = (await res.json()) as { id: number };
    const got = await original(base, id);
    t.equal(got.status, 200);
    t.equal(sha(got.body), sha(bytes), 'the uploaded bytes');
  });

  await t.test('the review export points only at the classified bytes', async (t) => {
    const kept = app.context.store.results.list({ limit: 100, search: 'plain.jpg' })[0]!;
    const swapped = app.context.store.results.list({ limit: 100, search: 'swapped-symlink' })[0]!;
    for (const r of [kept, swapped]) {
      const res = await fetch(`${base}/api/dashboard/results/${r.id}/review`, {
        method: 'POST',
        headers: { ...AUTH, 'content-type': 'application/json' },
        body: JSON.stringify({ reviewer: 'Dr A', class: r.className, note: '' }),
      });
      t.equal(res.status, 200, 'review stored');
    }
    const rows = (await (
      await fetch(`${base}/api/dashboard/reviews/export?format=json`, { headers: AUTH })
    ).json()) as {
      resultId: number;
      sha256: string;
      imagePath: string | null;
      original: string;
    }[];
    const keptRow = rows.find((r) => r.resultId === kept.id)!;
    t.equal(keptRow.original, 'verified');
    t.equal(sha(readFileSync(keptRow.imagePath!)), keptRow.sha256, 'the export points at the right bytes');
    const swappedRow = rows.find((r) => r.resultId === swapped.id)!;
    t.equal(swappedRow.imagePath, null, 'no path to foreign bytes');
    t.equal(swappedRow.original, 'changed', 'the export says the original is gone');
  });
});
