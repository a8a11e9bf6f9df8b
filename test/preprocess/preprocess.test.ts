import type { CacheManifest } from '../../src/preprocess/training-cache.js';
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { prepareImage, toTensorNCHW } from '../../src/preprocess/index.js';
import { runCli } from '../helpers/cli.js';

const samplesDir = fileURLToPath(new URL('../fixtures/samples', import.meta.url));
const truncated = fileURLToPath(new URL('../fixtures/bad/truncated.jpg', import.meta.url));
const CLASSES = ['Benign', 'Early', 'Pre', 'Pro'];
const opts = { size: 224, limitInputPixels: 10_000_000 };

t.test(
  'byte / 255 as float32 is bit-identical to numpy/torch float32 division for all 256 bytes',
  async (t) => {
    const all = Uint8Array.from({ length: 256 }, (_, i) => i);
    const tensor = toTensorNCHW(
      new Uint8Array([...all, ...all, ...all].map((_, i) => Math.floor(i / 3))),
      256,
      1,
    );
    t.equal(
      new Uint32Array(new Float32Array([tensor[1]!]).buffer)[0],
      0x3b808081,
      '1/255 has float32 bits 0x3b808081',
    );
    let python: Buffer | undefined;
    try {
      python = execFileSync('/usr/bin/python3', [
        '-c',
        'import sys, numpy as np; sys.stdout.buffer.write((np.arange(256, dtype=np.uint8).astype(np.float32) / np.float32(255)).tobytes())',
      ]);
    } catch (err) {
      t.fail(`/usr/bin/python3 with numpy is needed for this check: ${(err as Error).message}`);
      return;
    }
    const expected = new Float32Array(python.buffer, python.byteOffset, 256);
    let mismatches = 0;
    for (let v = 0; v < 256; v++) if (tensor[v] !== expected[v]) mismatches++; // channel 0 plane
    t.equal(mismatches, 0);
  },
);

t.test('toTensorNCHW lays out planes R, G, B', async (t) => {
  // 2×1 image: pixel 0 = (10, 20, 30), pixel 1 = (40, 50, 60)
  const out = toTensorNCHW(new Uint8Array([10, 20, 30, 40, 50, 60]), 2, 1);
  t.same(
    Array.from(out, (v) => Math.round(v * 255)),
    [10, 40, 20, 50, 30, 60],
  );
  const reuse = new Float32Array(6);
  t.equal(toTensorNCHW(new Uint8Array(6), 2, 1, reuse), reuse, 'writes into a given buffer');
  t.throws(() => toTensorNCHW(new Uint8Array(5), 2, 1), /expected 6 bytes/);
});

t.test('prepareImage: tensors of the decoded and segmented images, timings', async (t) => {
  const file = path.join(samplesDir, 'Benign', readdirSync(path.join(samplesDir, 'Benign')).sort()[0]!);
  const p = await prepareImage(file, opts);
  t.same(Array.from(p.original), Array.from(toTensorNCHW(p.decoded.rgb, 224, 224)));
  t.same(Array.from(p.segmented), Array.from(toTensorNCHW(p.segmentation.segmented, 224, 224)));
  const plane = 224 * 224;
  let leaks = 0;
  for (let i = 0; i < plane; i++) {
    if (
      p.segmentation.mask[i] === 0 &&
      (p.segmented[i] !== 0 || p.segmented[plane + i] !== 0 || p.segmented[2 * plane + i] !== 0)
    )
      leaks++;
  }
  t.equal(leaks, 0, 'background is 0 in the segmented tensor');
  t.ok(p.timings.decodeMs >= 0 && p.timings.segmentMs >= 0 && p.timings.tensorMs >= 0);
});

t.test('preprocess-dataset on the samples writes the cache the training side reads', async (t) => {
  const work = mkdtempSync(path.join(tmpdir(), 'blastwatch-cache-'));
  t.teardown(() => rmSync(work, { recursive: true, force: true }));
  const data = path.join(work, 'data');
  for (const cls of CLASSES) {
    mkdirSync(path.join(data, cls), { recursive: true });
    for (const f of readdirSync(path.join(samplesDir, cls)))
      copyFileSync(path.join(samplesDir, cls, f), path.join(data, cls, f));
  }
  copyFileSync(truncated, path.join(data, 'Pre', 'zz-still-being-written.jpg'));
  const out = path.join(work, 'cache');
  const res = await runCli(['preprocess-dataset', '--data', data, '--out', out]);
  t.equal(res.code, 0, res.stderr);
  const summary = JSON.parse(res.stdout.trim().split('\n').pop()!) as { count: number; failed: number };
  t.match(summary, { count: 12, failed: 1 });
  t.match(res.stderr, /13\/13 images, 1 failed/);
  t.same(
    readdirSync(out).sort(),
    ['manifest.json', 'original.u8', 'segmented.u8'],
    'no temporary files left',
  );

  const manifest = JSON.parse(readFileSync(path.join(out, 'manifest.json'), 'utf8')) as CacheManifest;
  t.match(manifest, {
    format: 'blastwatch-cache/1',
    size: 224,
    layout: 'NCHW uint8; model input = value / 255',
    classes: CLASSES,
    count: 12,
  });
  t.match(manifest.segmentation, { k: 7, threshold: 141, minObjectArea: 200, minHoleArea: 250 });
  t.same(
    manifest.failed.map((f) => f.path),
    ['Pre/zz-still-being-written.jpg'],
  );
  t.match(manifest.failed[0]!.error, /^truncated: /);
  const expectedOrder = CLASSES.flatMap((cls) =>
    readdirSync(path.join(samplesDir, cls))
      .sort()
      .map((f) => `${cls}/${f}`),
  );
  t.same(
    manifest.items.map((i) => i.path),
    expectedOrder,
    'class order, then sorted file names',
  );

  const original = readFileSync(path.join(out, 'original.u8'));
  const segmented = readFileSync(path.join(out, 'segmented.u8'));
  const itemBytes = 3 * 224 * 224;
  t.equal(original.length, 12 * itemBytes, 'N×3×224×224 bytes');
  t.equal(segmented.length, 12 * itemBytes);
  for (const item of manifest.items) {
    const src = path.join(data, item.path);
    t.equal(item.label, CLASSES.indexOf(item.class));
    t.equal(item.sha256, createHash('sha256').update(readFileSync(src)).digest('hex'));
    t.same([item.source_width, item.source_height], [224, 224]);
    const p = await prepareImage(src, opts);
    t.equal(item.foreground_fraction, p.segmentation.stats.foregroundFraction);
    const o = original.subarray(item.index * itemBytes, (item.index + 1) * itemBytes);
    const s = segmented.subarray(item.index * itemBytes, (item.index + 1) * itemBytes);
    let bad = 0;
    for (let i = 0; i < itemBytes; i++) {
      if (Math.fround(o[i]! / 255) !== p.original[i] || Math.round(p.original[i]! * 255) !== o[i]) bad++;
      if (Math.fround(s[i]! / 255) !== p.segmented[i]) bad++;
    }
    t.equal(bad, 0, `${item.path}: cache bytes / 255 == prepareImage tensors`);
  }
});

t.test(
  'preprocess-dataset --limit takes the first N of each class; missing class folder is a clear error',
  async (t) => {
    const work = mkdtempSync(path.join(tmpdir(), 'blastwatch-cache-'));
    t.teardown(() => rmSync(work, { recursive: true, force: true }));
    const res = await runCli([
      'preprocess-dataset',
      '--data',
      samplesDir,
      '--out',
      path.join(work, 'c'),
      '--limit',
      '1',
    ]);
    t.equal(res.code, 0, res.stderr);
    const manifest = JSON.parse(readFileSync(path.join(work, 'c', 'manifest.json'), 'utf8')) as {
      items: { path: string }[];
    };
    t.same(
      manifest.items.map((i) => i.path.split('/')[0]),
      CLASSES,
    );
    mkdirSync(path.join(work, 'partial', 'Benign'), { recursive: true });
    const bad = await runCli([
      'preprocess-dataset',
      '--data',
      path.join(work, 'partial'),
      '--out',
      path.join(work, 'd'),
    ]);
    t.equal(bad.code, 1);
    t.match(bad.stderr, /class folder missing: .*Early/);
    t.notMatch(bad.stderr, /\n\s+at /, 'no stack trace');
    const usage = await runCli(['preprocess-dataset', '--out', path.join(work, 'd')]);
    t.equal(usage.code, 2);
    t.match(usage.stderr, /--data DIR is required/);
  },
);
