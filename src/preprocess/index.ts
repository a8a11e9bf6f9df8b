/**
 * THE preprocessing path: file bytes → decoded size×size RGB → colour normalisation (when the
 * model asks for it) → segmentation → two NCHW float32 tensors (`original`, `segmented`) in
 * [0, 1]. The daemon, `classify`/`evaluate` and the training cache (`preprocess-dataset`) all
 * call prepareImage(), so a model is always served exactly the inputs it was trained on.
 */
import { decodeImage } from '../decode/index.js';
import type { DecodedImage } from '../decode/index.js';
import { createSegmentScratch, segmentImage } from '../segment/index.js';
import type { Segmentation, SegmentParams, SegmentScratch } from '../segment/index.js';
import { takeTensor } from './tensor-pool.js';
import { createColourScratch, normaliseForModel } from './colour.js';
import type { ColourCorrection, ColourNormalisation } from './colour.js';

export type { ColourCorrection, ColourNormalisation } from './colour.js';

/**
 * byte / 255 as float32, computed as a division (NOT × 1/255): Python's training side does
 * `torch.from_numpy(u8).float() / 255`, and the two must be bit-identical (checked for all 256
 * values in test/preprocess). A table makes the hot loop a look-up.
 */
const BYTE_TO_UNIT: Float32Array = (() => {
  const t = new Float32Array(256);
  for (let i = 0; i < 256; i++) t[i] = i / 255;
  return t;
})();

/** HWC RGB bytes → CHW float32 (batch of one, so NCHW), value = byte / 255. */
export function toTensorNCHW(
  rgb: Uint8Array,
  width: number,
  height: number,
  out?: Float32Array,
): Float32Array {
  const plane = width * height;
  if (rgb.length < plane * 3)
    throw new RangeError(`toTensorNCHW: expected ${plane * 3} bytes, got ${rgb.length}`);
  const tensor = out ?? new Float32Array(plane * 3);
  if (tensor.length < plane * 3)
    throw new RangeError(`toTensorNCHW: output holds ${tensor.length} < ${plane * 3} floats`);
  for (let i = 0, o = 0; i < plane; i++, o += 3) {
    tensor[i] = BYTE_TO_UNIT[rgb[o]!]!;
    tensor[plane + i] = BYTE_TO_UNIT[rgb[o + 1]!]!;
    tensor[2 * plane + i] = BYTE_TO_UNIT[rgb[o + 2]!]!;
  }
  return tensor;
}

export interface PrepareOptions {
  size: number;
  limitInputPixels: number;
  segment?: Partial<SegmentParams>;
  /**
   * The model's colour normalisation (model.json `preprocessing.colour`), applied before
   * segmentation because the paper's fixed a* threshold moves with white balance. Absent or
   * null: the decoded pixels go to segmentation and the model unchanged.
   */
  colour?: ColourNormalisation | null;
}

export interface PreparedImage {
  /** The decoded image as the camera recorded it (thumbnails show this). */
  decoded: DecodedImage;
  /** The pixels segmented and fed to the model: `decoded.rgb` itself when normalisation changes nothing. */
  modelRgb: Uint8Array;
  /** What colour normalisation measured and did; null when the model asks for none. */
  colour: ColourCorrection | null;
  segmentation: Segmentation;
  /** NCHW float32 [1, 3, size, size], value = byte / 255. */
  original: Float32Array;
  /** Same layout, background pixels 0. */
  segmented: Float32Array;
  timings: { decodeMs: number; segmentMs: number; tensorMs: number };
}

const colourScratch = createColourScratch();

// One scratch per pixel count: segmentation buffers are reused across calls (single-threaded JS,
// and segmentImage never yields, so sharing is safe).
const scratchBySize = new Map<number, SegmentScratch>();
function scratchFor(pixelCount: number): SegmentScratch {
  let s = scratchBySize.get(pixelCount);
  if (!s) {
    s = createSegmentScratch(pixelCount);
    scratchBySize.set(pixelCount, s);
  }
  return s;
}

/** Decode, segment and tensorise one image. Throws DecodeError for bad input. */
export async function prepareImage(input: string | Buffer, opts: PrepareOptions): Promise<PreparedImage> {
  const t0 = performance.now();
  const decoded = await decodeImage(input, { size: opts.size, limitInputPixels: opts.limitInputPixels });
  const t1 = performance.now();
  const { width, height } = decoded;
  const pixelCount = width * height;
  let modelRgb = decoded.rgb;
  let colour: ColourCorrection | null = null;
  if (opts.colour)
    ({ modelRgb, colour } = normaliseForModel(decoded.rgb, pixelCount, opts.colour, colourScratch));
  const segmentation = segmentImage(modelRgb, width, height, opts.segment, scratchFor(pixelCount));
  const t2 = performance.now();
  const values = pixelCount * 3;
  const original = toTensorNCHW(modelRgb, width, height, takeTensor(values));
  const segmented = toTensorNCHW(segmentation.segmented, width, height, takeTensor(values));
  const t3 = performance.now();
  return {
    decoded,
    modelRgb,
    colour,
    segmentation,
    original,
    segmented,
    timings: { decodeMs: t1 - t0, segmentMs: t2 - t1, tensorMs: t3 - t2 },
  };
}
