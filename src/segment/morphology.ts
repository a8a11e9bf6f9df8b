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
 * Components are found by flood fill with an explicit Int32Array queue: no recursion, no
 * per-pixel allocation; the queue doubles as the list of each component's pixels.
 */

export interface MorphologyScratch {
  visited: Uint8Array;
  queue: Int32Array;
  /** Per pixel: which image edges it lies on (bit flags below), so the hot loop never divides. */
  edges: Uint8Array;
  edgesWidth: number;
  edgesHeight: number;
}

const LEFT = 1;
const RIGHT = 2;
const TOP = 4;
const BOTTOM = 8;

export function createMorphologyScratch(pixelCount: number): MorphologyScratch {
  return {
    visited: new Uint8Array(pixelCount),
    queue: new Int32Array(pixelCount),
    edges: new Uint8Array(pixelCount),
    edgesWidth: 0,
    edgesHeight: 0,
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

/** scipy.ndimage.binary_fill_holes: 0-regions not touching the border become 1. */
export function fillHoles(mask: Uint8Array, width: number, height: number, scratch: MorphologyScratch): void {
  const queue = scratch.queue;
  forEachComponent(mask, width, height, 0, scratch, (start, end, touchesBorder) => {
    if (touchesBorder) return;
    for (let i = start; i < end; i++) mask[queue[i]!] = 1;
  });
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
  const queue = scratch.queue;
  let kept = 0;
  forEachComponent(mask, width, height, value, scratch, (start, end) => {
    if (end - start >= minSize) {
      kept++;
      return;
    }
    for (let i = start; i < end; i++) mask[queue[i]!] = replacement;
  });
  return kept;
}
