import t from 'tap';
import { rgbToAStar8Counted } from '../../src/segment/index.js';
import { rgbToAStar8, rgbToLab8 } from '../../src/segment/reference.js';

/**
 * Published CIELAB (D65) values of sRGB primaries, white and black (e.g. Lindbloom's calculator,
 * CIE 15:2004 formulas), mapped to OpenCV's 8-bit scale: L·255/100, a+128, b+128.
 * The exhaustive comparison with cv2 on all 2^24 colours lives in reference.test.ts.
 */
const published: [string, [number, number, number], [number, number, number]][] = [
  ['white', [255, 255, 255], [100, 0, 0]],
  ['black', [0, 0, 0], [0, 0, 0]],
  ['red', [255, 0, 0], [53.2408, 80.0925, 67.2032]],
  ['green', [0, 255, 0], [87.7347, -86.1827, 83.1793]],
  ['blue', [0, 0, 255], [32.297, 79.1875, -107.8602]],
  ['mid grey', [119, 119, 119], [50.0, 0, 0]],
];

for (const [name, rgb, lab] of published) {
  t.test(`${name} → OpenCV 8-bit CIELAB`, async (t) => {
    const out = rgbToLab8(new Uint8Array(rgb), 1);
    const expected = [(lab[0] * 255) / 100, lab[1] + 128, lab[2] + 128];
    for (let c = 0; c < 3; c++) {
      t.ok(
        Math.abs(out[c]! - expected[c]!) <= 1,
        `channel ${'Lab'[c]}: got ${out[c]}, published ${expected[c]!.toFixed(2)}`,
      );
    }
  });
}

t.test('a*-only path equals the a* of the full conversion', async (t) => {
  const n = 4096;
  const rgb = new Uint8Array(n * 3);
  let seed = 12345;
  for (let i = 0; i < rgb.length; i++) {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    rgb[i] = seed >>> 24;
  }
  const lab = rgbToLab8(rgb, n);
  const a = rgbToAStar8(rgb, n);
  let mismatches = 0;
  for (let i = 0; i < n; i++) if (a[i] !== lab[i * 3 + 1]) mismatches++;
  t.equal(mismatches, 0);
});

t.test('a*-only paths equal the full conversion on all 2^24 colours, with exact block counts', async (t) => {
  // rgbToAStar8 folds the fixed-point steps into tables; this pins it to rgbToLab8, which
  // reference.test.ts checks against cv2 on the same 2^24 colours.
  const n = 1 << 24;
  const rgb = new Uint8Array(n * 3);
  for (let v = 0; v < n; v++) {
    rgb[v * 3] = v >> 16;
    rgb[v * 3 + 1] = (v >> 8) & 255;
    rgb[v * 3 + 2] = v & 255;
  }
  const lab = rgbToLab8(rgb, n);
  const plain = rgbToAStar8(rgb, n);
  const counted = new Uint8Array(n);
  const blockCounts = new Uint8Array((n / 256) * 512);
  const range = rgbToAStar8Counted(rgb, n, counted, blockCounts);
  let mismatches = 0;
  let lowest = 255;
  let highest = 0;
  for (let i = 0; i < n; i++) {
    const a = lab[i * 3 + 1]!;
    if (plain[i] !== a || counted[i] !== a) mismatches++;
    lowest = Math.min(lowest, a);
    highest = Math.max(highest, a);
  }
  t.equal(mismatches, 0, 'a* identical for every colour');
  t.equal(range, lowest | (highest << 8), 'reported a* range');
  let countMismatches = 0;
  const expected = new Uint32Array(256);
  for (let block = 0; block < n / 256; block++) {
    // Even pixels in the first 256 entries of the block's 512, odd pixels in the second.
    for (const lane of [0, 1]) {
      expected.fill(0);
      for (let i = block * 256 + lane; i < block * 256 + 256; i += 2) expected[counted[i]!]!++;
      for (let v = 0; v < 256; v++) {
        if (blockCounts[block * 512 + lane * 256 + v] !== expected[v]) countMismatches++;
      }
    }
  }
  t.equal(countMismatches, 0, 'per-block a* histograms');
});

t.test('block counts of a partial last block', async (t) => {
  const n = 301; // one full block and 45 pixels (an odd count: the last pixel has no pair)
  const rgb = Uint8Array.from({ length: n * 3 }, (_, i) => (i * 37) & 255);
  const out = new Uint8Array(n);
  const blockCounts = new Uint8Array(1024);
  rgbToAStar8Counted(rgb, n, out, blockCounts);
  const sum = (from: number, to: number): number => blockCounts.subarray(from, to).reduce((s, v) => s + v, 0);
  t.equal(sum(0, 256), 128);
  t.equal(sum(256, 512), 128);
  t.equal(sum(512, 768), 23);
  t.equal(sum(768, 1024), 22);
  t.same(out, rgbToAStar8(rgb, n));
  // A view that does not start on a 4-byte boundary takes the byte path: same results.
  const unaligned = new Uint8Array(n * 3 + 1).subarray(1);
  unaligned.set(rgb);
  const out2 = new Uint8Array(n);
  const blockCounts2 = new Uint8Array(1024);
  t.equal(
    rgbToAStar8Counted(unaligned, n, out2, blockCounts2),
    rgbToAStar8Counted(rgb, n, out, blockCounts.fill(0)),
  );
  t.same(out2, out);
  t.same(blockCounts2, blockCounts);
});
