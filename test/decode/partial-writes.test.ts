import t from 'tap';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { DecodeError, decodeImage } from '../../src/decode/index.js';
import { bmpShort, isSignaturePrefix, riffShort, tiffPointsPastEnd } from '../../src/decode/completeness.js';
import { tiffFile, bmpFile } from '../helpers/image-writers.js';

/**
 * A file caught while the camera (or a copy) is still writing it must decode as "truncated"
 * (retryable), whatever its format and however many bytes have arrived, and the complete file
 * must decode (BMP: be refused as unsupported). Every format the daemon accepts is covered:
 * the default capture extensions (.jpg .jpeg .png .tif .tiff .bmp) plus WebP and GIF, which
 * decodeImage reads when a config lists them.
 */
const fixture = (p: string): string => fileURLToPath(new URL(`../fixtures/${p}`, import.meta.url));
const opts = { size: 224, limitInputPixels: 50_000_000 };
const SOURCE = fixture('samples/Pro/WBC-Malignant-Pro-001.jpg');

async function kindOf(bytes: Buffer): Promise<string> {
  try {
    await decodeImage(bytes, opts);
    return 'decoded';
  } catch (err) {
    if (!(err instanceof DecodeError)) throw err;
    return err.kind;
  }
}

/** Every length up to 64 bytes (headers), then ~150 lengths spread over the file, and its last bytes. */
function prefixLengths(length: number): number[] {
  const head = Array.from({ length: Math.min(64, length - 1) }, (_, i) => i + 1);
  const spread = Array.from({ length: 150 }, (_, i) => Math.floor((length * (i + 1)) / 151));
  return [...new Set([...head, ...spread, length - 2, length - 1])].filter((n) => n > 0 && n < length);
}

async function formats(): Promise<Array<[string, Buffer, 'decoded' | 'unsupported']>> {
  const src = readFileSync(SOURCE);
  const { data: rgb, info } = await sharp(src).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  const raw = { data: rgb, width: info.width, height: info.height };
  return [
    ['jpeg', src, 'decoded'],
    ['png', await sharp(src).png().toBuffer(), 'decoded'],
    ['tiff (sharp default: JPEG-compressed, IFD last)', await sharp(src).tiff().toBuffer(), 'decoded'],
    ['tiff (LZW strips)', await sharp(src).tiff({ compression: 'lzw' }).toBuffer(), 'decoded'],
    [
      'tiff (deflate tiles)',
      await sharp(src).tiff({ compression: 'deflate', tile: true, tileWidth: 64, tileHeight: 64 }).toBuffer(),
      'decoded',
    ],
    ['bigtiff', await sharp(src).tiff({ compression: 'lzw', bigtiff: true }).toBuffer(), 'decoded'],
    [
      'tiff (uncompressed, little-endian, IFD first)',
      tiffFile(raw, { littleEndian: true, ifdFirst: true }),
      'decoded',
    ],
    [
      'tiff (uncompressed, big-endian, IFD last)',
      tiffFile(raw, { littleEndian: false, ifdFirst: false }),
      'decoded',
    ],
    ['tiff (two pages)', readFileSync(fixture('formats/two-pages.tif')), 'decoded'],
    ['webp (lossy)', await sharp(src).webp().toBuffer(), 'decoded'],
    ['webp (lossless)', await sharp(src).webp({ lossless: true }).toBuffer(), 'decoded'],
    ['gif', await sharp(src).gif().toBuffer(), 'decoded'],
    ['bmp', bmpFile(raw), 'unsupported'],
  ];
}

t.test('every prefix of every accepted format is "truncated"; the whole file is not', async (t) => {
  for (const [name, bytes, whole] of await formats()) {
    const kinds: Record<string, number> = {};
    for (const n of prefixLengths(bytes.length)) {
      const kind = await kindOf(bytes.subarray(0, n));
      kinds[kind] = (kinds[kind] ?? 0) + 1;
    }
    t.same(Object.keys(kinds), ['truncated'], `${name}: prefixes ${JSON.stringify(kinds)}`);
    t.equal(await kindOf(bytes), whole, `${name}: the complete file`);
  }
});

t.test('files in progress as their writers really lay them out', async (t) => {
  // libtiff writes the header with first-IFD offset 0, appends the strips, writes the IFD at
  // close and then patches the header: every state before the patch has offset 0.
  const tiff = await sharp(SOURCE).tiff({ compression: 'lzw' }).toBuffer();
  const kinds = new Set<string>();
  for (const n of [...prefixLengths(tiff.length).filter((l) => l >= 8), tiff.length]) {
    const state = Buffer.from(tiff.subarray(0, n));
    state.writeUInt32LE(0, 4);
    kinds.add(await kindOf(state));
  }
  t.same([...kinds], ['truncated'], 'libtiff order: header without an IFD yet');
  // A streaming RIFF writer leaves the size 0 until it closes the file.
  const webp = Buffer.from(await sharp(SOURCE).webp().toBuffer());
  webp.writeUInt32LE(0, 4);
  t.equal(await kindOf(webp), 'truncated', 'WebP with RIFF size 0');
  // A BMP whose writer leaves bfSize and biSizeImage 0: the rows still say how long it is.
  const { data, info } = await sharp(SOURCE).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  const bmp = bmpFile({ data, width: info.width, height: info.height });
  bmp.writeUInt32LE(0, 2);
  bmp.writeUInt32LE(0, 34);
  t.ok(bmpShort(bmp.subarray(0, bmp.length - 1)), 'BMP one byte short, sizes 0');
  t.notOk(bmpShort(bmp), 'BMP complete, sizes 0');
});

t.test('a truncated TIFF or WebP says so, and is retryable', async (t) => {
  const tiff = await sharp(SOURCE).tiff({ compression: 'lzw' }).toBuffer();
  const err = await decodeImage(tiff.subarray(0, tiff.length - 100), opts).catch((e: unknown) => e);
  t.type(err, DecodeError);
  t.match(err, { kind: 'truncated', retryable: true, message: /truncated .*tiff header/ });
});

t.test('a damaged file of full length stays a final failure', async (t) => {
  const src = readFileSync(SOURCE);
  // WebP: RIFF size intact, image data overwritten.
  const webp = Buffer.from(await sharp(src).webp().toBuffer());
  webp.fill(0x55, 30);
  t.equal(await kindOf(webp), 'unreadable', 'webp with garbage data');
  // TIFF: every pointer inside the file, compression scheme unknown to libtiff.
  const { data, info } = await sharp(src).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  const tiff = tiffFile(
    { data, width: info.width, height: info.height },
    { littleEndian: true, ifdFirst: true, compression: 54321 },
  );
  t.notOk(tiffPointsPastEnd(tiff));
  t.equal(await kindOf(tiff), 'unreadable', 'tiff with an unknown compression');
  // TIFF whose IFD chain loops back on itself: corrupt, not short.
  const looped = tiffFile(
    { data, width: info.width, height: info.height },
    { littleEndian: true, ifdFirst: true, nextIfd: 8 },
  );
  t.notOk(tiffPointsPastEnd(looped), 'a loop in the IFD chain is not truncation');
  // Random bytes after a valid signature prefix of full length are not "truncated" forever.
  t.equal(await kindOf(Buffer.from('not an image at all, just text\n')), 'unsupported');
});

t.test('structure checks on hand-made headers', async (t) => {
  t.ok(isSignaturePrefix(Buffer.from([0xff])), 'one byte of a JPEG');
  t.ok(isSignaturePrefix(Buffer.from('RIFF\x10\0\0\0WE', 'latin1')), 'a WebP header cut in its size');
  t.notOk(isSignaturePrefix(Buffer.from('RIFX', 'latin1')));
  t.notOk(isSignaturePrefix(Buffer.from('hello', 'latin1')));
  const riff = Buffer.alloc(20);
  riff.write('RIFF', 0, 'latin1');
  riff.writeUInt32LE(12, 4);
  t.notOk(riffShort(riff), 'RIFF size 12 + 8 = 20 bytes: complete');
  riff.writeUInt32LE(13, 4);
  t.ok(riffShort(riff), 'one byte missing');
  const bmp = Buffer.alloc(54);
  bmp.write('BM', 0, 'latin1');
  bmp.writeUInt32LE(54, 2);
  bmp.writeUInt32LE(40, 14); // BITMAPINFOHEADER
  t.notOk(bmpShort(bmp));
  bmp.writeUInt32LE(0, 2); // bfSize 0: the info header's image size counts
  bmp.writeUInt32LE(54, 10);
  bmp.writeUInt32LE(12, 34);
  t.ok(bmpShort(bmp));
  // The header's first IFD offset past the end.
  const header = Buffer.from('II*\0\x00\x10\x00\x00', 'latin1');
  t.ok(tiffPointsPastEnd(header));
});
