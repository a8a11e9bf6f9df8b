/**
 * Test-time views: the model sees each image as it was taken and, turned and mirrored, up to
 * seven more times, and its probabilities are averaged. A blood smear has no up, down, left or
 * right (training draws the same flips and 90-degree turns), so every view is an equally valid
 * picture of the field; an answer that holds only in one orientation is luck, and averaging
 * removes it. model.json `views` names the count; the temperature and the B-ALL threshold were
 * fitted on the average of exactly those views (training/blastwatch_train/evaluate.py defines
 * the same views and order).
 *
 * View k of a C×H×W tensor, in this order: if k & 1, mirrored left–right; if k & 2, mirrored
 * top–bottom; if k & 4, transposed (rows become columns). The counts are 1 (as taken),
 * 2 (and mirrored), 4 (both mirrors) and 8 (the whole dihedral group: also the 90-degree turns).
 */

export const VIEW_COUNTS = [1, 2, 4, 8] as const;
export type ViewCount = (typeof VIEW_COUNTS)[number];

/** Side of the square tiles a transposed view is copied in: both tiles stay in the cache. */
const TILE = 16;

/**
 * Writes view `k` of the C×size×size tensor `src` into `dst` (same length, not `src` itself),
 * without allocating. Unturned views copy whole rows (reversed when mirrored left–right); turned
 * ones go tile by tile, because a column walk through a 224-wide plane misses the cache on
 * every read (three times slower, measured).
 */
export function writeView(src: Float32Array, dst: Float32Array, k: number, size: number): void {
  if (dst.length !== src.length) throw new RangeError('view: source and target lengths differ');
  const plane = size * size;
  if (src.length % plane !== 0)
    throw new RangeError(`view: length ${src.length} is not C x ${size} x ${size}`);
  const mirrorX = (k & 1) !== 0;
  const mirrorY = (k & 2) !== 0;
  const transpose = (k & 4) !== 0;
  for (let c = 0; c < src.length; c += plane) {
    if (!transpose) {
      for (let y = 0; y < size; y++) {
        const from = c + (mirrorY ? size - 1 - y : y) * size;
        const to = c + y * size;
        dst.set(src.subarray(from, from + size), to);
        if (mirrorX) dst.subarray(to, to + size).reverse();
      }
      continue;
    }
    // Transposed: out[y][x] = mirrored[x][y], where mirrored[r][q] = src[r'][q'] with
    // r' = mirrorY ? size-1-r : r and q' = mirrorX ? size-1-q : q.
    for (let y0 = 0; y0 < size; y0 += TILE) {
      const y1 = Math.min(size, y0 + TILE);
      for (let x0 = 0; x0 < size; x0 += TILE) {
        const x1 = Math.min(size, x0 + TILE);
        for (let y = y0; y < y1; y++) {
          const column = mirrorX ? size - 1 - y : y;
          const to = c + y * size;
          for (let x = x0; x < x1; x++)
            dst[to + x] = src[c + (mirrorY ? size - 1 - x : x) * size + column] as number;
        }
      }
    }
  }
}

/**
 * Rows per model run: the eight views go through the model as two runs of four. One run of
 * eight held 10 MB more of the daemon's memory (onnxruntime's working buffers grow with the
 * batch) for about a millisecond less per image; eight runs of one cost more time for no
 * further saving (docs/benchmark.md, "Eight views per image").
 */
export const ROWS_PER_RUN = 4;

/** The model runs for one image: [first view, number of views] each. */
export function viewRuns(count: ViewCount): Array<[number, number]> {
  const runs: Array<[number, number]> = [];
  for (let first = 0; first < count; first += ROWS_PER_RUN)
    runs.push([first, Math.min(ROWS_PER_RUN, count - first)]);
  return runs;
}

/** How view k > 4 follows from view 4: transpose(mirror-x(a)) = mirror-y(transpose(a)), etc. */
const FROM_VIEW_4: Record<number, number> = { 5: 2, 6: 1, 7: 3 };

/**
 * Writes views first … first+rows-1 of `src` one after another into `out` (rows × src.length
 * values). Views 5, 6 and 7 are view 4 mirrored when view 4 is among them, which costs row
 * copies instead of another walk across the columns.
 */
export function writeViewRange(
  src: Float32Array,
  out: Float32Array,
  first: number,
  rows: number,
  size: number,
): void {
  const n = src.length;
  if (out.length !== n * rows) throw new RangeError(`views: expected ${n * rows} values, got ${out.length}`);
  const at = (k: number): Float32Array => out.subarray((k - first) * n, (k - first + 1) * n);
  for (let k = first; k < first + rows; k++) {
    const viaFour = FROM_VIEW_4[k];
    if (k === 0) at(0).set(src);
    else if (viaFour !== undefined && first <= 4) writeView(at(4), at(k), viaFour, size);
    else writeView(src, at(k), k, size);
  }
}
