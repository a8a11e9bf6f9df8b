/**
 * The image sets the gate report measures: files under a folder (with the class from the first
 * folder when it is one of the model's), camera shifts written by scripts/perturb-images.ts, and
 * generated pictures that are not smears at all.
 */
import { execFile } from 'node:child_process';
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { mulberry32 } from '../../src/runtime/seeded-random.js';

const run = promisify(execFile);

export interface SetImage {
  /** Path of the file, or a name for a generated picture. */
  name: string;
  /** A file path, or the bytes of a generated picture. */
  input: string | Buffer;
  /** Class index when the image has one. */
  truth: number | null;
}

const IMAGE = /\.(jpe?g|png|tiff?|webp)$/i;

/** Every image under `dir`, sorted by relative path; truth from the first folder's name. */
export async function listImages(dir: string, folders: readonly string[]): Promise<SetImage[]> {
  const out: SetImage[] = [];
  const walk = async (d: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else if (IMAGE.test(e.name)) {
        const rel = relative(dir, p).split(sep).join('/');
        const idx = folders.indexOf(rel.split('/')[0] ?? '');
        out.push({ name: rel, input: p, truth: rel.includes('/') && idx >= 0 ? idx : null });
      }
    }
  };
  await walk(dir);
  return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** Writes `kind` copies of the listed data-set files with scripts/perturb-images.ts. */
export async function perturb(
  dataDir: string,
  filesList: string,
  kind: string,
  outDir: string,
): Promise<void> {
  await run(
    process.execPath,
    [
      '--import',
      'tsx',
      'scripts/perturb-images.ts',
      '--data',
      dataDir,
      '--out',
      outDir,
      '--kind',
      kind,
      '--files',
      filesList,
    ],
    { maxBuffer: 1 << 20 },
  );
}

/**
 * The listed data-set files changed by `kind` (scripts/perturb-images.ts) into a folder under
 * `work`, handed to `use` and removed after: a few hundred PNGs per change add up.
 */
export async function withChangedCopies<T>(
  dataDir: string,
  filesList: string,
  kind: string,
  work: string,
  folders: readonly string[],
  use: (images: SetImage[]) => Promise<T>,
): Promise<T> {
  const dir = join(work, kind.replace(/[^a-z0-9.]+/gi, '_'));
  try {
    await perturb(dataDir, filesList, kind, dir);
    return await use(await listImages(dir, folders));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** The data set, its split and the model, as every script that measures the split names them. */
export const SPLIT_OPTIONS = {
  data: { type: 'string', default: '../shared/data/all-smears' },
  split: { type: 'string', default: 'training/split.json' },
  model: { type: 'string', default: 'models' },
} as const;

/** The options the gate scripts share: SPLIT_OPTIONS and every N-th image. */
export const SET_OPTIONS = {
  ...SPLIT_OPTIONS,
  every: { type: 'string', default: '1' },
} as const;

/** --every as a positive integer. */
export function parseEvery(value: string): number {
  const every = Number(value);
  if (!Number.isInteger(every) || every < 1) throw new Error('--every must be a positive integer');
  return every;
}

export async function writeList(path: string, lines: readonly string[]): Promise<void> {
  await mkdir(join(path, '..'), { recursive: true });
  await writeFile(path, lines.map((l) => `${l}\n`).join(''));
}

type Painter = (x: number, y: number, rand: () => number) => [number, number, number];

async function paint(
  width: number,
  height: number,
  seed: number,
  painter: Painter,
  jpeg = true,
): Promise<Buffer> {
  const rand = mulberry32(seed);
  const data = Buffer.alloc(width * height * 3);
  for (let y = 0, o = 0; y < height; y++)
    for (let x = 0; x < width; x++, o += 3) {
      const [r, g, b] = painter(x, y, rand);
      data[o] = Math.max(0, Math.min(255, Math.round(r)));
      data[o + 1] = Math.max(0, Math.min(255, Math.round(g)));
      data[o + 2] = Math.max(0, Math.min(255, Math.round(b)));
    }
  const img = sharp(data, { raw: { width, height, channels: 3 } });
  return jpeg ? img.jpeg({ quality: 90 }).toBuffer() : img.png({ compressionLevel: 1 }).toBuffer();
}

const noise = (rand: () => number, s: number): number => (rand() + rand() + rand() - 1.5) * s;

/**
 * Frames that hold no smear: blank bright fields (the camera between slides, a few lamp levels
 * and tints, with sensor noise and vignetting), black frames, and pictures that are not smears
 * (gradients, stripes, checkerboards, blobs, noise textures). 4:3 camera frames, so geometry
 * alone cannot refuse them.
 */
export async function nonSmearImages(
  count: number,
): Promise<{ blank: SetImage[]; black: SetImage[]; other: SetImage[] }> {
  const w = 640;
  const h = 480;
  const blank: SetImage[] = [];
  const black: SetImage[] = [];
  const other: SetImage[] = [];
  for (let i = 0; i < count; i++) {
    const r0 = mulberry32(1000 + i);
    const level = 200 + 50 * r0();
    const tint = [level * (0.95 + 0.08 * r0()), level, level * (0.9 + 0.1 * r0())];
    blank.push({
      name: `blank-${i}`,
      truth: null,
      input: await paint(w, h, 1 + i, (x, y, rand) => {
        const v = 1 - 0.25 * (((x - w / 2) / w) ** 2 + ((y - h / 2) / h) ** 2);
        return [tint[0]! * v + noise(rand, 4), tint[1]! * v + noise(rand, 4), tint[2]! * v + noise(rand, 4)];
      }),
    });
    const dark = 3 + 12 * r0();
    black.push({
      name: `black-${i}`,
      truth: null,
      input: await paint(w, h, 2000 + i, (_x, _y, rand) => [
        dark + noise(rand, 3),
        dark + noise(rand, 3),
        dark + noise(rand, 3),
      ]),
    });
    const kind = i % 5;
    const c1 = [255 * r0(), 255 * r0(), 255 * r0()];
    const c2 = [255 * r0(), 255 * r0(), 255 * r0()];
    const period = 8 + Math.floor(60 * r0());
    const painters: Painter[] = [
      (x, y) => c1.map((c, k) => c + ((c2[k]! - c) * (x + y)) / (w + h)) as [number, number, number],
      (x) => (Math.floor(x / period) % 2 ? c1 : c2) as [number, number, number],
      (x, y) => ((Math.floor(x / period) + Math.floor(y / period)) % 2 ? c1 : c2) as [number, number, number],
      (x, y) => {
        const inside = Math.hypot(((x % 97) - 48) / 30, ((y % 89) - 44) / 30) < 1;
        return (inside ? c1 : c2) as [number, number, number];
      },
      (_x, _y, rand) => [c1[0]! + noise(rand, 120), c1[1]! + noise(rand, 120), c1[2]! + noise(rand, 120)],
    ];
    other.push({
      name: `not-a-smear-${kind}-${i}`,
      truth: null,
      input: await paint(w, h, 3000 + i, painters[kind]!),
    });
  }
  return { blank, black, other };
}
