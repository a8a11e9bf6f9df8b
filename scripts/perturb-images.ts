/**
 * Writes perturbed copies of data-set images, for the model's robustness evaluation.
 *
 *   npx tsx scripts/perturb-images.ts --data DIR --out DIR --kind KIND [--files LIST]
 *
 * KIND: brightness+10 | brightness-10 (exposure x1.10 / x0.90 on every channel), hue+10 (hue
 * rotated 10 degrees), saturation-15 (saturation x0.85), blur1 (Gaussian, sigma 1 px), jpeg70
 * (re-encoded as JPEG quality 70), stain (training augmentation, see below). LIST holds paths relative to --data, one per line
 * (e.g. `Benign/WBC-Benign-001.jpg`); without it every image under --data is used.
 * Output keeps the class folders. Every kind but jpeg70 is written as PNG, so the only change
 * is the one asked for; the daemon's `preprocess-dataset` then reads the folder like any other.
 *
 * stain [--seed N]: a random stain/illumination change per image, as training augmentation:
 * exposure x U(0.85, 1.15), saturation x U(0.75, 1.25), hue rotated U(-20, 20) degrees (whole
 * degrees), drawn from a PRNG seeded by (N, relative path), so a variant set is reproducible and
 * independent of file order. It exists because a colour change moves the a* channel and with it
 * the segmentation mask: augmenting tensors in Python would keep the old mask, so the model
 * would never see the masks a differently stained slide really produces. Running the change
 * through the daemon's own preprocessing keeps one preprocessing implementation.
 *
 * Parametric kinds (one camera change at a chosen strength, for sweeping a range):
 * `gain:R,G,B` (per-channel gains), `brightness:F` (exposure xF), `gamma:G` (out = in^(1/G)),
 * `hue:D` (degrees), `saturation:F`, `zoom:F` (magnification: F > 1 crops the centre and scales
 * it back, F < 1 shrinks and pads by mirroring), `blur:S` (Gaussian sigma in px), `jpeg:Q`,
 * `noise:S` (Gaussian sensor noise, sigma S in grey levels, seeded per image) and `frame:WxH`
 * (the image stretched to a W x H camera frame).
 */
import { mkdir, readFile, readdir } from 'node:fs/promises';
import { basename, dirname, extname, join } from 'node:path';
import { parseArgs } from 'node:util';
import sharp from 'sharp';

const KINDS: Record<string, (img: sharp.Sharp) => sharp.Sharp> = {
  'brightness+10': (img) => img.linear(1.1, 0),
  'brightness-10': (img) => img.linear(0.9, 0),
  'hue+10': (img) => img.modulate({ hue: 10 }),
  'saturation-15': (img) => img.modulate({ saturation: 0.85 }),
  blur1: (img) => img.blur(1),
  jpeg70: (img) => img,
};

type AsyncChange = (img: sharp.Sharp, rel: string) => Promise<sharp.Sharp>;

/** Per-pixel change of the raw RGB bytes (gamma, noise), returned as a new sharp pipeline. */
async function mapRaw(img: sharp.Sharp, change: (data: Buffer) => void): Promise<sharp.Sharp> {
  const { data, info } = await img.raw().toBuffer({ resolveWithObject: true });
  change(data);
  return sharp(data, { raw: { width: info.width, height: info.height, channels: info.channels } });
}

/** A standard normal from two uniforms (Box-Muller). */
function gaussian(rand: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
}

function parametricKind(kind: string): AsyncChange | undefined {
  const [name, arg] = kind.split(':');
  if (arg === undefined) return undefined;
  const value = Number(arg);
  const need = (ok: boolean): void => {
    if (!ok) throw new Error(`bad --kind ${kind}`);
  };
  switch (name) {
    case 'gain': {
      const gains = arg.split(',').map(Number);
      need(gains.length === 3 && gains.every((g) => g > 0));
      return async (img) => img.linear(gains, [0, 0, 0]);
    }
    case 'brightness':
      need(value > 0);
      return async (img) => img.linear(value, 0);
    case 'gamma': {
      need(value > 0);
      const table = Uint8Array.from({ length: 256 }, (_, v) => Math.round(255 * (v / 255) ** (1 / value)));
      return (img) => mapRaw(img, (d) => d.forEach((v, i) => (d[i] = table[v]!)));
    }
    case 'hue':
      need(Number.isFinite(value));
      return async (img) => img.modulate({ hue: Math.round(value) });
    case 'saturation':
      need(value >= 0);
      return async (img) => img.modulate({ saturation: value });
    case 'blur':
      need(value >= 0.3);
      return async (img) => img.blur(value);
    case 'jpeg':
      need(value >= 1 && value <= 100);
      return async (img) => img;
    case 'noise':
      need(value >= 0);
      return (img, rel) => {
        const rand = mulberry32(fnv1a(`noise:${rel}`));
        return mapRaw(img, (d) => {
          for (let i = 0; i < d.length; i++)
            d[i] = Math.min(255, Math.max(0, Math.round(d[i]! + value * gaussian(rand))));
        });
      };
    case 'zoom':
      need(value > 0);
      return async (img) => {
        const { data, info } = await img.raw().toBuffer({ resolveWithObject: true });
        const { width, height, channels } = info;
        const source = sharp(data, { raw: { width, height, channels } });
        if (value >= 1) {
          const w = Math.round(width / value);
          const h = Math.round(height / value);
          const crop = source.extract({
            left: (width - w) >> 1,
            top: (height - h) >> 1,
            width: w,
            height: h,
          });
          return sharp(await crop.resize(width, height, { fit: 'fill' }).png().toBuffer());
        }
        const w = Math.round(width * value);
        const h = Math.round(height * value);
        const small = await source.resize(w, h, { fit: 'fill' }).png().toBuffer();
        const left = (width - w) >> 1;
        const top = (height - h) >> 1;
        return sharp(small).extend({
          left,
          right: width - w - left,
          top,
          bottom: height - h - top,
          extendWith: 'mirror',
        });
      };
    case 'frame': {
      const [w, h] = arg.split('x').map(Number);
      need(Number.isInteger(w) && Number.isInteger(h) && (w as number) > 0 && (h as number) > 0);
      return async (img) => img.resize(w, h, { fit: 'fill' });
    }
    default:
      return undefined;
  }
}

/** FNV-1a of a string: a 32-bit seed from (seed, path). */
function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

/** mulberry32: a small, well-mixed 32-bit PRNG; uniform floats in [0, 1). */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface StainChange {
  exposure: number;
  saturation: number;
  hue: number;
}

/** The random stain change of one image in variant set `seed` (deterministic). */
function stainChange(seed: number, rel: string): StainChange {
  const rand = mulberry32(fnv1a(`${seed}:${rel}`));
  const uniform = (lo: number, hi: number): number => lo + (hi - lo) * rand();
  return {
    exposure: uniform(0.85, 1.15),
    saturation: uniform(0.75, 1.25),
    hue: Math.round(uniform(-20, 20)),
  };
}

function applyStain(img: sharp.Sharp, change: StainChange): sharp.Sharp {
  return img.linear(change.exposure, 0).modulate({ saturation: change.saturation, hue: change.hue });
}

async function listImages(dataDir: string): Promise<string[]> {
  const out: string[] = [];
  for (const cls of (await readdir(dataDir, { withFileTypes: true })).filter((d) => d.isDirectory())) {
    for (const f of await readdir(join(dataDir, cls.name))) {
      if (/\.(jpe?g|png|tiff?|bmp|webp)$/i.test(f)) out.push(`${cls.name}/${f}`);
    }
  }
  return out.sort();
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      data: { type: 'string' },
      out: { type: 'string' },
      kind: { type: 'string' },
      files: { type: 'string' },
      seed: { type: 'string', default: '1' },
    },
  });
  const { data, out, kind } = values;
  if (!data || !out || !kind) {
    throw new Error('usage: perturb-images.ts --data DIR --out DIR --kind KIND [--files LIST] [--seed N]');
  }
  const seed = Number(values.seed);
  if (!Number.isInteger(seed)) throw new Error(`--seed must be an integer, got ${values.seed}`);
  const fixed = KINDS[kind];
  const parametric = parametricKind(kind);
  if (!fixed && !parametric && kind !== 'stain') {
    throw new Error(
      `unknown --kind ${kind}; one of ${[...Object.keys(KINDS), 'stain'].join(', ')}, ` +
        'or gain:R,G,B brightness:F gamma:G hue:D saturation:F zoom:F blur:S jpeg:Q noise:S frame:WxH',
    );
  }
  const apply = async (img: sharp.Sharp, rel: string): Promise<sharp.Sharp> =>
    parametric ? parametric(img, rel) : fixed ? fixed(img) : applyStain(img, stainChange(seed, rel));
  const jpegQuality = kind === 'jpeg70' ? 70 : kind.startsWith('jpeg:') ? Number(kind.slice(5)) : null;
  const files = values.files
    ? (await readFile(values.files, 'utf8'))
        .split('\n')
        .map((l) => l.trim())
        .filter((l) => l.length > 0)
    : await listImages(data);
  // Every class folder of --data exists in the output, even when no listed file falls in it,
  // so preprocess-dataset reads the result like any class-per-folder set.
  for (const d of await readdir(data, { withFileTypes: true })) {
    if (d.isDirectory()) await mkdir(join(out, d.name), { recursive: true });
  }
  sharp.cache(false);
  let written = 0;
  const one = async (rel: string): Promise<void> => {
    const src = join(data, rel);
    const stem = basename(rel, extname(rel));
    const dir = join(out, dirname(rel));
    await mkdir(dir, { recursive: true });
    const img = await apply(sharp(src, { failOn: 'error' }).removeAlpha(), rel);
    // PNG level 1: lossless like any level, and several times faster to write than the default 6.
    if (jpegQuality !== null) await img.jpeg({ quality: jpegQuality }).toFile(join(dir, `${stem}.jpg`));
    else await img.png({ compressionLevel: 1 }).toFile(join(dir, `${stem}.png`));
    written += 1;
  };
  // a few files in flight: sharp works on libuv's threadpool, the main thread only schedules
  const queue = [...files];
  const workers = Array.from({ length: 4 }, async () => {
    for (let rel = queue.shift(); rel !== undefined; rel = queue.shift()) await one(rel);
  });
  await Promise.all(workers);
  process.stdout.write(`${kind}: wrote ${written} images to ${out}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`perturb-images: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
