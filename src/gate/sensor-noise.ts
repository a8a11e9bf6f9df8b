/**
 * A camera's sensor noise, and the red-cell size measured past it. Noise pushes single pixels
 * across the red-cell layer's edge and the nuclei's cut, and the layer's pattern spectrum then
 * loses area at small radii: with a noise of σ 8 levels a window of fields read as a lower
 * magnification about one time in five (models/MODEL_CARD.md, "Watched between checks"). A
 * field noisier than any training field is therefore median-filtered (3 × 3, per channel) before
 * its red cells are measured; every other field, the training ones included, is measured as it
 * is, so the training range and a lower magnification's reading stay what they were.
 *
 * The noise figure is Immerkær's (J. Immerkær, "Fast noise variance estimation", Computer Vision
 * and Image Understanding 64(2), 1996): the mean absolute response of the grey picture to the
 * Laplacian difference mask [1 −2 1; −2 4 −2; 1 −2 1], × √(π/2) / 6, which cancels most image
 * structure and leaves the noise's σ.
 */
import { redCellRadiusOf } from './red-cell-size.js';

/** One grey picture per field size (measuring never yields, so it is shared). */
const greyBySize = new Map<number, Float64Array>();

/** Immerkær's estimate of the noise σ (grey levels) of an interleaved RGB field; 0 below 3 × 3. */
export function sensorNoiseSigma(rgb: Uint8Array, width: number, height: number): number {
  if (width < 3 || height < 3) return 0;
  const n = width * height;
  let g = greyBySize.get(n);
  if (!g) {
    g = new Float64Array(n);
    greyBySize.set(n, g);
  }
  // Grey once per pixel (ITU-R BT.601 weights), not once per mask tap.
  for (let p = 0, o = 0; p < n; p++, o += 3)
    g[p] = 0.299 * rgb[o]! + 0.587 * rgb[o + 1]! + 0.114 * rgb[o + 2]!;
  let sum = 0;
  for (let y = 1; y < height - 1; y++)
    for (let x = 1; x < width - 1; x++) {
      const p = y * width + x;
      const up = p - width;
      const down = p + width;
      const response =
        g[up - 1]! -
        2 * g[up]! +
        g[up + 1]! -
        2 * g[p - 1]! +
        4 * g[p]! -
        2 * g[p + 1]! +
        g[down - 1]! -
        2 * g[down]! +
        g[down + 1]!;
      sum += Math.abs(response);
    }
  return (Math.sqrt(Math.PI / 2) * sum) / (6 * (width - 2) * (height - 2));
}

/**
 * The median of nine values by the 19-comparison exchange network of Paeth (Graphics Gems, 1990)
 * as N. Devillard lays it out ("Fast median search", 1998): on locals, no array, no allocation.
 */
function median9(
  a0: number,
  a1: number,
  a2: number,
  a3: number,
  a4: number,
  a5: number,
  a6: number,
  a7: number,
  a8: number,
): number {
  let t: number;
  t = Math.min(a1, a2);
  a2 = Math.max(a1, a2);
  a1 = t;
  t = Math.min(a4, a5);
  a5 = Math.max(a4, a5);
  a4 = t;
  t = Math.min(a7, a8);
  a8 = Math.max(a7, a8);
  a7 = t;
  t = Math.min(a0, a1);
  a1 = Math.max(a0, a1);
  a0 = t;
  t = Math.min(a3, a4);
  a4 = Math.max(a3, a4);
  a3 = t;
  t = Math.min(a6, a7);
  a7 = Math.max(a6, a7);
  a6 = t;
  t = Math.min(a1, a2);
  a2 = Math.max(a1, a2);
  a1 = t;
  t = Math.min(a4, a5);
  a5 = Math.max(a4, a5);
  a4 = t;
  t = Math.min(a7, a8);
  a8 = Math.max(a7, a8);
  a7 = t;
  t = Math.min(a0, a3);
  a3 = Math.max(a0, a3);
  a0 = t;
  t = Math.min(a5, a8);
  a8 = Math.max(a5, a8);
  a5 = t;
  t = Math.min(a4, a7);
  a7 = Math.max(a4, a7);
  a4 = t;
  t = Math.min(a3, a6);
  a6 = Math.max(a3, a6);
  a3 = t;
  t = Math.min(a1, a4);
  a4 = Math.max(a1, a4);
  a1 = t;
  t = Math.min(a2, a5);
  a5 = Math.max(a2, a5);
  a2 = t;
  t = Math.min(a4, a7);
  a7 = Math.max(a4, a7);
  a4 = t;
  t = Math.min(a4, a2);
  a2 = Math.max(a4, a2);
  a4 = t;
  t = Math.min(a6, a4);
  a4 = Math.max(a6, a4);
  a6 = t;
  t = Math.min(a4, a2);
  a2 = Math.max(a4, a2);
  a4 = t;
  return a4;
}

/** The 3 × 3 median of each channel of interleaved RGB into `out` (edges replicated). */
export function median3x3(rgb: Uint8Array, width: number, height: number, out: Uint8Array): void {
  const row = 3 * width;
  for (let y = 0; y < height; y++) {
    const up = (y > 0 ? y - 1 : 0) * row;
    const mid = y * row;
    const down = (y < height - 1 ? y + 1 : y) * row;
    for (let x = 0; x < width; x++) {
      const l = 3 * (x > 0 ? x - 1 : 0);
      const m = 3 * x;
      const r = 3 * (x < width - 1 ? x + 1 : x);
      for (let c = 0; c < 3; c++)
        out[mid + m + c] = median9(
          rgb[up + l + c]!,
          rgb[up + m + c]!,
          rgb[up + r + c]!,
          rgb[mid + l + c]!,
          rgb[mid + m + c]!,
          rgb[mid + r + c]!,
          rgb[down + l + c]!,
          rgb[down + m + c]!,
          rgb[down + r + c]!,
        );
    }
  }
}

/** One buffer per field size for the filtered picture (measuring never yields, so it is shared). */
const filteredBySize = new Map<number, Uint8Array>();

/**
 * The red cells' radius of a field as the magnification watch and checks read it: as it is, or,
 * when its noise is above `noiseHigh` (the training fields' highest, model.json
 * `acquisition.red_cell_radius.noise_high`), after a 3 × 3 median. No `noiseHigh`: as it is.
 */
export function fieldRedCellRadius(
  rgb: Uint8Array,
  width: number,
  height: number,
  noiseHigh: number | undefined,
): number | null {
  if (noiseHigh === undefined || sensorNoiseSigma(rgb, width, height) <= noiseHigh)
    return redCellRadiusOf(rgb, width, height);
  const size = width * height * 3;
  let filtered = filteredBySize.get(size);
  if (!filtered) {
    filtered = new Uint8Array(size);
    filteredBySize.set(size, filtered);
  }
  median3x3(rgb, width, height, filtered);
  return redCellRadiusOf(filtered, width, height);
}
