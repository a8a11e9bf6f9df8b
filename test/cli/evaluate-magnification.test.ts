/**
 * `blastwatch evaluate` with the bundled model names a microscope that draws red cells smaller
 * than the training camera did: forty validation-split smears (ten per class, the first in
 * file-name order), as recorded and shrunk to ×0.7 the way scripts/camera-shifts.ts changes a
 * camera's magnification.
 */
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { repoRoot, runCli } from '../helpers/cli.js';
import { parseCameraShift } from '../../scripts/camera-shifts.js';

const dataDir =
  process.env.BLASTWATCH_DATA ?? fileURLToPath(new URL('../../../shared/data/all-smears', import.meta.url));

interface Figures {
  measured: number;
  median: number;
  low: number;
  high: number;
  needed: number;
  differs: 'smaller' | 'larger' | null;
}

if (!existsSync(dataDir)) {
  t.fail(`data set not found at ${dataDir}: set BLASTWATCH_DATA to the all-smears folder`);
} else {
  t.test("a lower magnification is named; the training camera's is not", async (t) => {
    const split = JSON.parse(readFileSync(join(repoRoot, 'training/split.json'), 'utf8')) as {
      splits: { val: { path: string }[] };
    };
    const chosen = ['Benign', 'Early', 'Pre', 'Pro'].flatMap((folder) =>
      split.splits.val
        .map((e) => e.path)
        .filter((p) => p.startsWith(`${folder}/`))
        .sort()
        .slice(0, 10),
    );
    const root = await mkdtemp(join(tmpdir(), 'bw-eval-magnification-'));
    t.teardown(() => rm(root, { recursive: true, force: true }));
    const recorded = join(root, 'recorded');
    const smaller = join(root, 'smaller');
    const shrink = parseCameraShift('magnification:0.7');
    for (const dir of [recorded, smaller]) await mkdir(dir);
    for (const path of chosen) {
      const bytes = readFileSync(join(dataDir, path));
      await writeFile(join(recorded, basename(path)), bytes);
      const shifted = await shrink.apply(bytes, path);
      await writeFile(join(smaller, basename(path).replace(/\.jpg$/, '.png')), shifted.bytes);
    }

    const asRecorded = await runCli(['evaluate', '--json', '--data', recorded]);
    t.equal(asRecorded.code, 0, asRecorded.stderr);
    const clean = (JSON.parse(asRecorded.stdout) as { magnification: Figures }).magnification;
    t.ok(clean.measured >= clean.needed, `enough fields measured (${clean.measured} of 40)`);
    t.ok(
      clean.median >= clean.low && clean.median <= clean.high,
      `median ${clean.median} within ${clean.low}-${clean.high}`,
    );
    t.equal(clean.differs, null);

    const shrunk = await runCli(['evaluate', '--json', '--data', smaller]);
    t.equal(shrunk.code, 0, shrunk.stderr);
    const m = (JSON.parse(shrunk.stdout) as { magnification: Figures }).magnification;
    t.ok(m.median < m.low, `median ${m.median} below the training images' ${m.low}`);
    t.equal(m.differs, 'smaller');
    const text = await runCli(['evaluate', '--data', smaller]);
    t.match(
      text.stdout,
      /\nred-cell size of the same images: median radius \d\.\d\d px over \d+, training images \d\.\d\d-\d\.\d\d px \(medians of 50 consecutive fields\): the red cells are smaller than in any stretch of the training images, so the magnification is lower/,
    );

    const noGate = await runCli(['evaluate', '--json', '--no-gate', '--data', smaller]);
    t.equal(
      (JSON.parse(noGate.stdout) as { magnification: unknown }).magnification,
      null,
      'not judged without the gate',
    );
  });

  t.test('class by class, a set names a higher magnification that the whole range hides', async (t) => {
    const split = JSON.parse(readFileSync(join(repoRoot, 'training/split.json'), 'utf8')) as {
      splits: { val: { path: string }[] };
    };
    const root = await mkdtemp(join(tmpdir(), 'bw-eval-magnification-classes-'));
    t.teardown(() => rm(root, { recursive: true, force: true }));
    const zoom = parseCameraShift('magnification:1.25');
    for (const folder of ['Benign', 'Early', 'Pre', 'Pro']) {
      await mkdir(join(root, folder));
      const paths = split.splits.val
        .map((e) => e.path)
        .filter((p) => p.startsWith(`${folder}/`))
        .sort()
        .slice(0, 40);
      for (const path of paths) {
        const shifted = await zoom.apply(readFileSync(join(dataDir, path)), path);
        await writeFile(join(root, folder, basename(path).replace(/\.jpg$/, '.png')), shifted.bytes);
      }
    }
    const r = await runCli(['evaluate', '--json', '--data', root]);
    t.equal(r.code, 0, r.stderr);
    const m = (JSON.parse(r.stdout) as { magnification: Figures & { by_class: Record<string, Figures> } })
      .magnification;
    t.equal(m.differs, null, `the whole set (median ${m.median}) lies within all training images' range`);
    const called = Object.entries(m.by_class).filter(([, c]) => c.differs === 'larger');
    t.ok(
      called.length >= 2,
      `larger than its own class's training images in ${called.map(([name, c]) => `${name} ${c.median}`).join(', ')}`,
    );
    const text = await runCli(['evaluate', '--data', root]);
    t.match(
      text.stdout,
      /\n {2}Pre-B: median \d\.\d\d px over \d+, its training images \d\.\d\d-\d\.\d\d px: larger\n/,
    );
    t.match(
      text.stdout,
      /\nthe red cells are larger than in the training images of the same class in \d of 4 classes, so the magnification is higher/,
    );
  });
}
