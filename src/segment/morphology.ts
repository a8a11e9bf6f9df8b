/**
 * Binary morphology on 0/1 byte masks with 4-connectivity, matching the SciPy / scikit-image
 * calls of the authors' code:
 *  - `fillHoles`          = scipy.ndimage.binary_fill_holes (default structure: 4-connected):
 *                           background regions not connected to the image border become 1;
 *  - `removeSmallRegions(mask, 1, n, 0)` = skimage remove_small_objects(min_size=n),
 *                           connectivity=1 (4-neighbour), removes components with size < n;
 *  - `removeSmallRegions(mask, 0, n, 1)` = skimage remove_small_holes(area_threshold=n): fills
 *                           background components smaller than n, INCLUDING ones that touch the
 *                           border (skimage inverts the mask and removes small objects).
 * The clean-up steps label components on runs (horizontal spans) with union-find: one pass over
 * the pixels to find the runs, then work proportional to the number of runs — several times
 * faster than a per-pixel flood fill. segmentImage goes further with `runsFromBytes` +
 * `cleanUpRuns`: the pixels are split into runs once and all three steps (and the component
 * count) work on that run-length image, never touching pixels again. `forEachComponent`
 * (per-pixel flood fill with an explicit queue) gives the same components pixel by pixel; the
 * tests check all three paths agree.
 */

export interface MorphologyScratch {
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
  /** Per pixel: which image edges it lies on (bit flags below), so the hot loop never divides. */
  edges: Uint8Array;
  edgesWidth: number;
  edgesHeight: number;
  /** The run-length mask of `cleanUpRuns`: every row split into runs of alternating 0/1. */
  runs: RunMask;
}

/**
 * A binary image as runs: row y is covered by runs rowFirst[y] .. rowFirst[y+1]−1, in order,
 * adjacent runs of different value. parent / size / border: union-find of one labelling pass.
 */
export interface RunMask {
  count: number;
  rowFirst: Int32Array;
  start: Int32Array;
  end: Int32Array;
  value: Uint8Array;
  parent: Int32Array;
  size: Int32Array;
  border: Uint8Array;
}

const ALL_TOP_BITS = 0x80808080 | 0; // as the int32 that bitwise operators produce

const LEFT = 1;
const RIGHT = 2;
const TOP = 4;
const BOTTOM = 8;

export function createMorphologyScratch(pixelCount: number): MorphologyScratch {
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
    runs: {
      count: 0,
      rowFirst: new Int32Array(pixelCount + 1),
      start: new Int32Array(maxRuns),
      end: new Int32Array(maxRuns),
      value: new Uint8Array(maxRuns),
      parent: new Int32Array(maxRuns),
      size: new Int32Array(maxRuns),
      border: new Uint8Array(maxRuns),
    },
  };
}

function edgeFlags(scratch: MorphologyScratch, width: number, height: number): Uint8Array {
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
  scratch: MorphologyScratch,
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

function findRoot(parent: Int32Array, i: number): number {
  let root = i;
  while (parent[root] !== root) root = parent[root]!;
  while (parent[i] !== root) {
    const next = parent[i]!;
    parent[i] = root;
    i = next;
  }
  return root;
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
  s: MorphologyScratch,
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
export function fillHoles(mask: Uint8Array, width: number, height: number, scratch: MorphologyScratch): void {
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
  scratch: MorphologyScratch,
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
 * Splits `bytes` (width×height) into runs of `binaryOf[byte]` (0 or 1) per row. This is the
 * only per-pixel pass of the clean-up; `cleanUpRuns` then works on runs alone. When
 * `threshold` is given the caller guarantees binaryOf[byte] === (byte >= threshold ? 1 : 0)
 * for every byte that occurs, and the compare replaces the table look-up.
 */
export function runsFromBytes(
  bytes: Uint8Array,
  binaryOf: Uint8Array,
  width: number,
  height: number,
  scratch: MorphologyScratch,
  threshold?: number,
): RunMask {
  const runs = scratch.runs;
  const { rowFirst, start, end, value } = runs;
  // The word path needs whole, aligned words per row and a threshold inside 1..255.
  const words =
    threshold !== undefined &&
    threshold >= 1 &&
    threshold <= 255 &&
    width % 4 === 0 &&
    bytes.byteOffset % 4 === 0
      ? new Uint32Array(bytes.buffer, bytes.byteOffset, (width * height) >> 2)
      : undefined;
  const add = ((256 - (threshold ?? 0)) & 0xff) * 0x01010101;
  const addLow = add & 0x7f7f7f7f;
  const addTop = add & 0x80808080;
  let count = 0;
  for (let y = 0; y < height; y++) {
    rowFirst[y] = count;
    const base = y * width;
    let current = binaryOf[bytes[base]!]!;
    let from = 0;
    if (words !== undefined) {
      // Four pixels per step: a word whose bytes all lie on the current side is skipped whole
      // (runs average ~50 pixels); a mixed word is walked byte by byte.
      const wordBase = base >> 2;
      for (let x = 0; x < width; x += 4) {
        const w = words[wordBase + (x >> 2)]!;
        // Bit 7 of each byte of `ge`: byte + (256 − threshold) carries out, i.e. byte ≥ threshold
        // (carry = majority of the two top bits and the carry into bit 7; no cross-byte carries).
        const carryIn = ((w & 0x7f7f7f7f) + addLow) & 0x80808080;
        const top = w & 0x80808080;
        const ge = (top & addTop) | ((top | addTop) & carryIn);
        if (ge === (current === 1 ? ALL_TOP_BITS : 0)) continue;
        for (let i = x; i < x + 4; i++) {
          const v = bytes[base + i]! >= threshold! ? 1 : 0;
          if (v !== current) {
            start[count] = from;
            end[count] = i;
            value[count] = current;
            count++;
            current = v;
            from = i;
          }
        }
      }
    } else if (threshold !== undefined) {
      for (let x = 1; x < width; x++) {
        const v = bytes[base + x]! >= threshold ? 1 : 0;
        if (v !== current) {
          start[count] = from;
          end[count] = x;
          value[count] = current;
          count++;
          current = v;
          from = x;
        }
      }
    } else {
      for (let x = 1; x < width; x++) {
        const v = binaryOf[bytes[base + x]!]!;
        if (v !== current) {
          start[count] = from;
          end[count] = x;
          value[count] = current;
          count++;
          current = v;
          from = x;
        }
      }
    }
    start[count] = from;
    end[count] = width;
    value[count] = current;
    count++;
  }
  rowFirst[height] = count;
  runs.count = count;
  return runs;
}

/** Merges neighbouring runs of equal value (after some runs changed value), in place. */
function mergeRuns(runs: RunMask, height: number): void {
  const { rowFirst, start, end, value } = runs;
  let out = 0;
  let first = rowFirst[0]!;
  for (let y = 0; y < height; y++) {
    const last = rowFirst[y + 1]!;
    rowFirst[y] = out;
    for (let r = first; r < last; r++) {
      if (out > rowFirst[y]! && value[out - 1] === value[r]) {
        end[out - 1] = end[r]!;
      } else {
        start[out] = start[r]!;
        end[out] = end[r]!;
        value[out] = value[r]!;
        out++;
      }
    }
    first = last;
  }
  rowFirst[height] = out;
  runs.count = out;
}

/**
 * Labels the 4-connected components of runs of `target`: two runs in neighbouring rows join
 * when they share a column. Afterwards findRoot(parent, r) is a run's component, and size /
 * border hold each root's pixel count and image-border contact. Returns the component count.
 */
function labelRunComponents(runs: RunMask, width: number, height: number, target: number): number {
  const { rowFirst, start, end, value, parent, size, border } = runs;
  const count = runs.count;
  for (let r = 0; r < count; r++) parent[r] = r;
  for (let y = 1; y < height; y++) {
    // Both rows cover [0, width): sweeping them together, the current pair always overlaps.
    let p = rowFirst[y - 1]!;
    const pLast = rowFirst[y]!;
    let r = pLast;
    const rLast = rowFirst[y + 1]!;
    while (p < pLast && r < rLast) {
      if (value[p] === target && value[r] === target) {
        const a = findRoot(parent, p);
        const b = findRoot(parent, r);
        if (a !== b) {
          if (a < b) parent[b] = a;
          else parent[a] = b;
        }
      }
      const pe = end[p]!;
      const re = end[r]!;
      if (pe <= re) p++;
      if (re <= pe) r++;
    }
  }
  for (let r = 0; r < count; r++) {
    size[r] = 0;
    border[r] = 0;
  }
  let components = 0;
  const lastRow = height - 1;
  for (let y = 0; y < height; y++) {
    const rowBorder = y === 0 || y === lastRow;
    for (let r = rowFirst[y]!, last = rowFirst[y + 1]!; r < last; r++) {
      if (value[r] !== target) continue;
      const root = findRoot(parent, r);
      if (root === r) components++;
      size[root] = size[root]! + end[r]! - start[r]!;
      if (rowBorder || start[r] === 0 || end[r] === width) border[root] = 1;
    }
  }
  return components;
}

/**
 * The segmentation's clean-up on a run mask, equal to
 *   fillHoles; removeSmallRegions(1, minObject, 0); removeSmallRegions(0, minHole, 1)
 * on the pixels, and returns the number of 4-connected foreground components left. Works on
 * runs only (a few thousand per image instead of tens of thousands of pixels per step).
 */
export function cleanUpRuns(
  runs: RunMask,
  width: number,
  height: number,
  minObject: number,
  minHole: number,
): number {
  // binary_fill_holes: background components that do not touch the border become foreground.
  flipComponents(runs, width, height, 0, Infinity, true);
  // remove_small_objects: foreground components smaller than minObject become background.
  if (minObject > 0) flipComponents(runs, width, height, 1, minObject, false);
  // remove_small_holes: background components smaller than minHole (border or not) are filled.
  if (minHole > 0) flipComponents(runs, width, height, 0, minHole, false);
  return labelRunComponents(runs, width, height, 1);
}

/**
 * Labels the components of runs with value `v` and flips every run of a component smaller than
 * `minArea` (and, with `interiorOnly`, not touching the border) to the other value; merges the
 * runs again when any changed.
 */
function flipComponents(
  runs: RunMask,
  width: number,
  height: number,
  v: 0 | 1,
  minArea: number,
  interiorOnly: boolean,
): void {
  const { parent, size, border, value } = runs;
  labelRunComponents(runs, width, height, v);
  let changed = false;
  for (let r = 0; r < runs.count; r++) {
    if (value[r] !== v) continue;
    const root = findRoot(parent, r);
    if (size[root]! < minArea && (!interiorOnly || border[root] === 0)) {
      value[r] = 1 - v;
      changed = true;
    }
  }
  if (changed) mergeRuns(runs, height);
}
