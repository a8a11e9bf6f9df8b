import t from 'tap';
import { rgbToLab8, rgbToAStar8 } from '../../src/segment/index.js';

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
