/** Dashboard media: encoded, stored in media.db and read back; the mask PNG written without libvips. */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import sharp from 'sharp';
import t from 'tap';
import type { Logger } from '../../src/log.js';
import {
  encodeMaskPng,
  encodeMedia,
  legacyMediaPath,
  MEDIA_DB_FILE,
  MediaStore,
} from '../../src/store/media.js';

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

t.test('encodeMedia + MediaStore: the three pictures of a result in media.db, read back', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'bw-media-test-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const media = new MediaStore(dir);
  t.teardown(() => media.close());
  const size = 16;
  const rgb = new Uint8Array(size * size * 3).fill(200);
  const mask = new Uint8Array(size * size);
  mask.fill(255, 0, 100);
  const src = { rgb, width: size, height: size, mask, segmented: rgb, maskSize: size };
  const check = async (id: number) => {
    const thumb = await media.read(id, 'thumb');
    t.equal(thumb?.type, 'image/jpeg');
    t.equal((await sharp(thumb!.bytes).metadata()).format, 'jpeg');
    t.equal((await sharp((await media.read(id, 'segmented'))!.bytes).metadata()).format, 'jpeg');
    const png = await media.read(id, 'mask');
    t.equal(png?.type, 'image/png');
    t.same([...(await decodeGrey(png!.bytes)).data], [...mask]);
  };
  media.put(7, await encodeMedia(src));
  await check(7);
  t.equal(await media.read(8, 'thumb'), null, 'a result without pictures has none');
  // A larger source (an offline caller's full-size RGB) is shrunk to fit 256 px.
  const big = { ...src, rgb: new Uint8Array(512 * 384 * 3).fill(90), width: 512, height: 384 };
  media.put(9, await encodeMedia(big));
  const thumb = await sharp((await media.read(9, 'thumb'))!.bytes).metadata();
  t.same([thumb.width, thumb.height], [256, 192], 'thumbnail fits 256 px');
  media.remove([7]);
  t.equal(await media.read(7, 'mask'), null, 'removed with its result');
  t.ok(await media.read(9, 'mask'), 'the others stay');
  media.upkeep();
});

t.test('pictures of results stored as files before media.db are read, and removed', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'bw-media-legacy-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const path = legacyMediaPath(dir, 1234, 'thumb');
  t.match(path, /media\/1\/1234\.thumb\.jpg$/);
  mkdirSync(dirname(path), { recursive: true });
  const jpeg = await sharp({ create: { width: 8, height: 8, channels: 3, background: '#c0c0c0' } })
    .jpeg()
    .toBuffer();
  writeFileSync(path, jpeg);
  const media = new MediaStore(dir);
  t.teardown(() => media.close());
  const read = await media.read(1234, 'thumb');
  t.same(read?.bytes, jpeg);
  t.equal(read?.type, 'image/jpeg');
  media.remove([1234]);
  // The delete runs in the background; a loaded machine may take longer than a fixed pause.
  for (let waited = 0; existsSync(path) && waited < 5000; waited += 20)
    await new Promise((resolve) => setTimeout(resolve, 20));
  t.notOk(existsSync(path), 'the file goes with its result');
});

t.test('a damaged media.db is moved aside and started afresh: pictures only, the daemon runs', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'bw-media-damaged-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, MEDIA_DB_FILE), Buffer.alloc(8192, 0x5a));
  const warnings: unknown[] = [];
  const log = { warn: (o: unknown) => warnings.push(o) } as unknown as Logger;
  const media = new MediaStore(dir, log);
  t.teardown(() => media.close());
  t.equal(warnings.length, 1, 'said so in the log');
  t.ok(
    readdirSync(dir).some((f) => f.startsWith(`${MEDIA_DB_FILE}.damaged-`)),
    'the damaged file kept for a look',
  );
  media.put(1, { thumb: Buffer.from('t'), mask: Buffer.from('m'), segmented: Buffer.from('s') });
  t.same((await media.read(1, 'mask'))?.bytes, Buffer.from('m'));
});
