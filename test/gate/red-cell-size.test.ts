/**
 * The red cells' size (src/gate/red-cell-size.ts): the same figure as the training pipeline's
 * description of the data set (training/blastwatch_train/acquisition.py, with OpenCV) on the same
 * pixels, for real smears of every class, as recorded and at another magnification; the
 * structuring elements and Otsu's threshold as OpenCV makes them; and the check of a set against
 * the training range.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { repoRoot } from '../helpers/cli.js';
import { parseCameraShift } from '../../scripts/camera-shifts.js';
import { decodeImage } from '../../src/decode/index.js';
import {
  ellipseHalfWidths,
  fitRedCellReference,
  magnificationByClass,
  magnificationFigures,
  otsuThreshold,
  redCellRadiusOf,
} from '../../src/gate/red-cell-size.js';

const run = promisify(execFile);
const PYTHON = '/usr/bin/python3';
const SAMPLES = join(repoRoot, 'test/fixtures/samples');
const SIZE = 224;

const samples = (): string[] =>
  ['Benign', 'Early', 'Pre', 'Pro'].flatMap((folder) =>
    readdirSync(join(SAMPLES, folder))
      .filter((f) => f.endsWith('.jpg'))
      .sort()
      .map((f) => join(SAMPLES, folder, f)),
  );

t.test("OpenCV's ellipse elements and Otsu threshold", async (t) => {
  // cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3)) is a cross; (5, 5) has single-pixel tips.
  t.same([...ellipseHalfWidths(1)], [0, 1, 0]);
  t.same([...ellipseHalfWidths(2)], [0, 2, 2, 2, 0]);
  t.same([...ellipseHalfWidths(3)], [0, 2, 3, 3, 3, 2, 0]);
  const twoLevels = new Uint8Array(100).map((_, i) => (i < 60 ? 40 : 200));
  t.equal(otsuThreshold(twoLevels, 100), 40, 'the first level of the largest between-class variance');
});

t.test(
  'the same figure as the training pipeline on the same pixels, as recorded, at ×0.75, with a red lamp and with sensor noise',
  async (t) => {
    const work = mkdtempSync(join(tmpdir(), 'bw-red-cells-'));
    t.teardown(() => rmSync(work, { recursive: true, force: true }));
    // The shifts exercise the nucleus rule: relative to the cell layer (a red gain) and opened (noise).
    const shifts = { '×0.75': 'magnification:0.75', 'red ×1.15': 'gains:1.15,1,1', 'noise σ 8': 'noise:8' };
    const pictures: { name: string; rgb: Uint8Array }[] = [];
    for (const path of samples()) {
      const decoded = await decodeImage(path, { size: SIZE, limitInputPixels: 50_000_000 });
      pictures.push({ name: path, rgb: decoded.rgb });
      for (const [label, shift] of Object.entries(shifts)) {
        const shifted = await parseCameraShift(shift).apply(readFileSync(path), path);
        pictures.push({
          name: `${path} ${label}`,
          rgb: (await decodeImage(shifted.bytes, { size: SIZE, limitInputPixels: 50_000_000 })).rgb,
        });
      }
    }
    const files = pictures.map((p, i) => {
      const file = join(work, `${i}.u8`);
      writeFileSync(file, p.rgb);
      return file;
    });
    const { stdout } = await run(
      PYTHON,
      [
        '-c',
        'import sys, json, numpy as np\n' +
          'from blastwatch_train.acquisition import red_cell_radius\n' +
          'print(json.dumps([red_cell_radius(np.fromfile(f, dtype=np.uint8).reshape(224, 224, 3)) for f in sys.argv[1:]]))',
        ...files,
      ],
      { env: { ...process.env, PYTHONPATH: join(repoRoot, 'training') }, maxBuffer: 1 << 20 },
    );
    const expected = JSON.parse(stdout) as (number | null)[];
    let measured = 0;
    pictures.forEach((p, i) => {
      const ours = redCellRadiusOf(p.rgb, SIZE, SIZE);
      const theirs = expected[i] ?? null;
      if (theirs === null) t.equal(ours, null, `${p.name}: no figure on either side`);
      else {
        measured++;
        t.ok(ours !== null && Math.abs(ours - theirs) < 1e-9, `${p.name}: ${ours} against ${theirs}`);
      }
    });
    t.ok(measured >= 40, `most fields measured (${measured} of ${pictures.length})`);
    const radius = (name: string) => redCellRadiusOf(pictures.find((p) => p.name === name)!.rgb, SIZE, SIZE);
    const pro = samples().find((s) => s.includes('Pro-271'))!;
    t.ok(radius(`${pro} ×0.75`)! < radius(pro)!, 'a smaller magnification draws smaller red cells');
  },
);

t.test('the training range and a set against it', async (t) => {
  const ref = fitRedCellReference(
    new Map([
      ['Benign', [6, 7, null, 8, 7]],
      ['Pro-B', [5, 5, 6, 6]],
    ]),
    4,
  );
  t.same(
    ref,
    {
      figure: 'red_cell_radius',
      window: 4,
      low: 5.5,
      high: 7,
      by_class: { Benign: { low: 7, high: 7 }, 'Pro-B': { low: 5.5, high: 5.5 } },
    },
    'window medians 7 and 7 for one class, 5.5 for the other; the whole range spans both',
  );
  t.throws(
    () => fitRedCellReference(new Map([['Benign', [null, null, null]]]), 2),
    /no window/,
    'no window with half its fields measured',
  );

  const reference = { figure: 'red_cell_radius' as const, window: 4, low: 6, high: 8 };
  t.match(magnificationFigures([5, 5.5, 5.2, null], reference), {
    measured: 3,
    needed: 2,
    differs: 'smaller',
  });
  t.match(magnificationFigures([9, 9.5, 8.7], reference), { differs: 'larger' });
  t.match(magnificationFigures([6.5, 7, 7.5], reference), { median: 7, differs: null });
  t.match(
    magnificationFigures([5, null, null], reference),
    { measured: 1, differs: null },
    'too few fields measured to judge',
  );
  t.match(magnificationFigures([], reference), { median: null, differs: null });

  // Class by class: each against its own range, which the whole range hides.
  const byClass = magnificationByClass(
    [
      { className: 'Benign', radius: 6.2 },
      { className: 'Benign', radius: 6.4 },
      { className: 'Pro-B', radius: 5.6 },
      { className: 'Pro-B', radius: 5.4 },
      { className: 'Pre-B', radius: 5.0 },
    ],
    ref,
  );
  t.match(byClass, {
    Benign: { measured: 2, low: 7, high: 7, differs: 'smaller' },
    'Pro-B': { median: 5.5, differs: null },
  });
  t.notOk(byClass && 'Pre-B' in byClass, 'a class the reference has no range for is left out');
  t.match(magnificationFigures([6.2, 6.4], { window: 4, low: ref.low, high: ref.high }), {
    differs: null,
  });
  t.equal(magnificationByClass([], { ...reference }), null, 'a reference without classes');
});
