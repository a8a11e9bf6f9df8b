/**
 * The red cells' size in pixels: how large the microscope draws them, so a measure of its
 * magnification. Red cells are nearly the same size in any smear (about 7.5 µm across), and the
 * model learnt from one magnification range: at ×0.75 it lets more blasts through unflagged than
 * at any other camera shift it was held to (models/MODEL_CARD.md, "How the pictures were taken").
 *
 * The figure is a granulometry (Serra's pattern spectrum), the same as the training pipeline's
 * description of the data set (training/blastwatch_train/acquisition.py, with OpenCV): the cell
 * layer (pixels darker than the plasma by Otsu's threshold on grey, central pallor filled) minus
 * the stained nuclei (a* more than 10 above the layer's median, opened by the 3 × 3 cross, widened
 * by 2 px) is opened with discs of radius
 * 1..15 px; the mean radius at which its area goes is the figure. A field whose red-cell layer
 * covers under 5 % of it has none. Each operation follows the OpenCV call the description uses,
 * border rules included, so the two give the same figure on the same pixels (a test holds them
 * together on the committed samples).
 *
 * 10–14 ms per 224 × 224 field on this project's 2-core machine (scripts/fit-magnification.ts
 * prints it), ten times what the gate and the colour normalisation may cost together, so it
 * judges no single picture: `blastwatch evaluate` reports it for a check set (the procedure for a
 * new microscope), and the daemon measures its captures while idle (magnification-watch.ts), each
 * against the training images' range that scripts/fit-magnification.ts records in model.json.
 */
import { z } from 'zod';
import { rgbToAStar8Counted } from '../segment/lab.js';
import {
  cleanUpRuns,
  createMorphologyScratch,
  runsFromBytes,
  type MorphologyScratch,
} from '../segment/morphology.js';

/**
 * A stained nucleus is markedly more magenta than the red cells around it: a* (OpenCV's 8-bit
 * a*, 128 = neutral) more than this many levels above the median of the cell layer. Relative, not
 * the paper's fixed 141, because a redder lamp or a bluer one moves every pixel's a*: with the
 * fixed cut a red gain of ×1.15 pushed the red cells themselves above it, and the field read as
 * a lower magnification (models/MODEL_CARD.md, "Checking a microscope's magnification").
 */
const NUCLEUS_A_STAR_ABOVE_LAYER = 10;
const MAX_RADIUS = 15;
const MIN_RED_CELL_SHARE = 0.05;

/**
 * OpenCV's 8-bit RGB→grey (cv2.cvtColor COLOR_RGB2GRAY, 4.6): Y = 0.299 R + 0.587 G + 0.114 B in
 * 15-bit fixed point (9798, 19235, 3735), rounded. The 14-bit coefficients of its scalar code
 * differ by one level on some pixels, which moves a field's Otsu layer where pixels sit at the threshold.
 */
function grey(rgb: Uint8Array, n: number, out: Uint8Array): void {
  for (let p = 0, o = 0; p < n; p++, o += 3)
    out[p] = (rgb[o]! * 9798 + rgb[o + 1]! * 19235 + rgb[o + 2]! * 3735 + 16384) >> 15;
}

/**
 * OpenCV's Otsu threshold of an 8-bit image (getThreshVal_Otsu_8u, step for step, so the same
 * histogram gives the same level): the first grey level of the largest between-class variance.
 */
export function otsuThreshold(values: Uint8Array, n: number): number {
  const FLT_EPSILON = 1.1920928955078125e-7;
  const hist = new Int32Array(256);
  for (let p = 0; p < n; p++) hist[values[p]!]! += 1;
  const scale = 1 / n;
  let mu = 0;
  for (let i = 0; i < 256; i++) mu += i * hist[i]!;
  mu *= scale;
  let mu1 = 0;
  let q1 = 0;
  let maxSigma = 0;
  let best = 0;
  for (let i = 0; i < 256; i++) {
    const pi = hist[i]! * scale;
    mu1 *= q1;
    q1 += pi;
    const q2 = 1 - q1;
    if (Math.min(q1, q2) < FLT_EPSILON || Math.max(q1, q2) > 1 - FLT_EPSILON) continue;
    mu1 = (mu1 + i * pi) / q1;
    const mu2 = (mu - q1 * mu1) / q2;
    const sigma = q1 * q2 * (mu1 - mu2) * (mu1 - mu2);
    if (sigma > maxSigma) {
      maxSigma = sigma;
      best = i;
    }
  }
  return best;
}

/** Half-widths of OpenCV's MORPH_ELLIPSE element of size (2r+1)²: row dy spans ±dx[dy + r]. */
export function ellipseHalfWidths(r: number): Int32Array {
  const out = new Int32Array(2 * r + 1);
  for (let dy = -r; dy <= r; dy++) out[dy + r] = Math.round(Math.sqrt(r * r - dy * dy));
  return out;
}

/** Working buffers for one field size. */
interface RedCellScratch {
  width: number;
  height: number;
  grey: Uint8Array;
  aStar: Uint8Array;
  aStarCounts: Uint8Array;
  layer: Uint8Array;
  work: Uint8Array;
  eroded: Uint8Array;
  /** A dilation painted from few eroded pixels. */
  painted: Uint8Array;
  queue: Int32Array;
  /** The layer's pixels, for the dilations. */
  inLayer: Int32Array;
  /** a* counts over the layer, for its median. */
  aStarHistogram: Int32Array;
  /** The hole fill's runs. */
  morphology: MorphologyScratch;
  /** Per row, prefix counts: prefix[y * (width + 1) + x] = pixels set in [0, x). */
  prefix: Int32Array;
  /** The same of the layer, kept while `prefix` counts an erosion. */
  layerPrefix: Int32Array;
}

function createRedCellScratch(width: number, height: number): RedCellScratch {
  const n = width * height;
  return {
    width,
    height,
    grey: new Uint8Array(n),
    aStar: new Uint8Array(n),
    aStarCounts: new Uint8Array(Math.ceil(n / 256) * 512),
    layer: new Uint8Array(n),
    work: new Uint8Array(n),
    eroded: new Uint8Array(n),
    painted: new Uint8Array(n),
    queue: new Int32Array(n),
    inLayer: new Int32Array(n),
    aStarHistogram: new Int32Array(256),
    morphology: createMorphologyScratch(n),
    prefix: new Int32Array((width + 1) * height),
    layerPrefix: new Int32Array((width + 1) * height),
  };
}

/**
 * `mask` opened in place with the 3 × 3 cross, `tmp` its scratch: the erosion treats pixels outside
 * the image as set and the dilation as unset, OpenCV's default border values for the two.
 */
function openWithCross(mask: Uint8Array, tmp: Uint8Array, w: number, h: number): void {
  for (let y = 0, p = 0; y < h; y++)
    for (let x = 0; x < w; x++, p++)
      tmp[p] =
        mask[p] === 1 &&
        (y === 0 || mask[p - w] === 1) &&
        (y === h - 1 || mask[p + w] === 1) &&
        (x === 0 || mask[p - 1] === 1) &&
        (x === w - 1 || mask[p + 1] === 1)
          ? 1
          : 0;
  for (let y = 0, p = 0; y < h; y++)
    for (let x = 0; x < w; x++, p++)
      mask[p] =
        tmp[p] === 1 ||
        (y > 0 && tmp[p - w] === 1) ||
        (y < h - 1 && tmp[p + w] === 1) ||
        (x > 0 && tmp[p - 1] === 1) ||
        (x < w - 1 && tmp[p + 1] === 1)
          ? 1
          : 0;
}

/** The lower median of a* over the cell layer (pale centres filled); 128 (neutral) for an empty layer. */
function layerMedianAStar(s: RedCellScratch): number {
  const hist = s.aStarHistogram;
  hist.fill(0);
  let count = 0;
  for (let p = 0, n = s.width * s.height; p < n; p++)
    if (s.layer[p] === 1) {
      hist[s.aStar[p]!]! += 1;
      count++;
    }
  if (count === 0) return 128;
  // The ((count - 1) >> 1)-th smallest value, as numpy's sort()[(n - 1) // 2].
  const rank = (count - 1) >> 1;
  for (let v = 0, below = 0; v < 256; v++) {
    below += hist[v]!;
    if (below > rank) return v;
  }
  return 255;
}

/** The red-cell layer of `rgb` into `s.layer` (1 = red cell); returns its area in pixels. */
function redCellLayer(rgb: Uint8Array, s: RedCellScratch): number {
  const { width: w, height: h, layer, work } = s;
  const n = w * h;
  grey(rgb, n, s.grey);
  const t = otsuThreshold(s.grey, n);
  // THRESH_BINARY_INV: darker than or at the threshold is cell. Holes (4-connected background
  // not reaching the border) are a red cell's pale centre: the segmentation's own run-length
  // fill, which its tests hold equal to scipy's binary_fill_holes.
  const darkOfGrey = new Uint8Array(256);
  darkOfGrey.fill(1, 0, t + 1);
  const runs = runsFromBytes(s.grey, darkOfGrey, w, h, s.morphology);
  cleanUpRuns(runs, w, h, 0, 0);
  const { rowFirst, start, end, value } = runs;
  for (let y = 0; y < h; y++)
    for (let r = rowFirst[y]!, last = rowFirst[y + 1]!; r < last; r++)
      layer.fill(value[r]!, y * w + start[r]!, y * w + end[r]!);
  // Nuclei: opened with the 3 × 3 cross (cv2.morphologyEx MORPH_OPEN with OpenCV's 3 × 3
  // ellipse), so that single pixels a noisy sensor pushes over the cut are not nuclei, then
  // widened by a 5 × 5 square (cv2.dilate with ones((5, 5))) and taken out of the layer.
  s.aStarCounts.fill(0);
  rgbToAStar8Counted(rgb, n, s.aStar, s.aStarCounts);
  const cut = layerMedianAStar(s) + NUCLEUS_A_STAR_ABOVE_LAYER;
  for (let p = 0; p < n; p++) s.eroded[p] = s.aStar[p]! > cut ? 1 : 0;
  openWithCross(s.eroded, s.painted, w, h);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      let any = 0;
      for (let dx = -2; dx <= 2 && !any; dx++) {
        const xx = x + dx;
        if (xx >= 0 && xx < w && s.eroded[y * w + xx] === 1) any = 1;
      }
      work[y * w + x] = any;
    }
  let area = 0;
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      let nucleus = false;
      for (let dy = -2; dy <= 2 && !nucleus; dy++) {
        const yy = y + dy;
        if (yy >= 0 && yy < h && work[yy * w + x] === 1) nucleus = true;
      }
      const p = y * w + x;
      if (nucleus) layer[p] = 0;
      area += layer[p]!;
    }
  return area;
}

function rowPrefix(mask: Uint8Array, s: RedCellScratch): void {
  const { width: w, height: h, prefix } = s;
  for (let y = 0; y < h; y++) {
    const base = y * (w + 1);
    prefix[base] = 0;
    for (let x = 0; x < w; x++) prefix[base + x + 1] = prefix[base + x]! + mask[y * w + x]!;
  }
}

/** Pixels set in row y, columns [x0, x1] clipped to the image. */
function countInRow(s: RedCellScratch, y: number, x0: number, x1: number): number {
  const a = Math.max(0, x0);
  const b = Math.min(s.width - 1, x1);
  if (b < a) return 0;
  const base = y * (s.width + 1);
  return s.prefix[base + b + 1]! - s.prefix[base + a]!;
}

/**
 * The areas of cv2.morphologyEx(MORPH_OPEN) of `s.layer` with the ellipse of every radius 1..max
 * (areas[r - 1]). Erosion treats pixels outside the image as set and dilation as unset (OpenCV's
 * default border values for the two), so the border itself erodes nothing. Two shortcuts keep it
 * exact: each ellipse holds the one before it, so a pixel the erosion by r - 1 removed cannot
 * survive the erosion by r (only the survivors are tested again); and an opening lies inside the
 * layer, so the dilation tests layer pixels only, its own row first.
 */
function openedAreas(s: RedCellScratch, max: number): number[] {
  const { width: w, height: h, layer, queue } = s;
  const n = w * h;
  const { layerPrefix, inLayer } = s;
  rowPrefix(layer, s);
  layerPrefix.set(s.prefix);
  // queue[0..count): the pixels the previous erosion kept (at first, the layer itself).
  let count = 0;
  for (let p = 0; p < n; p++) if (layer[p] === 1) queue[count++] = p;
  const layerCount = count;
  inLayer.set(queue.subarray(0, count));
  const areas: number[] = [];
  for (let r = 1; r <= max; r++) {
    const half = HALF_WIDTHS[r]!;
    s.eroded.fill(0);
    let kept = 0;
    for (let i = 0; i < count; i++) {
      const p = queue[i]!;
      const y = (p / w) | 0;
      const x = p - y * w;
      let keep = true;
      // The widest rows fail least often: test the outermost first.
      for (let k = r; k >= 0 && keep; k--)
        for (let side = k === 0 ? 1 : 0; side < 2; side++) {
          const dy = side === 0 ? -k : k;
          const yy = y + dy;
          if (yy < 0 || yy >= h) continue;
          const dx = half[dy + r]!;
          const x0 = Math.max(0, x - dx);
          const x1 = Math.min(w - 1, x + dx);
          const base = yy * (w + 1);
          if (layerPrefix[base + x1 + 1]! - layerPrefix[base + x0]! !== x1 - x0 + 1) {
            keep = false;
            break;
          }
        }
      if (keep) {
        queue[kept++] = p;
        s.eroded[p] = 1;
      }
    }
    count = kept;
    let area = 0;
    if (kept * 2 < layerCount) {
      // Under half the layer survived: paint the ellipse around each survivor (scatter) rather
      // than test every layer pixel for one nearby (gather).
      const painted = s.painted;
      painted.fill(0);
      for (let i = 0; i < kept; i++) {
        const p = queue[i]!;
        const y = (p / w) | 0;
        const x = p - y * w;
        for (let dy = -r; dy <= r; dy++) {
          const yy = y + dy;
          if (yy < 0 || yy >= h) continue;
          const dx = half[dy + r]!;
          painted.fill(1, yy * w + Math.max(0, x - dx), yy * w + Math.min(w - 1, x + dx) + 1);
        }
      }
      for (let p = 0; p < n; p++) area += painted[p]!;
    } else {
      rowPrefix(s.eroded, s);
      for (let i = 0; i < layerCount; i++) {
        const p = inLayer[i]!;
        const y = (p / w) | 0;
        const x = p - y * w;
        let set = false;
        for (let k = 0; k <= r && !set; k++)
          for (let side = k === 0 ? 1 : 0; side < 2; side++) {
            const dy = side === 0 ? -k : k;
            const yy = y + dy;
            if (yy < 0 || yy >= h) continue;
            if (countInRow(s, yy, x - half[dy + r]!, x + half[dy + r]!) > 0) {
              set = true;
              break;
            }
          }
        if (set) area++;
      }
    }
    areas.push(area);
  }
  return areas;
}

const HALF_WIDTHS = Array.from({ length: MAX_RADIUS + 1 }, (_, r) => ellipseHalfWidths(r));

/**
 * The mean radius (px) of the red-cell layer's pattern spectrum of an RGB field (HWC bytes, the
 * scratch's size), or null when the layer covers under 5 % of the field or nothing opens away.
 */
function redCellRadius(rgb: Uint8Array, s: RedCellScratch): number | null {
  const area = redCellLayer(rgb, s);
  const n = s.width * s.height;
  if (area < MIN_RED_CELL_SHARE * n) return null;
  let previous = area;
  let lostTotal = 0;
  let weighted = 0;
  const areas = openedAreas(s, MAX_RADIUS);
  for (let r = 1; r <= MAX_RADIUS; r++) {
    const remaining = areas[r - 1]!;
    const lost = previous - remaining;
    lostTotal += lost;
    weighted += lost * r;
    previous = remaining;
  }
  return lostTotal > 0 ? weighted / lostTotal : null;
}

/** One scratch per field size: redCellRadius never yields, so callers can share it. */
const scratchBySize = new Map<string, RedCellScratch>();
export function redCellRadiusOf(rgb: Uint8Array, width: number, height: number): number | null {
  const key = `${width}x${height}`;
  let s = scratchBySize.get(key);
  if (!s) {
    s = createRedCellScratch(width, height);
    scratchBySize.set(key, s);
  }
  return redCellRadius(rgb, s);
}

export const RED_CELL_FIGURE = 'red_cell_radius';

/**
 * model.json `acquisition.red_cell_radius` (scripts/fit-magnification.ts): the range of the
 * training images' red-cell size, as medians over windows of consecutive fields of one class
 * (the nearest the data set has to one slide's fields), measured on what the model sees.
 */
export const redCellReferenceSchema = z.strictObject({
  figure: z.literal(RED_CELL_FIGURE),
  /** Fields per window. */
  window: z.number().int().positive(),
  /** The smallest and largest window median, px at the model's input size. */
  low: z.number().positive(),
  high: z.number().positive(),
  /**
   * The same per class (model.json class names): the training camera drew the classes at
   * different magnifications, so one class's range is narrower than all of them together.
   */
  by_class: z
    .record(z.string(), z.strictObject({ low: z.number().positive(), high: z.number().positive() }))
    .optional(),
  /**
   * The highest sensor noise (σ, grey levels; src/gate/sensor-noise.ts) of the training fields:
   * a field above it is median-filtered 3 × 3 before its red cells are measured. Absent: none is.
   */
  noise_high: z.number().positive().optional(),
  fitted: z.string().optional(),
});

export type RedCellReference = z.infer<typeof redCellReferenceSchema>;

const median = (values: readonly number[]): number | null => {
  if (values.length === 0) return null;
  const v = [...values].sort((a, b) => a - b);
  const n = v.length;
  return n % 2 === 1 ? v[(n - 1) / 2]! : (v[n / 2 - 1]! + v[n / 2]!) / 2;
};

/** The smallest and largest median of every window of `window` fields with half measured; null without one. */
function windowRange(
  radii: readonly (number | null)[],
  window: number,
): { low: number; high: number } | null {
  let low = Infinity;
  let high = -Infinity;
  for (let start = 0; start + window <= radii.length; start++) {
    const measured = radii.slice(start, start + window).filter((r): r is number => r !== null);
    if (measured.length < window / 2) continue;
    const m = median(measured) as number;
    low = Math.min(low, m);
    high = Math.max(high, m);
  }
  return Number.isFinite(low) ? { low: Number(low.toFixed(4)), high: Number(high.toFixed(4)) } : null;
}

/**
 * The reference from the training fields' radii, grouped by class (keyed by class name), each
 * group in file-name order: the median of every window of `window` consecutive fields with at
 * least half of them measured, and the smallest and largest of those medians, over all classes
 * and per class.
 */
export function fitRedCellReference(
  groups: ReadonlyMap<string, readonly (number | null)[]>,
  window: number,
): Omit<RedCellReference, 'fitted'> {
  const byClass: Record<string, { low: number; high: number }> = {};
  for (const [name, radii] of groups) {
    const range = windowRange(radii, window);
    if (range) byClass[name] = range;
  }
  const ranges = Object.values(byClass);
  if (ranges.length === 0)
    throw new Error(`fitRedCellReference: no window of ${window} fields with half measured`);
  return {
    figure: RED_CELL_FIGURE,
    window,
    low: Math.min(...ranges.map((r) => r.low)),
    high: Math.max(...ranges.map((r) => r.high)),
    by_class: byClass,
  };
}

/** A set of fields against the reference: is their magnification the training images'? */
export interface MagnificationFigures {
  /** Fields with a red-cell size. */
  measured: number;
  /** Their median radius (px); null when none. */
  median: number | null;
  low: number;
  high: number;
  /** Fields needed before the median is judged: half the reference's window. */
  needed: number;
  /**
   * `smaller` / `larger`: at least `needed` fields measured and their median outside every
   * training window's; null otherwise (within, or too few to say).
   */
  differs: 'smaller' | 'larger' | null;
  /** A labelled set's classes, each against its own class's range (magnificationByClass). */
  by_class?: Record<string, MagnificationFigures> | null;
}

export function magnificationFigures(
  radii: readonly (number | null)[],
  reference: Pick<RedCellReference, 'window' | 'low' | 'high'>,
): MagnificationFigures {
  const measured = radii.filter((r): r is number => r !== null && Number.isFinite(r));
  const m = median(measured);
  const needed = Math.ceil(reference.window / 2);
  const judged = m !== null && measured.length >= needed;
  return {
    measured: measured.length,
    median: m,
    low: reference.low,
    high: reference.high,
    needed,
    differs: judged && m < reference.low ? 'smaller' : judged && m > reference.high ? 'larger' : null,
  };
}

/**
 * A labelled set class by class, each against its own class's training range (the reference's
 * `by_class`): narrower than all classes together, so it names a smaller change. Classes the
 * reference has no range for are left out; null when it has none at all.
 */
export function magnificationByClass(
  items: readonly { className: string; radius: number | null }[],
  reference: RedCellReference,
): Record<string, MagnificationFigures> | null {
  if (!reference.by_class) return null;
  const out: Record<string, MagnificationFigures> = {};
  for (const [name, range] of Object.entries(reference.by_class)) {
    const radii = items.filter((i) => i.className === name).map((i) => i.radius);
    if (radii.length > 0) out[name] = magnificationFigures(radii, { window: reference.window, ...range });
  }
  return out;
}
