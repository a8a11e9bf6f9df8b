/** Dashboard media: the mask PNG written without libvips must read back as the same 0/255 mask. */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import t from 'tap';
import { encodeMaskPng, mediaDir, mediaPath, writeMedia } from '../../src/store/media.js';

async function decodeGrey(png: Buffer): Promise<{ data: Buffer; width: number; height: number }> {
  const { data, info } = await sharp(png).extractChannel(0).raw().toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height };
}

t.test('encodeMaskPng: a 1-bit PNG that decodes to the same 0/255 pixels', async (t) => {
  for (const [w, h] of [
    [224, 224],
    [13, 7],
    [1, 1],
  ] as const) {
    const mask = new Uint8Array(w * h);
    for (let i = 0; i < mask.length; i++) mask[i] = (i * 7919) % 5 < 2 ? 255 : 0;
    const png = encodeMaskPng(mask, w, h);
    t.equal(png.subarray(1, 4).toString(), 'PNG', `${w}x${h}: PNG signature`);
    const meta = await sharp(png).metadata();
    t.same([meta.format, meta.width, meta.height], ['png', w, h]);
    const got = await decodeGrey(png);
    t.same([...got.data], [...mask], `${w}x${h}: same pixels`);
  }
  t.throws(() => encodeMaskPng(new Uint8Array(10), 3, 3), RangeError);
});

t.test('writeMedia writes all three files, and again after the folder was removed', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'bw-media-test-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const size = 16;
  const rgb = new Uint8Array(size * size * 3).fill(200);
  const mask = new Uint8Array(size * size);
  mask.fill(255, 0, 100);
  const src = { rgb, width: size, height: size, mask, segmented: rgb, maskSize: size };
  const check = async (id: number) => {
    t.equal((await sharp(readFileSync(mediaPath(dir, id, 'thumb'))).metadata()).format, 'jpeg');
    t.equal((await sharp(readFileSync(mediaPath(dir, id, 'segmented'))).metadata()).format, 'jpeg');
    t.same([...(await decodeGrey(readFileSync(mediaPath(dir, id, 'mask')))).data], [...mask]);
  };
  await writeMedia(dir, 7, src);
  await check(7);
  // Same folder (id / 1000), already known to exist: removed under the writer, it comes back.
  rmSync(mediaDir(dir, 8), { recursive: true, force: true });
  await writeMedia(dir, 8, src);
  await check(8);
  // A larger source (an offline caller's full-size RGB) is shrunk to fit 256 px.
  const big = { ...src, rgb: new Uint8Array(512 * 384 * 3).fill(90), width: 512, height: 384 };
  await writeMedia(dir, 9, big);
  const thumb = await sharp(readFileSync(mediaPath(dir, 9, 'thumb'))).metadata();
  t.same([thumb.width, thumb.height], [256, 192], 'thumbnail fits 256 px');
});
