/** The JPEG header reader must agree with libvips' metadata wherever it gives an answer. */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import t from 'tap';
import { readJpegHeader } from '../../src/decode/jpeg-header.js';

const SAMPLES = 'test/fixtures/samples';

async function libvips(bytes: Buffer) {
  const m = await sharp(bytes).metadata();
  return { width: m.width, height: m.height, orientation: m.orientation ?? 1 };
}

t.test('size and orientation as libvips reads them: the samples, every orientation, no EXIF', async (t) => {
  const samples = (readdirSync(SAMPLES, { recursive: true }) as string[])
    .filter((f) => /\.jpe?g$/i.test(f))
    .map((f) => readFileSync(join(SAMPLES, f)));
  t.ok(samples.length > 0, 'samples found');
  const rgb = Buffer.alloc(60 * 40 * 3, 128);
  const plain = await sharp(rgb, { raw: { width: 60, height: 40, channels: 3 } })
    .jpeg()
    .toBuffer();
  const oriented = await Promise.all(
    [1, 2, 3, 4, 5, 6, 7, 8].map((orientation) =>
      sharp(rgb, { raw: { width: 60, height: 40, channels: 3 } })
        .jpeg()
        .withMetadata({ orientation })
        .toBuffer(),
    ),
  );
  for (const [i, bytes] of [...samples, plain, ...oriented].entries()) {
    const header = readJpegHeader(bytes);
    t.ok(header, `image ${i}: read`);
    t.same(header, await libvips(bytes), `image ${i}: same as libvips`);
  }
  t.same(readJpegHeader(plain), { width: 60, height: 40, orientation: 1 }, 'no EXIF: orientation 1');
  t.equal(readJpegHeader(oriented[5]!)?.orientation, 6);
});

t.test('unsure: null, so that libvips is asked', async (t) => {
  const jpeg = await sharp(Buffer.alloc(30 * 20 * 3, 90), { raw: { width: 30, height: 20, channels: 3 } })
    .jpeg()
    .withMetadata({ orientation: 3 })
    .toBuffer();
  t.ok(readJpegHeader(jpeg));
  t.equal(readJpegHeader(Buffer.from('not a jpeg')), null, 'not a JPEG');
  t.equal(readJpegHeader(jpeg.subarray(0, 40)), null, 'cut before the frame header');
  const exif = jpeg.indexOf('Exif\0\0', 0, 'latin1');
  t.ok(exif > 0, 'has an EXIF block');
  const badTiff = Buffer.from(jpeg);
  badTiff.write('XX', exif + 6, 'latin1'); // neither II nor MM
  t.equal(readJpegHeader(badTiff), null, 'malformed EXIF');
  const badOrientation = Buffer.from(jpeg);
  const tiff = exif + 6;
  const little = badOrientation[tiff] === 0x49;
  const ifd = tiff + (little ? badOrientation.readUInt32LE(tiff + 4) : badOrientation.readUInt32BE(tiff + 4));
  const entries = little ? badOrientation.readUInt16LE(ifd) : badOrientation.readUInt16BE(ifd);
  let found = false;
  for (let k = 0; k < entries; k++) {
    const e = ifd + 2 + k * 12;
    const tag = little ? badOrientation.readUInt16LE(e) : badOrientation.readUInt16BE(e);
    if (tag !== 0x0112) continue;
    if (little) badOrientation.writeUInt16LE(9, e + 8);
    else badOrientation.writeUInt16BE(9, e + 8);
    found = true;
  }
  t.ok(found, 'orientation tag found');
  t.equal(readJpegHeader(badOrientation), null, 'orientation out of range');
});
