import t from 'tap';
import type { Test } from 'tap';
import { fileURLToPath } from 'node:url';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { DecodeError, decodeImage } from '../../src/decode/index.js';

const fixture = (p: string): string => fileURLToPath(new URL(`../fixtures/${p}`, import.meta.url));
const opts = { size: 224, limitInputPixels: 10_000_000 };
const sample = fixture('samples/Early/WBC-Malignant-Early-001.jpg');

async function expectKind(
  t: Test,
  input: string | Buffer,
  kind: DecodeError['kind'],
  message: RegExp,
): Promise<void> {
  const err = await decodeImage(input, opts).then(
    () => undefined,
    (e: unknown) => e,
  );
  t.ok(err instanceof DecodeError, 'throws DecodeError');
  if (!(err instanceof DecodeError)) return;
  t.equal(err.kind, kind);
  t.equal(err.retryable, kind === 'truncated');
  t.match(err.message, message);
}

t.test('a data set JPEG decodes to 224×224 RGB, identical bytes from a path or a buffer', async (t) => {
  const a = await decodeImage(sample, opts);
  t.equal(a.rgb.length, 224 * 224 * 3);
  t.same(a.source, { format: 'jpeg', width: 224, height: 224, bytes: readFileSync(sample).length });
  const b = await decodeImage(readFileSync(sample), opts);
  t.same(Buffer.from(b.rgb), Buffer.from(a.rgb));
});

t.test('bad files give typed errors', async (t) => {
  await t.test('zero bytes → empty', (t) =>
    expectKind(t, fixture('bad/empty.jpg'), 'empty', /empty \(0 bytes\)/),
  );
  await t.test('zero-length buffer → empty', (t) => expectKind(t, Buffer.alloc(0), 'empty', /empty/));
  await t.test('truncated JPEG → truncated (retryable)', (t) =>
    expectKind(t, fixture('bad/truncated.jpg'), 'truncated', /premature end of JPEG/i),
  );
  await t.test('random bytes named .jpg → unsupported', (t) =>
    expectKind(t, fixture('bad/random-bytes.jpg'), 'unsupported', /not a supported image/),
  );
  await t.test('text file → unsupported', (t) =>
    expectKind(t, fixture('bad/not-an-image.txt'), 'unsupported', /not a supported image/),
  );
  await t.test('PNG header claiming 100000×100000 → too-large', (t) =>
    expectKind(t, fixture('bad/huge-header.png'), 'too-large', /exceeds pixel limit/),
  );
  await t.test('BMP → unsupported, saying why', (t) =>
    expectKind(
      t,
      fixture('bad/sample.bmp'),
      'unsupported',
      /BMP is not supported by this build of sharp\/libvips/,
    ),
  );
  await t.test('missing file → unreadable', (t) =>
    expectKind(t, fixture('bad/does-not-exist.jpg'), 'unreadable', /ENOENT/),
  );
  await t.test('a real image larger than limitInputPixels → too-large', async (t) => {
    const big = await sharp(sample).resize(4000, 3000, { fit: 'fill' }).jpeg().toBuffer();
    const err = await decodeImage(big, { size: 224, limitInputPixels: 4000 * 3000 - 1 }).catch(
      (e: unknown) => e,
    );
    t.ok(err instanceof DecodeError && err.kind === 'too-large');
    const ok = await decodeImage(big, { size: 224, limitInputPixels: 4000 * 3000 });
    t.equal(ok.source.width, 4000);
  });
});

t.test('greyscale PNG → three equal channels', async (t) => {
  const grey = await sharp(sample).toColourspace('b-w').png().toBuffer();
  t.equal((await sharp(grey).metadata()).channels, 1);
  const d = await decodeImage(grey, opts);
  t.equal(d.rgb.length, 224 * 224 * 3);
  let unequal = 0;
  for (let i = 0; i < d.rgb.length; i += 3)
    if (d.rgb[i] !== d.rgb[i + 1] || d.rgb[i] !== d.rgb[i + 2]) unequal++;
  t.equal(unequal, 0);
});

t.test('PNG with alpha → flattened on white', async (t) => {
  // Left half opaque red, right half fully transparent (colour underneath: black).
  const w = 32;
  const h = 16;
  const rgba = Buffer.alloc(w * h * 4);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) if (x < w / 2) rgba.set([255, 0, 0, 255], (y * w + x) * 4);
  const png = await sharp(rgba, { raw: { width: w, height: h, channels: 4 } })
    .png()
    .toBuffer();
  const d = await decodeImage(png, { size: 32, limitInputPixels: 1e6 });
  const px = (x: number, y: number): number[] =>
    Array.from(d.rgb.subarray((y * 32 + x) * 3, (y * 32 + x) * 3 + 3));
  t.same(px(4, 16), [255, 0, 0], 'opaque part kept');
  t.same(px(28, 16), [255, 255, 255], 'transparent part is white');
});

t.test('16-bit PNG → 8-bit values', async (t) => {
  const png16 = await sharp(sample).toColourspace('rgb16').png().toBuffer();
  t.equal((await sharp(png16).metadata()).depth, 'ushort');
  const d16 = await decodeImage(png16, opts);
  const d8 = await decodeImage(sample, opts);
  let maxDiff = 0;
  for (let i = 0; i < d8.rgb.length; i++) maxDiff = Math.max(maxDiff, Math.abs(d16.rgb[i]! - d8.rgb[i]!));
  t.ok(maxDiff <= 1, `16-bit round trip within 1 level (max diff ${maxDiff})`);
});

t.test('multi-page TIFF → page 0', async (t) => {
  const d = await decodeImage(fixture('formats/two-pages.tif'), { size: 16, limitInputPixels: 1e6 });
  t.same(d.source, {
    format: 'tiff',
    width: 32,
    height: 32,
    bytes: readFileSync(fixture('formats/two-pages.tif')).length,
  });
  t.same(Array.from(d.rgb.subarray(0, 3)), [255, 0, 0], 'red first page, not the blue second');
});

t.test('EXIF orientation is applied before the squash resize', async (t) => {
  // Stored 60×40: left half red, right half blue; orientation 6 = display rotated 90° clockwise,
  // so the displayed image is 40×60 with red on top.
  const w = 60;
  const h = 40;
  const rgb = Buffer.alloc(w * h * 3);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) rgb.set(x < w / 2 ? [220, 20, 20] : [20, 20, 220], (y * w + x) * 3);
  const jpeg = await sharp(rgb, { raw: { width: w, height: h, channels: 3 } })
    .jpeg({ quality: 95 })
    .withMetadata({ orientation: 6 })
    .toBuffer();
  const d = await decodeImage(jpeg, { size: 32, limitInputPixels: 1e6 });
  t.same([d.source.width, d.source.height], [40, 60], 'source size as displayed');
  const top = d.rgb.subarray((4 * 32 + 16) * 3, (4 * 32 + 16) * 3 + 3);
  const bottom = d.rgb.subarray((28 * 32 + 16) * 3, (28 * 32 + 16) * 3 + 3);
  t.ok(top[0]! > 150 && top[2]! < 100, `top is red (${Array.from(top)})`);
  t.ok(bottom[2]! > 150 && bottom[0]! < 100, `bottom is blue (${Array.from(bottom)})`);
});

t.test('any size is squashed to size×size (aspect ratio not kept, like the data set)', async (t) => {
  const wide = await sharp(sample).resize(1024, 768, { fit: 'fill' }).jpeg().toBuffer();
  const d = await decodeImage(wide, opts);
  t.equal(d.width, 224);
  t.equal(d.height, 224);
  t.same([d.source.width, d.source.height], [1024, 768]);
});

t.test('truncated JPEGs and PNGs decoded at the same time stay "truncated" (retryable)', async (t) => {
  // libvips keeps one error buffer per process: when two decodes fail at once, a JPEG may report
  // only "Warning treated as error due to failOn setting" or the PNG's text. Seen in the
  // reliability suite as half-written JPEGs recorded as final failures; the missing end marker
  // (JPEG EOI, PNG IEND) is what marks a file still being written.
  const samplesDir = fileURLToPath(new URL('../fixtures/samples/Pro', import.meta.url));
  const jpeg = readFileSync(join(samplesDir, readdirSync(samplesDir).sort()[0]!));
  const png = await sharp(jpeg).png().toBuffer();
  const kinds = new Map<string, number>();
  const attempt = async (bytes: Buffer, format: string) => {
    try {
      await decodeImage(bytes, { size: 224, limitInputPixels: 50_000_000 });
      kinds.set(`${format}:decoded`, (kinds.get(`${format}:decoded`) ?? 0) + 1);
    } catch (err) {
      const key = `${format}:${(err as DecodeError).kind}`;
      kinds.set(key, (kinds.get(key) ?? 0) + 1);
    }
  };
  for (let round = 0; round < 200; round++) {
    const fraction = (1 + (round % 5)) / 6;
    await Promise.all([
      attempt(jpeg.subarray(0, Math.ceil(jpeg.length * fraction)), 'jpeg'),
      attempt(png.subarray(0, Math.ceil(png.length * fraction)), 'png'),
    ]);
  }
  t.same(Object.fromEntries(kinds), { 'jpeg:truncated': 200, 'png:truncated': 200 });
});
