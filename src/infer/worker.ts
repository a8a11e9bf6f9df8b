/**
 * The inference worker: owns the one onnxruntime session. session.run() blocks its thread for
 * the whole inference (onnxruntime #26968), so it runs here and the daemon's event loop (MQTT
 * keep-alive, HTTP, the watcher) stays responsive. The session is created once: creating and
 * releasing sessions repeatedly leaks memory (onnxruntime #25325).
 */
import { existsSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';
import { InferenceSession, Tensor, listSupportedBackends } from 'onnxruntime-node';
import type { FromWorker, ProviderAttempt, SessionCandidate, ToWorker, WorkerInit } from './protocol.js';
import { daemonSessionOptions } from './session-options.js';
import { viewRuns, writeViewRange } from './views.js';

const port = parentPort;
if (!port) throw new Error('src/infer/worker.ts must run as a worker thread');
const init = workerData as WorkerInit;
/** Whether the loaded file has the features output; set once its session exists. */
let fetchFeatures = false;
let fetches: string[] = [init.outputName];
const post = (msg: FromWorker, transfer: ArrayBuffer[] = []): void => port.postMessage(msg, transfer);

/**
 * Why the CUDA provider cannot work here, or null when it may (then session creation decides).
 * The npm package for linux/x64 lists cuda but ships its provider library only when installed
 * with ONNXRUNTIME_NODE_INSTALL_CUDA; checking the file first avoids onnxruntime's own
 * "Failed to load shared library" error spam on every CPU-only machine with [cuda, cpu] config.
 */
function cudaUnavailableReason(): string | null {
  if (!listSupportedBackends().some((b) => b.name === 'cuda'))
    return `this onnxruntime-node build (${process.platform}/${process.arch}) has no CUDA execution provider`;
  if (process.platform !== 'linux') return null;
  let root: string;
  try {
    root = dirname(dirname(createRequire(import.meta.url).resolve('onnxruntime-node')));
  } catch {
    return null;
  }
  const binDir = join(root, 'bin');
  if (!existsSync(binDir)) return null;
  for (const napi of readdirSync(binDir)) {
    const dir = join(binDir, napi, process.platform, process.arch);
    if (!existsSync(join(dir, 'onnxruntime_binding.node'))) continue;
    if (existsSync(join(dir, 'libonnxruntime_providers_cuda.so'))) return null;
    return (
      `libonnxruntime_providers_cuda.so is not installed next to the onnxruntime-node binding in ${dir} ` +
      `(install with ONNXRUNTIME_NODE_INSTALL_CUDA=v12 on x64, or a CUDA build on Jetson)`
    );
  }
  return null;
}

async function createSession(): Promise<{ session: InferenceSession; candidate: SessionCandidate } | null> {
  const attempts: ProviderAttempt[] = [];
  for (const candidate of init.candidates) {
    if (candidate.provider === 'cuda') {
      const reason = cudaUnavailableReason();
      if (reason) {
        attempts.push({ provider: 'cuda', error: reason });
        continue;
      }
    }
    try {
      const session = await InferenceSession.create(
        candidate.modelPath,
        daemonSessionOptions(candidate.provider, init.threads),
      );
      const missing: string[] = [...init.inputNames.filter((n) => !session.inputNames.includes(n))];
      if (!session.outputNames.includes(init.outputName)) missing.push(init.outputName);
      if (missing.length > 0) {
        await session.release();
        post({
          type: 'fatal',
          message:
            `${candidate.modelPath} has inputs [${session.inputNames.join(', ')}] and outputs ` +
            `[${session.outputNames.join(', ')}]; model.json expects ${missing.join(', ')}`,
          attempts,
        });
        return null;
      }
      fetchFeatures =
        init.featuresOutputName !== undefined && session.outputNames.includes(init.featuresOutputName);
      fetches = fetchFeatures ? [init.outputName, init.featuresOutputName as string] : [init.outputName];
      post({ type: 'ready', candidate, attempts });
      return { session, candidate };
    } catch (err) {
      attempts.push({ provider: candidate.provider, error: oneLine(err) });
    }
  }
  post({
    type: 'fatal',
    message: `no execution provider could load the model: ${attempts.map((a) => `${a.provider}: ${a.error}`).join('; ')}`,
    attempts,
  });
  return null;
}

function oneLine(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  return text.replace(/\s+/g, ' ').trim();
}

/** Per input, the buffer one model run's views are written into, kept between runs. */
const runBuffers = new Map<string, Float32Array>();

/**
 * The tensor for one model run: image `img`'s views first … first+rows-1 (src/infer/views.ts),
 * written here, off the daemon's event loop.
 */
function viewTensor(name: string, img: Float32Array, first: number, rows: number): Tensor {
  const [c, h, w] = init.imageShape;
  const length = rows * c * h * w;
  let buffer = runBuffers.get(name);
  if (!buffer || buffer.length < length) runBuffers.set(name, (buffer = new Float32Array(length)));
  const view = buffer.subarray(0, length);
  writeViewRange(img, view, first, rows, w);
  return new Tensor('float32', view, [rows, c, h, w]);
}

/**
 * The model runs for a message, each with the output row it starts at: without views, all
 * images in one batch (no copy for a single one); with views, each image's views in runs of
 * ROWS_PER_RUN rows, image i's view k at row i * views + k.
 */
function* modelRuns(
  originals: Float32Array[],
  segmenteds: Float32Array[],
): Generator<{ row: number; rows: number; feeds: Record<string, Tensor> }> {
  const [original, segmented] = init.inputNames;
  if (init.views === 1) {
    yield {
      row: 0,
      rows: originals.length,
      feeds: { [original]: packImages(originals), [segmented]: packImages(segmenteds) },
    };
    return;
  }
  for (const [i, img] of originals.entries())
    for (const [first, rows] of viewRuns(init.views))
      yield {
        row: i * init.views + first,
        rows,
        feeds: {
          [original]: viewTensor(original, img, first, rows),
          [segmented]: viewTensor(segmented, segmenteds[i] as Float32Array, first, rows),
        },
      };
}

/** N images as one contiguous [N, C, H, W] tensor (no copy for a single image). */
function packImages(images: Float32Array[]): Tensor {
  const [c, h, w] = init.imageShape;
  const per = c * h * w;
  if (images.length === 1) return new Tensor('float32', images[0] as Float32Array, [1, c, h, w]);
  const data = new Float32Array(images.length * per);
  images.forEach((img, i) => data.set(img, i * per));
  return new Tensor('float32', data, [images.length, c, h, w]);
}

/** `output` of one run as float32 [rows, width] (width unchecked when absent); throws naming its shape. */
function outputRows(
  outputs: InferenceSession.OnnxValueMapType,
  output: string,
  rows: number,
  width?: number,
): Float32Array {
  const out = outputs[output];
  if (!out || out.type !== 'float32') throw new Error(`output ${output} is missing or not float32`);
  if (out.dims.length !== 2 || out.dims[0] !== rows || (width !== undefined && out.dims[1] !== width))
    throw new Error(
      `output ${output} has shape [${out.dims.join(', ')}], expected [${rows}, ${width ?? 'features'}]`,
    );
  return out.data as Float32Array;
}

async function run(session: InferenceSession, msg: Extract<ToWorker, { type: 'run' }>): Promise<void> {
  try {
    const views = init.views;
    const n = msg.original.length * views;
    // The outputs of every run, copied into arrays of our own so they can be transferred.
    const probabilities = new Float32Array(n * init.classCount);
    let features: Float32Array | undefined;
    let runMs = 0;
    for (const { row, rows, feeds } of modelRuns(msg.original, msg.segmented)) {
      const started = performance.now();
      const outputs = await session.run(feeds, fetches);
      runMs += performance.now() - started;
      probabilities.set(outputRows(outputs, init.outputName, rows, init.classCount), row * init.classCount);
      if (fetchFeatures && init.featuresOutputName) {
        // Only each image's view 0, the image as taken, which the out-of-domain gate judges.
        const f = outputRows(outputs, init.featuresOutputName, rows);
        const width = f.length / rows;
        features ??= new Float32Array(msg.original.length * width);
        for (let r = row; r < row + rows; r++)
          if (r % views === 0)
            features.set(f.subarray((r - row) * width, (r - row + 1) * width), (r / views) * width);
      }
    }
    // The inputs go back too, so the main thread reuses them instead of this thread's heap
    // keeping 1.2 MB per image until its next garbage collection.
    const inputs = [...msg.original, ...msg.segmented];
    const transfer = new Set<ArrayBuffer>([probabilities.buffer]);
    if (features) transfer.add(features.buffer as ArrayBuffer);
    for (const a of inputs) if (a.buffer instanceof ArrayBuffer) transfer.add(a.buffer);
    post({ type: 'result', id: msg.id, runMs, probabilities, ...(features ? { features } : {}), inputs }, [
      ...transfer,
    ]);
  } catch (err) {
    post({ type: 'error', id: msg.id, message: oneLine(err) });
  }
}

const ready = await createSession();
if (ready) {
  const { session } = ready;
  // Runs one at a time, in arrival order.
  let queue: Promise<void> = Promise.resolve();
  port.on('message', (msg: ToWorker) => {
    if (msg.type === 'run') queue = queue.then(() => run(session, msg));
    else if (msg.type === 'close')
      queue = queue.then(async () => {
        await session.release();
        post({ type: 'closed' });
        port.close();
      });
  });
} else {
  port.close();
}
