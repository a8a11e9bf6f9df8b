import t from 'tap';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { decodeImage } from '../../src/decode/index.js';
import { segmentImage } from '../../src/segment/index.js';
import { runCli } from '../helpers/cli.js';

const samples = fileURLToPath(new URL('../fixtures/samples/Early', import.meta.url));
const truncated = fileURLToPath(new URL('../fixtures/bad/truncated.jpg', import.meta.url));

t.test('segment writes mask and segmented PNGs and one JSON line per image', async (t) => {
  const out = mkdtempSync(path.join(tmpdir(), 'blastwatch-seg-'));
  t.teardown(() => rmSync(out, { recursive: true, force: true }));
  const res = await runCli(['segment', samples, truncated, '--out', out]);
  t.equal(res.code, 1, 'exit 1: one input failed');
  const lines = res.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  t.equal(lines.length, 4);
  t.match(lines[3], { ok: false, error: { kind: 'truncated', retryable: true } });
  const names = readdirSync(samples).sort();
  t.same(
    readdirSync(out).sort(),
    names.flatMap((n) => [`${path.parse(n).name}.mask.png`, `${path.parse(n).name}.segmented.png`]).sort(),
  );
  for (const [i, name] of names.entries()) {
    const line = lines[i] as { ok: boolean; stats: { foregroundFraction: number }; ms: number };
    t.equal(line.ok, true);
    t.ok(line.ms >= 0);
    const stem = path.parse(name).name;
    const maskFile = path.join(out, `${stem}.mask.png`);
    t.match(
      await sharp(maskFile).metadata(),
      { width: 224, height: 224, channels: 1, depth: 'uchar' },
      '8-bit greyscale PNG',
    );
    // (sharp's raw() would expand grey to RGB: take the one channel.)
    const mask = await sharp(maskFile).extractChannel(0).raw().toBuffer({ resolveWithObject: true });
    const { rgb } = await decodeImage(path.join(samples, name), { size: 224, limitInputPixels: 1e7 });
    const expected = segmentImage(rgb, 224, 224);
    t.ok(Buffer.from(expected.mask).equals(mask.data), `${stem}: mask PNG equals segmentImage()`);
    t.equal(line.stats.foregroundFraction, expected.stats.foregroundFraction);
    const seg = await sharp(path.join(out, `${stem}.segmented.png`))
      .raw()
      .toBuffer({ resolveWithObject: true });
    t.match(seg.info, { width: 224, height: 224, channels: 3 });
    t.ok(Buffer.from(expected.segmented).equals(seg.data), `${stem}: segmented PNG equals segmentImage()`);
  }
});

t.test('segment usage errors', async (t) => {
  const noOut = await runCli(['segment', samples]);
  t.equal(noOut.code, 2);
  t.match(noOut.stderr, /--out DIR is required/);
  const missing = await runCli(['segment', '/nonexistent/x.jpg', '--out', tmpdir()]);
  t.equal(missing.code, 1);
  t.match(missing.stderr, /no such file or directory/);
});
