/**
 * The picture's figures together: exposure, sharpness, sharpness relative to contrast, clipping,
 * cell coverage, cell count, the a* cut-off and the background's colour as one vector, and its
 * Mahalanobis distance from the nearest of the training pictures' Gaussians (the originals, and
 * each change the model copes with). Each figure alone has to tolerate a camera shift (a darker lamp,
 * a softer focus), but a picture whose figures combine as no training image's do (dark AND soft
 * AND never clipped AND one cell region, as smear fields from another laboratory are) is out of
 * domain even when every single range check passes.
 */
import { backgroundColour, type BackgroundColour, type ImageMeasures } from './image-measures.js';

export const APPEARANCE_FIGURES = [
  'mean_luma',
  'log_laplacian_variance',
  'log_sharpness_over_contrast',
  'clipped_share',
  'cell_coverage',
  'log_cell_count',
  'a_star_cutoff',
  'background_red_share',
  'background_blue_share',
] as const;

/** The a* cut-off is 256 when no cell was found; capped so that case does not dominate the fit. */
const A_STAR_CAP = 200;

export interface AppearanceInput {
  measures: ImageMeasures;
  background: BackgroundColour;
  cellCoverage: number;
  cellCount: number;
  aStarCutoff: number;
}

/** What the appearance figures are measured from: the gate's input, structurally. */
export interface AppearancePicture {
  rgb: Uint8Array;
  modelRgb?: Uint8Array | undefined;
  width: number;
  height: number;
  segmentation: { foregroundFraction: number; componentCount: number; aStarThreshold: number };
}

/**
 * The appearance figures of a picture. Exposure, focus and clipping are those of the picture as
 * the camera recorded it (`raw`, measured once for the range checks): another laboratory's
 * smear fields differ from the training images mostly there (darker and softer), and colour
 * normalisation would brighten them into range. Measured on the normalised picture instead,
 * exposure x0.8 passed (97.6 % accepted against 54.1 %) but 35 % of those fields did too
 * (models/MODEL_CARD.md, the gate's section). The background colour is that of the normalised
 * picture: what normalisation could not undo of a white-balance change.
 */
export function appearanceInputOf(picture: AppearancePicture, raw: ImageMeasures): AppearanceInput {
  const { segmentation } = picture;
  return {
    measures: raw,
    background: backgroundColour(
      picture.modelRgb ?? picture.rgb,
      picture.width * picture.height,
      raw.meanLuma,
    ),
    cellCoverage: segmentation.foregroundFraction,
    cellCount: segmentation.componentCount,
    aStarCutoff: segmentation.aStarThreshold,
  };
}

/** The figure vector, in APPEARANCE_FIGURES order. */
export function appearanceVector(
  input: AppearanceInput,
  out: Float64Array = new Float64Array(APPEARANCE_FIGURES.length),
): Float64Array {
  const { measures } = input;
  const logSharpness = Math.log1p(measures.laplacianVariance);
  out[0] = measures.meanLuma;
  out[1] = logSharpness;
  out[2] = logSharpness - Math.log1p(measures.lumaVariance);
  out[3] = measures.clippedShare;
  out[4] = input.cellCoverage;
  out[5] = Math.log1p(input.cellCount);
  out[6] = Math.min(input.aStarCutoff, A_STAR_CAP);
  out[7] = input.background.redShare;
  out[8] = input.background.blueShare;
  return out;
}

export interface AppearanceModel {
  mean: readonly number[];
  /** Row-major inverse covariance, figures × figures. */
  inverseCovariance: readonly (readonly number[])[];
}

/** Squared Mahalanobis distance of a figure vector from the training mean. */
export function appearanceDistance(model: AppearanceModel, vector: Float64Array): number {
  const n = model.mean.length;
  let total = 0;
  for (let i = 0; i < n; i++) {
    const di = vector[i]! - model.mean[i]!;
    const row = model.inverseCovariance[i]!;
    let s = 0;
    for (let j = 0; j < n; j++) s += row[j]! * (vector[j]! - model.mean[j]!);
    total += di * s;
  }
  return total;
}

/**
 * Squared distance to the nearest of several Gaussians: the training images as recorded and each
 * change the model copes with (a darker exposure, a softer focus, a lamp's tint), fitted apart.
 * One Gaussian over all of them would stretch along every change at once and accept pictures
 * that combine them as no training picture did; refused ones would be the mild shifts between.
 */
export function nearestAppearanceDistance(models: readonly AppearanceModel[], vector: Float64Array): number {
  let best = Number.POSITIVE_INFINITY;
  for (const model of models) best = Math.min(best, appearanceDistance(model, vector));
  return best;
}

/** Mean and inverse covariance of figure vectors (Gauss-Jordan; a tiny ridge keeps it invertible). */
export function fitAppearance(vectors: readonly Float64Array[]): AppearanceModel {
  const n = APPEARANCE_FIGURES.length;
  const count = vectors.length;
  if (count <= n) throw new RangeError(`fitAppearance: need more than ${n} vectors, got ${count}`);
  const mean = new Array<number>(n).fill(0);
  for (const v of vectors) for (let i = 0; i < n; i++) mean[i]! += v[i]! / count;
  const cov = Array.from({ length: n }, () => new Array<number>(n).fill(0));
  for (const v of vectors)
    for (let i = 0; i < n; i++)
      for (let j = 0; j < n; j++) cov[i]![j]! += ((v[i]! - mean[i]!) * (v[j]! - mean[j]!)) / (count - 1);
  for (let i = 0; i < n; i++) cov[i]![i]! += 1e-9 + 1e-6 * cov[i]![i]!;
  return { mean, inverseCovariance: invert(cov) };
}

function invert(matrix: number[][]): number[][] {
  const n = matrix.length;
  const a = matrix.map((row, i) => [...row, ...Array.from({ length: n }, (_, j) => (i === j ? 1 : 0))]);
  for (let col = 0; col < n; col++) {
    let pivot = col;
    for (let r = col + 1; r < n; r++) if (Math.abs(a[r]![col]!) > Math.abs(a[pivot]![col]!)) pivot = r;
    [a[col], a[pivot]] = [a[pivot]!, a[col]!];
    const p = a[col]![col]!;
    if (Math.abs(p) < 1e-300) throw new RangeError('fitAppearance: singular covariance');
    for (let j = 0; j < 2 * n; j++) a[col]![j]! /= p;
    for (let r = 0; r < n; r++) {
      if (r === col) continue;
      const f = a[r]![col]!;
      if (f !== 0) for (let j = 0; j < 2 * n; j++) a[r]![j]! -= f * a[col]![j]!;
    }
  }
  return a.map((row) => row.slice(n));
}
