/**
 * Colour constancy for the model's input: undoes a camera's white balance and exposure before
 * segmentation and tensors, so that the same smear under another lamp, bulb or camera reaches the
 * model (and the paper's fixed a* threshold) in the colours of the training camera.
 *
 * Method `background-gains` (a white patch on the smear's background): the brightest pixels of a
 * field are plasma and red-cell gaps, near-neutral whatever the stain, so their mean colour is
 * the illuminant as the camera saw it. Each channel gets one gain that moves that background
 * into the range the TRAINING images' backgrounds span ([low, high] per channel), not to pure
 * grey: a training-camera image whose background already lies in that range is left unchanged,
 * and a shifted one is moved to the nearest edge of it. low == high is the classic white patch
 * to one reference colour. The range is a property of the model (model.json
 * `preprocessing.colour`), fitted on the training split by scripts/colour-reference.ts.
 *
 * Per image: one pass for a 766-level histogram of R+G+B with the channel sums per level, one
 * pass through three 256-entry look-up tables; no allocation per pixel (the scratch is reused).
 */
import { z } from 'zod';

export const BACKGROUND_GAINS = 'background-gains';

const rgbTriple = z.tuple([
  z.number().min(1).max(255),
  z.number().min(1).max(255),
  z.number().min(1).max(255),
]);

/** model.json `preprocessing.colour`: how the model's images were colour-normalised. */
export const colourNormalisationSchema = z
  .looseObject({
    method: z.literal(BACKGROUND_GAINS),
    /** Share of a field's brightest pixels (by R+G+B) taken as its background. */
    background_share: z.number().gt(0).max(1),
    /** Per channel R, G, B: the lowest and highest background the training images have. */
    background_low: rgbTriple,
    background_high: rgbTriple,
    /**
     * No channel gets a gain above this or below its inverse: a black or blank frame has no
     * background to measure, and an unbounded gain would turn its noise into colour.
     */
    max_gain: z.number().min(1),
  })
  .superRefine((c, ctx) => {
    for (let i = 0; i < 3; i++)
      if (c.background_low[i]! > c.background_high[i]!)
        ctx.addIssue({
          code: 'custom',
          path: ['background_low', i],
          message: 'must not exceed background_high',
        });
  });

export type ColourNormalisation = z.infer<typeof colourNormalisationSchema>;

export type Rgb = [number, number, number];

/** What normalisation measured and did to one image. */
export interface ColourCorrection {
  /** Mean R, G, B of the background pixels before correction. */
  background: Rgb;
  /** Gain applied per channel (1 = unchanged). */
  gains: Rgb;
}

export interface ColourScratch {
  /** Pixels per brightness R+G+B (0..765). */
  brightnessHistogram: Uint32Array;
  lookUp: Uint8Array;
}

const BRIGHTNESS_LEVELS = 3 * 255 + 1;

export function createColourScratch(): ColourScratch {
  return {
    brightnessHistogram: new Uint32Array(BRIGHTNESS_LEVELS),
    lookUp: new Uint8Array(3 * 256),
  };
}

/**
 * Mean R, G, B of the `share` brightest pixels (by R+G+B) of an interleaved RGB image. Ties at
 * the cut-off brightness are all included, so the estimate does not depend on pixel order.
 */
export function estimateBackground(
  rgb: Uint8Array,
  pixelCount: number,
  share: number,
  scratch: ColourScratch = createColourScratch(),
): Rgb {
  const hist = scratch.brightnessHistogram;
  hist.fill(0);
  const end = pixelCount * 3;
  for (let o = 0; o < end; o += 3) hist[rgb[o]! + rgb[o + 1]! + rgb[o + 2]!]!++;
  // From the brightest level down, whole levels at a time, until the share is reached: the
  // background is every pixel at or above that level.
  const wanted = Math.max(1, Math.round(pixelCount * share));
  let cutoff = BRIGHTNESS_LEVELS;
  for (let level = BRIGHTNESS_LEVELS - 1, n = 0; level >= 0 && n < wanted; level--) {
    n += hist[level]!;
    cutoff = level;
  }
  // A second pass sums the few background pixels: cheaper than three running sums per level
  // for every pixel. Integer sums, so the result does not depend on the order.
  let r = 0;
  let g = 0;
  let b = 0;
  let n = 0;
  for (let o = 0; o < end; o += 3) {
    const red = rgb[o]!;
    const green = rgb[o + 1]!;
    const blue = rgb[o + 2]!;
    if (red + green + blue < cutoff) continue;
    r += red;
    g += green;
    b += blue;
    n++;
  }
  return n === 0 ? [0, 0, 0] : [r / n, g / n, b / n];
}

/** The per-channel gains that move `background` into [low, high], bounded by max_gain. */
export function backgroundGains(background: Rgb, params: ColourNormalisation): Rgb {
  const gains: Rgb = [1, 1, 1];
  for (let c = 0; c < 3; c++) {
    const measured = background[c]!;
    if (measured <= 0) {
      gains[c] = params.max_gain;
      continue;
    }
    const target = Math.min(params.background_high[c]!, Math.max(params.background_low[c]!, measured));
    gains[c] = Math.min(params.max_gain, Math.max(1 / params.max_gain, target / measured));
  }
  return gains;
}

/**
 * Writes `src` × `gains` (per channel, rounded, clipped to 255) into `out`, which may be `src`.
 * A gain of exactly 1 leaves the channel's bytes as they are (copied, not looked up).
 */
export function applyChannelGains(
  src: Uint8Array,
  out: Uint8Array,
  pixelCount: number,
  gains: Rgb,
  scratch: ColourScratch = createColourScratch(),
): void {
  const end = pixelCount * 3;
  if (out !== src) out.set(src.subarray(0, end));
  const lut = scratch.lookUp;
  for (let c = 0; c < 3; c++) {
    const gain = gains[c]!;
    if (gain === 1) continue;
    for (let v = 0; v < 256; v++) lut[v] = Math.min(255, Math.round(v * gain));
    for (let o = c; o < end; o += 3) out[o] = lut[src[o]!]!;
  }
}

/** True when `gains` change nothing: the picture is already within the training range. */
const isIdentity = (gains: Rgb): boolean => gains[0] === 1 && gains[1] === 1 && gains[2] === 1;

/** What normalisation would do to one interleaved RGB image, without doing it. */
function colourCorrection(
  rgb: Uint8Array,
  pixelCount: number,
  params: ColourNormalisation,
  scratch: ColourScratch = createColourScratch(),
): ColourCorrection {
  const background = estimateBackground(rgb, pixelCount, params.background_share, scratch);
  return { background, gains: backgroundGains(background, params) };
}

/**
 * The pixels the model is fed and what normalisation did. Within the training range already
 * (most pictures from the training camera) they are `rgb` itself; otherwise a fresh array, so
 * the raw pixels stay for the thumbnail and each result keeps its own (media is written after
 * the next image may have started).
 */
export function normaliseForModel(
  rgb: Uint8Array,
  pixelCount: number,
  params: ColourNormalisation,
  scratch: ColourScratch = createColourScratch(),
): { modelRgb: Uint8Array; colour: ColourCorrection } {
  const colour = colourCorrection(rgb, pixelCount, params, scratch);
  if (isIdentity(colour.gains)) return { modelRgb: rgb, colour };
  const modelRgb = new Uint8Array(pixelCount * 3);
  applyChannelGains(rgb, modelRgb, pixelCount, colour.gains, scratch);
  return { modelRgb, colour };
}

/** The q-quantile (0..1) of `values` by the nearest-rank rule on the sorted copy. */
function quantile(sorted: readonly number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.round(q * (sorted.length - 1))))]!;
}

export interface FitColourOptions {
  backgroundShare: number;
  /** Quantiles (0..1) of the training backgrounds that bound the target range per channel. */
  lowQuantile: number;
  highQuantile: number;
  maxGain: number;
}

/**
 * Fits `preprocessing.colour` from the backgrounds of the training images (estimateBackground
 * with the same share), so the target range is the training camera's, not an assumed grey.
 */
export function fitColourNormalisation(
  backgrounds: readonly Rgb[],
  opts: FitColourOptions,
): ColourNormalisation & { reference: Record<string, unknown> } {
  if (backgrounds.length === 0) throw new RangeError('fitColourNormalisation: no backgrounds');
  const round = (v: number): number => Math.round(v * 100) / 100;
  const low: Rgb = [0, 0, 0];
  const high: Rgb = [0, 0, 0];
  const mean: Rgb = [0, 0, 0];
  for (let c = 0; c < 3; c++) {
    const sorted = backgrounds.map((b) => b[c]!).sort((a, b) => a - b);
    low[c] = round(quantile(sorted, opts.lowQuantile));
    high[c] = round(quantile(sorted, opts.highQuantile));
    mean[c] = round(sorted.reduce((s, v) => s + v, 0) / sorted.length);
  }
  return {
    method: BACKGROUND_GAINS,
    background_share: opts.backgroundShare,
    background_low: low,
    background_high: high,
    max_gain: opts.maxGain,
    reference: {
      images: backgrounds.length,
      background_mean: mean,
      low_quantile: opts.lowQuantile,
      high_quantile: opts.highQuantile,
    },
  };
}
