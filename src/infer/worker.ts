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
import { writeViews } from './views.js';

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

/**
 * Per input, the buffer for one image's views, kept between runs (runs are one at a time, and
 * the tensor only wraps it until session.run() has returned): the daemon sends images one by
 * one. A batch of several images gets a buffer of its own, freed with it, so one large batch
 * does not hold its memory for the life of the worker.
 */
const oneImageBuffers = new Map<string, Float32Array>();

/**
 * Packs N images, each with its test-time views, into one contiguous [N × views, C, H, W]
 * tensor (no copy for a single image without views). The views are written here, off the
 * daemon's event loop, straight into the batch buffer.
 */
function batchTensor(name: string, images: Float32Array[]): Tensor {
  const [c, h, w] = init.imageShape;
  const per = c * h * w;
  const views = init.views;
  const rows = images.length * views;
  if (rows === 1) return new Tensor('float32', images[0] as Float32Array, [1, c, h, w]);
  let buffer: Float32Array;
  if (images.length === 1) {
    buffer = oneImageBuffers.get(name) ?? new Float32Array(rows * per);
    oneImageBuffers.set(name, buffer);
  } else buffer = new Float32Array(rows * per);
  images.forEach((img, i) =>
    writeViews(img, buffer.subarray(i * views * per, (i + 1) * views * per), views, w),
  );
  return new Tensor('float32', buffer, [rows, c, h, w]);
}

/**
 * The pooled features as one transferable copy (N × featureCount), or undefined when the model
 * has no features output. onnxruntime owns its output buffer, so one copy is the least there is.
 */
function featuresOf(outputs: InferenceSession.OnnxValueMapType, n: number): Float32Array | undefined {
  if (!fetchFeatures || !init.featuresOutputName) return undefined;
  const out = outputs[init.featuresOutputName];
  if (!out || out.type !== 'float32' || out.dims.length !== 2 || out.dims[0] !== n)
    throw new Error(`output ${init.featuresOutputName} is missing or not float32 [${n}, features]`);
  return Float32Array.from(out.data as Float32Array);
}

async function run(session: InferenceSession, msg: Extract<ToWorker, { type: 'run' }>): Promise<void> {
  try {
    const n = msg.original.length * init.views;
    const feeds = {
      [init.inputNames[0]]: batchTensor(init.inputNames[0], msg.original),
      [init.inputNames[1]]: batchTensor(init.inputNames[1], msg.segmented),
    };
    const started = performance.now();
    const outputs = await session.run(feeds, fetches);
    const runMs = performance.now() - started;
    const out = outputs[init.outputName];
    if (!out || out.type !== 'float32')
      throw new Error(`output ${init.outputName} is missing or not float32`);
    const dims = out.dims;
    if (dims.length !== 2 || dims[0] !== n || dims[1] !== init.classCount)
      throw new Error(
        `output ${init.outputName} has shape [${dims.join(', ')}], expected [${n}, ${init.classCount}]`,
      );
    // Copy into a buffer of our own so it can be transferred, not cloned.
    const probabilities = Float32Array.from(out.data as Float32Array);
    const features = featuresOf(outputs, n);
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
