/**
 * Where the time goes when a target is missed.
 * - onnxruntime's own per-node profile (enableProfiling) for INT8 and FP32 at one thread, summed
 *   per operator type: shows whether INT8 runs as fused integer kernels (QLinearConv,
 *   ConvInteger) or as float kernels wrapped in Quantize/DequantizeLinear.
 * - the daemon's V8 CPU profile (node --cpu-prof), top functions by self time.
 */
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { InferenceSession, Tensor } from 'onnxruntime-node';
import type { ModelManifest } from '../../src/infer/index.js';
import { round } from './stats.js';

export interface OpProfile {
  precision: 'int8' | 'fp32';
  threads: number;
  runs: number;
  /** Sum of node kernel times per run, ms. */
  kernel_ms_per_run: number;
  /** Operator types by time per run, largest first. */
  ops: { op: string; ms_per_run: number; share: number; nodes: number }[];
}

interface OrtEvent {
  cat?: string;
  name?: string;
  dur?: number;
  args?: { op_name?: string };
}

export async function profileInference(
  manifest: ModelManifest,
  original: Float32Array,
  segmented: Float32Array,
  dir: string,
  runs = 20,
): Promise<OpProfile[]> {
  const { height, width } = manifest.imageSize;
  const dims = [1, 3, height, width];
  const out: OpProfile[] = [];
  for (const precision of ['int8', 'fp32'] as const) {
    const prefix = `ort-profile-${precision}-t1`;
    const session = await InferenceSession.create(manifest.paths[precision], {
      executionProviders: ['cpu'],
      intraOpNumThreads: 1,
      interOpNumThreads: 1,
      graphOptimizationLevel: 'all',
      executionMode: 'sequential',
      enableProfiling: false,
    });
    // Warm-up without profiling, then a profiled session for the measured runs.
    const feeds = {
      original: new Tensor('float32', original, dims),
      segmented: new Tensor('float32', segmented, dims),
    };
    for (let i = 0; i < 3; i++) await session.run(feeds);
    await session.release();
    const profiled = await InferenceSession.create(manifest.paths[precision], {
      executionProviders: ['cpu'],
      intraOpNumThreads: 1,
      interOpNumThreads: 1,
      graphOptimizationLevel: 'all',
      executionMode: 'sequential',
      enableProfiling: true,
      profileFilePrefix: join(dir, prefix),
    });
    for (let i = 0; i < runs + 2; i++) await profiled.run(feeds);
    profiled.endProfiling();
    await profiled.release();
    const file = readdirSync(dir)
      .filter((f) => f.startsWith(prefix) && f.endsWith('.json'))
      .sort()
      .at(-1);
    if (!file) continue;
    const events = JSON.parse(readFileSync(join(dir, file), 'utf8')) as OrtEvent[];
    rmSync(join(dir, file));
    const nodes = events.filter(
      (e) => e.cat === 'Node' && e.name?.endsWith('_kernel_time') && typeof e.dur === 'number',
    );
    // The first two runs of the profiled session are its own warm-up: drop them by count.
    const perRun = nodes.length / (runs + 2);
    const measured = nodes.slice(Math.round(perRun * 2));
    const byOp = new Map<string, { us: number; names: Set<string> }>();
    for (const e of measured) {
      const op = e.args?.op_name ?? 'unknown';
      const entry = byOp.get(op) ?? { us: 0, names: new Set<string>() };
      entry.us += e.dur!;
      entry.names.add(e.name!);
      byOp.set(op, entry);
    }
    const totalUs = [...byOp.values()].reduce((s, v) => s + v.us, 0);
    out.push({
      precision,
      threads: 1,
      runs,
      kernel_ms_per_run: round(totalUs / 1000 / runs, 3),
      ops: [...byOp.entries()]
        .map(([op, v]) => ({
          op,
          ms_per_run: round(v.us / 1000 / runs, 3),
          share: round(v.us / totalUs, 3),
          nodes: v.names.size,
        }))
        .sort((a, b) => b.ms_per_run - a.ms_per_run)
        .slice(0, 12),
    });
  }
  return out;
}

interface CpuProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

/** Top functions by self time in the .cpuprofile files in `dir` (V8's format: nodes, samples, timeDeltas). */
export function summarizeCpuProfiles(
  dir: string,
  top = 15,
): { file: string; total_ms: number; top: { fn: string; self_ms: number; share: number }[] }[] {
  const out = [];
  for (const f of readdirSync(dir).filter((n) => n.endsWith('.cpuprofile'))) {
    const prof = JSON.parse(readFileSync(join(dir, f), 'utf8')) as {
      nodes: CpuProfileNode[];
      samples: number[];
      timeDeltas: number[];
    };
    const byId = new Map(prof.nodes.map((n) => [n.id, n]));
    const selfUs = new Map<string, number>();
    let total = 0;
    prof.samples.forEach((id, i) => {
      const n = byId.get(id);
      const dt = prof.timeDeltas[i] ?? 0;
      total += dt;
      if (!n) return;
      const cf = n.callFrame;
      const where = cf.url
        ? `${cf.url.replace(/^file:\/\/.*?\/(node_modules|src)\//, '$1/')}:${cf.lineNumber + 1}`
        : '';
      const key = `${cf.functionName || '(anonymous)'} ${where}`.trim();
      selfUs.set(key, (selfUs.get(key) ?? 0) + dt);
    });
    out.push({
      file: join(dir, f),
      total_ms: round(total / 1000, 1),
      top: [...selfUs.entries()]
        .sort((a, b) => b[1] - a[1])
        .slice(0, top)
        .map(([fn, us]) => ({ fn, self_ms: round(us / 1000, 1), share: round(us / total, 3) })),
    });
  }
  return out;
}
