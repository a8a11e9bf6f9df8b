/**
 * scripts/benchmark mechanics (no timing assertions: speed is what the benchmark reports, not
 * what a test checks). One --quick run on the tiny fixture model must produce the JSON object
 * with every promised key, real per-stage sample counts, the files, and the daemon's results.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import t from 'tap';
import { uniqueJpeg, loadImages, toCameraSize } from '../../scripts/bench/images.js';
import { percentile, slope, stageCpuSum, summarize } from '../../scripts/bench/stats.js';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const bench = join(repoRoot, 'scripts/benchmark');
const samples = join(repoRoot, 'test/fixtures/samples');
const tinyModel = join(repoRoot, 'test/fixtures/tiny-model');

/** The part of the benchmark's JSON this test reads. */
interface BenchJson {
  segmentation_speedup_vs_reference: number;
  int8_vs_fp32_latency_ratio: number;
  e2e_p95_ms: number;
  e2e_paced_p95_ms: number;
  daemon_cpu_overhead_ratio: number;
  daemon_cpu_overhead_ratio_six_stages: number;
  stages_cpu_ms_per_image_parts: Record<string, number>;
  rss_steady_mb: number;
  model: { test_fixture: boolean };
  machine: Record<string, unknown> & { cores: number };
  stages: { stage: string; n: number }[];
  e2e: {
    phases: {
      phase: string;
      n: number;
      p95_ms: number;
      daemon_stage_median_ms: Record<string, number>;
      daemon_tail_excess_ms: Record<string, number>;
    }[];
  };
  reference: { skipped?: string; stages: Record<string, { n: number }> };
  json_file: string;
  svg_file: string;
}

function run(
  args: string[],
  timeoutMs = 300_000,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(bench, args, {
      cwd: repoRoot,
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: timeoutMs,
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

t.test('percentiles are nearest-rank values that occurred', async (t) => {
  const xs = Array.from({ length: 100 }, (_, i) => i + 1);
  t.equal(percentile(xs, 50), 50);
  t.equal(percentile(xs, 95), 95);
  t.equal(percentile(xs, 99), 99);
  t.equal(percentile([7], 99), 7);
  const s = summarize([5, 1, 3, 2, 4], 1000);
  t.equal(s.median_ms, 3);
  t.equal(s.max_ms, 5);
  t.equal(s.throughput_per_s, 5, 'n per wall second when the wall time is known');
  t.equal(slope([0, 1, 2, 3], [10, 12, 14, 16]), 2);
});

t.test('stageCpuSum adds every stage, or gives no sum when one has no CPU figure', async (t) => {
  const a = { stage: 'a', cpu_ms: 1.5 };
  const b = { stage: 'b', cpu_ms: 2.25 };
  t.same(stageCpuSum([a, b]), { sum: 3.75, parts: { a: 1.5, b: 2.25 } });
  t.equal(stageCpuSum([a, { stage: 'publish' }]).sum, null, 'a stage without CPU');
  t.equal(stageCpuSum([a, undefined]).sum, null, 'a stage not measured');
});

t.test('uniqueJpeg: new bytes, same pixels; camera copies are 1024x768', async (t) => {
  const [img] = loadImages(samples, 1);
  t.ok(img, 'a sample image');
  const a = uniqueJpeg(img!.bytes, 'a');
  const b = uniqueJpeg(img!.bytes, 'b');
  t.not(a.toString('base64'), b.toString('base64'), 'different bytes');
  const px = async (buf: Buffer) =>
    (await sharp(buf, { failOn: 'warning' }).raw().toBuffer()).toString('base64');
  t.equal(await px(a), await px(img!.bytes), 'identical pixels after the comment segment');
  t.throws(() => uniqueJpeg(Buffer.from('not a jpeg'), 'x'), /not a JPEG/);
  const [cam] = await toCameraSize([img!]);
  const meta = await sharp(cam!.bytes).metadata();
  t.same([meta.format, meta.width, meta.height], ['jpeg', 1024, 768]);
});

t.test('loadImages spreads a small N over the class folders', async (t) => {
  const imgs = loadImages(samples, 4);
  t.equal(imgs.length, 4);
  t.equal(new Set(imgs.map((i) => i.name.split('_')[0])).size, 4, 'one per class folder');
});

t.test('bad arguments: one clear line, exit 2', async (t) => {
  const r1 = await run(['--images', '0']);
  t.equal(r1.code, 2);
  t.match(r1.stderr, /--images must be an integer >= 1/);
  const r2 = await run(['--model', join(repoRoot, 'test/fixtures/no-such-model')]);
  t.equal(r2.code, 2);
  t.match(r2.stderr, /no model\.json in .*no-such-model/);
  t.notMatch(r2.stderr, /\n\s+at /, 'no stack trace');
});

t.test('--quick --json on the tiny model: every figure, the files, the daemon', async (t) => {
  const out = mkdtempSync(join(tmpdir(), 'bw-bench-test-'));
  t.teardown(() => rmSync(out, { recursive: true, force: true }));
  const r = await run(['--quick', '--json', '--images', '4', '--model', tinyModel, '--out', out]);
  t.equal(r.code, 0, r.stderr.slice(-2000));
  const lines = r.stdout.trim().split('\n');
  t.equal(lines.length, 1, 'stdout is exactly one JSON object');
  const j = JSON.parse(lines[0]!) as BenchJson;
  for (const key of [
    'segmentation_speedup_vs_reference',
    'int8_vs_fp32_latency_ratio',
    'e2e_p95_ms',
    'daemon_cpu_overhead_ratio',
    'rss_steady_mb',
  ])
    t.ok(key in j, `has ${key}`);
  t.ok(j.int8_vs_fp32_latency_ratio > 0, 'int8/fp32 ratio measured');
  t.ok(j.e2e_p95_ms > 0, 'end to end measured');
  t.ok(j.daemon_cpu_overhead_ratio > 0, 'daemon CPU per image compared with its stages alone');
  const parts = Object.keys(j.stages_cpu_ms_per_image_parts);
  t.same(
    parts.slice(0, 6),
    ['decode+resize 224px jpeg', 'segment', 'tensor', `infer int8 t=${j.machine.cores}`, 'store', 'publish'],
    'the stage sum covers decode, segment, tensor, inference at the daemon thread count, store, publish',
  );
  // The fixture model asks for no colour normalisation and has no gate: the daemon does neither.
  t.same(parts.slice(6), ['media'], '... and the dashboard media');
  t.ok(j.daemon_cpu_overhead_ratio_six_stages >= j.daemon_cpu_overhead_ratio, 'six stages divide less');
  t.notOk('e2e_overhead_ratio' in j, 'the raw-inference ratio is gone');
  t.ok(j.rss_steady_mb > 10, 'daemon RSS sampled');
  t.equal(j.model.test_fixture, true, 'the fixture model is labelled as such');
  for (const key of ['cpu_model', 'cores', 'os', 'node', 'onnxruntime_node', 'git_commit'])
    t.ok(j.machine[key] !== undefined, `machine.${key}`);
  const stages = new Map(j.stages.map((s) => [s.stage, s.n]));
  for (const name of [
    'decode+resize 224px jpeg',
    'decode+resize 1024x768 jpeg',
    'segment',
    'tensor',
    'infer int8 t=1',
    'infer fp32 t=1',
    'infer int8 t=2',
    'store',
    'media',
    'publish',
  ])
    t.ok((stages.get(name) ?? 0) > 0, `stage ${name} has samples`);
  const phases = j.e2e.phases;
  t.same(
    phases.map((p) => p.phase),
    [
      'e2e 224px c=1',
      'e2e 1024x768 c=1',
      `e2e 224px c=${Math.max(2, j.machine.cores * 2)}`,
      'e2e 224px c=1 paced 25 ms',
    ],
  );
  t.equal(j.e2e_paced_p95_ms, phases[3]?.p95_ms, 'the paced figure is the paced phase');
  for (const p of phases) {
    t.ok(p.n > 0, `${p.phase}: results arrived over MQTT`);
    t.ok(
      'inferMs' in p.daemon_stage_median_ms && 'detectMs' in p.daemon_stage_median_ms,
      `${p.phase}: daemon stage split`,
    );
    const tail = p.daemon_tail_excess_ms;
    t.ok(
      'inferMs' in tail && 'unaccountedMs' in tail && Object.values(tail).every(Number.isFinite),
      `${p.phase}: where the slowest images' time went`,
    );
  }
  if (j.reference.skipped) t.comment(`reference skipped: ${j.reference.skipped}`);
  else
    t.ok(
      (j.reference.stages.segment?.n ?? 0) > 0 && j.segmentation_speedup_vs_reference > 0,
      'reference pipeline ran',
    );
  t.ok(existsSync(j.json_file) && existsSync(j.svg_file), 'JSON and SVG written');
  t.match(readFileSync(j.svg_file, 'utf8'), /^<svg [^>]*xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
  t.same(JSON.parse(readFileSync(j.json_file, 'utf8')).e2e_p95_ms, j.e2e_p95_ms, 'file and stdout agree');
});
