/**
 * Latency statistics and memory sampling for the benchmark. Percentiles use the nearest-rank
 * method on the sorted samples (no interpolation): p99 of 100 samples is the 99th value, so a
 * reported figure is always a latency that really happened.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';

export interface LatencySummary {
  n: number;
  median_ms: number;
  p95_ms: number;
  p99_ms: number;
  mean_ms: number;
  min_ms: number;
  max_ms: number;
  /** Images per second: n ÷ wall time when the caller knows it, else 1000 ÷ mean. */
  throughput_per_s: number;
}

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

const r3 = (v: number): number => Math.round(v * 1000) / 1000;

export function summarize(samplesMs: readonly number[], wallMs?: number): LatencySummary {
  const sorted = [...samplesMs].sort((a, b) => a - b);
  const n = sorted.length;
  const mean = n === 0 ? Number.NaN : sorted.reduce((s, v) => s + v, 0) / n;
  const throughput = wallMs !== undefined && wallMs > 0 ? (n * 1000) / wallMs : 1000 / mean;
  return {
    n,
    median_ms: r3(percentile(sorted, 50)),
    p95_ms: r3(percentile(sorted, 95)),
    p99_ms: r3(percentile(sorted, 99)),
    mean_ms: r3(mean),
    min_ms: r3(sorted[0] ?? Number.NaN),
    max_ms: r3(sorted[n - 1] ?? Number.NaN),
    throughput_per_s: Math.round(throughput * 100) / 100,
  };
}

/**
 * Times `fn` `iterations` times after `warmup` untimed calls; returns the samples in ms and the
 * process CPU time per call (all threads: libvips', onnxruntime's). CPU time barely moves when
 * other work competes for the cores, so it is the figure to trust on a busy machine.
 */
export async function timeLoop(
  iterations: number,
  warmup: number,
  fn: (i: number) => unknown,
): Promise<{ samples: number[]; wallMs: number; cpuMsPerIteration: number }> {
  for (let i = 0; i < warmup; i++) await fn(i);
  const samples: number[] = new Array<number>(iterations);
  const cpu0 = process.cpuUsage();
  const start = performance.now();
  for (let i = 0; i < iterations; i++) {
    const t0 = performance.now();
    await fn(i);
    samples[i] = performance.now() - t0;
  }
  const wallMs = performance.now() - start;
  const cpu = process.cpuUsage(cpu0);
  return { samples, wallMs, cpuMsPerIteration: (cpu.user + cpu.system) / 1000 / iterations };
}

export interface RssReading {
  rssMb: number;
  /** Kernel's high-water mark (VmHWM) where available. */
  peakMb: number | null;
}

/**
 * RSS of a process. Our own process: process.memoryUsage().rss. Another process (the daemon):
 * /proc/PID/status on Linux (the same number the daemon's process.memoryUsage().rss would give),
 * else `ps -o rss=`.
 */
export function readRss(pid: number = process.pid): RssReading | null {
  if (pid === process.pid && process.platform !== 'linux')
    return { rssMb: process.memoryUsage().rss / 1048576, peakMb: null };
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (key: string): number | null => {
      const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status);
      return m ? Number(m[1]) : null;
    };
    const rss = kb('VmRSS');
    if (rss === null) return null;
    const hwm = kb('VmHWM');
    return { rssMb: rss / 1024, peakMb: hwm === null ? null : hwm / 1024 };
  } catch {
    try {
      const out = execFileSync('ps', ['-o', 'rss=', '-p', String(pid)], { encoding: 'utf8' }).trim();
      return out ? { rssMb: Number(out) / 1024, peakMb: null } : null;
    } catch {
      return null;
    }
  }
}

export interface RssSample {
  /** ms since the sampler started. */
  t: number;
  rssMb: number;
  /** Images finished when the sample was taken (for growth per image). */
  done: number;
}

/** Samples a process's RSS on a timer (unref'd, so it never keeps the benchmark alive). */
export class RssSampler {
  readonly samples: RssSample[] = [];
  private timer: NodeJS.Timeout | null = null;
  private readonly start = performance.now();
  private peakHwm: number | null = null;
  done = 0;

  constructor(
    private readonly pid: number,
    private readonly everyMs = 200,
  ) {}

  begin(): this {
    this.sample();
    this.timer = setInterval(() => this.sample(), this.everyMs);
    this.timer.unref();
    return this;
  }

  sample(): void {
    const r = readRss(this.pid);
    if (!r) return;
    this.samples.push({ t: performance.now() - this.start, rssMb: r.rssMb, done: this.done });
    if (r.peakMb !== null) this.peakHwm = Math.max(this.peakHwm ?? 0, r.peakMb);
  }

  end(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.sample();
  }

  /** Peak: the kernel's high-water mark when known, else the largest sample. */
  peakMb(): number {
    const sampled = Math.max(...this.samples.map((s) => s.rssMb));
    return this.peakHwm ?? sampled;
  }

  /** Steady: the median of the samples in the second half of the run (after warm-up growth). */
  steadyMb(): number {
    const half = this.samples.slice(Math.floor(this.samples.length / 2)).map((s) => s.rssMb);
    return percentile(
      half.sort((a, b) => a - b),
      50,
    );
  }
}

/** Least-squares slope of y over x. */
export function slope(xs: readonly number[], ys: readonly number[]): number {
  const n = xs.length;
  if (n < 2) return 0;
  const mx = xs.reduce((s, v) => s + v, 0) / n;
  const my = ys.reduce((s, v) => s + v, 0) / n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    num += (xs[i]! - mx) * (ys[i]! - my);
    den += (xs[i]! - mx) ** 2;
  }
  return den === 0 ? 0 : num / den;
}

export const round = (v: number, digits = 2): number => {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
};

let clockTicks: number | null = null;

/** CPU time (user + system, all threads) another process has used so far, ms; null off Linux. */
export function processCpuMs(pid: number, statPath = `/proc/${pid}/stat`): number | null {
  try {
    const stat = readFileSync(statPath, 'utf8');
    // Fields after the command name (which may contain spaces) start after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const utime = Number(fields[11]);
    const stime = Number(fields[12]);
    if (clockTicks === null) {
      try {
        clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
      } catch {
        clockTicks = 100;
      }
    }
    return ((utime + stime) * 1000) / clockTicks;
  } catch {
    return null;
  }
}

/** CPU ms used so far by each thread of a process, summed per thread name (/proc/PID/task/TID/comm). */
export function threadCpuMs(pid: number): Map<string, number> | null {
  const out = new Map<string, number>();
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return null;
  }
  for (const tid of tids) {
    try {
      const comm = readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim();
      // Node names every thread "node": tell the event loop apart from the others.
      const name =
        Number(tid) === pid
          ? 'main thread'
          : comm === 'node'
            ? 'other node threads (worker, onnxruntime, V8, libuv)'
            : comm;
      const ms = processCpuMs(Number(tid), `/proc/${pid}/task/${tid}/stat`);
      if (ms !== null) out.set(name, (out.get(name) ?? 0) + ms);
    } catch {
      /* thread ended */
    }
  }
  return out;
}

/** Per-thread-name CPU difference between two threadCpuMs readings, ms per image. */
export function threadCpuDelta(
  before: Map<string, number> | null,
  after: Map<string, number> | null,
  images: number,
): Record<string, number> {
  const out: Record<string, number> = {};
  if (!before || !after) return out;
  for (const [name, ms] of after) {
    const d = (ms - (before.get(name) ?? 0)) / images;
    if (d >= 0.05) out[name] = round(d, 2);
  }
  return out;
}

/**
 * The sum of the CPU per image of the stages one image goes through in the daemon (decode 224 px,
 * segment, tensors, inference at the daemon's thread count, store, publish), each measured alone.
 * Null when any of them has no CPU figure: a partial sum would make the overhead ratio look worse
 * than it is.
 */
export function stageCpuSum(stages: ({ stage: string; cpu_ms?: number } | undefined)[]): {
  sum: number | null;
  parts: Record<string, number>;
} {
  const parts: Record<string, number> = {};
  for (const s of stages) {
    if (!s || s.cpu_ms === undefined || !Number.isFinite(s.cpu_ms)) return { sum: null, parts };
    parts[s.stage] = s.cpu_ms;
  }
  return {
    sum: round(
      Object.values(parts).reduce((a, b) => a + b, 0),
      3,
    ),
    parts,
  };
}
