/**
 * scripts/robustness.ts in seconds: the committed samples as a one-image-per-class "test split",
 * three camera shifts, the shipped model. Checks the mechanics (rows, counts, the JSON, the
 * temporary folder removed) and that normalisation is what differs between the two columns.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const samples = join(repoRoot, 'test/fixtures/samples');
const CLASSES = ['Benign', 'Early', 'Pre', 'Pro'];

interface Row {
  condition: string;
  n: number;
  without: { accuracy: number; sensitivity: number };
  with: { accuracy: number; sensitivity: number };
}

function run(
  args: string[],
  env: NodeJS.ProcessEnv,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', join(repoRoot, 'scripts/robustness.ts'), ...args],
      {
        cwd: repoRoot,
        env: { ...process.env, ...env },
        timeout: 240_000,
      },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

t.test('robustness.ts: a table and JSON over the shifts, without and with normalisation', async (t) => {
  const work = mkdtempSync(join(tmpdir(), 'blastwatch-robustness-test-'));
  t.teardown(() => rmSync(work, { recursive: true, force: true }));
  const test = CLASSES.flatMap((cls, label) =>
    readdirSync(join(samples, cls))
      .sort()
      .map((f) => ({ path: `${cls}/${f}`, label })),
  );
  writeFileSync(join(work, 'split.json'), JSON.stringify({ splits: { test } }));
  const scratch = join(work, 'tmp');
  mkdirSync(scratch);
  const res = await run(
    [
      '--data',
      samples,
      '--split',
      join(work, 'split.json'),
      '--limit',
      '1',
      '--shifts',
      'gains:1.08,1,0.9 magnification:0.75 noise:8',
      '--json',
      join(work, 'out.json'),
    ],
    { TMPDIR: scratch },
  );
  t.equal(res.code, 0, res.stderr);
  const out = JSON.parse(readFileSync(join(work, 'out.json'), 'utf8')) as {
    model: string;
    colour: { method: string };
    rows: Row[];
  };
  t.match(out.model, /^\d{4}\.\d{2}\.\d{2}(\.\d+)?\+[0-9a-f]{8}$/);
  t.equal(out.colour.method, 'background-gains', "the model's own normalisation by default");
  t.same(
    out.rows.map((r) => r.condition),
    ['none (test split)', 'gains:1.08,1,0.9', 'magnification:0.75', 'noise:8'],
  );
  for (const r of out.rows) {
    t.equal(r.n, 4, `${r.condition}: one image per class`);
    for (const v of [r.without.accuracy, r.with.accuracy, r.without.sensitivity, r.with.sensitivity])
      t.ok(v >= 0 && v <= 1, `${r.condition}: a rate`);
  }
  t.match(res.stdout, /\| condition \| n \| accuracy without \| accuracy with \|/);
  t.equal(res.stdout.trim().split('\n').length, 2 + out.rows.length, 'header, rule, one line per row');
  t.same(
    readdirSync(scratch).filter((name) => name.startsWith('blastwatch-robustness-')),
    [],
    'the shifted copies are removed',
  );
});
