/**
 * The gate's pixel measures of one decoded image, in one pass over the pixels plus one over the
 * luma: exposure (mean luma), clipping (share of near-black or near-white pixels) and focus
 * (variance of the 4-neighbour Laplacian of the luma, the usual autofocus measure). Typed-array
 * loops over a reused luma buffer, so judging an image allocates nothing per pixel.
 */

export interface ImageMeasures {
  /** Mean luma, 0..255 (BT.601 weights). */
  meanLuma: number;
  /** Variance of the luma (the picture's contrast). */
  lumaVariance: number;
  /** Variance of the Laplacian of the luma over the interior pixels; low = out of focus. */
  laplacianVariance: number;
  /** Share of pixels whose luma is within CLIP_MARGIN of 0 or of 255. */
  clippedShare: number;
}

/** Luma at or below this, or at or above 255 minus it, counts as clipped. */
export const CLIP_MARGIN = 3;

const lumaBySize = new Map<number, Uint8Array>();
function lumaBuffer(pixelCount: number): Uint8Array {
  let buffer = lumaBySize.get(pixelCount);
  if (!buffer) {
    buffer = new Uint8Array(pixelCount);
    lumaBySize.set(pixelCount, buffer);
  }
  return buffer;
}

export interface BackgroundColour {
  /** Red and blue shares of the summed RGB of the pixels brighter than the mean luma. */
  redShare: number;
  blueShare: number;
  /**
   * Green against the mean of red and blue, summed over the pixels no channel of which is above
   * UNCLIPPED_MAX (cells, red cells, the darker plasma); null when fewer than a hundredth of the
   * pixels are. The training camera's backgrounds sit at the top of the green channel
   * (model.json `preprocessing.colour`), so a camera that records green brighter clips there and
   * the background, which the colour normalisation reads, cannot show it; the unclipped pixels
   * do. One field's figure depends on its stain too; the median over many fields is what
   * src/gate/colour-drift.ts compares with the training images.
   */
  greenBalance: number | null;
}

/** A pixel with every channel at or below this was recorded, not cut off at the sensor's top. */
export const UNCLIPPED_MAX = 245;
const HEADROOM = 255 - UNCLIPPED_MAX;

/**
 * The colour of the picture's background (plasma and red cells are near-neutral): a lamp or
 * white-balance change tints it, a stain change barely does. Pixels at or above `lumaThreshold`
 * (the image's mean luma) count as background. The same pass measures the green balance of the
 * unclipped pixels.
 */
export function backgroundColour(
  rgb: Uint8Array,
  pixelCount: number,
  lumaThreshold: number,
): BackgroundColour {
  let r = 0;
  let g = 0;
  let b = 0;
  let unclippedRed = 0;
  let unclippedGreen = 0;
  let unclippedBlue = 0;
  let unclipped = 0;
  for (let o = 0, end = pixelCount * 3; o < end; o += 3) {
    const red = rgb[o]!;
    const green = rgb[o + 1]!;
    const blue = rgb[o + 2]!;
    // Every channel <= UNCLIPPED_MAX, in one comparison: each value plus the headroom stays
    // below 256 exactly when it is unclipped, and so does their bitwise OR.
    if (((red + HEADROOM) | (green + HEADROOM) | (blue + HEADROOM)) < 256) {
      unclippedRed += red;
      unclippedGreen += green;
      unclippedBlue += blue;
      unclipped++;
    }
    if ((77 * red + 150 * green + 29 * blue) >> 8 < lumaThreshold) continue;
    r += red;
    g += green;
    b += blue;
  }
  const total = r + g + b;
  const redBlue = unclippedRed + unclippedBlue;
  const greenBalance = unclipped >= pixelCount / 100 && redBlue > 0 ? (2 * unclippedGreen) / redBlue : null;
  return total > 0
    ? { redShare: r / total, blueShare: b / total, greenBalance }
    : { redShare: 1 / 3, blueShare: 1 / 3, greenBalance };
}

/** Measures an RGB (HWC) image of width × height pixels. */
export function measureImage(rgb: Uint8Array, width: number, height: number): ImageMeasures {
  const n = width * height;
  if (rgb.length < n * 3)
    throw new RangeError(`measureImage: expected ${n * 3} RGB bytes, got ${rgb.length}`);
  const luma = lumaBuffer(n);
  let lumaSum = 0;
  let lumaSquares = 0;
  let clipped = 0;
  const high = 255 - CLIP_MARGIN;
  for (let i = 0, o = 0; i < n; i++, o += 3) {
    // Integer BT.601 (77, 150, 29)/256: exact enough for thresholds and cheap.
    const y = (77 * rgb[o]! + 150 * rgb[o + 1]! + 29 * rgb[o + 2]!) >> 8;
    luma[i] = y;
    lumaSum += y;
    lumaSquares += y * y;
    if (y <= CLIP_MARGIN || y >= high) clipped++;
  }
  let sum = 0;
  let sumSquares = 0;
  let count = 0;
  for (let y = 1; y < height - 1; y++) {
    const row = y * width;
    for (let x = 1; x < width - 1; x++) {
      const i = row + x;
      const lap = luma[i - 1]! + luma[i + 1]! + luma[i - width]! + luma[i + width]! - 4 * luma[i]!;
      sum += lap;
      sumSquares += lap * lap;
      count++;
    }
  }
  const mean = count > 0 ? sum / count : 0;
  const meanLuma = n > 0 ? lumaSum / n : 0;
  return {
    meanLuma,
    lumaVariance: n > 0 ? Math.max(0, lumaSquares / n - meanLuma * meanLuma) : 0,
    laplacianVariance: count > 0 ? sumSquares / count - mean * mean : 0,
    clippedShare: n > 0 ? clipped / n : 0,
  };
}
