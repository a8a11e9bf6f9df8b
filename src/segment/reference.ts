/**
 * Reference implementations the tests use to prove the segmentation's fast paths equal: none of
 * this runs in the daemon, the CLI or the training cache (segmentImage works on the a* byte
 * with per-block counts and on run-length masks instead).
 *  - `rgbToLab8`: OpenCV's whole 8-bit RGB→CIELAB, from the same fixed-point tables as lab.ts
 *    (checked against cv2 on all 2^24 colours); `rgbToAStar8`: its a* byte alone, the plain
 *    table path that `rgbToAStar8Counted` must equal.
 *  - `fillHoles` / `removeSmallRegions` on pixel masks (run labelling with union-find), and
 *    `forEachComponent` (a per-pixel flood fill), matching the SciPy / scikit-image calls of
 *    the authors' code, against which `cleanUpRuns` is checked:
 *      fillHoles                              = scipy.ndimage.binary_fill_holes (4-connected):
 *                                               background not connected to the border becomes 1;
 *      removeSmallRegions(mask, 1, n, 0)      = skimage remove_small_objects(min_size=n,
 *                                               connectivity=1): components with size < n go;
 *      removeSmallRegions(mask, 0, n, 1)      = skimage remove_small_holes(area_threshold=n):
 *                                               background components smaller than n are filled,
 *                                               INCLUDING ones that touch the border.
 *  - `kmeansBytes`: K-means on plain bytes, counting them itself, for `kmeansBlocks`.
 */
import { kmeansBlocks, type KMeansOptions, type KMeansResult } from './kmeans1d.js';
import {
  A_OF_DIFFERENCE,
  A_TERMS,
  AB_OFFSET,
  CBRT_MAX,
  clampByte,
  L_SCALE,
  L_SHIFT,
  LAB_CBRT_TABLE,
  LAB_SHIFT,
  LAB_SHIFT2,
  ROUND_LAB,
  ROUND_LAB2,
  SRGB_GAMMA_TABLE,
  XYZ_COEFFS,
} from './lab.js';
import { findRoot } from './morphology.js';

const C0 = XYZ_COEFFS[0] ?? 0;
const C1 = XYZ_COEFFS[1] ?? 0;
const C2 = XYZ_COEFFS[2] ?? 0;
const C3 = XYZ_COEFFS[3] ?? 0;
const C4 = XYZ_COEFFS[4] ?? 0;
const C5 = XYZ_COEFFS[5] ?? 0;
const C6 = XYZ_COEFFS[6] ?? 0;
const C7 = XYZ_COEFFS[7] ?? 0;
const C8 = XYZ_COEFFS[8] ?? 0;

/**
 * Converts `pixelCount` RGB pixels (HWC bytes) into OpenCV 8-bit L*, a*, b* bytes
 * (L×255/100, a+128, b+128), written interleaved into `out`.
 */
export function rgbToLab8(
  rgb: Uint8Array,
  pixelCount: number,
  out: Uint8Array = new Uint8Array(pixelCount * 3),
): Uint8Array {
  const gamma = SRGB_GAMMA_TABLE;
  const cbrt = LAB_CBRT_TABLE;
  for (let p = 0, o = 0; p < pixelCount; p++, o += 3) {
    const r = gamma[rgb[o]!]!;
    const g = gamma[rgb[o + 1]!]!;
    const b = gamma[rgb[o + 2]!]!;
    const fX = cbrt[(r * C0 + g * C1 + b * C2 + ROUND_LAB) >> LAB_SHIFT]!;
    const fY = cbrt[(r * C3 + g * C4 + b * C5 + ROUND_LAB) >> LAB_SHIFT]!;
    const fZ = cbrt[(r * C6 + g * C7 + b * C8 + ROUND_LAB) >> LAB_SHIFT]!;
    out[o] = clampByte((L_SCALE * fY + L_SHIFT + ROUND_LAB2) >> LAB_SHIFT2);
    out[o + 1] = clampByte((500 * (fX - fY) + AB_OFFSET + ROUND_LAB2) >> LAB_SHIFT2);
    out[o + 2] = clampByte((200 * (fY - fZ) + AB_OFFSET + ROUND_LAB2) >> LAB_SHIFT2);
  }
  return out;
}

/**
 * Only the a* byte of `rgbToLab8` (the segmentation needs nothing else), one per pixel.
 * Hot path: table look-ups and integer arithmetic, no allocation.
 */
export function rgbToAStar8(
  rgb: Uint8Array,
  pixelCount: number,
  out: Uint8Array = new Uint8Array(pixelCount),
): Uint8Array {
  const terms = A_TERMS;
  const cbrt = LAB_CBRT_TABLE;
  const aOf = A_OF_DIFFERENCE;
  for (let p = 0, o = 0; p < pixelCount; p++, o += 3) {
    const r = rgb[o]!;
    const g = rgb[o + 1]!;
    const b = rgb[o + 2]!;
    const fX = cbrt[(terms[r]! + terms[256 + g]! + terms[512 + b]!) >> LAB_SHIFT]!;
    const fY = cbrt[(terms[768 + r]! + terms[1024 + g]! + terms[1280 + b]!) >> LAB_SHIFT]!;
    out[p] = aOf[fX - fY + CBRT_MAX]!;
  }
  return out;
}

/** Working buffers of the pixel-mask functions below. */
export interface PixelMorphologyScratch {
  visited: Uint8Array;
  queue: Int32Array;
  /** Runs of the labelled value: row, first column, one past the last column; union-find parent. */
  runRow: Int32Array;
  runStart: Int32Array;
  runEnd: Int32Array;
  runParent: Int32Array;
  /** Per root run: component size and whether it touches the image border. */
  rootSize: Int32Array;
  rootBorder: Uint8Array;
  /** Per pixel: which image edges it lies on (bit flags below), so the flood fill never divides. */
  edges: Uint8Array;
  edgesWidth: number;
  edgesHeight: number;
}

export function createPixelMorphologyScratch(pixelCount: number): PixelMorphologyScratch {
  const maxRuns = pixelCount + 1; // a run has at least one pixel
  return {
    visited: new Uint8Array(pixelCount),
    queue: new Int32Array(pixelCount),
    runRow: new Int32Array(maxRuns),
    runStart: new Int32Array(maxRuns),
    runEnd: new Int32Array(maxRuns),
    runParent: new Int32Array(maxRuns),
    rootSize: new Int32Array(maxRuns),
    rootBorder: new Uint8Array(maxRuns),
    edges: new Uint8Array(pixelCount),
    edgesWidth: 0,
    edgesHeight: 0,
  };
}

const LEFT = 1;
const RIGHT = 2;
const TOP = 4;
const BOTTOM = 8;

function edgeFlags(scratch: PixelMorphologyScratch, width: number, height: number): Uint8Array {
  if (scratch.edgesWidth === width && scratch.edgesHeight === height) return scratch.edges;
  const edges = scratch.edges;
  edges.fill(0, 0, width * height);
  for (let x = 0; x < width; x++) {
    edges[x] = edges[x]! | TOP;
    edges[(height - 1) * width + x] = edges[(height - 1) * width + x]! | BOTTOM;
  }
  for (let y = 0; y < height; y++) {
    edges[y * width] = edges[y * width]! | LEFT;
    edges[y * width + width - 1] = edges[y * width + width - 1]! | RIGHT;
  }
  scratch.edgesWidth = width;
  scratch.edgesHeight = height;
  return edges;
}

/**
 * Visits every 4-connected component of pixels equal to `value`; for each, calls
 * `onComponent(start, end, touchesBorder)` where `scratch.queue[start..end)` lists its pixels.
 * Returns the number of components.
 */
export function forEachComponent(
  mask: Uint8Array,
  width: number,
  height: number,
  value: number,
  scratch: PixelMorphologyScratch,
  onComponent: (start: number, end: number, touchesBorder: boolean) => void,
): number {
  const n = width * height;
  const { visited, queue } = scratch;
  const edges = edgeFlags(scratch, width, height);
  visited.fill(0, 0, n);
  let tail = 0;
  let count = 0;
  for (let seed = 0; seed < n; seed++) {
    if (visited[seed] !== 0 || mask[seed] !== value) continue;
    const start = tail;
    let head = tail;
    queue[tail++] = seed;
    visited[seed] = 1;
    let touchesBorder = false;
    while (head < tail) {
      const p = queue[head++]!;
      const e = edges[p]!;
      if (e !== 0) touchesBorder = true;
      if ((e & LEFT) === 0) {
        const q = p - 1;
        if (visited[q] === 0 && mask[q] === value) {
          visited[q] = 1;
          queue[tail++] = q;
        }
      }
      if ((e & RIGHT) === 0) {
        const q = p + 1;
        if (visited[q] === 0 && mask[q] === value) {
          visited[q] = 1;
          queue[tail++] = q;
        }
      }
      if ((e & TOP) === 0) {
        const q = p - width;
        if (visited[q] === 0 && mask[q] === value) {
          visited[q] = 1;
          queue[tail++] = q;
        }
      }
      if ((e & BOTTOM) === 0) {
        const q = p + width;
        if (visited[q] === 0 && mask[q] === value) {
          visited[q] = 1;
          queue[tail++] = q;
        }
      }
    }
    count++;
    onComponent(start, tail, touchesBorder);
  }
  return count;
}

/**
 * Labels the 4-connected components of pixels equal to `value` on runs. Afterwards, for every
 * run r < returned count, `findRoot(runParent, r)` is its component's root, and rootSize /
 * rootBorder hold each root's pixel count and border contact.
 */
function labelRuns(
  mask: Uint8Array,
  width: number,
  height: number,
  value: number,
  s: PixelMorphologyScratch,
): number {
  const { runRow, runStart, runEnd, runParent, rootSize, rootBorder } = s;
  let runs = 0;
  let prevFirst = 0; // runs of the previous row: [prevFirst, rowFirst)
  for (let y = 0; y < height; y++) {
    const rowFirst = runs;
    const base = y * width;
    let x = 0;
    while (x < width) {
      if (mask[base + x] !== value) {
        x++;
        continue;
      }
      const start = x;
      while (x < width && mask[base + x] === value) x++;
      runRow[runs] = y;
      runStart[runs] = start;
      runEnd[runs] = x;
      runParent[runs] = runs;
      runs++;
    }
    // Join with overlapping runs of the previous row (4-connectivity: shared columns).
    let p = prevFirst;
    for (let r = rowFirst; r < runs; r++) {
      const rs = runStart[r]!;
      const re = runEnd[r]!;
      while (p < rowFirst && runEnd[p]! <= rs) p++;
      for (let q = p; q < rowFirst && runStart[q]! < re; q++) {
        const a = findRoot(runParent, r);
        const b = findRoot(runParent, q);
        if (a !== b) {
          if (a < b) runParent[b] = a;
          else runParent[a] = b;
        }
      }
    }
    prevFirst = rowFirst;
  }
  for (let r = 0; r < runs; r++) {
    rootSize[r] = 0;
    rootBorder[r] = 0;
  }
  const lastRow = height - 1;
  for (let r = 0; r < runs; r++) {
    const root = findRoot(runParent, r);
    rootSize[root] = rootSize[root]! + runEnd[r]! - runStart[r]!;
    const y = runRow[r]!;
    if (y === 0 || y === lastRow || runStart[r] === 0 || runEnd[r] === width) rootBorder[root] = 1;
  }
  return runs;
}

/** scipy.ndimage.binary_fill_holes: 0-regions not touching the border become 1. */
export function fillHoles(
  mask: Uint8Array,
  width: number,
  height: number,
  scratch: PixelMorphologyScratch,
): void {
  const runs = labelRuns(mask, width, height, 0, scratch);
  const { runParent, runRow, runStart, runEnd, rootBorder } = scratch;
  for (let r = 0; r < runs; r++) {
    if (rootBorder[findRoot(runParent, r)] === 0) {
      const base = runRow[r]! * width;
      mask.fill(1, base + runStart[r]!, base + runEnd[r]!);
    }
  }
}

/**
 * Sets every 4-connected component of `value` smaller than `minSize` pixels to `replacement`.
 * Returns how many components of `value` remain.
 */
export function removeSmallRegions(
  mask: Uint8Array,
  width: number,
  height: number,
  value: number,
  minSize: number,
  replacement: number,
  scratch: PixelMorphologyScratch,
): number {
  const runs = labelRuns(mask, width, height, value, scratch);
  const { runParent, runRow, runStart, runEnd, rootSize } = scratch;
  let kept = 0;
  for (let r = 0; r < runs; r++) {
    const root = findRoot(runParent, r);
    if (rootSize[root]! >= minSize) {
      if (root === r) kept++;
      continue;
    }
    const base = runRow[r]! * width;
    mask.fill(replacement, base + runStart[r]!, base + runEnd[r]!);
  }
  return kept;
}

/**
 * K-means on the bytes `data[0..n)` without a caller-side count: counts them per block itself
 * and runs `kmeansBlocks` (pixel order matters for the k-means++ sampling, exactly as in
 * sklearn). `histogram` must be the 256-bin histogram of those bytes.
 */
export function kmeansBytes(
  data: Uint8Array,
  n: number,
  histogram: Uint32Array,
  opts: KMeansOptions,
): KMeansResult {
  let lowest = 0;
  while (lowest < 255 && histogram[lowest] === 0) lowest++;
  let highest = 255;
  while (highest > lowest && histogram[highest] === 0) highest--;
  // The per-block counts kmeansBlocks expects (even pixels in the first table, odd in the second).
  const blockCounts = new Uint8Array(Math.ceil(n / 256) * 512);
  for (let i = 0; i < n; i++) {
    const at = (i >> 8) * 512 + (i & 1) * 256 + data[i]!;
    blockCounts[at] = blockCounts[at]! + 1;
  }
  return kmeansBlocks(data, n, blockCounts, lowest, highest, opts);
}
