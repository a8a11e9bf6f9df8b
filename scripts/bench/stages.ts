/**
 * Each pipeline stage alone, on the daemon's own code (src/), in this process: decode+resize,
 * segmentation, tensor preparation, raw inference (onnxruntime-node, one session per model ×
 * thread count, created once), the store's result+outbox transaction on a real SQLite file,
 * and an MQTT QoS 1 publish (PUBACK round trip) to a local broker.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { InferenceSession, Tensor } from 'onnxruntime-node';
import { decodeImage, type DecodedImage } from '../../src/decode/index.js';
import type { ModelManifest } from '../../src/infer/index.js';
import { daemonSessionOptions } from '../../src/infer/session-options.js';
import { viewRuns, writeViewRange } from '../../src/infer/views.js';
import { toTensorNCHW } from '../../src/preprocess/index.js';
import { recycleTensor, takeTensor } from '../../src/preprocess/tensor-pool.js';
import { eventId, resultPayload } from '../../src/publish/payloads.js';
import { createSegmentScratch, segmentImage, type Segmentation } from '../../src/segment/index.js';
import { openStore } from '../../src/store/index.js';
import type { BenchImage } from './images.js';
import { round, summarize, timeLoop, type LatencySummary } from './stats.js';

export interface StageResult extends LatencySummary {
  stage: string;
  /** Process CPU time per image (all threads), ms. */
  cpu_ms?: number;
  note?: string;
}

export interface Prepared {
  decoded: DecodedImage[];
  segmentations: Segmentation[];
  originals: Float32Array[];
  segmenteds: Float32Array[];
}

const LIMIT_INPUT_PIXELS = 50_000_000;

/** Decode+resize of every image, `rounds` times over the set (first round = warm-up). */
export async function benchDecode(
  images: BenchImage[],
  size: number,
  rounds: number,
  label: string,
): Promise<{ result: StageResult; decoded: DecodedImage[] }> {
  const decoded: DecodedImage[] = [];
  for (const img of images)
    decoded.push(await decodeImage(img.bytes, { size, limitInputPixels: LIMIT_INPUT_PIXELS }));
  const n = images.length * rounds;
  const { samples, wallMs, cpuMsPerIteration } = await timeLoop(n, 0, (i) =>
    decodeImage(images[i % images.length]!.bytes, { size, limitInputPixels: LIMIT_INPUT_PIXELS }),
  );
  return {
    result: { stage: label, ...summarize(samples, wallMs), cpu_ms: round(cpuMsPerIteration, 3) },
    decoded,
  };
}

export async function benchSegment(
  decoded: DecodedImage[],
  rounds: number,
): Promise<{ result: StageResult; segmentations: Segmentation[] }> {
  const first = decoded[0]!;
  const scratch = createSegmentScratch(first.width * first.height);
  const segmentations = decoded.map((d) => segmentImage(d.rgb, d.width, d.height, undefined, scratch));
  const { samples, wallMs, cpuMsPerIteration } = await timeLoop(
    decoded.length * rounds,
    // Enough untimed calls for V8 to optimise the hot loops (the daemon runs them thousands of times).
    Math.max(30, decoded.length),
    (i) => {
      const d = decoded[i % decoded.length]!;
      segmentImage(d.rgb, d.width, d.height, undefined, scratch);
    },
  );
  return {
    result: { stage: 'segment', ...summarize(samples, wallMs), cpu_ms: round(cpuMsPerIteration, 3) },
    segmentations,
  };
}

/** Both model inputs of one image: two HWC→NCHW float conversions. */
export async function benchTensor(
  decoded: DecodedImage[],
  segs: Segmentation[],
  rounds: number,
): Promise<{ result: StageResult; originals: Float32Array[]; segmenteds: Float32Array[] }> {
  const originals = decoded.map((d) => toTensorNCHW(d.rgb, d.width, d.height));
  const segmenteds = decoded.map((d, i) => toTensorNCHW(segs[i]!.segmented, d.width, d.height));
  const { samples, wallMs, cpuMsPerIteration } = await timeLoop(
    decoded.length * rounds,
    // Enough untimed calls for V8 to optimise the hot loops (the daemon runs them thousands of times).
    Math.max(30, decoded.length),
    (i) => {
      const k = i % decoded.length;
      const d = decoded[k]!;
      // Arrays from the pool and back, as prepareImage takes them and the worker returns them.
      const values = d.width * d.height * 3;
      recycleTensor(toTensorNCHW(d.rgb, d.width, d.height, takeTensor(values)));
      recycleTensor(toTensorNCHW(segs[k]!.segmented, d.width, d.height, takeTensor(values)));
    },
  );
  return {
    result: { stage: 'tensor', ...summarize(samples, wallMs), cpu_ms: round(cpuMsPerIteration, 3) },
    originals,
    segmenteds,
  };
}

export interface InferRun {
  provider: 'cpu' | 'cuda';
  precision: 'int8' | 'fp32';
  threads: number;
  result: StageResult;
  sessionCreateMs: number;
}

/**
 * Raw inference: onnxruntime-node in this thread, one image, the options the daemon's worker uses
 * (intra-op = threads, inter-op 1, sequential, all graph optimisations). One session per
 * (precision, threads), created once, released after its runs. A model with test-time views
 * (model.json `views`) runs each image's views as the worker does: written per image, in runs of
 * ROWS_PER_RUN rows.
 */
export async function benchInfer(
  manifest: ModelManifest,
  originals: Float32Array[],
  segmenteds: Float32Array[],
  threadCounts: number[],
  iterations: number,
  warmup: number,
  progress: (msg: string) => void,
  cuda = false,
): Promise<{ runs: InferRun[]; cudaError: string | null }> {
  const { height, width } = manifest.imageSize;
  const views = manifest.views;
  const perImage = 3 * height * width;
  // The worker's runs for one image (src/infer/views.ts): views written into one buffer per run.
  const viewPlan = viewRuns(views);
  const buffers = viewPlan.map(([, rows]) => ({
    original: new Float32Array(rows * perImage),
    segmented: new Float32Array(rows * perImage),
  }));
  const feedsOf = (at: number): Record<string, Tensor>[] =>
    viewPlan.map(([first, rows], r) => {
      const b = buffers[r]!;
      writeViewRange(originals[at]!, b.original, first, rows, width);
      writeViewRange(segmenteds[at]!, b.segmented, first, rows, width);
      const dims = [rows, 3, height, width];
      return {
        original: new Tensor('float32', b.original, dims),
        segmented: new Tensor('float32', b.segmented, dims),
      };
    });
  const outputName = manifest.output;
  const runs: InferRun[] = [];
  let cudaError: string | null = null;
  // CUDA has no INT8 kernels: it runs the FP32 file (threads only serve nodes left on the CPU).
  const plan: { provider: 'cpu' | 'cuda'; precision: 'int8' | 'fp32'; threads: number }[] = [
    ...(['int8', 'fp32'] as const).flatMap((precision) =>
      threadCounts.map((threads) => ({ provider: 'cpu' as const, precision, threads })),
    ),
    ...(cuda
      ? [{ provider: 'cuda' as const, precision: 'fp32' as const, threads: Math.max(...threadCounts) }]
      : []),
  ];
  for (const { provider, precision, threads } of plan) {
    {
      progress(`inference ${precision} ${provider} threads=${threads}`);
      const c0 = performance.now();
      let session: InferenceSession;
      try {
        // The daemon's own options: with a spinning pool the t>1 rows measured a CPU cost (and a
        // latency) the daemon does not have.
        session = await InferenceSession.create(
          manifest.paths[precision],
          daemonSessionOptions(provider, threads),
        );
      } catch (err) {
        if (provider !== 'cuda') throw err;
        cudaError = (err as Error).message.split('\n')[0] ?? 'unknown error';
        progress(`CUDA provider unavailable: ${cudaError}`);
        continue;
      }
      const sessionCreateMs = performance.now() - c0;
      const { samples, wallMs, cpuMsPerIteration } = await timeLoop(iterations, warmup, async (i) => {
        for (const feeds of feedsOf(i % originals.length)) {
          const out = await session.run(feeds, [outputName]);
          if (!out[outputName]) throw new Error(`model gave no ${outputName}`);
        }
      });
      await session.release();
      runs.push({
        provider,
        precision,
        threads,
        sessionCreateMs: Math.round(sessionCreateMs),
        result: {
          stage: provider === 'cuda' ? `infer ${precision} cuda` : `infer ${precision} t=${threads}`,
          ...summarize(samples, wallMs),
          cpu_ms: round(cpuMsPerIteration, 3),
        },
      });
    }
  }
  return { runs, cudaError };
}

function fakeSha(i: number): string {
  return (i.toString(16).padStart(16, '0') + 'b'.repeat(48)).slice(0, 64);
}

/**
 * The store stage as the pipeline runs it: one transaction with the result row, its outbox
 * message(s) and the file's state, on a real SQLite file (WAL, synchronous=FULL: every commit
 * is an fsync on this disk).
 */
export async function benchStore(
  segs: Segmentation[],
  iterations: number,
  warmup: number,
): Promise<StageResult> {
  const dir = mkdtempSync(join(tmpdir(), 'bw-bench-store-'));
  const store = openStore({ dataDir: dir });
  try {
    const { samples, wallMs, cpuMsPerIteration } = await timeLoop(iterations, warmup, (i) => {
      const sha = fakeSha(i);
      const seg = segs[i % segs.length]!;
      const now = Date.now();
      const probabilities = { Benign: 0.1, 'Early Pre-B': 0.6, 'Pre-B': 0.2, 'Pro-B': 0.1 };
      const timings = { readMs: 0.1, decodeMs: 1, segmentMs: 1, tensorMs: 0.2, inferMs: 10, totalMs: 12.3 };
      store.results.commit(
        {
          status: 'done',
          sha256: sha,
          path: `/captures/img-${i}.jpg`,
          file: `img-${i}.jpg`,
          origin: 'capture',
          size: 20_000,
          className: 'Early Pre-B',
          classIndex: 1,
          pBall: 0.9,
          flag: true,
          needsReview: false,
          probabilities,
          modelName: 'bench',
          modelVersion: '1',
          threshold: 0.5,
          attempts: 1,
          capturedAt: now,
          processedAt: now,
          timings,
          image: { format: 'jpeg', width: 224, height: 224, bytes: 20_000 },
          maskStats: seg.stats as unknown as Record<string, unknown>,
        },
        {
          path: `/captures/img-${i}.jpg`,
          size: 20_000,
          mtimeMs: now,
          sha256: sha,
          status: 'done',
          attempts: 1,
        },
        (result) =>
          (['result', 'alert'] as const).map((topic) => ({
            eventId: eventId(sha, '1', topic),
            topic,
            payload: JSON.stringify(benchPayload(result.id, sha, topic)),
          })),
      );
    });
    return {
      stage: 'store',
      ...summarize(samples, wallMs),
      cpu_ms: round(cpuMsPerIteration, 3),
      note: 'result+outbox+file row, one transaction, WAL, synchronous=FULL',
    };
  } finally {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A result payload of the real shape and size. */
export function benchPayload(resultId: number, sha: string, topic: 'result' | 'alert' = 'result'): unknown {
  const now = Date.now();
  return resultPayload(
    {
      deviceId: 'bench',
      resultId,
      file: `img-${resultId}.jpg`,
      sha256: sha,
      className: 'Early Pre-B',
      probabilities: { Benign: 0.1, 'Early Pre-B': 0.6, 'Pre-B': 0.2, 'Pro-B': 0.1 },
      pBall: 0.9,
      flag: true,
      needsReview: false,
      threshold: 0.5,
      uncertainBand: [0.3, 0.7],
      model: { name: 'bench', version: '1', execution_provider: 'cpu', precision: 'int8' },
      capturedAt: now,
      processedAt: now,
      timings: { readMs: 0.1, decodeMs: 1, segmentMs: 1, tensorMs: 0.2, inferMs: 10, totalMs: 12.3 },
    },
    topic,
  );
}

/** QoS 1 publish of a result payload; resolves on PUBACK (mqtt.js publishAsync). */
export async function benchPublish(
  brokerUrl: string,
  iterations: number,
  warmup: number,
): Promise<StageResult> {
  const client = await mqtt.connectAsync(brokerUrl, {
    clientId: `bw-bench-pub-${process.pid}`,
    reconnectPeriod: 0,
  });
  try {
    const { samples, wallMs, cpuMsPerIteration } = await timeLoop(iterations, warmup, async (i) => {
      const payload = JSON.stringify(benchPayload(i, fakeSha(i)));
      await client.publishAsync('blastwatch/bench-publish/result', payload, { qos: 1 });
    });
    return {
      stage: 'publish',
      ...summarize(samples, wallMs),
      cpu_ms: round(cpuMsPerIteration, 3),
      note: 'QoS 1, PUBACK round trip',
    };
  } finally {
    await client.endAsync(true);
  }
}
