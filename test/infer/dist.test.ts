import { execFile } from 'node:child_process';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { repoRoot } from '../helpers/cli.js';
import { tinyModelDir } from './helpers.js';

const run = promisify(execFile);

/**
 * The compiled JavaScript must find worker.js next to classifier.js (not worker.ts, no tsx).
 * Compiles src/infer alone (so the test does not depend on the rest of the tree building) into
 * node_modules/.cache, where `onnxruntime-node` still resolves, and runs it with plain node.
 */
t.test('compiled classifier runs its compiled worker with plain node', async (t) => {
  const out = join(repoRoot, 'node_modules', '.cache', `blastwatch-infer-dist-${process.pid}`);
  await mkdir(out, { recursive: true });
  t.teardown(() => rm(out, { recursive: true, force: true }));
  const tsc = join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc');
  // Same compiler options as tsconfig.build.json, on the two entry files.
  await run(
    process.execPath,
    [
      tsc,
      '--outDir',
      out,
      '--rootDir',
      join(repoRoot, 'src'),
      '--module',
      'NodeNext',
      '--moduleResolution',
      'NodeNext',
      '--target',
      'ES2022',
      '--strict',
      '--skipLibCheck',
      '--types',
      'node',
      join(repoRoot, 'src', 'infer', 'index.ts'),
      join(repoRoot, 'src', 'infer', 'worker.ts'),
    ],
    { cwd: repoRoot },
  );
  const script = `
    import { createClassifier } from ${JSON.stringify(join(out, 'infer', 'index.js'))};
    import { pino } from 'pino';
    const c = await createClassifier({ modelDir: ${JSON.stringify(tinyModelDir)}, executionProviders: ['cpu'], threads: 1, log: pino({ level: 'silent' }) });
    const img = () => new Float32Array(3 * 224 * 224).fill(0.5);
    const [p] = await c.classify([{ original: img(), segmented: img() }]);
    await c.close();
    process.stdout.write(JSON.stringify({ provider: c.info.executionProvider, sum: p.probabilities.reduce((a, b) => a + b, 0) }));
  `;
  // Plain node: no --import tsx, run from the repository so bare imports resolve.
  const scriptFile = join(out, 'run.mjs');
  await writeFile(scriptFile, script);
  const { stdout } = await run(process.execPath, [scriptFile], {
    cwd: repoRoot,
    env: { ...process.env, NODE_OPTIONS: '' },
  });
  const result = JSON.parse(stdout) as { provider: string; sum: number };
  t.equal(result.provider, 'cpu');
  t.ok(Math.abs(result.sum - 1) < 1e-9);
});
