/**
 * The TypeScript segmentation against the authors' pipeline run with the real libraries
 * (test/reference/segment_reference.py: OpenCV, scikit-learn, SciPy, scikit-image from Debian).
 * Needs /usr/bin/python3 with python3-opencv python3-sklearn python3-skimage: without them
 * this test FAILS (it does not skip) — CI installs them.
 */
import t from 'tap';
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { decodeImage } from '../../src/decode/index.js';
import { createSegmentScratch, segmentImage } from '../../src/segment/index.js';
import { rgbToLab8 } from '../../src/segment/reference.js';

const run = promisify(execFile);
const PYTHON = '/usr/bin/python3';
const reference = fileURLToPath(new URL('../reference/segment_reference.py', import.meta.url));
const dataDir =
  process.env.BLASTWATCH_DATA ?? fileURLToPath(new URL('../../../shared/data/all-smears', import.meta.url));
const PER_CLASS = 50; // 200 images
const SIZE = 224;
const PIXELS = SIZE * SIZE;

function pythonReady(): string | undefined {
  try {
    execFileSync(PYTHON, ['-c', 'import cv2, sklearn, scipy, skimage'], { stdio: 'pipe' });
    return undefined;
  } catch (err) {
    const e = err as { stderr?: Buffer; message: string };
    return (e.stderr?.toString() || e.message).trim().split('\n').pop();
  }
}

// The Python side (sklearn KMeans with n_init=10 on every pixel, as the authors ran it) costs
// ~0.3 s per image on an idle core and several times that on a loaded one: allow 15 minutes.
t.setTimeout(900_000);

const missing = pythonReady();
if (!existsSync(dataDir)) {
  t.fail(`data set not found at ${dataDir}: set BLASTWATCH_DATA to the all-smears folder`);
} else if (missing !== undefined) {
  t.fail(
    `${PYTHON} cannot import cv2/sklearn/scipy/skimage (${missing}); install Debian's ` +
      'python3-opencv python3-sklearn python3-skimage to run the reference comparison',
  );
} else {
  const work = mkdtempSync(path.join(tmpdir(), 'blastwatch-ref-'));
  t.teardown(() => rmSync(work, { recursive: true, force: true }));

  t.test('OpenCV 8-bit RGB→Lab is reproduced bit for bit on all 2^24 colours', async (t) => {
    const dump = path.join(work, 'lab.u8');
    await run(PYTHON, [
      '-c',
      'import sys, numpy as np, cv2\n' +
        'v = np.arange(1 << 24, dtype=np.uint32)\n' +
        'rgb = np.stack([(v >> 16) & 255, (v >> 8) & 255, v & 255], 1).astype(np.uint8).reshape(4096, 4096, 3)\n' +
        'cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB).tofile(sys.argv[1])',
      dump,
    ]);
    const expected = readFileSync(dump);
    const n = 1 << 24;
    const rgb = new Uint8Array(n * 3);
    for (let v = 0; v < n; v++) {
      rgb[v * 3] = v >> 16;
      rgb[v * 3 + 1] = (v >> 8) & 255;
      rgb[v * 3 + 2] = v & 255;
    }
    const lab = rgbToLab8(rgb, n);
    let mismatches = 0;
    for (let i = 0; i < lab.length; i++) if (lab[i] !== expected[i]) mismatches++;
    t.equal(mismatches, 0, 'L, a, b bytes identical to cv2.cvtColor(..., COLOR_RGB2LAB)');
  });

  t.test(`mask IoU against the authors' pipeline on ${PER_CLASS * 4} data set images`, async (t) => {
    // Deterministic spread over the classes: sorted file names, positions ⌊i·n/PER_CLASS⌋.
    const files: string[] = [];
    for (const cls of ['Benign', 'Early', 'Pre', 'Pro']) {
      const names = readdirSync(path.join(dataDir, cls))
        .filter((f) => /\.jpe?g$/i.test(f))
        .sort();
      for (let i = 0; i < PER_CLASS; i++)
        files.push(path.join(dataDir, cls, names[Math.floor((i * names.length) / PER_CLASS)]!));
    }
    // The reference decodes with cv2.imread, as the authors did; two processes use both cores.
    const half = Math.ceil(files.length / 2);
    const parts = [files.slice(0, half), files.slice(half)];
    const outs = parts.map((_, i) => path.join(work, `ref-${i}.u8`));
    const env = { ...process.env, OMP_NUM_THREADS: '1', OPENBLAS_NUM_THREADS: '1' };
    await Promise.all(
      parts.map((p, i) => run(PYTHON, [reference, 'images', outs[i]!, ...p], { env, maxBuffer: 1 << 26 })),
    );
    const refMasks = Buffer.concat(outs.map((o) => readFileSync(o)));
    t.equal(refMasks.length, files.length * PIXELS);

    const scratch = createSegmentScratch(PIXELS);
    const ious: number[] = [];
    for (const [k, file] of files.entries()) {
      const { rgb } = await decodeImage(file, { size: SIZE, limitInputPixels: 10_000_000 });
      const { mask } = segmentImage(rgb, SIZE, SIZE, undefined, scratch);
      let inter = 0;
      let union = 0;
      for (let i = 0; i < PIXELS; i++) {
        const a = mask[i] === 255;
        const b = refMasks[k * PIXELS + i] === 1;
        if (a && b) inter++;
        if (a || b) union++;
      }
      ious.push(union === 0 ? 1 : inter / union);
    }
    const mean = ious.reduce((s, v) => s + v, 0) / ious.length;
    const min = Math.min(...ious);
    const worst = files[ious.indexOf(min)]!;
    t.comment(
      `mask IoU vs reference over ${ious.length} images: mean ${mean.toFixed(5)}, min ${min.toFixed(5)} (${path.basename(worst)}), identical masks ${ious.filter((v) => v === 1).length}`,
    );
    t.ok(mean >= 0.97, `mean IoU ${mean.toFixed(5)} ≥ 0.97`);
  });
}
