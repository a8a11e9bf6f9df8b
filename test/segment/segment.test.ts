import t from 'tap';
import { fileURLToPath } from 'node:url';
import { decodeImage } from '../../src/decode/index.js';
import {
  DEFAULT_SEGMENT_PARAMS,
  createSegmentScratch,
  resolveSegmentParams,
  segmentImage,
} from '../../src/segment/index.js';

const sample = fileURLToPath(new URL('../fixtures/samples/Pre/WBC-Malignant-Pre-001.jpg', import.meta.url));
const opts = { size: 224, limitInputPixels: 10_000_000 };

t.test('defaults are the paper constants', async (t) => {
  t.match(DEFAULT_SEGMENT_PARAMS, {
    k: 7,
    threshold: 141,
    minObjectArea: 200,
    minHoleArea: 250,
    referenceSize: 224,
  });
});

t.test('mask is 0/255 and the segmented image is the RGB image under the mask, 0 elsewhere', async (t) => {
  const { rgb } = await decodeImage(sample, opts);
  const seg = segmentImage(rgb, 224, 224);
  t.equal(seg.mask.length, 224 * 224);
  t.equal(seg.segmented.length, 224 * 224 * 3);
  let fg = 0;
  let wrong = 0;
  for (let i = 0; i < seg.mask.length; i++) {
    const m = seg.mask[i]!;
    if (m !== 0 && m !== 255) wrong++;
    for (let c = 0; c < 3; c++) {
      const expected = m === 255 ? rgb[i * 3 + c] : 0;
      if (seg.segmented[i * 3 + c] !== expected) wrong++;
    }
    if (m === 255) fg++;
  }
  t.equal(wrong, 0);
  t.ok(fg >= 200, `a blast cell is found (${fg} px; objects < 200 px are removed)`);
  t.ok(fg < 224 * 224 * 0.6, 'most of the smear is background');
  t.equal(seg.stats.foregroundFraction, fg / (224 * 224));
  t.ok(seg.stats.componentCount >= 1);
  t.equal(seg.stats.clusterCentres.length, 7);
  t.ok(seg.stats.aStarThreshold > 128 && seg.stats.aStarThreshold <= 256);
});

t.test('deterministic, and a reused scratch gives identical results', async (t) => {
  const { rgb } = await decodeImage(sample, opts);
  const scratch = createSegmentScratch(224 * 224);
  const a = segmentImage(rgb, 224, 224, undefined, scratch);
  const other = await decodeImage(
    fileURLToPath(new URL('../fixtures/samples/Benign/WBC-Benign-001.jpg', import.meta.url)),
    opts,
  );
  segmentImage(other.rgb, 224, 224, undefined, scratch);
  const b = segmentImage(rgb, 224, 224, undefined, scratch);
  t.same(Buffer.from(a.mask), Buffer.from(b.mask));
  t.same(a.stats, b.stats);
});

t.test('a uniform image has no foreground', async (t) => {
  const rgb = new Uint8Array(64 * 64 * 3).fill(200);
  const seg = segmentImage(rgb, 64, 64);
  t.equal(seg.stats.foregroundFraction, 0);
  t.equal(seg.stats.componentCount, 0);
});

t.test(
  'areas scale with the pixel count: a small object survives at 2× size only if big enough',
  async (t) => {
    // 448×448 image, one magenta disc of ~600 px on white: at 448² the minimum object area is
    // 4 × 200 = 800 px, so the disc is removed; at 224² (same disc) it is kept.
    const make = (size: number): Uint8Array => {
      const rgb = new Uint8Array(size * size * 3).fill(235);
      const r = Math.sqrt(600 / Math.PI);
      for (let y = 0; y < size; y++)
        for (let x = 0; x < size; x++)
          if ((x - size / 2) ** 2 + (y - size / 2) ** 2 <= r * r) rgb.set([160, 40, 170], (y * size + x) * 3);
      return rgb;
    };
    t.ok(segmentImage(make(224), 224, 224).stats.foregroundFraction > 0, 'kept at 224²');
    t.equal(segmentImage(make(448), 448, 448).stats.foregroundFraction, 0, 'removed at 448²');
  },
);

t.test('bad parameters are refused with a clear message', async (t) => {
  t.throws(() => resolveSegmentParams({ k: 0 }), /k must be/);
  t.throws(() => resolveSegmentParams({ threshold: 300 }), /threshold/);
  t.throws(() => segmentImage(new Uint8Array(10), 4, 4), /expected 48 RGB bytes/);
});
