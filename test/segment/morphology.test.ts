import t from 'tap';
import {
  createPixelMorphologyScratch,
  fillHoles,
  forEachComponent,
  removeSmallRegions,
} from '../../src/segment/reference.js';
import { cleanUpRuns, createMorphologyScratch, runsFromBytes } from '../../src/segment/morphology.js';

const W = 40;
const H = 30;

function blank(): Uint8Array {
  return new Uint8Array(W * H);
}
function rect(mask: Uint8Array, x0: number, y0: number, w: number, h: number, v = 1): void {
  for (let y = y0; y < y0 + h; y++) for (let x = x0; x < x0 + w; x++) mask[y * W + x] = v;
}
function count(mask: Uint8Array, v = 1): number {
  let n = 0;
  for (const x of mask) if (x === v) n++;
  return n;
}

t.test('fillHoles fills enclosed background, not background touching the border', async (t) => {
  const m = blank();
  rect(m, 5, 5, 10, 10); // ring with a 4×4 hole
  rect(m, 8, 8, 4, 4, 0);
  rect(m, 0, 20, 10, 10); // block at the border with a notch open to the border
  rect(m, 0, 24, 3, 2, 0);
  fillHoles(m, W, H, createPixelMorphologyScratch(W * H));
  t.equal(m[10 * W + 10], 1, 'enclosed hole filled');
  t.equal(m[24 * W + 0], 0, 'notch open to the border stays background');
});

t.test('fillHoles uses 4-connectivity for the background (diagonal gaps do not leak)', async (t) => {
  const m = blank();
  // A diamond-ish outline whose only openings are diagonal: background inside is enclosed for
  // 4-connectivity, exactly as scipy's default structure treats it.
  for (const [x, y] of [
    [10, 5],
    [11, 6],
    [12, 7],
    [11, 8],
    [10, 9],
    [9, 8],
    [8, 7],
    [9, 6],
  ] as const)
    m[y * W + x] = 1;
  fillHoles(m, W, H, createPixelMorphologyScratch(W * H));
  t.equal(m[7 * W + 10], 1, 'centre pixel filled');
});

t.test('removeSmallRegions(1 → 0) removes objects smaller than the minimum, keeps larger', async (t) => {
  const m = blank();
  rect(m, 2, 2, 5, 5); // 25 px
  rect(m, 20, 2, 6, 5); // 30 px
  rect(m, 2, 15, 3, 3); // 9 px
  m[20 * W + 30] = 1; // 1 px
  m[21 * W + 31] = 1; // diagonal neighbour: a separate 4-connected object
  const kept = removeSmallRegions(m, W, H, 1, 26, 0, createPixelMorphologyScratch(W * H));
  t.equal(kept, 1);
  t.equal(count(m), 30);
  t.equal(m[4 * W + 22], 1, 'large object kept');
  t.equal(m[4 * W + 4], 0, '25 px object (< 26) removed');
});

t.test('an object of exactly the minimum size is kept (skimage: size < min_size removed)', async (t) => {
  const m = blank();
  rect(m, 2, 2, 5, 5);
  removeSmallRegions(m, W, H, 1, 25, 0, createPixelMorphologyScratch(W * H));
  t.equal(count(m), 25);
});

t.test(
  'removeSmallRegions(0 → 1) fills small holes, including ones at the border (skimage semantics)',
  async (t) => {
    const m = blank();
    m.fill(1);
    rect(m, 10, 10, 3, 3, 0); // 9 px interior hole
    rect(m, 0, 0, 2, 2, 0); // 4 px corner gap touching the border
    rect(m, 20, 0, 20, 30, 0); // big background area
    removeSmallRegions(m, W, H, 0, 10, 1, createPixelMorphologyScratch(W * H));
    t.equal(m[11 * W + 11], 1, 'small interior hole filled');
    t.equal(m[0], 1, 'small border-touching background filled as well');
    t.equal(m[15 * W + 30], 0, 'large background kept');
  },
);

t.test('forEachComponent reports sizes and border contact', async (t) => {
  const m = blank();
  rect(m, 0, 0, 3, 3);
  rect(m, 10, 10, 4, 2);
  const seen: [number, boolean][] = [];
  const n = forEachComponent(m, W, H, 1, createPixelMorphologyScratch(W * H), (s, e, border) =>
    seen.push([e - s, border]),
  );
  t.equal(n, 2);
  t.same(seen, [
    [9, true],
    [8, false],
  ]);
});

t.test('run-based clean-up equals a per-pixel flood fill on random masks', async (t) => {
  // Reference implementations on forEachComponent (pixel flood fill), same semantics.
  const floodRemove = (
    m: Uint8Array,
    w: number,
    h: number,
    value: number,
    min: number,
    repl: number,
  ): number => {
    const scratch = createPixelMorphologyScratch(w * h);
    let kept = 0;
    forEachComponent(m, w, h, value, scratch, (s, e) => {
      if (e - s >= min) kept++;
      else for (let i = s; i < e; i++) m[scratch.queue[i]!] = repl;
    });
    return kept;
  };
  const floodFill = (m: Uint8Array, w: number, h: number): void => {
    const scratch = createPixelMorphologyScratch(w * h);
    forEachComponent(m, w, h, 0, scratch, (s, e, border) => {
      if (!border) for (let i = s; i < e; i++) m[scratch.queue[i]!] = 1;
    });
  };
  let seed = 99;
  const rand = (): number => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed / 2 ** 32;
  };
  let mismatches = 0;
  for (let trial = 0; trial < 60; trial++) {
    const w = 5 + Math.floor(rand() * 60);
    const h = 1 + Math.floor(rand() * 50);
    const density = 0.2 + rand() * 0.6;
    const base = Uint8Array.from({ length: w * h }, () => (rand() < density ? 1 : 0));
    const a = base.slice();
    const b = base.slice();
    const scratch = createPixelMorphologyScratch(w * h);
    fillHoles(a, w, h, scratch);
    floodFill(b, w, h);
    const minObj = Math.floor(rand() * 12);
    const keptA = removeSmallRegions(a, w, h, 1, minObj, 0, scratch);
    const keptB = floodRemove(b, w, h, 1, minObj, 0);
    const minHole = Math.floor(rand() * 12);
    removeSmallRegions(a, w, h, 0, minHole, 1, scratch);
    floodRemove(b, w, h, 0, minHole, 1);
    if (keptA !== keptB || !Buffer.from(a).equals(Buffer.from(b))) mismatches++;
  }
  t.equal(mismatches, 0);
});

t.test('run-level clean-up (segmentImage) equals the three pixel steps on random masks', async (t) => {
  let seed = 4242;
  const rand = (): number => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed / 2 ** 32;
  };
  const identity = Uint8Array.from({ length: 256 }, (_, v) => (v === 1 ? 1 : 0));
  let mismatches = 0;
  let filled = 0;
  let removed = 0;
  for (let trial = 0; trial < 300; trial++) {
    const w = 1 + Math.floor(rand() * 70);
    const h = 1 + Math.floor(rand() * 50);
    const density = 0.2 + rand() * 0.6;
    // Blobs rather than salt-and-pepper now and then, so holes and large components occur.
    const blobby = rand() < 0.5;
    const base = new Uint8Array(w * h);
    for (let i = 0; i < base.length; i++) {
      base[i] = blobby && i > w && rand() < 0.7 ? base[i - w]! : rand() < density ? 1 : 0;
    }
    const minObj = Math.floor(rand() * 15);
    const minHole = Math.floor(rand() * 15);
    const expected = base.slice();
    const scratch = createPixelMorphologyScratch(w * h);
    fillHoles(expected, w, h, scratch);
    removeSmallRegions(expected, w, h, 1, minObj, 0, scratch);
    removeSmallRegions(expected, w, h, 0, minHole, 1, scratch);
    const expectedCount = removeSmallRegions(expected.slice(), w, h, 1, 0, 1, scratch);

    const runs = runsFromBytes(base, identity, w, h, createMorphologyScratch(w * h));
    const count = cleanUpRuns(runs, w, h, minObj, minHole);
    const actual = new Uint8Array(w * h);
    for (let y = 0; y < h; y++) {
      for (let r = runs.rowFirst[y]!; r < runs.rowFirst[y + 1]!; r++) {
        if (r > runs.rowFirst[y]! && runs.value[r] === runs.value[r - 1]) mismatches++; // not merged
        actual.fill(runs.value[r]!, y * w + runs.start[r]!, y * w + runs.end[r]!);
      }
    }
    if (count !== expectedCount || !Buffer.from(actual).equals(Buffer.from(expected))) mismatches++;
    for (let i = 0; i < base.length; i++) {
      if (base[i] === 0 && expected[i] === 1) filled++;
      if (base[i] === 1 && expected[i] === 0) removed++;
    }
  }
  t.equal(mismatches, 0);
  t.ok(
    filled > 0 && removed > 0,
    `the masks exercised both directions (${filled} filled, ${removed} removed)`,
  );
});

t.test('runsFromBytes: a threshold gives the same runs as the equivalent table', async (t) => {
  let seed = 7;
  const next = (): number => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed >>> 24;
  };
  let cases = 0;
  // Widths that allow the four-pixels-per-step path (multiple of 4) and one that does not;
  // thresholds at the ends of the byte range and where the top bit flips; long and short runs.
  for (const w of [61, 64, 224]) {
    for (const threshold of [1, 127, 128, 129, 137, 255]) {
      for (const runny of [false, true]) {
        const h = 23;
        const bytes = new Uint8Array(w * h);
        for (let i = 0; i < bytes.length; i++) {
          bytes[i] = runny && i > 0 && next() < 230 ? bytes[i - 1]! : next();
        }
        const table = Uint8Array.from({ length: 256 }, (_, v) => (v >= threshold ? 1 : 0));
        const a = runsFromBytes(bytes, table, w, h, createMorphologyScratch(w * h));
        const b = runsFromBytes(bytes, table, w, h, createMorphologyScratch(w * h), threshold);
        // A view that does not start on a word boundary takes the byte path.
        const shifted = new Uint8Array(bytes.length + 1).subarray(1);
        shifted.set(bytes);
        const c = runsFromBytes(shifted, table, w, h, createMorphologyScratch(w * h), threshold);
        for (const r of [b, c]) {
          t.equal(r.count, a.count, `w ${w}, threshold ${threshold}: run count`);
          t.same(r.start.subarray(0, r.count), a.start.subarray(0, a.count));
          t.same(r.end.subarray(0, r.count), a.end.subarray(0, a.count));
          t.same(r.value.subarray(0, r.count), a.value.subarray(0, a.count));
          t.same(r.rowFirst.subarray(0, h + 1), a.rowFirst.subarray(0, h + 1));
        }
        cases++;
      }
    }
  }
  t.equal(cases, 36);
});
