/**
 * The sensor-noise figure and the red-cell size measured past it (src/gate/sensor-noise.ts), on
 * the committed sample fields as the daemon decodes them and on copies with a known noise added
 * (scripts/camera-shifts.ts `noise:8`, what the robustness and watch reports use).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { parseCameraShift } from '../../scripts/camera-shifts.js';
import { decodeImage } from '../../src/decode/index.js';
import { redCellRadiusOf } from '../../src/gate/red-cell-size.js';
import { fieldRedCellRadius, median3x3, sensorNoiseSigma } from '../../src/gate/sensor-noise.js';
import { loadModelManifest } from '../../src/infer/manifest.js';
import { repoRoot } from '../helpers/cli.js';

const SIZE = 224;
const SAMPLES = join(repoRoot, 'test/fixtures/samples');
const samples = ['Benign', 'Early', 'Pre', 'Pro'].flatMap((cls) =>
  readdirSync(join(SAMPLES, cls))
    .filter((n) => n.endsWith('.jpg'))
    .map((n) => join(SAMPLES, cls, n)),
);
const decode = async (bytes: Buffer | string) =>
  (await decodeImage(bytes, { size: SIZE, limitInputPixels: 50_000_000 })).rgb;

/** A grey field with Gaussian noise of `sigma` levels (Box-Muller on a fixed LCG). */
function noisyFlat(sigma: number, level = 128): Uint8Array {
  let seed = 12345;
  const uniform = () => ((seed = (seed * 1103515245 + 12345) >>> 0) + 0.5) / 2 ** 32;
  const rgb = new Uint8Array(SIZE * SIZE * 3);
  for (let p = 0; p < SIZE * SIZE; p++) {
    const n = Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform()) * sigma;
    const v = Math.max(0, Math.min(255, Math.round(level + n)));
    rgb.fill(v, 3 * p, 3 * p + 3);
  }
  return rgb;
}

t.test('the noise figure reads a known noise, and nothing on a flat field', async (t) => {
  t.equal(sensorNoiseSigma(new Uint8Array(SIZE * SIZE * 3).fill(200), SIZE, SIZE), 0);
  for (const sigma of [2, 8]) {
    const got = sensorNoiseSigma(noisyFlat(sigma), SIZE, SIZE);
    t.ok(Math.abs(got - sigma) < 0.1 * sigma, `σ ${sigma} read as ${got.toFixed(2)}`);
  }
});

t.test('the 3 × 3 median is the median of each channel’s nine neighbours, edges replicated', async (t) => {
  const w = 7;
  const h = 5;
  const rgb = Uint8Array.from({ length: w * h * 3 }, (_, i) => (i * 97 + 31) % 256);
  const out = new Uint8Array(rgb.length);
  median3x3(rgb, w, h, out);
  const clamp = (v: number, hi: number) => Math.min(hi, Math.max(0, v));
  let same = 0;
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++)
      for (let c = 0; c < 3; c++) {
        const nine: number[] = [];
        for (let dy = -1; dy <= 1; dy++)
          for (let dx = -1; dx <= 1; dx++)
            nine.push(rgb[3 * (clamp(y + dy, h - 1) * w + clamp(x + dx, w - 1)) + c]!);
        nine.sort((a, b) => a - b);
        if (out[3 * (y * w + x) + c] === nine[4]) same++;
      }
  t.equal(same, w * h * 3);
});

t.test(
  'a field noisier than any training field is measured after the median; others as they are',
  async (t) => {
    const manifest = await loadModelManifest(join(repoRoot, 'models'));
    const noiseHigh = manifest.acquisition?.red_cell_radius?.noise_high;
    t.ok(noiseHigh !== undefined && noiseHigh > 0, `the bundled model records noise_high (${noiseHigh})`);
    const noise = parseCameraShift('noise:8');
    let filtered = 0;
    for (const path of samples) {
      const clean = await decode(path);
      t.ok(sensorNoiseSigma(clean, SIZE, SIZE) <= noiseHigh!, `${path}: within the training fields' noise`);
      t.equal(fieldRedCellRadius(clean, SIZE, SIZE, noiseHigh), redCellRadiusOf(clean, SIZE, SIZE));

      const noisy = await decode((await noise.apply(readFileSync(path), path)).bytes);
      if (sensorNoiseSigma(noisy, SIZE, SIZE) <= noiseHigh!) continue;
      filtered++;
      const median = new Uint8Array(noisy.length);
      median3x3(noisy, SIZE, SIZE, median);
      t.equal(fieldRedCellRadius(noisy, SIZE, SIZE, noiseHigh), redCellRadiusOf(median, SIZE, SIZE));
      t.equal(
        fieldRedCellRadius(noisy, SIZE, SIZE, undefined),
        redCellRadiusOf(noisy, SIZE, SIZE),
        'no noise_high: as it is',
      );
    }
    t.ok(
      filtered >= samples.length - 1,
      `${filtered} of ${samples.length} fields with noise σ 8 are above it`,
    );
  },
);
