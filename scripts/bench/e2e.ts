/**
 * End to end through the real daemon (`blastwatch run`, a separate process): a file renamed
 * into the capture folder → watcher → read/hash → decode → segment → tensors → inference worker
 * → SQLite (result + outbox) → MQTT QoS 1 → the result message arriving at a subscriber here.
 * Latency = rename → message received. The daemon's RSS is read from outside (/proc) while it runs.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import {
  appendFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
  readdirSync,
  readFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import sharp from 'sharp';
import { stringify } from 'yaml';
import { freePort } from './broker.js';
import { uniqueJpeg, type BenchImage } from './images.js';
import {
  RssSampler,
  percentile,
  processCpuMs,
  round,
  slope,
  summarize,
  threadCpuDelta,
  threadCpuMs,
  type LatencySummary,
} from './stats.js';

export interface DaemonOptions {
  repoRoot: string;
  modelDir: string;
  brokerUrl: string;
  /** model.threads (0 = all cores). */
  threads: number;
  /** pipeline.concurrency. */
  concurrency: number;
  progress: (msg: string) => void;
  /** A daemon config to start from (e.g. config/pi.yaml); the benchmark's own keys go on top. */
  baseConfig?: Record<string, unknown>;
  /** model.execution_providers; default: the base config's, else [cpu]. */
  providers?: string[];
  /** Run the daemon with node --cpu-prof, profiles written here when it exits. */
  cpuProfDir?: string;
  /**
   * Leave each image in the capture folder after its result, as the default config does
   * (move_processed_to: null): the folder grows during the run, as it does in a lab.
   */
  keepFiles?: boolean;
  /** Start the daemon with the systemd unit's environment and node flags (default true). */
  unitEnv?: boolean;
}

export interface E2ePhase extends LatencySummary {
  phase: string;
  /** Images in flight at once (closed loop). */
  in_flight: number;
  /** The daemon's CPU time (all its threads) per image over the phase; insensitive to other load. */
  daemon_cpu_ms_per_image: number | null;
  /** The same split by thread name (node main thread, libuv pool, inference worker, onnxruntime pool…). */
  daemon_cpu_ms_per_image_by_thread: Record<string, number>;
  /**
   * Medians of the daemon's own per-stage timings (timings_ms in the result payloads), plus
   * detectMs (rename → pipeline start) and deliverMs (inference done → message received).
   */
  daemon_stage_median_ms: Record<string, number>;
  /**
   * Where the slowest images' time went: over the images at or above the phase's p95 latency,
   * each stage's mean time above its median, and `unaccountedMs`, the end-to-end time that
   * detectMs + totalMs + deliverMs do not cover, above its median too.
   */
  daemon_tail_excess_ms: Record<string, number>;
}

/**
 * Where the time outside the pipeline's own work goes, from the payload's wall-clock stamps
 * (millisecond resolution): processed_at is taken right after inference, timings_ms.totalMs
 * runs from the pipeline taking the file to that moment.
 */
export interface Split {
  /** rename → the pipeline starts on the file (watcher event, stat, queue hand-off). */
  detectMs: number;
  /** inference done → result message received (store transaction, outbox, MQTT round trip). */
  deliverMs: number;
}

function splitLatency(payload: Record<string, unknown>, dropWall: number, receiptWall: number): Split | null {
  const processed = typeof payload.processed_at === 'string' ? Date.parse(payload.processed_at) : Number.NaN;
  const total = (payload.timings_ms as Record<string, number> | undefined)?.totalMs;
  if (Number.isNaN(processed) || typeof total !== 'number') return null;
  return { detectMs: processed - total - dropWall, deliverMs: receiptWall - processed };
}

interface Waiter {
  resolve: (payload: Record<string, unknown>) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

function newestSource(dir: string): number {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) newest = Math.max(newest, newestSource(p));
    else newest = Math.max(newest, statSync(p).mtimeMs);
  }
  return newest;
}

/** Where the benchmark's own build of the daemon goes (`--build`), beside its results. */
export const privateBuildDir = (repoRoot: string): string => join(repoRoot, 'var/benchmark/build');

/**
 * The daemon as production runs it is compiled JavaScript (dist/cli.js): it is used when it is
 * newer than every file under src/, then the benchmark's own build (--build), else src/cli.ts
 * through tsx (which costs start-up time and some memory: the JSON says which one ran).
 */
export function daemonArgs(repoRoot: string): { args: string[]; entry: string } {
  const newest = newestSource(join(repoRoot, 'src'));
  for (const [rel, label] of [
    ['dist/cli.js', 'dist/cli.js (npm run build)'],
    ['var/benchmark/build/dist/cli.js', 'var/benchmark/build/dist/cli.js (scripts/benchmark --build)'],
  ] as const) {
    const entry = join(repoRoot, rel);
    if (existsSync(entry) && statSync(entry).mtimeMs >= newest) return { args: [entry], entry: label };
  }
  return {
    args: ['--import', 'tsx', join(repoRoot, 'src/cli.ts')],
    entry: 'src/cli.ts via tsx (no up-to-date build: see --build)',
  };
}

/**
 * Compiles src/ into var/benchmark/build/dist (not dist/, which other tools own) unless it is up
 * to date. The build finds config/, models/ and package.json one level above its dist/, as the
 * real dist/ does: symlinks to the repository's.
 */
export function buildPrivate(repoRoot: string, say: (m: string) => void): void {
  const root = privateBuildDir(repoRoot);
  const out = join(root, 'dist');
  const entry = join(out, 'cli.js');
  if (existsSync(entry) && statSync(entry).mtimeMs >= newestSource(join(repoRoot, 'src'))) return;
  say(`compiling the daemon into ${out}`);
  rmSync(root, { recursive: true, force: true });
  mkdirSync(root, { recursive: true });
  for (const name of ['config', 'models', 'package.json'])
    symlinkSync(join(repoRoot, name), join(root, name));
  const tsc = join(repoRoot, 'node_modules/typescript/bin/tsc');
  const res = spawnSync(
    process.execPath,
    [tsc, '-p', join(repoRoot, 'tsconfig.build.json'), '--outDir', out],
    {
      cwd: repoRoot,
      encoding: 'utf8',
    },
  );
  if (res.status !== 0) throw new Error(`tsc failed:\n${(res.stdout + res.stderr).slice(-3000)}`);
  const pub = join(repoRoot, 'src/serve/dashboard/public');
  if (existsSync(pub)) cpSync(pub, join(out, 'serve/dashboard/public'), { recursive: true });
}

/**
 * The environment the systemd unit gives the daemon (its `Environment=` lines: malloc arenas,
 * libuv's pool, NODE_ENV), so the benchmark measures memory and CPU as deployed.
 * `Dockerfile.arm64` sets the same variables.
 */
export function unitEnvironment(repoRoot: string): Record<string, string> {
  const env: Record<string, string> = {};
  let unit: string;
  try {
    unit = readFileSync(join(repoRoot, 'systemd/blastwatch.service'), 'utf8');
  } catch {
    return env;
  }
  for (const m of unit.matchAll(/^Environment=([A-Za-z_][A-Za-z0-9_]*)=(.*)$/gm)) env[m[1]!] = m[2]!.trim();
  return env;
}

/**
 * The node flags of the systemd unit's `ExecStart=` (those between the node binary and the
 * script, e.g. `--max-semi-space-size=2`), so the benchmark runs the daemon as deployed.
 * `Dockerfile.arm64`'s ENTRYPOINT gives the same.
 */
export function unitNodeFlags(repoRoot: string): string[] {
  let unit: string;
  try {
    unit = readFileSync(join(repoRoot, 'systemd/blastwatch.service'), 'utf8');
  } catch {
    return [];
  }
  const exec = /^ExecStart=(\S+)\s+(.*)$/m.exec(unit);
  if (!exec || !/\bnode$/.test(exec[1]!)) return [];
  const flags: string[] = [];
  for (const token of exec[2]!.split(/\s+/)) {
    if (!token.startsWith('--')) break;
    flags.push(token);
  }
  return flags;
}

export class DaemonUnderTest {
  readonly root = mkdtempSync(join(tmpdir(), 'bw-bench-daemon-'));
  readonly capture = join(this.root, 'captures');
  readonly data = join(this.root, 'var');
  entry = '';
  /** Set on top of the benchmark's own environment: the unit's, unless turned off. */
  readonly env: Record<string, string>;
  /** Node flags before the script: the unit's, unless turned off. */
  readonly nodeFlags: string[];
  child: ChildProcess | null = null;
  sub: MqttClient | null = null;
  private httpPort = 0;
  sampler: RssSampler | null = null;
  private output = '';
  private waiters = new Map<string, Waiter>();
  private seq = 0;

  constructor(private readonly o: DaemonOptions) {
    this.env = o.unitEnv === false ? {} : unitEnvironment(o.repoRoot);
    this.nodeFlags = o.unitEnv === false ? [] : unitNodeFlags(o.repoRoot);
    mkdirSync(this.capture);
    mkdirSync(this.data);
  }

  async start(): Promise<void> {
    const httpPort = (this.httpPort = await freePort());
    const config = join(this.root, 'config.yaml');
    const base = this.o.baseConfig ?? {};
    const section = (k: string): Record<string, unknown> =>
      (base[k] as Record<string, unknown> | undefined) ?? {};
    writeFileSync(
      config,
      stringify({
        ...base,
        device_id: 'bench',
        // The config's level (info by default: one JSON line per image), as deployed.
        log: { level: (section('log').level as string | undefined) ?? 'info', pretty: false },
        // stability_ms 0: files arrive by rename (complete at once), so the camera-write wait
        // (1500 ms by default, a deliberate delay) is not counted as processing time.
        capture: {
          ...section('capture'),
          dir: this.capture,
          recursive: false,
          stability_ms: 0,
          rescan_interval_s: 3600,
          use_polling: false,
        },
        data: { ...section('data'), dir: this.data, min_free_disk_mb: 1 },
        model: {
          ...section('model'),
          dir: this.o.modelDir,
          threads: this.o.threads,
          execution_providers: this.o.providers ?? section('model').execution_providers ?? ['cpu'],
        },
        pipeline: { ...section('pipeline'), concurrency: this.o.concurrency },
        mqtt: { url: this.o.brokerUrl, health_interval_s: 60 },
        http: { host: '127.0.0.1', port: httpPort },
      }),
    );
    const { args, entry } = daemonArgs(this.o.repoRoot);
    this.entry = entry;
    const prof = this.o.cpuProfDir ? ['--cpu-prof', '--cpu-prof-dir', this.o.cpuProfDir] : [];
    this.sub = await mqtt.connectAsync(this.o.brokerUrl, {
      clientId: `bw-bench-sub-${process.pid}`,
      reconnectPeriod: 500,
    });
    this.sub.on('message', (_topic, payload) => {
      let msg: Record<string, unknown>;
      try {
        msg = JSON.parse(payload.toString()) as Record<string, unknown>;
      } catch {
        return;
      }
      const file = typeof msg.file === 'string' ? msg.file : '';
      const w = this.waiters.get(file);
      if (w) {
        this.waiters.delete(file);
        clearTimeout(w.timer);
        w.resolve(msg);
      }
    });
    await this.sub.subscribeAsync('blastwatch/bench/result', { qos: 1 });
    const child = spawn(process.execPath, [...prof, ...this.nodeFlags, ...args, 'run', '--config', config], {
      cwd: this.o.repoRoot,
      env: { ...process.env, ...this.env, BLASTWATCH_CONFIG: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    child.stdout
      ?.setEncoding('utf8')
      .on('data', (d: string) => (this.output = (this.output + d).slice(-20000)));
    child.stderr
      ?.setEncoding('utf8')
      .on('data', (d: string) => (this.output = (this.output + d).slice(-20000)));
    const end = Date.now() + 120_000;
    for (;;) {
      if (child.exitCode !== null)
        throw new Error(`daemon exited during start-up (${child.exitCode}):\n${this.output.slice(-3000)}`);
      try {
        if ((await fetch(`http://127.0.0.1:${httpPort}/readyz`)).status === 200) break;
      } catch {
        /* not listening yet */
      }
      if (Date.now() > end) throw new Error(`daemon not ready after 120 s:\n${this.output.slice(-3000)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    this.sampler = new RssSampler(child.pid!, 250).begin();
  }

  /**
   * The daemon's own memory figures from its /metrics (main thread's V8 heap, external and
   * buffer memory, in MB), or null when it does not answer: with the RSS from outside they say
   * whether a growth is JavaScript objects or native memory.
   */
  async memory(): Promise<DaemonMemory | null> {
    try {
      const text = await (await fetch(`http://127.0.0.1:${this.httpPort}/metrics`)).text();
      const mb = (name: string): number => {
        const m = new RegExp(`^${name} ([0-9.e+]+)$`, 'm').exec(text);
        return m ? round(Number(m[1]) / 1048576, 1) : Number.NaN;
      };
      return {
        heap_total_mb: mb('nodejs_heap_size_total_bytes'),
        heap_used_mb: mb('nodejs_heap_size_used_bytes'),
        external_mb: mb('nodejs_external_memory_bytes'),
        array_buffers_mb: mb('nodejs_array_buffers_bytes'),
        major_collections: Number(
          /^nodejs_gc_duration_seconds_count\{kind="major"\} (\d+)$/m.exec(text)?.[1] ?? Number.NaN,
        ),
      };
    } catch {
      return null;
    }
  }

  /**
   * Writes `bytes` as NAME.part and renames it to NAME (as a camera's save-then-rename does),
   * then waits for the result message. Resolves with the latency in ms and the payload.
   */
  async drop(
    bytes: Buffer,
    ext = '.jpg',
    timeoutMs = 120_000,
  ): Promise<{ ms: number; payload: Record<string, unknown>; split: Split | null }> {
    const name = `img-${String(++this.seq).padStart(7, '0')}${ext}`;
    const final = join(this.capture, name);
    const part = `${final}.part`;
    writeFileSync(part, bytes);
    const got = new Promise<Record<string, unknown>>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(name);
        reject(
          new Error(
            `no result for ${name} after ${timeoutMs} ms; daemon output:\n${this.output.slice(-3000)}`,
          ),
        );
      }, timeoutMs);
      this.waiters.set(name, { resolve, reject, timer });
    });
    const wall0 = Date.now();
    const t0 = performance.now();
    renameSync(part, final);
    const payload = await got;
    const ms = performance.now() - t0;
    const wall1 = Date.now();
    if (this.sampler) this.sampler.done++;
    // Keep the folder small, as move_processed_to would (unless --keep-files).
    if (!this.o.keepFiles) {
      try {
        unlinkSync(final);
      } catch {
        /* already gone */
      }
    }
    return { ms, payload, split: splitLatency(payload, wall0, wall1) };
  }

  async stop(): Promise<void> {
    this.sampler?.end();
    for (const w of this.waiters.values()) clearTimeout(w.timer);
    const child = this.child;
    if (child && child.exitCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(t);
    }
    await this.sub?.endAsync(true);
    rmSync(this.root, { recursive: true, force: true });
  }
}

/** JPEG bytes for the daemon: re-encodes other formats once (quality 95) so uniqueJpeg applies. */
export async function asJpeg(images: BenchImage[]): Promise<Buffer[]> {
  return Promise.all(
    images.map(async (img) =>
      img.bytes[0] === 0xff && img.bytes[1] === 0xd8
        ? img.bytes
        : sharp(img.bytes).jpeg({ quality: 95 }).toBuffer(),
    ),
  );
}

function stageMedians(payloads: Record<string, unknown>[]): Record<string, number> {
  const byKey = new Map<string, number[]>();
  for (const p of payloads) {
    const t = p.timings_ms as Record<string, number> | undefined;
    if (!t) continue;
    for (const [k, v] of Object.entries(t))
      if (typeof v === 'number') byKey.set(k, [...(byKey.get(k) ?? []), v]);
  }
  const out: Record<string, number> = {};
  for (const [k, vs] of byKey)
    out[k] = round(
      percentile(
        vs.sort((a, b) => a - b),
        50,
      ),
      3,
    );
  return out;
}

/** Stage timings of one payload, with the part of `e2eMs` no stage covers. */
function stageTimings(payload: Record<string, unknown>, e2eMs: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries((payload.timings_ms as Record<string, unknown> | undefined) ?? {}))
    if (typeof v === 'number') out[k] = v;
  const covered = (out.detectMs ?? 0) + (out.totalMs ?? 0) + (out.deliverMs ?? 0);
  out.unaccountedMs = e2eMs - covered;
  return out;
}

function tailExcess(
  samples: readonly number[],
  payloads: readonly Record<string, unknown>[],
): Record<string, number> {
  const timings = payloads.map((p, i) => stageTimings(p, samples[i]!));
  const sorted = [...samples].sort((a, b) => a - b);
  const p95 = percentile(sorted, 95);
  const tail = timings.filter((_, i) => samples[i]! >= p95);
  const out: Record<string, number> = {};
  if (tail.length === 0) return out;
  const keys = new Set(timings.flatMap((t) => Object.keys(t)));
  for (const k of keys) {
    const all = timings
      .map((t) => t[k])
      .filter((v): v is number => v !== undefined)
      .sort((a, b) => a - b);
    const median = percentile(all, 50);
    const excess = tail.reduce((sum, t) => sum + ((t[k] ?? median) - median), 0) / tail.length;
    out[k] = round(excess, 3);
  }
  return out;
}

/**
 * Runs `count` unique images through the daemon with `inFlight` outstanding at a time (1 = each
 * image dropped after the previous result arrived). Wall time runs from the first drop to the
 * last result. `gapMs` > 0 waits that long after each result before the next drop, so the daemon
 * has finished what follows the message (the dashboard's pictures, events, the log) and the next
 * image finds it idle, as images a few seconds apart do at a microscope.
 */
export async function runPhase(
  daemon: DaemonUnderTest,
  phase: string,
  jpegs: Buffer[],
  count: number,
  inFlight: number,
  tagBase: string,
  gapMs = 0,
): Promise<E2ePhase> {
  const samples: number[] = [];
  const payloads: Record<string, unknown>[] = [];
  let next = 0;
  const pid = daemon.child?.pid;
  const cpu0 = pid === undefined ? null : processCpuMs(pid);
  const threads0 = pid === undefined ? null : threadCpuMs(pid);
  const start = performance.now();
  const worker = async (): Promise<void> => {
    while (next < count) {
      const i = next++;
      const bytes = uniqueJpeg(jpegs[i % jpegs.length]!, `${tagBase}-${i}-${process.pid}-${Date.now()}`);
      const { ms, payload, split } = await daemon.drop(bytes);
      samples.push(ms);
      if (gapMs > 0) await new Promise((r) => setTimeout(r, gapMs));
      payloads.push(
        split
          ? {
              ...payload,
              timings_ms: {
                ...(payload.timings_ms as object),
                detectMs: split.detectMs,
                deliverMs: split.deliverMs,
              },
            }
          : payload,
      );
    }
  };
  await Promise.all(Array.from({ length: inFlight }, () => worker()));
  const wallMs = performance.now() - start;
  const cpu1 = pid === undefined ? null : processCpuMs(pid);
  const threads1 = pid === undefined ? null : threadCpuMs(pid);
  return {
    phase,
    in_flight: inFlight,
    ...summarize(samples, wallMs),
    daemon_cpu_ms_per_image: cpu0 === null || cpu1 === null ? null : round((cpu1 - cpu0) / count, 2),
    daemon_cpu_ms_per_image_by_thread: threadCpuDelta(threads0, threads1, count),
    daemon_stage_median_ms: stageMedians(payloads),
    daemon_tail_excess_ms: tailExcess(samples, payloads),
  };
}

export interface SoakResult {
  images: number;
  in_flight: number;
  wall_s: number;
  rss_start_mb: number;
  rss_end_mb: number;
  rss_peak_mb: number;
  /** RSS after the first 10% of images vs after the last 10% (medians of the samples there). */
  rss_growth_mb: number;
  /** Least-squares slope of RSS over images done, second half of the run. */
  rss_slope_mb_per_1000_images: number;
  /** The daemon's own figures (its /metrics) before the first image and after the last. */
  memory_start: DaemonMemory | null;
  memory_end: DaemonMemory | null;
  latency: LatencySummary;
}

/** What the daemon's /metrics says of its memory, in MB (the main thread's isolate). */
export interface DaemonMemory {
  heap_total_mb: number;
  heap_used_mb: number;
  external_mb: number;
  array_buffers_mb: number;
  /** Major garbage collections of the main thread since the daemon started. */
  major_collections: number;
}

/**
 * `count` images through the daemon, `inFlight` at a time. Every 15 s a line {done, rss_mb, t_s,
 * and the daemon's heap_total_mb, heap_used_mb, external_mb, array_buffers_mb, major_collections} is appended to
 * `progressFile`, so an interrupted soak still leaves its memory curve.
 */
export async function runSoak(
  daemon: DaemonUnderTest,
  jpegs: Buffer[],
  count: number,
  inFlight: number,
  progress: (m: string) => void,
  progressFile: string,
): Promise<SoakResult> {
  const sampler = daemon.sampler!;
  const firstSample = sampler.samples.length;
  const memoryStart = await daemon.memory();
  const samples: number[] = [];
  let next = 0;
  const start = performance.now();
  let lastReport = start;
  const worker = async (): Promise<void> => {
    while (next < count) {
      const i = next++;
      const { ms } = await daemon.drop(
        uniqueJpeg(jpegs[i % jpegs.length]!, `soak-${i}-${process.pid}-${Date.now()}`),
      );
      samples.push(ms);
      if (performance.now() - lastReport > 15_000) {
        lastReport = performance.now();
        const rss = sampler.samples.at(-1)?.rssMb ?? 0;
        const t = round((lastReport - start) / 1000, 1);
        const done = samples.length;
        const memory = await daemon.memory();
        progress(
          `soak ${done}/${count} images, daemon RSS ${rss.toFixed(1)} MB` +
            (memory
              ? `, JS heap ${memory.heap_total_mb} MB, external ${memory.external_mb} MB, ` +
                `${memory.major_collections} major collections`
              : ''),
        );
        appendFileSync(
          progressFile,
          JSON.stringify({ done, rss_mb: round(rss, 1), t_s: t, ...memory }) + '\n',
        );
      }
    }
  };
  await Promise.all(Array.from({ length: inFlight }, () => worker()));
  const wallMs = performance.now() - start;
  const memoryEnd = await daemon.memory();
  sampler.sample();
  const run = sampler.samples.slice(firstSample);
  const medianRss = (from: number, to: number): number => {
    const part = run
      .filter((s) => s.done >= from && s.done <= to)
      .map((s) => s.rssMb)
      .sort((a, b) => a - b);
    return percentile(part, 50);
  };
  const tenth = Math.max(1, Math.floor(count / 10));
  const early = medianRss(0, tenth);
  const late = medianRss(count - tenth, count);
  const secondHalf = run.filter((s) => s.done >= count / 2);
  return {
    images: count,
    in_flight: inFlight,
    wall_s: round(wallMs / 1000, 1),
    rss_start_mb: round(run[0]?.rssMb ?? Number.NaN, 1),
    rss_end_mb: round(run.at(-1)?.rssMb ?? Number.NaN, 1),
    rss_peak_mb: round(Math.max(...run.map((s) => s.rssMb)), 1),
    rss_growth_mb: round(late - early, 1),
    rss_slope_mb_per_1000_images: round(
      slope(
        secondHalf.map((s) => s.done),
        secondHalf.map((s) => s.rssMb),
      ) * 1000,
      2,
    ),
    memory_start: memoryStart,
    memory_end: memoryEnd,
    latency: summarize(samples, wallMs),
  };
}
