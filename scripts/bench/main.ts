/**
 * blastwatch benchmark: per-stage latency, raw inference (INT8/FP32 × threads), store, publish,
 * the whole daemon end to end, RSS, the camera's image size, and the seed paper's Python pipeline
 * as a reference, all in one invocation on this machine. Run through scripts/benchmark.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism, cpus, loadavg, platform, release, tmpdir, totalmem, arch } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { parse as parseYaml } from 'yaml';
import { loadModelManifest, type ModelManifest } from '../../src/infer/index.js';
import { startLocalBroker, type LocalBroker } from './broker.js';
import {
  asJpeg,
  buildPrivate,
  DaemonUnderTest,
  runPhase,
  runSoak,
  type E2ePhase,
  type SoakResult,
} from './e2e.js';
import { benchGate, benchMagnification, benchMedia, benchNormalise } from './stages-judge-media.js';
import { profileInference, summarizeCpuProfiles, type OpProfile } from './profile.js';
import { loadImages, toCameraSize, type BenchImage } from './images.js';
import { markdownTable, svgChart, table, type Row } from './report.js';
import {
  benchDecode,
  benchInfer,
  benchPublish,
  benchSegment,
  benchStore,
  benchTensor,
  type InferRun,
  type StageResult,
} from './stages.js';
import { readRss, round, stageCpuSum, summarize, type LatencySummary } from './stats.js';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const require = createRequire(import.meta.url);

const USAGE = `usage: scripts/benchmark [options]

Measures every stage of blastwatch on this machine (real images, the real model), the whole daemon
end to end (capture folder -> MQTT), its memory, and the paper's Python pipeline for comparison.

  --data DIR          images to use (class sub-folders or flat; default test/fixtures/samples)
  --images N          how many images from DIR (default 12; --quick 4)
  --e2e-images N      images per end-to-end phase at one in flight and in the burst (default 100;
                      --quick 8); the camera-size phase gets half
  --model DIR         folder with model.json (default models/)
  --quick             small counts: finishes in under a minute
  --json              print one JSON object to stdout (the table goes to stderr)
  --out DIR           where the JSON and SVG go (default var/benchmark)
  --soak N            also run N images through the daemon and report RSS growth (e.g. 10000)
  --daemon-config FILE  start the daemon from this config (e.g. config/pi.yaml, config/jetson.yaml);
                      the benchmark sets only folders, broker, HTTP port and model.dir on top
  --daemon-threads N  model.threads of the daemon (default: the config's, else 0 = all cores)
  --daemon-concurrency N  pipeline.concurrency of the daemon (default: the config's, else 2)
  --cuda              also time the FP32 model on the CUDA provider, and run the daemon with
                      execution_providers [cuda, cpu] (Jetson / NVIDIA; needs a CUDA-enabled
                      onnxruntime-node)
  --python PATH       Python for the reference (default training/.venv/bin/python, else python3)
  --no-reference      skip the Python reference pipeline
  --no-daemon         skip the end-to-end daemon runs
  --keep-files        leave processed images in the capture folder, as the default config does
                      (move_processed_to: null); by default each is deleted once its result is in
  --no-unit-env       start the daemon without the systemd unit's Environment= lines
                      (MALLOC_ARENA_MAX, UV_THREADPOOL_SIZE, NODE_ENV) and node flags
                      (--max-semi-space-size); by default it gets them, as deployed
  --build             compile the daemon into var/benchmark/build first (when dist/ is stale), so
                      the daemon runs as compiled JavaScript, as in production
  --profile           also write onnxruntime per-operator profiles (INT8 vs FP32, 1 thread) and
                      run the daemon under node --cpu-prof (top functions in the JSON)
  -h, --help          this text`;

interface Counts {
  images: number;
  decodeRounds: number;
  segmentRounds: number;
  inferIterations: number;
  inferWarmup: number;
  store: number;
  publish: number;
  e2eSerial: number;
  e2eCamera: number;
  e2eParallel: number;
  refInferIterations: number;
}

/**
 * The paced phase's wait after each result: longer than what the daemon does after sending the
 * message (dashboard pictures, events, the log: a few ms), far shorter than a microscope's
 * seconds between captures.
 */
const PACED_GAP_MS = 25;

const FULL: Counts = {
  images: 12,
  decodeRounds: 10,
  segmentRounds: 20,
  inferIterations: 100,
  inferWarmup: 10,
  store: 500,
  publish: 500,
  e2eSerial: 100,
  e2eCamera: 50,
  e2eParallel: 100,
  refInferIterations: 50,
};
const QUICK: Counts = {
  images: 4,
  decodeRounds: 3,
  segmentRounds: 5,
  inferIterations: 10,
  inferWarmup: 2,
  store: 50,
  publish: 50,
  e2eSerial: 8,
  e2eCamera: 4,
  e2eParallel: 8,
  refInferIterations: 5,
};

function positiveInt(name: string, v: string | undefined, dflt: number, min = 1): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) {
    process.stderr.write(`scripts/benchmark: ${name} must be an integer >= ${min}, got ${v}\n`);
    process.exit(2);
  }
  return n;
}

function git(args: string[]): string | null {
  try {
    return execFileSync('git', args, {
      cwd: repoRoot,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
  } catch {
    return null;
  }
}

function osName(): string {
  try {
    const m = /^PRETTY_NAME="?([^"\n]+)"?/m.exec(readFileSync('/etc/os-release', 'utf8'));
    if (m) return `${m[1]} (${platform()} ${release()} ${arch()})`;
  } catch {
    /* not Linux */
  }
  return `${platform()} ${release()} ${arch()}`;
}

function machineInfo(): Record<string, unknown> {
  const pkg = (name: string): string | null => {
    try {
      return (require(`${name}/package.json`) as { version: string }).version;
    } catch {
      return null;
    }
  };
  return {
    cpu_model: cpus()[0]?.model ?? 'unknown',
    cores: availableParallelism(),
    memory_gb: round(totalmem() / 1024 ** 3, 1),
    os: osName(),
    node: process.version,
    onnxruntime_node: pkg('onnxruntime-node'),
    sharp: pkg('sharp'),
    libvips: sharp.versions.vips,
    better_sqlite3: pkg('better-sqlite3'),
    mqtt: pkg('mqtt'),
    git_commit: git(['rev-parse', 'HEAD']),
    git_dirty: (git(['status', '--porcelain', '--untracked-files=no']) ?? '') !== '',
  };
}

interface RefOut {
  versions?: Record<string, string | null>;
  threads?: number;
  samples?: Record<string, number[]>;
  /** Process CPU ms per call (all threads), per stage. */
  cpu_ms?: Record<string, number[]>;
  note?: string | null;
  missing?: string[];
}

function runReference(
  python: string,
  modelFile: string,
  threads: number,
  images: string[],
  size: number,
  iterations: number,
): RefOut | { error: string } {
  const script = join(repoRoot, 'scripts/bench/reference.py');
  const res = spawnSync(
    'nice',
    [
      '-n',
      '0',
      python,
      script,
      '--model',
      modelFile,
      '--threads',
      String(threads),
      '--size',
      String(size),
      '--iterations',
      String(iterations),
      '--warmup',
      '3',
      ...images,
    ],
    {
      encoding: 'utf8',
      maxBuffer: 64 * 1024 * 1024,
      env: { ...process.env, OMP_NUM_THREADS: String(threads) },
    },
  );
  if (res.error) return { error: `${python}: ${res.error.message}` };
  try {
    return JSON.parse(res.stdout.trim().split('\n').at(-1) ?? '') as RefOut;
  } catch {
    return {
      error: `reference pipeline failed (exit ${res.status}): ${res.stderr.trim().split('\n').slice(-3).join(' | ')}`,
    };
  }
}

function pickPython(explicit: string | undefined): string {
  if (explicit) return explicit;
  const venv = join(repoRoot, 'training/.venv/bin/python');
  return existsSync(venv) ? venv : 'python3';
}

const ratio = (a: number | undefined | null, b: number | undefined | null, digits = 3): number | null =>
  a === undefined || a === null || b === undefined || b === null || !(b > 0) ? null : round(a / b, digits);

/** Children to stop when the run is interrupted (Ctrl-C): the daemon, the broker. */
const cleanups = new Set<() => Promise<void>>();
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    process.stderr.write(`[benchmark] ${sig}: stopping the daemon and the broker\n`);
    void Promise.allSettled([...cleanups].map((c) => c())).then(() => process.exit(130));
  });
}

/** Major collections during the soak and the daemon's JS heap before and after it, from its /metrics. */
function soakMemoryLine(soak: SoakResult): string {
  const { memory_start: start, memory_end: end } = soak;
  if (!start || !end) return 'not read (the daemon did not answer /metrics)';
  return (
    `${end.major_collections - start.major_collections} major, ` +
    `heap ${start.heap_total_mb} -> ${end.heap_total_mb} MB, external ${start.external_mb} -> ${end.external_mb} MB`
  );
}

async function main(): Promise<void> {
  let parsed;
  try {
    parsed = parseArgs({
      args: process.argv.slice(2),
      options: {
        data: { type: 'string' },
        images: { type: 'string' },
        'e2e-images': { type: 'string' },
        model: { type: 'string' },
        quick: { type: 'boolean', default: false },
        json: { type: 'boolean', default: false },
        out: { type: 'string' },
        soak: { type: 'string' },
        'daemon-threads': { type: 'string' },
        'daemon-config': { type: 'string' },
        cuda: { type: 'boolean', default: false },
        'daemon-concurrency': { type: 'string' },
        python: { type: 'string' },
        'no-reference': { type: 'boolean', default: false },
        'no-daemon': { type: 'boolean', default: false },
        'keep-files': { type: 'boolean', default: false },
        'no-unit-env': { type: 'boolean', default: false },
        build: { type: 'boolean', default: false },
        profile: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
  } catch (err) {
    process.stderr.write(`scripts/benchmark: ${(err as Error).message}\n\n${USAGE}\n`);
    process.exit(2);
  }
  const o = parsed.values;
  if (o.help) {
    process.stdout.write(USAGE + '\n');
    return;
  }
  const counts: Counts = { ...(o.quick ? QUICK : FULL) };
  counts.images = positiveInt('--images', o.images, counts.images);
  if (o['e2e-images'] !== undefined) {
    counts.e2eSerial = counts.e2eParallel = positiveInt('--e2e-images', o['e2e-images'], counts.e2eSerial);
    counts.e2eCamera = Math.max(1, Math.floor(counts.e2eSerial / 2));
  }
  const soak = o.soak === undefined ? 0 : positiveInt('--soak', o.soak, 0);
  const cores = availableParallelism();
  let baseConfig: Record<string, unknown> | undefined;
  if (o['daemon-config']) {
    try {
      baseConfig =
        (parseYaml(readFileSync(o['daemon-config'], 'utf8')) as Record<string, unknown> | null) ?? {};
    } catch (err) {
      process.stderr.write(
        `scripts/benchmark: --daemon-config ${o['daemon-config']}: ${(err as Error).message}\n`,
      );
      process.exit(2);
    }
  }
  const baseModel = (baseConfig?.model ?? {}) as { threads?: number; execution_providers?: string[] };
  const basePipeline = (baseConfig?.pipeline ?? {}) as { concurrency?: number };
  const daemonThreads = positiveInt('--daemon-threads', o['daemon-threads'], baseModel.threads ?? 0, 0);
  const daemonConcurrency = positiveInt(
    '--daemon-concurrency',
    o['daemon-concurrency'],
    basePipeline.concurrency ?? 2,
  );
  const daemonProviders = o.cuda ? ['cuda', 'cpu'] : (baseModel.execution_providers ?? ['cpu']);
  const dataDir = resolve(o.data ?? join(repoRoot, 'test/fixtures/samples'));
  const modelDir = resolve(o.model ?? join(repoRoot, 'models'));
  const outDir = resolve(o.out ?? join(repoRoot, 'var/benchmark'));
  const say = (msg: string): void => void process.stderr.write(`[benchmark] ${msg}\n`);
  const t0 = Date.now();

  if (!existsSync(dataDir)) {
    process.stderr.write(`scripts/benchmark: --data ${dataDir} does not exist\n`);
    process.exit(2);
  }
  let manifest: ModelManifest;
  try {
    manifest = await loadModelManifest(modelDir);
  } catch (err) {
    process.stderr.write(
      `scripts/benchmark: ${(err as Error).message}\n(train one with training/reproduce.sh, or try the mechanics with --model test/fixtures/tiny-model)\n`,
    );
    process.exit(2);
  }
  const images = loadImages(dataDir, counts.images);
  if (images.length === 0) {
    process.stderr.write(`scripts/benchmark: no .jpg/.png/.tif images under ${dataDir}\n`);
    process.exit(2);
  }
  const size = manifest.imageSize.width;
  if (manifest.imageSize.height !== size) throw new Error('benchmark assumes a square model input');
  const loadBefore = loadavg();
  const machine = machineInfo();
  const isFixture = /test\/fixtures/.test(modelDir) || manifest.version.includes('test');
  say(
    `${machine.cpu_model as string}, ${cores} cores; model ${manifest.name} ${manifest.version}; ${images.length} images from ${dataDir}`,
  );
  if (isFixture)
    say('WARNING: this is the test fixture model: its inference figures say nothing about the real model');
  if (loadBefore[0]! > cores * 0.5)
    say(
      `WARNING: load average ${loadBefore[0]!.toFixed(2)} on ${cores} cores: other work is running; latencies will be inflated`,
    );

  // ---- stages alone, 224 px (the data set's size) and the camera's 1024x768 ------------------
  say('decode + resize, segmentation, tensors');
  const dec = await benchDecode(images, size, counts.decodeRounds, `decode+resize ${size}px jpeg`);
  const camera = await toCameraSize(images);
  const decCam = await benchDecode(camera, size, counts.decodeRounds, 'decode+resize 1024x768 jpeg');
  const normalise = await benchNormalise(manifest, dec.decoded, counts.segmentRounds);
  const seg = await benchSegment(dec.decoded, counts.segmentRounds);
  const ten = await benchTensor(dec.decoded, seg.segmentations, counts.segmentRounds);
  say('out-of-domain gate, dashboard media');
  const gate = await benchGate(
    manifest,
    dec.decoded,
    normalise?.modelRgbs ?? null,
    seg.segmentations,
    ten,
    counts.store,
  );
  const media = await benchMedia(dec.decoded, seg.segmentations, counts.store, Math.min(20, counts.store));
  const magnification = await benchMagnification(
    manifest,
    dec.decoded,
    normalise?.modelRgbs ?? null,
    counts.segmentRounds,
  );
  const threadCounts = [...new Set([1, 2, cores])]
    .filter((t) => t <= Math.max(2, cores))
    .sort((a, b) => a - b);
  const { runs: infer, cudaError } = await benchInfer(
    manifest,
    ten.originals,
    ten.segmenteds,
    threadCounts,
    counts.inferIterations,
    counts.inferWarmup,
    say,
    o.cuda,
  );
  say('store (SQLite transaction)');
  let opProfile: OpProfile[] | null = null;
  let cpuProfDir: string | null = null;
  mkdirSync(outDir, { recursive: true });
  if (o.profile) {
    say('onnxruntime per-operator profile, INT8 and FP32 at 1 thread');
    opProfile = await profileInference(manifest, ten.originals[0]!, ten.segmenteds[0]!, outDir);
    cpuProfDir = join(outDir, `cpu-profile-${new Date().toISOString().replace(/[:.]/g, '-')}`);
    mkdirSync(cpuProfDir, { recursive: true });
  }
  if (o.build && !o['no-daemon']) buildPrivate(repoRoot, say);
  const store = await benchStore(seg.segmentations, counts.store, Math.min(20, counts.store));
  const rssStagesMb = round(readRss()?.rssMb ?? Number.NaN, 1);

  let broker: LocalBroker | null = null;
  let publish: StageResult | null = null;
  let brokerKind: string | null = null;
  let daemonEntry: string | null = null;
  let daemonEnv: Record<string, string> | null = null;
  let daemonNodeFlags: string[] | null = null;
  const e2e: E2ePhase[] = [];
  let paced: E2ePhase | undefined;
  let rssDaemon: { steady_mb: number; peak_mb: number; samples: number } | null = null;
  let soakResult: SoakResult | null = null;
  try {
    broker = await startLocalBroker();
    const brokerRef = broker;
    const closeBroker = (): Promise<void> => brokerRef.close();
    cleanups.add(closeBroker);
    brokerKind = broker.kind;
    say(`publish (QoS 1) to ${broker.kind}`);
    publish = await benchPublish(broker.url, counts.publish, Math.min(20, counts.publish));

    // ---- the whole daemon -------------------------------------------------------------------
    if (!o['no-daemon']) {
      const jpegs = await asJpeg(images);
      const cameraJpegs = await asJpeg(camera);
      const daemon = new DaemonUnderTest({
        repoRoot,
        modelDir,
        brokerUrl: broker.url,
        threads: daemonThreads,
        concurrency: daemonConcurrency,
        providers: daemonProviders,
        ...(baseConfig ? { baseConfig } : {}),
        progress: say,
        ...(cpuProfDir ? { cpuProfDir } : {}),
        keepFiles: o['keep-files'],
        unitEnv: !o['no-unit-env'],
      });
      const stopDaemon = (): Promise<void> => daemon.stop();
      cleanups.add(stopDaemon);
      try {
        say('starting the daemon');
        await daemon.start();
        daemonEntry = daemon.entry;
        daemonEnv = daemon.env;
        daemonNodeFlags = daemon.nodeFlags;
        say(`daemon up (${daemon.entry}); warm-up`);
        await runPhase(daemon, 'warm-up', jpegs, Math.min(6, jpegs.length * 2), 1, 'warm');
        const sampleStart = daemon.sampler!.samples.length;
        say('end to end, 224 px, one image in flight');
        e2e.push(await runPhase(daemon, `e2e ${size}px c=1`, jpegs, counts.e2eSerial, 1, 'c1'));
        say('end to end, 1024x768, one image in flight');
        e2e.push(await runPhase(daemon, 'e2e 1024x768 c=1', cameraJpegs, counts.e2eCamera, 1, 'cam'));
        const n = Math.max(2, cores * 2);
        say(`end to end, 224 px, ${n} images in flight`);
        e2e.push(await runPhase(daemon, `e2e ${size}px c=${n}`, jpegs, counts.e2eParallel, n, 'cn'));
        say(`end to end, 224 px, one image in flight, ${PACED_GAP_MS} ms after each result`);
        const pacedName = `e2e ${size}px c=1 paced ${PACED_GAP_MS} ms`;
        paced = await runPhase(daemon, pacedName, jpegs, counts.e2eSerial, 1, 'paced', PACED_GAP_MS);
        e2e.push(paced);
        daemon.sampler!.sample();
        const s = daemon.sampler!;
        const measured = s.samples.slice(sampleStart).map((x) => x.rssMb);
        const sorted = measured.slice(Math.floor(measured.length / 2)).sort((a, b) => a - b);
        rssDaemon = {
          steady_mb: round(sorted[Math.floor((sorted.length - 1) / 2)] ?? Number.NaN, 1),
          peak_mb: round(s.peakMb(), 1),
          samples: measured.length,
        };
        if (soak > 0) {
          say(`soak: ${soak} images through the daemon`);
          const progressFile = join(
            outDir,
            `soak-progress-${new Date().toISOString().replace(/[:.]/g, '-')}.jsonl`,
          );
          say(
            `soak progress (done, RSS, the daemon's JS heap and external memory) every 15 s in ${progressFile}`,
          );
          soakResult = await runSoak(daemon, jpegs, soak, Math.max(4, cores * 2), say, progressFile);
        }
      } finally {
        cleanups.delete(stopDaemon);
        await daemon.stop();
      }
    }
  } finally {
    await broker?.close();
    cleanups.clear();
  }
  const daemonProfile = cpuProfDir ? summarizeCpuProfiles(cpuProfDir) : null;

  // ---- the paper's pipeline in Python ----------------------------------------------------------
  let reference: Record<string, unknown> | null = null;
  const refStages: Record<string, LatencySummary> = {};
  const refCamera: Record<string, LatencySummary> = {};
  const refCpu: Record<string, number> = {};
  if (!o['no-reference']) {
    const python = pickPython(o.python);
    say(`reference pipeline (${python}: OpenCV LAB + sklearn KMeans(7) + skimage + onnxruntime)`);
    const tmp = mkdtempSync(join(tmpdir(), 'bw-bench-ref-'));
    try {
      const write = (list: BenchImage[]): string[] =>
        list.map((img, i) => {
          const p = join(tmp, `${i}-${img.name}`);
          writeFileSync(p, img.bytes);
          return p;
        });
      const refImages = images.slice(0, o.quick ? 2 : images.length);
      const refThreads = daemonThreads > 0 ? daemonThreads : cores;
      const out = runReference(
        python,
        manifest.paths.int8,
        refThreads,
        write(refImages),
        size,
        counts.refInferIterations,
      );
      if ('error' in out || out.missing) {
        reference = { skipped: 'error' in out ? out.error : `missing: ${out.missing!.join(', ')}`, python };
        say(`reference skipped: ${reference.skipped as string}`);
      } else {
        for (const [k, v] of Object.entries(out.samples ?? {})) if (v.length) refStages[k] = summarize(v);
        for (const [k, v] of Object.entries(out.cpu_ms ?? {}))
          if (v.length) refCpu[k] = round(v.reduce((a, b) => a + b, 0) / v.length, 3);
        const outCam = o.quick
          ? null
          : runReference(
              python,
              manifest.paths.int8,
              refThreads,
              write(camera.slice(0, refImages.length)),
              size,
              5,
            );
        if (outCam && !('error' in outCam) && !outCam.missing)
          for (const [k, v] of Object.entries(outCam.samples ?? {}))
            if (v.length) refCamera[k] = summarize(v);
        reference = {
          python,
          versions: out.versions,
          threads: out.threads,
          note: out.note,
          images: refImages.length,
          model: manifest.files.int8.path,
        };
      }
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  }

  // ---- summary ---------------------------------------------------------------------------------
  const inferAt = (p: 'int8' | 'fp32', t: number): InferRun | undefined =>
    infer.find((r) => r.provider === 'cpu' && r.precision === p && r.threads === t);
  const daemonT = daemonThreads > 0 ? daemonThreads : cores;
  const int8Daemon = inferAt('int8', daemonT) ?? inferAt('int8', cores);
  const e2eSerial = e2e[0];
  const ourPipelineMedian =
    dec.result.median_ms + seg.result.median_ms + ten.result.median_ms + (int8Daemon?.result.median_ms ?? 0);
  // The six stages of the first definition; then every stage each image goes through, the colour
  // normalisation, the gate and the dashboard media included (absent when the model has no
  // normalisation or gate: the daemon then does none).
  const sixStages = [dec.result, seg.result, ten.result, int8Daemon?.result, store, publish ?? undefined];
  const sixStageCpu = stageCpuSum(sixStages);
  const stageCpu = stageCpuSum([
    ...sixStages,
    ...(normalise ? [normalise.result] : []),
    ...(gate ? [gate] : []),
    media,
    ...(magnification ? [magnification] : []),
  ]);
  const summary = {
    segmentation_speedup_vs_reference: ratio(refStages.segment?.median_ms, seg.result.median_ms, 1),
    /** The same in CPU time per image (all threads): the figure to trust on a loaded machine. */
    segmentation_speedup_vs_reference_cpu: ratio(refCpu.segment, seg.result.cpu_ms, 1),
    int8_vs_fp32_latency_ratio: ratio(
      inferAt('int8', 1)?.result.median_ms,
      inferAt('fp32', 1)?.result.median_ms,
    ),
    /** The same in CPU time per inference (all threads): the figure to trust on a loaded machine. */
    int8_vs_fp32_cpu_ratio: ratio(inferAt('int8', 1)?.result.cpu_ms, inferAt('fp32', 1)?.result.cpu_ms),
    int8_vs_fp32_latency_ratio_by_threads: Object.fromEntries(
      threadCounts.map((t) => [
        String(t),
        ratio(inferAt('int8', t)?.result.median_ms, inferAt('fp32', t)?.result.median_ms),
      ]),
    ),
    e2e_median_ms: e2eSerial?.median_ms ?? null,
    e2e_p95_ms: e2eSerial?.p95_ms ?? null,
    e2e_camera_p95_ms: e2e[1]?.p95_ms ?? null,
    /**
     * One image in flight, each dropped PACED_GAP_MS after the previous result, so it finds the
     * daemon idle (the microscope case: images seconds apart). In e2e_p95_ms each image arrives
     * while the daemon still writes the previous one's dashboard pictures.
     */
    e2e_paced_median_ms: paced?.median_ms ?? null,
    e2e_paced_p95_ms: paced?.p95_ms ?? null,
    e2e_throughput_per_s: e2e[2]?.throughput_per_s ?? null,
    raw_inference_int8_p95_ms: int8Daemon?.result.p95_ms ?? null,
    raw_inference_threads: int8Daemon?.threads ?? null,
    /** Test-time views per image (model.json `views`): every inference figure runs them all. */
    model_views: manifest.views,
    /** The daemon's CPU per image (all threads, 224 px, one in flight). */
    daemon_cpu_ms_per_image: e2eSerial?.daemon_cpu_ms_per_image ?? null,
    /** The same image's stages measured alone in this run, CPU ms summed (see stageCpuSum). */
    stages_cpu_ms_per_image: stageCpu.sum,
    /**
     * Daemon CPU per image ÷ the sum of its stages' CPU measured alone: what the daemon spends
     * besides the work itself (watcher, media for the dashboard, logging, metrics, threads handing
     * work to each other). CPU, not wall time, so a busy machine barely moves it.
     */
    daemon_cpu_overhead_ratio: ratio(e2eSerial?.daemon_cpu_ms_per_image, stageCpu.sum),
    /** The same over decode, segment, tensor, infer, store and publish only. */
    daemon_cpu_overhead_ratio_six_stages: ratio(e2eSerial?.daemon_cpu_ms_per_image, sixStageCpu.sum),
    rss_steady_mb: rssDaemon?.steady_mb ?? null,
    rss_peak_mb: rssDaemon?.peak_mb ?? null,
    rss_growth_mb_soak: soakResult?.rss_growth_mb ?? null,
    /** Reference per-image pipeline (decode+segment+tensors+model) ÷ ours in process. */
    pipeline_speedup_vs_reference: ratio(refStages.total?.median_ms, ourPipelineMedian, 1),
    /** Reference per-image pipeline ÷ our whole daemon (file drop → MQTT). */
    e2e_speedup_vs_reference: ratio(refStages.total?.median_ms, e2eSerial?.median_ms, 1),
    inference_ours_vs_reference: ratio(int8Daemon?.result.median_ms, refStages.infer?.median_ms),
    decode_ours_vs_reference: ratio(dec.result.median_ms, refStages.decode?.median_ms),
    decode_camera_ours_vs_reference: ratio(decCam.result.median_ms, refCamera.decode?.median_ms),
  };
  const targets = {
    'segmentation >= 100x reference':
      summary.segmentation_speedup_vs_reference === null
        ? null
        : summary.segmentation_speedup_vs_reference >= 100,
    'int8 <= 0.6x fp32 at 1 thread':
      summary.int8_vs_fp32_latency_ratio === null ? null : summary.int8_vs_fp32_latency_ratio <= 0.6,
    'e2e p95 <= 15 ms (224 px, c=1)': summary.e2e_p95_ms === null ? null : summary.e2e_p95_ms <= 15,
    'daemon CPU <= 1.5x its stages alone':
      summary.daemon_cpu_overhead_ratio === null ? null : summary.daemon_cpu_overhead_ratio <= 1.5,
    'steady RSS <= 180 MB': summary.rss_steady_mb === null ? null : summary.rss_steady_mb <= 180,
    'no RSS growth over the soak (< 10 MB)':
      soakResult === null ? null : Math.abs(soakResult.rss_growth_mb) < 10,
  };
  const loadAfter = loadavg();
  const result = {
    schema: 'blastwatch/benchmark/1',
    ...summary,
    targets,
    date: new Date().toISOString(),
    command: `scripts/benchmark ${process.argv.slice(2).join(' ')}`.trim(),
    mode: o.quick ? 'quick' : 'full',
    machine: {
      ...machine,
      load_average_before: loadBefore.map((v) => round(v, 2)),
      load_average_after: loadAfter.map((v) => round(v, 2)),
    },
    model: {
      dir: modelDir,
      name: manifest.name,
      version: manifest.version,
      test_fixture: isFixture,
      int8: manifest.files.int8,
      fp32: manifest.files.fp32,
      input: [3, size, size],
    },
    data: {
      dir: dataDir,
      images: images.length,
      camera_size: '1024x768 jpeg q92 (resized from the samples with sharp)',
    },
    stages: [
      dec.result,
      decCam.result,
      ...(normalise ? [normalise.result] : []),
      seg.result,
      ten.result,
      ...infer.map((r) => ({ ...r.result, session_create_ms: r.sessionCreateMs })),
      ...(gate ? [gate] : []),
      store,
      media,
      ...(magnification ? [magnification] : []),
      ...(publish ? [publish] : []),
    ],
    cuda: o.cuda
      ? { error: cudaError, fp32: infer.find((r) => r.provider === 'cuda')?.result ?? null }
      : null,
    stages_note:
      "each stage alone in the benchmark process on the daemon's code; inference = onnxruntime-node, batch 1, in this thread",
    rss_benchmark_process_mb: rssStagesMb,
    /** The stages whose CPU per image makes up stages_cpu_ms_per_image. */
    stages_cpu_ms_per_image_parts: stageCpu.parts,
    /** Decode, segment, tensor, infer, store and publish alone: the six-stage ratio's divisor. */
    six_stages_cpu_ms_per_image: sixStageCpu.sum,
    e2e: {
      broker: brokerKind,
      daemon_entry: daemonEntry,
      /** Set for the daemon on top of the benchmark's environment (the systemd unit's). */
      daemon_env: daemonEnv,
      daemon_node_flags: daemonNodeFlags,
      daemon_config: {
        base: o['daemon-config'] ?? 'config/default.yaml',
        threads: daemonThreads,
        concurrency: daemonConcurrency,
        execution_providers: daemonProviders,
        stability_ms: 0,
        processed_files_kept_in_capture_folder: o['keep-files'],
      },
      note: 'latency = rename into the capture folder -> result message received over MQTT (QoS 1); stability_ms 0 because files arrive complete by rename (the default 1500 ms camera-write wait is a deliberate delay, not processing)',
      phases: e2e,
      rss_daemon: rssDaemon,
      soak: soakResult,
    },
    profile: o.profile ? { onnxruntime_ops_1_thread: opProfile, daemon_cpu: daemonProfile } : null,
    reference: reference
      ? { ...reference, stages: refStages, cpu_ms_per_call: refCpu, camera_stages: refCamera }
      : null,
    wall_s: round((Date.now() - t0) / 1000, 1),
  };

  // ---- output ------------------------------------------------------------------------------------
  const rows: Row[] = [
    { label: dec.result.stage, s: dec.result, cpu: dec.result.cpu_ms ?? null },
    { label: decCam.result.stage, s: decCam.result, cpu: decCam.result.cpu_ms ?? null },
    ...(normalise
      ? [{ label: normalise.result.stage, s: normalise.result, cpu: normalise.result.cpu_ms ?? null }]
      : []),
    { label: 'segment (a* K-means + morphology)', s: seg.result, cpu: seg.result.cpu_ms ?? null },
    { label: 'tensor (2 x NCHW float)', s: ten.result, cpu: ten.result.cpu_ms ?? null },
    ...infer.map((r) => ({ label: r.result.stage, s: r.result, cpu: r.result.cpu_ms ?? null })),
    ...(gate ? [{ label: 'gate (out-of-domain judgement)', s: gate, cpu: gate.cpu_ms ?? null }] : []),
    { label: 'store', s: store, cpu: store.cpu_ms ?? null, note: 'SQLite result+outbox txn, FULL sync' },
    { label: 'media', s: media, cpu: media.cpu_ms ?? null, note: 'thumbnail, mask, segmented: media.db' },
    ...(magnification
      ? [
          {
            label: 'magnification watch',
            s: magnification,
            cpu: magnification.cpu_ms ?? null,
            note: 'red-cell size, once idle: after the verdict',
          },
        ]
      : []),
    ...(publish
      ? [
          {
            label: 'publish',
            s: publish,
            cpu: publish.cpu_ms ?? null,
            note: `QoS 1 PUBACK, ${brokerKind}${brokerKind?.startsWith('aedes') ? ' (cpu: incl. the broker)' : ''}`,
          },
        ]
      : []),
    ...e2e.map((p) => ({
      label: p.phase,
      s: p as LatencySummary,
      cpu: p.daemon_cpu_ms_per_image,
      note: 'file drop -> MQTT result (cpu: whole daemon)',
    })),
    ...Object.entries(refStages).map(([k, v]) => ({
      label: `reference ${k}`,
      s: v,
      cpu: refCpu[k] ?? null,
      note: k === 'total' ? 'decode+segment+tensors+model' : '',
    })),
    ...Object.entries(refCamera)
      .filter(([k]) => k === 'decode' || k === 'total')
      .map(([k, v]) => ({ label: `reference ${k} 1024x768`, s: v })),
  ];
  const summaryLines = [
    '== summary',
    ...Object.entries(summary)
      .filter(([, v]) => typeof v !== 'object' || v === null)
      .map(([k, v]) => `${k.padEnd(36)} ${v === null ? '-' : String(v)}`),
    `${'int8_vs_fp32 by threads'.padEnd(36)} ${JSON.stringify(summary.int8_vs_fp32_latency_ratio_by_threads)}`,
    ...(rssDaemon
      ? [`${'daemon RSS steady / peak MB'.padEnd(36)} ${rssDaemon.steady_mb} / ${rssDaemon.peak_mb}`]
      : []),
    ...(soakResult
      ? [
          `${'soak'.padEnd(36)} ${soakResult.images} images, RSS ${soakResult.rss_start_mb} -> ${soakResult.rss_end_mb} MB, growth ${soakResult.rss_growth_mb} MB, slope ${soakResult.rss_slope_mb_per_1000_images} MB/1000 img`,
          // A growth with no major collection during the soak may be garbage still waiting for one.
          `${'soak: major collections, JS heap'.padEnd(36)} ${soakMemoryLine(soakResult)}`,
        ]
      : []),
    ...(e2e[0] && Object.keys(e2e[0].daemon_tail_excess_ms).length > 0
      ? [
          `${`${e2e[0].phase}: slowest 5 %, ms above median`.padEnd(36)} ` +
            Object.entries(e2e[0].daemon_tail_excess_ms)
              .filter(([k]) => k !== 'totalMs')
              .sort((a, b) => b[1] - a[1])
              .map(([k, v]) => `${k.replace(/Ms$/, '')} ${v}`)
              .join(', '),
        ]
      : []),
    ...(opProfile
      ? [
          '== onnxruntime operators, 1 thread (ms per image, share)',
          ...opProfile.map(
            (p) =>
              `${p.precision}: kernels ${p.kernel_ms_per_run} ms | ` +
              p.ops
                .slice(0, 6)
                .map((x) => `${x.op} ${x.ms_per_run} (${Math.round(x.share * 100)}%)`)
                .join(', '),
          ),
        ]
      : []),
    ...(daemonProfile
      ? [
          '== daemon CPU profile, top self time (one file per thread)',
          ...daemonProfile.flatMap((p) => [
            `${p.file} (${p.total_ms} ms sampled)`,
            ...p.top
              .slice(0, 8)
              .map(
                (x) =>
                  `  ${String(x.self_ms).padStart(9)} ms ${String(Math.round(x.share * 100)).padStart(3)}%  ${x.fn}`,
              ),
          ]),
        ]
      : []),
    '== targets',
    ...Object.entries(targets).map(
      ([k, v]) => `${k.padEnd(40)} ${v === null ? 'not measured' : v ? 'met' : 'MISSED'}`,
    ),
  ];
  const header = `blastwatch benchmark ${result.date} | ${machine.cpu_model as string}, ${cores} cores | ${machine.os as string} | node ${process.version} | onnxruntime-node ${machine.onnxruntime_node as string} | model ${manifest.name} ${manifest.version}${isFixture ? ' (TEST FIXTURE)' : ''} | load ${loadBefore[0]!.toFixed(2)} -> ${loadAfter[0]!.toFixed(2)}`;
  const text = [header, table('latency', rows), ...summaryLines].join('\n') + '\n';

  const stamp = result.date.replace(/[:.]/g, '-');
  const jsonPath = join(outDir, `benchmark-${stamp}.json`);
  const svgPath = join(outDir, `benchmark-${stamp}.svg`);
  writeFileSync(jsonPath, JSON.stringify(result, null, 2) + '\n');
  writeFileSync(join(outDir, 'latest.json'), JSON.stringify(result, null, 2) + '\n');
  const svg = svgChart(
    `blastwatch: per-image latency (${manifest.name} ${manifest.version})`,
    `${machine.cpu_model as string}, ${cores} cores, node ${process.version}, ${result.date.slice(0, 16)}Z`,
    rows,
  );
  writeFileSync(svgPath, svg);
  writeFileSync(join(outDir, 'latest.svg'), svg);
  const md = [
    `${header}\n`,
    `Command: \`${result.command}\`\n`,
    markdownTable(rows),
    '```',
    ...summaryLines,
    '```',
    '',
  ].join('\n');
  writeFileSync(join(outDir, `benchmark-${stamp}.md`), md);
  writeFileSync(join(outDir, 'latest.md'), md);
  if (o.json) {
    process.stderr.write(text);
    process.stdout.write(JSON.stringify({ ...result, json_file: jsonPath, svg_file: svgPath }) + '\n');
  } else {
    process.stdout.write(text + `wrote ${jsonPath}\nwrote ${svgPath}\n`);
  }
}

main().then(
  // Leave even if a library keeps a handle open (mqtt reconnect timers, onnxruntime threads).
  () => setTimeout(() => process.exit(0), 100).unref(),
  (err: unknown) => {
    process.stderr.write(
      `scripts/benchmark: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    );
    process.exit(1);
  },
);
