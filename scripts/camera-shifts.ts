/**
 * What another camera, lamp or objective does to a smear image, as named, parametrised shifts
 * applied with sharp to an image file. scripts/perturb-images.ts writes them for training and
 * evaluation; scripts/robustness.ts measures the model under each.
 *
 *   gains:R,G,B       per-channel gains (white balance, colour temperature), e.g. gains:1.08,1,0.9
 *   brightness:X      exposure, every channel × X
 *   gamma:G           out = 255 (in / 255)^G
 *   hue:D             hue rotated D degrees
 *   saturation:X      saturation × X
 *   magnification:M   M > 1: the centre 1/M of the field enlarged (crop); M < 1: the field shrunk
 *                     and padded by mirroring its edges, as a lower-power objective would show more
 *   blur:S            Gaussian blur, sigma S px
 *   jpeg:Q            re-encoded as JPEG quality Q
 *   noise:S           Gaussian sensor noise, sigma S (8-bit levels), seeded by the image path
 *   stretch:WxH       resized to a W×H frame (the camera's 1024x768), which the daemon squashes back
 *   blank:CORNER      a box of 20 % × 15 % of the frame in one corner (tl, tr, bl, br) painted in
 *                     the field's background colour: blank:br removes the scale mark the training
 *                     camera's software burns into that corner, as another camera would not draw
 *                     it; the other corners are the control (the same loss of field elsewhere)
 */
import sharp from 'sharp';
import { estimateBackground } from '../src/preprocess/colour.js';
import { fnv1a, mulberry32 } from '../src/runtime/seeded-random.js';

export { fnv1a, mulberry32 };

export interface CameraShift {
  /** The shift as written on the command line, e.g. `gains:1.08,1,0.9`. */
  name: string;
  /**
   * The shifted image, encoded (PNG, or JPEG for `jpeg:Q`), and the extension to save it with.
   * `file` is a path or the encoded image itself; `rel` seeds the shifts that draw noise.
   */
  apply(file: string | Buffer, rel: string): Promise<{ bytes: Buffer; ext: string }>;
}

// PNG level 1: lossless like any level, and several times faster to write than the default 6.
const png = (img: sharp.Sharp): Promise<{ bytes: Buffer; ext: string }> =>
  img
    .png({ compressionLevel: 1 })
    .toBuffer()
    .then((bytes) => ({ bytes, ext: '.png' }));

/** Decoded RGB bytes of a file, changed pixel by pixel by `change`, as PNG. */
async function perPixel(
  file: string | Buffer,
  change: (data: Buffer) => void,
): Promise<{ bytes: Buffer; ext: string }> {
  const { data, info } = await sharp(file, { failOn: 'error' })
    .removeAlpha()
    .raw()
    .toBuffer({ resolveWithObject: true });
  change(data);
  return png(sharp(data, { raw: { width: info.width, height: info.height, channels: 3 } }));
}

/** Width and height shares of the box `blank:CORNER` paints: the burned-in scale mark's corner. */
const BLANK_BOX = { width: 0.2, height: 0.15 } as const;
const CORNERS = ['tl', 'tr', 'bl', 'br'] as const;

/**
 * Paints one corner box in the background colour: the mean of the brightest 5 % of the pixels by
 * R+G+B (plasma and gaps between cells), estimated as the colour normalisation estimates it.
 */
async function blankCorner(file: string | Buffer, corner: (typeof CORNERS)[number]) {
  const { data, info } = await sharp(file, { failOn: 'error' })
    .removeAlpha()
    .raw()
    .toBuffer({ resolveWithObject: true });
  const { width, height } = info;
  const background = estimateBackground(data, width * height, 0.05).map(Math.round);
  const boxWidth = Math.round(width * BLANK_BOX.width);
  const boxHeight = Math.round(height * BLANK_BOX.height);
  const left = corner.endsWith('r') ? width - boxWidth : 0;
  const top = corner.startsWith('b') ? height - boxHeight : 0;
  for (let y = top; y < top + boxHeight; y++)
    for (let x = left; x < left + boxWidth; x++)
      for (let c = 0; c < 3; c++) data[(y * width + x) * 3 + c] = background[c]!;
  return png(sharp(data, { raw: { width, height, channels: 3 } }));
}

function numbers(param: string, count: number, name: string): number[] {
  const v = param.split(',').map(Number);
  if (v.length !== count || v.some((x) => !Number.isFinite(x) || x <= 0))
    throw new Error(`${name}: expected ${count} positive number(s), got '${param}'`);
  return v;
}

const SHIFTS: Record<string, (param: string, name: string) => CameraShift['apply']> = {
  gains: (param, name) => {
    const gains = numbers(param, 3, name);
    return (file) => png(sharp(file, { failOn: 'error' }).removeAlpha().linear(gains, [0, 0, 0]));
  },
  brightness: (param, name) => {
    const [x] = numbers(param, 1, name);
    return (file) => png(sharp(file, { failOn: 'error' }).removeAlpha().linear(x!, 0));
  },
  gamma: (param, name) => {
    const [g] = numbers(param, 1, name);
    const table = Buffer.alloc(256);
    for (let v = 0; v < 256; v++) table[v] = Math.round(255 * (v / 255) ** g!);
    return (file) =>
      perPixel(file, (data) => {
        for (let i = 0; i < data.length; i++) data[i] = table[data[i]!]!;
      });
  },
  hue: (param) => {
    const d = Number(param);
    if (!Number.isFinite(d)) throw new Error(`hue: expected degrees, got '${param}'`);
    return (file) => png(sharp(file, { failOn: 'error' }).removeAlpha().modulate({ hue: d }));
  },
  saturation: (param, name) => {
    const [x] = numbers(param, 1, name);
    return (file) => png(sharp(file, { failOn: 'error' }).removeAlpha().modulate({ saturation: x! }));
  },
  magnification: (param, name) => {
    const [m] = numbers(param, 1, name);
    return async (file) => {
      const img = sharp(file, { failOn: 'error' }).removeAlpha();
      const { width = 0, height = 0 } = await img.metadata();
      if (m! >= 1) {
        const w = Math.round(width / m!);
        const h = Math.round(height / m!);
        const left = Math.floor((width - w) / 2);
        const top = Math.floor((height - h) / 2);
        return png(img.extract({ left, top, width: w, height: h }).resize(width, height, { fit: 'fill' }));
      }
      const w = Math.round(width * m!);
      const h = Math.round(height * m!);
      const small = await img.resize(w, h, { fit: 'fill' }).toBuffer();
      const left = Math.floor((width - w) / 2);
      const top = Math.floor((height - h) / 2);
      return png(
        sharp(small).extend({
          left,
          right: width - w - left,
          top,
          bottom: height - h - top,
          extendWith: 'mirror',
        }),
      );
    };
  },
  blur: (param, name) => {
    const [sigma] = numbers(param, 1, name);
    // sharp's blur needs sigma >= 0.3; below that it is no blur at all.
    return (file) => png(sharp(file, { failOn: 'error' }).removeAlpha().blur(Math.max(0.3, sigma!)));
  },
  jpeg: (param, name) => {
    const [q] = numbers(param, 1, name);
    return async (file) => ({
      bytes: await sharp(file, { failOn: 'error' })
        .removeAlpha()
        .jpeg({ quality: Math.round(q!) })
        .toBuffer(),
      ext: '.jpg',
    });
  },
  noise: (param, name) => {
    const [sigma] = numbers(param, 1, name);
    return (file, rel) =>
      perPixel(file, (data) => {
        const rand = mulberry32(fnv1a(`noise:${rel}`));
        for (let i = 0; i < data.length; i++) {
          // Box-Muller: one standard normal per channel value.
          const n = Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
          data[i] = Math.min(255, Math.max(0, Math.round(data[i]! + sigma! * n)));
        }
      });
  },
  stretch: (param) => {
    const m = /^(\d+)x(\d+)$/.exec(param);
    if (!m) throw new Error(`stretch: expected WxH, got '${param}'`);
    const [w, h] = [Number(m[1]), Number(m[2])];
    return (file) => png(sharp(file, { failOn: 'error' }).removeAlpha().resize(w, h, { fit: 'fill' }));
  },
  blank: (param) => {
    const corner = CORNERS.find((c) => c === param);
    if (!corner) throw new Error(`blank: expected one of ${CORNERS.join(', ')}, got '${param}'`);
    return (file) => blankCorner(file, corner);
  },
};

export const SHIFT_KINDS = Object.keys(SHIFTS);

/**
 * Each camera shift at both ends of the range a new camera or lamp may bring (and the warm and
 * cool lamps inside it): what the robustness and gate reports measure.
 */
export const RANGE_SHIFTS: readonly string[] = [
  'gains:1.08,1,0.9', // warm lamp
  'gains:0.9,1,1.08', // cool lamp
  'gains:0.85,1,1',
  'gains:1.15,1,1',
  'gains:1,0.85,1',
  'gains:1,1.15,1',
  'gains:1,1,0.85',
  'gains:1,1,1.15',
  'brightness:0.8',
  'brightness:1.2',
  'gamma:0.8',
  'gamma:1.25',
  'hue:-15',
  'hue:15',
  'saturation:0.7',
  'saturation:1.3',
  'magnification:0.75',
  'magnification:1.25',
  'blur:1',
  'blur:2',
  'jpeg:40',
  'noise:8',
  'stretch:1024x768',
];

/** Parses `kind:param` into a shift; throws with the list of kinds for an unknown one. */
export function parseCameraShift(name: string): CameraShift {
  const colon = name.indexOf(':');
  const kind = colon < 0 ? name : name.slice(0, colon);
  const make = SHIFTS[kind];
  if (!make || colon < 0)
    throw new Error(`unknown shift '${name}'; one of ${SHIFT_KINDS.map((k) => `${k}:PARAM`).join(', ')}`);
  return { name, apply: make(name.slice(colon + 1), name) };
}
