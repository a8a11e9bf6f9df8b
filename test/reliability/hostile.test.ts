/**
 * Item 6, hostile images, against the real composed daemon (in process): every odd file is either
 * recorded with a reason or classified correctly, a symlink leaving the folder is never read, odd
 * names survive byte for byte, RSS stays bounded and the daemon keeps serving and classifying.
 */
import { copyFileSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import sharp from 'sharp';
import t from 'tap';
import {
  capturingLogger,
  makeDirs,
  MB,
  freePort,
  readResults,
  repoRoot,
  rssOf,
  sampleImages,
  startInProcess,
  until,
} from './harness.js';
import { ODD_NAMES, pngBomb } from './hostile-inputs.js';

// The whole file (.taprc's 300 s is per file): slow on a shared 2-core machine.
t.setTimeout(900_000);

t.test('hostile images: each recorded with a reason or classified, daemon unharmed', async (t) => {
  const dirs = makeDirs('bw-hostile-');
  const outside = join(dirs.root, 'outside');
  mkdirSync(outside);
  const { logger, lines } = capturingLogger();
  const d = await startInProcess(
    dirs,
    {
      mqttUrl: null,
      httpPort: await freePort(),
      extra: { capture: { max_attempts: 2, retry_backoff_ms: 100 }, image: { max_input_pixels: 4_000_000 } },
    },
    {},
    logger,
  );
  t.teardown(async () => {
    await d.stop();
    rmSync(dirs.root, { recursive: true, force: true });
  });
  const rssBefore = rssOf().rss;
  const samples = sampleImages();
  const good = readFileSync(samples[0]!);
  const c = (name: string) => join(dirs.capture, name);

  const bomb = await pngBomb();

  // Expected outcome per file: 'done' or the error kind it must be recorded with.
  const expected: Record<string, RegExp> = {};
  const put = (name: string, bytes: Buffer, outcome: RegExp) => {
    writeFileSync(c(name), bytes);
    expected[name] = outcome;
  };
  put('zero.jpg', Buffer.alloc(0), /^empty$/);
  put(
    'random.jpg',
    Buffer.from(Array.from({ length: 8000 }, (_, i) => (i * 7919 + 13) % 251)),
    /unsupported|unreadable/,
  );
  put('truncated.jpg', good.subarray(0, Math.floor(good.length / 2)), /^truncated$/);
  put('bomb.png', bomb, /^too-large$/);
  put(
    'pixel-bomb-jpeg.jpg',
    await sharp({ create: { width: 2100, height: 2100, channels: 3, background: '#a0a' } })
      .jpeg()
      .toBuffer(),
    /^too-large$/,
  );
  copyFileSync(join(repoRoot, 'test/fixtures/formats/two-pages.tif'), c('two-pages.tif'));
  // A smear the out-of-domain gate may refuse (first page only, squashed) is classified either way.
  expected['two-pages.tif'] = /^(done|out_of_domain)$/;
  put('cmyk.jpg', await sharp(good).toColourspace('cmyk').jpeg().toBuffer(), /^done$/);
  put('sixteen-bit.png', await sharp(good).toColourspace('rgb16').png().toBuffer(), /^done$/);
  // Grey: nothing like the stained training images, so the gate refuses it (no verdict).
  put('grey-alpha.png', await sharp(good).greyscale().ensureAlpha().png().toBuffer(), /^out_of_domain$/);
  // A text file with an image extension and an image in a text's clothing.
  put('not-image.tif', Buffer.from('II*\0 certainly not a tiff'), /unsupported|unreadable|truncated/);
  // Odd names: HTML, quotes, newline, tab, emoji, a very long name.
  const odd = ODD_NAMES;
  odd.forEach((name, i) =>
    put(
      name,
      Buffer.concat([
        good.subarray(0, 2),
        Buffer.from([0xff, 0xfe, 0, 5, 0x6f, 0x64, 0x30 + i]),
        good.subarray(2),
      ]),
      /^done$/,
    ),
  );
  // A symlink to an image outside the capture folder: must not be followed (data exfiltration).
  const secret = await sharp(good).rotate(90).jpeg().toBuffer();
  writeFileSync(join(outside, 'secret.jpg'), secret);
  symlinkSync(join(outside, 'secret.jpg'), c('link-out.jpg'));
  // A name that is not valid UTF-8: Node cannot open it by a string path; it must be reported.
  writeFileSync(
    Buffer.concat([Buffer.from(`${dirs.capture}/bad-`), Buffer.from([0xff, 0xfe]), Buffer.from('.jpg')]),
    good,
  );
  // A good image last: classified although everything before it was hostile.
  put('fine-after.jpg', readFileSync(samples[samples.length - 1]!), /^done$/);

  const names = Object.keys(expected);
  const final = () => {
    const byFile = new Map(readResults(dirs.data).map((r) => [r.file, r]));
    return byFile;
  };
  await until(
    () => {
      const m = final();
      return names.every((n) => {
        const r = m.get(n);
        return (
          r !== undefined && r.status !== 'pending' && !(n === 'truncated.jpg' && r.status !== 'quarantined')
        );
      });
    },
    90_000,
    'every hostile file settled',
    200,
  );
  const m = final();
  for (const n of names) {
    const r = m.get(n)!;
    const classified = r.status === 'done' || r.status === 'out_of_domain';
    const outcome = classified ? r.status : (r.error_kind ?? '');
    t.match(
      outcome,
      expected[n]!,
      `${JSON.stringify(n)} → ${r.status} ${r.error_kind ?? ''} ${r.error ?? ''}`,
    );
    if (!classified) t.ok(r.error && r.error.length > 3, `${JSON.stringify(n)} has a reason`);
  }
  t.equal(m.get('truncated.jpg')?.status, 'quarantined', 'truncated forever → quarantined');
  for (const name of odd) t.ok(m.has(name), `name stored byte for byte: ${JSON.stringify(name)}`);

  const secretSha = createHash('sha256').update(secret).digest('hex');
  const all = readResults(dirs.data);
  t.notOk(
    all.some((r) => r.sha256 === secretSha || r.file.includes('link-out')),
    'symlink out of the folder never read',
  );
  t.ok(
    lines.some((l) => /symlink that leaves/.test(String(l.msg))),
    'the escaping symlink is logged',
  );
  await until(
    () => lines.some((l) => /not valid UTF-8/.test(String(l.msg))),
    10_000,
    'non-UTF-8 name reported',
  );
  t.pass('the non-UTF-8 name is reported (it cannot be opened by a string path)');
  t.equal(all.length, names.length, 'nothing else was recorded (no duplicates, no phantom rows)');

  const res = await fetch(`${d.app.url}/healthz`);
  t.equal(res.status, 200, 'daemon alive');
  t.equal((await fetch(`${d.app.url}/readyz`)).status, 200, 'daemon ready');
  const api = await (await fetch(`${d.app.url}/api/results?limit=100`)).text();
  t.ok(api.includes('<img src=x onerror=alert(1)>.jpg'), 'API returns the HTML name as JSON data');
  const grown = rssOf().rss - rssBefore;
  t.comment(
    `RSS before ${Math.round(rssBefore / MB)} MB, after ${Math.round(rssOf().rss / MB)} MB, peak ${Math.round(rssOf().peak / MB)} MB`,
  );
  t.ok(
    grown < 400 * MB,
    `RSS growth bounded (${Math.round(grown / MB)} MB < 400 MB): the bombs were never decoded`,
  );
});
