/**
 * Parity: the float32 tensors Python trains on (preprocess-dataset cache → byte/255 in torch)
 * must be bit-identical to what the daemon feeds onnxruntime (prepareImage()) for the same files.
 * Runs the real CLI and the real training loader; fails (never skips) when Python is missing.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { prepareImage } from '../../src/preprocess/index.js';
import { repoRoot, runCli } from '../helpers/cli.js';

const samples = join(repoRoot, 'test', 'fixtures', 'samples');
const pythonCandidates = [
  join(repoRoot, 'training', '.venv', 'bin', 'python'),
  '/usr/bin/python3',
  'python3',
];

function findPython(): string | undefined {
  for (const py of pythonCandidates) {
    const r = spawnSync(py, ['-c', 'import numpy, torch'], { encoding: 'utf8' });
    if (r.status === 0) return py;
  }
  return undefined;
}

interface Manifest {
  size: number;
  count: number;
  items: { index: number; path: string }[];
  failed: unknown[];
}

t.test('training tensors are bit-identical to the daemon tensors', async (t) => {
  t.ok(
    existsSync(samples) && readdirSync(samples).length > 0,
    `sample images expected in ${samples} (class folders Benign/Early/Pre/Pro)`,
  );
  const python = findPython();
  if (!python) {
    t.fail(
      `no Python with numpy+torch found (tried ${pythonCandidates.join(', ')}): ` +
        'run training/setup.sh (Debian python3-torch) — the parity test cannot be skipped',
    );
    return;
  }
  const tmp = mkdtempSync(join(tmpdir(), 'bw-parity-'));
  t.teardown(() => rmSync(tmp, { recursive: true, force: true }));
  const cacheDir = join(tmp, 'cache');
  const res = await runCli(['preprocess-dataset', '--data', samples, '--out', cacheDir]);
  t.equal(res.code, 0, `preprocess-dataset failed: ${res.stderr}`);
  if (res.code !== 0) return;
  const manifest = JSON.parse(readFileSync(join(cacheDir, 'manifest.json'), 'utf8')) as Manifest;
  t.ok(manifest.count >= 4, `at least one sample per class (got ${manifest.count})`);
  t.same(manifest.failed, [], 'no sample failed to preprocess');

  const dumpDir = join(tmp, 'py');
  const py = spawnSync(python, [join(repoRoot, 'test', 'parity', 'dump_cache.py'), cacheDir, dumpDir], {
    encoding: 'utf8',
  });
  t.equal(py.status, 0, `python loader failed: ${py.stderr}`);
  if (py.status !== 0) return;

  const plane = 3 * manifest.size * manifest.size;
  const pyTensors = {
    original: new Float32Array(readFileSync(join(dumpDir, 'original.f32')).buffer.slice(0)),
    segmented: new Float32Array(readFileSync(join(dumpDir, 'segmented.f32')).buffer.slice(0)),
  };
  t.equal(pyTensors.original.length, manifest.count * plane, 'python wrote one tensor per item');
  let foreground = 0;
  for (const item of manifest.items) {
    const prepared = await prepareImage(join(samples, item.path), {
      size: manifest.size,
      limitInputPixels: 50_000_000,
    });
    for (const name of ['original', 'segmented'] as const) {
      const daemon = prepared[name];
      const trained = pyTensors[name].subarray(item.index * plane, (item.index + 1) * plane);
      const a = new Uint8Array(daemon.buffer, daemon.byteOffset, daemon.byteLength);
      const b = new Uint8Array(trained.buffer, trained.byteOffset, trained.byteLength);
      const same = Buffer.compare(Buffer.from(a), Buffer.from(b)) === 0;
      let firstDiff = -1;
      if (!same) firstDiff = daemon.findIndex((v, i) => v !== trained[i]);
      t.ok(
        same,
        same
          ? `${item.path} ${name}: identical`
          : `${item.path} ${name}: float ${firstDiff} differs (daemon ${daemon[firstDiff]}, python ${trained[firstDiff]})`,
      );
    }
    foreground += prepared.segmented.some((v) => v > 0) ? 1 : 0;
  }
  t.ok(foreground > 0, 'segmentation kept some foreground (the comparison is not all zeros)');
});
