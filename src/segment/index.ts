/**
 * The seed paper's segmentation (Hosseini et al. 2023), as its authors' code runs it:
 *   RGB → CIELAB (OpenCV 8-bit) → a* → K-means (K=7) on a*, each pixel replaced by its cluster
 *   centre, truncated to a byte → threshold (> 141) → fill holes → remove objects < 200 px →
 *   fill holes < 250 px → mask applied to the RGB image.
 * One implementation, used by the daemon, the CLI and the training cache alike. Areas are given
 * for a 224×224 image and scale with the pixel count.
 */
import { kmeansBlocks, createKMeansScratch } from './kmeans1d.js';
import type { KMeansScratch } from './kmeans1d.js';
import { cleanUpRuns, createMorphologyScratch, runsFromBytes } from './morphology.js';
import type { MorphologyScratch, RunMask } from './morphology.js';
import { rgbToAStar8Counted } from './lab.js';

// The stages on their own; the per-pixel references the tests check them against are in
// reference.ts, which nothing here imports.
export { rgbToAStar8Counted } from './lab.js';
export { kmeansBlocks } from './kmeans1d.js';

export interface SegmentParams {
  /** Number of K-means clusters on a*. */
  k: number;
  /** A pixel is foreground when its cluster centre, truncated to a byte, is > threshold. */
  threshold: number;
  /** Foreground components smaller than this (at referenceSize²) are removed. */
  minObjectArea: number;
  /** Background components smaller than this (at referenceSize²) are filled. */
  minHoleArea: number;
  /** Side of the square image the two areas were chosen for. */
  referenceSize: number;
  /** Lloyd iterations per K-means run (sklearn max_iter). */
  maxIterations: number;
  /** K-means restarts; the lowest-inertia run wins (sklearn n_init; 10 in the authors' sklearn). */
  nInit: number;
  /** numpy RandomState seed of the k-means++ initialisation (sklearn random_state; authors: 0). */
  seed?: number;
}

export const DEFAULT_SEGMENT_PARAMS: Readonly<SegmentParams> = Object.freeze({
  k: 7,
  threshold: 141,
  minObjectArea: 200,
  minHoleArea: 250,
  referenceSize: 224,
  maxIterations: 300,
  nInit: 10,
  seed: 0,
});

export interface SegmentationStats {
  /** Share of pixels in the final mask, 0..1. */
  foregroundFraction: number;
  /** 4-connected foreground components in the final mask. */
  componentCount: number;
  /** Smallest a* byte that lands in a foreground cluster (256 when none does). */
  aStarThreshold: number;
  /** K-means centres on the a* byte scale, ascending. */
  clusterCentres: number[];
}

export interface Segmentation {
  /** 0 or 255 per pixel, width*height. */
  mask: Uint8Array;
  /** RGB HWC, background pixels set to 0. */
  segmented: Uint8Array;
  stats: SegmentationStats;
}

/** Reusable buffers: pass the same scratch to segment many images without allocating. */
export interface SegmentScratch {
  pixelCount: number;
  aStar: Uint8Array;
  foregroundOfValue: Uint8Array;
  histogram: Uint32Array;
  /** a* counts per block of 256 pixels, rgbToAStar8Counted's layout (512 entries per block). */
  blockCounts: Uint8Array;
  centreOfValue: Float64Array;
  kmeans: KMeansScratch;
  morphology: MorphologyScratch;
}

export function createSegmentScratch(pixelCount: number): SegmentScratch {
  return {
    pixelCount,
    aStar: new Uint8Array(pixelCount),
    foregroundOfValue: new Uint8Array(256),
    histogram: new Uint32Array(256),
    blockCounts: new Uint8Array(Math.ceil(pixelCount / 256) * 512),
    centreOfValue: new Float64Array(256),
    kmeans: createKMeansScratch(pixelCount),
    morphology: createMorphologyScratch(pixelCount),
  };
}

export function resolveSegmentParams(params?: Partial<SegmentParams>): SegmentParams {
  const p: SegmentParams = { ...DEFAULT_SEGMENT_PARAMS, ...stripUndefined(params ?? {}) };
  if (!Number.isInteger(p.k) || p.k < 1 || p.k > 256)
    throw new RangeError(`segment k must be an integer 1..256, got ${p.k}`);
  if (!(p.threshold >= 0 && p.threshold <= 255))
    throw new RangeError(`segment threshold must be 0..255, got ${p.threshold}`);
  if (!(p.minObjectArea >= 0) || !(p.minHoleArea >= 0)) throw new RangeError('segment areas must be >= 0');
  if (!(p.referenceSize > 0)) throw new RangeError('segment referenceSize must be > 0');
  if (!Number.isInteger(p.maxIterations) || p.maxIterations < 1)
    throw new RangeError('segment maxIterations must be an integer >= 1');
  if (!Number.isInteger(p.nInit) || p.nInit < 1)
    throw new RangeError('segment nInit must be an integer >= 1');
  if (p.seed !== undefined && (!Number.isInteger(p.seed) || p.seed < 0 || p.seed > 0xffffffff))
    throw new RangeError('segment seed must be an integer 0..2^32-1');
  return p;
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  const out: Partial<T> = {};
  for (const [key, v] of Object.entries(o)) if (v !== undefined) (out as Record<string, unknown>)[key] = v;
  return out;
}

/**
 * Segments one RGB image (HWC bytes, width*height*3). Deterministic: the same pixels always
 * give the same mask. `scratch` (from createSegmentScratch) avoids per-call allocation of the
 * working buffers; the returned mask and segmented image are always fresh arrays.
 */
export function segmentImage(
  rgb: Uint8Array,
  width: number,
  height: number,
  params?: Partial<SegmentParams>,
  scratch?: SegmentScratch,
): Segmentation {
  const p = resolveSegmentParams(params);
  const n = width * height;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width <= 0 || height <= 0) {
    throw new RangeError(`segmentImage: bad size ${width}x${height}`);
  }
  if (rgb.length < n * 3)
    throw new RangeError(`segmentImage: expected ${n * 3} RGB bytes, got ${rgb.length}`);
  const s = scratch && scratch.pixelCount >= n ? scratch : createSegmentScratch(n);

  // 1. a* byte of OpenCV's 8-bit CIELAB, counted per block of 256 pixels (for the K-means
  //    sampling search; the image histogram follows from those counts).
  const blockCounts = s.blockCounts;
  blockCounts.fill(0, 0, Math.ceil(n / 256) * 512);
  const aStar = s.aStar;
  const range = rgbToAStar8Counted(rgb, n, aStar, blockCounts);
  const lowest = range & 255;
  const highest = range >> 8;
  const hist = s.histogram;

  // 2. K-means on a*; a value is foreground when trunc(its cluster centre) > threshold
  //    (the authors cast the float centres with astype(np.uint8), which truncates).
  const { centres, centreOfValue } = kmeansBlocks(
    aStar,
    n,
    blockCounts,
    lowest,
    highest,
    { k: p.k, nInit: p.nInit, maxIterations: p.maxIterations, seed: p.seed ?? 0 },
    s.kmeans,
    s.centreOfValue,
    hist,
  );
  const foregroundOfValue = s.foregroundOfValue;
  let aStarThreshold = 256;
  for (let v = 0; v < 256; v++) {
    const c = centreOfValue[v]!;
    const foreground = !Number.isNaN(c) && Math.trunc(c) > p.threshold;
    foregroundOfValue[v] = foreground ? 1 : 0;
    if (foreground && v < aStarThreshold) aStarThreshold = v;
  }

  // 3. Clean-up, in the authors' order, with areas scaled to this resolution, on runs of the
  //    binary image (one pass over the pixels; the steps themselves only touch runs).
  const areaScale = n / (p.referenceSize * p.referenceSize);
  const minObject = Math.round(p.minObjectArea * areaScale);
  const minHole = Math.round(p.minHoleArea * areaScale);
  // K-means clusters on a line are intervals, so the foreground values that occur are usually
  // exactly those ≥ aStarThreshold; then a compare replaces the table look-up per pixel.
  let isThreshold = true;
  for (let v = lowest; v <= highest; v++) {
    if (hist[v]! > 0 && foregroundOfValue[v] !== (v >= aStarThreshold ? 1 : 0)) isThreshold = false;
  }
  const runs = runsFromBytes(
    aStar,
    foregroundOfValue,
    width,
    height,
    s.morphology,
    isThreshold ? aStarThreshold : undefined,
  );
  const componentCount = cleanUpRuns(runs, width, height, minObject, minHole);

  // 4. Mask (0/255) and the mask applied to the RGB image.
  const { mask, segmented, foreground } = paintRuns(runs, rgb, width, height);
  return {
    mask,
    segmented,
    stats: {
      foregroundFraction: foreground / n,
      componentCount,
      aStarThreshold,
      clusterCentres: Array.from(centres).sort((a, b) => a - b),
    },
  };
}

/**
 * The mask (0/255) and the mask applied to the RGB image, written run by run with native fills:
 * the segmented image starts as a copy of the RGB bytes and background runs are zeroed.
 */
function paintRuns(
  runs: RunMask,
  rgb: Uint8Array,
  width: number,
  height: number,
): { mask: Uint8Array; segmented: Uint8Array; foreground: number } {
  const n = width * height;
  const mask = new Uint8Array(n);
  const segmented = new Uint8Array(n * 3);
  // set(), not slice(): a Node Buffer's slice() is a view and would zero the caller's pixels.
  segmented.set(rgb.length === n * 3 ? rgb : rgb.subarray(0, n * 3));
  let foreground = 0;
  const { rowFirst, start, end, value } = runs;
  for (let y = 0; y < height; y++) {
    const base = y * width;
    for (let r = rowFirst[y]!, last = rowFirst[y + 1]!; r < last; r++) {
      const from = base + start[r]!;
      const to = base + end[r]!;
      if (value[r] === 1) {
        mask.fill(255, from, to);
        foreground += to - from;
      } else {
        segmented.fill(0, from * 3, to * 3);
      }
    }
  }
  return { mask, segmented, foreground };
}
