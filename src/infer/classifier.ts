import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { Logger } from '../log.js';
import { applyTemperature, malignantProbability } from './decision.js';
import { recycleTensor } from '../preprocess/tensor-pool.js';
import { ModelError } from './errors.js';
import { loadModelManifest, type ModelManifest } from './manifest.js';
import type {
  FromWorker,
  Precision,
  ProviderAttempt,
  ProviderName,
  SessionCandidate,
  ToWorker,
  WorkerInit,
} from './protocol.js';

export type { Precision, ProviderName };

/** What the daemon reports about the loaded model (health, metrics, dashboard, MQTT). */
export interface ModelInfo {
  name: string;
  version: string;
  classes: string[];
  /** model.json `folders`: the class-per-folder names of the data set, in class order. */
  folders: string[];
  malignant: boolean[];
  /** Effective values: the createClassifier override (config) if given, else model.json. */
  threshold: number;
  uncertainBand: [number, number];
  temperature: number;
  /** The provider actually running the model. */
  executionProvider: ProviderName;
  /** int8 on CPU, fp32 on CUDA (CUDA has no INT8 kernels). */
  precision: Precision;
  /** Absolute path of the ONNX file loaded. */
  modelFile: string;
  modelSha256: string;
  /** The providers asked for, in order (deduplicated). */
  requestedProviders: string[];
  /** Why the first requested provider was not used; null when it was. */
  fallbackReason: string | null;
  /** [height, width] of the images the model takes. */
  imageSize: { height: number; width: number };
  /** intraOpNumThreads used (0 in config resolved to the number of cores). */
  threads: number;
}

/** One image as the model takes it: float32 CHW in [0,1], 3 × H × W values each. */
export interface ImagePair {
  original: Float32Array;
  segmented: Float32Array;
}

export interface Prediction {
  /** Per class, in info.classes order, temperature applied; sums to 1. */
  probabilities: number[];
  byClass: Record<string, number>;
  classIndex: number;
  className: string;
  /** P(B-ALL): sum of the malignant classes' probabilities (= 1 - P(Benign)). */
  pBall: number;
}

export interface ClassifierHealth {
  /** ready: worker up; crashed: will restart on the next classify(); failed: gave up; closed. */
  state: 'ready' | 'crashed' | 'failed' | 'closed';
  /** Worker restarts since createClassifier. */
  restarts: number;
  lastError: string | null;
}

export interface ClassifyOptions {
  /**
   * Transfer (detach) the input arrays' buffers to the worker instead of copying them. Default
   * true: the arrays are empty afterwards. Arrays that are views into a larger buffer (e.g. a
   * Node Buffer pool) or that share a buffer are always copied, never transferred.
   */
  transfer?: boolean;
}

export interface Classifier {
  info: ModelInfo;
  /**
   * Classifies a batch in one onnxruntime run ([N,3,H,W] per input). Resolves in input order.
   * Rejects with ModelError when the run fails or the worker crashes; a crashed worker is
   * restarted by the next call (see health()).
   */
  classify(batch: ImagePair[], opts?: ClassifyOptions): Promise<Prediction[]>;
  /** Releases the session and stops the worker. Pending calls are rejected. Idempotent. */
  close(): Promise<void>;
  health(): ClassifierHealth;
  /** Called with every worker crash (after pending calls were rejected). Returns an unsubscribe. */
  onError(listener: (err: ModelError) => void): () => void;
}

export interface CreateClassifierOptions {
  modelDir: string;
  /** In order of preference; a provider that is missing falls back to the next, with one warning. */
  executionProviders: ProviderName[];
  /** intraOpNumThreads; 0 = os.availableParallelism(). */
  threads: number;
  log: Logger;
  /** config model.threshold; null/undefined = model.json's. */
  threshold?: number | null;
  /** config model.uncertain_band; null/undefined = model.json's. */
  uncertainBand?: [number, number] | null;
  /** An already loaded (and hash-checked) manifest for modelDir, to avoid hashing twice. */
  manifest?: ModelManifest;
}

/**
 * Worker crash policy: a crash rejects the calls in flight, is logged and reported to onError
 * listeners; the next classify() starts a fresh worker (same provider and file). After
 * MAX_CONSECUTIVE_RESTARTS restarts without one successful classify in between, the classifier
 * is 'failed' and every call rejects: the daemon should report unhealthy and exit so that
 * systemd restarts it.
 */
export const MAX_CONSECUTIVE_RESTARTS = 3;

/**
 * Creates the worker thread from the file next to this module: worker.js in dist/, or worker.ts
 * when running the TypeScript sources through tsx (tests, `npx tsx src/cli.ts`). Node 20 does
 * not apply `--import tsx` from a Worker's execArgv to the worker's entry file, so for .ts a
 * small bootstrap registers tsx in the worker first, then imports worker.ts.
 */
function spawnWorker(init: WorkerInit): Worker {
  if (!import.meta.url.endsWith('.ts'))
    return new Worker(new URL('./worker.js', import.meta.url), {
      workerData: init,
      // Workers inherit the parent's flags; --input-type (from `node -e`) is refused for a file,
      // V8's heap sizes (--max-semi-space-size in the systemd unit) are refused in any worker.
      execArgv: process.execArgv.filter((a) => !/^--(input-type|max-(semi|old)-space-size)/.test(a)),
    });
  const entry = new URL('./worker.ts', import.meta.url).href;
  // Absolute, so the worker finds tsx whatever the current directory is.
  const tsx = import.meta.resolve('tsx/esm/api');
  const bootstrap =
    `import(${JSON.stringify(tsx)}).then((api) => { api.register(); return import(${JSON.stringify(entry)}); })` +
    `.catch((err) => { setImmediate(() => { throw err; }); });`;
  return new Worker(bootstrap, { eval: true, workerData: init });
}

interface Pending {
  resolve: (p: Float32Array) => void;
  reject: (e: Error) => void;
}

interface Started {
  worker: Worker;
  candidate: SessionCandidate;
  attempts: ProviderAttempt[];
}

/** Starts a worker and waits until its session exists (or it reports why it cannot). */
function startWorker(init: WorkerInit): Promise<Started> {
  return new Promise((resolve, reject) => {
    const worker = spawnWorker(init);
    const onMessage = (msg: FromWorker): void => {
      if (msg.type === 'ready') {
        cleanup();
        resolve({ worker, candidate: msg.candidate, attempts: msg.attempts });
      } else if (msg.type === 'fatal') {
        cleanup();
        void worker.terminate();
        reject(new ModelError(msg.message));
      }
    };
    const onError = (err: Error): void => {
      cleanup();
      reject(new ModelError(`inference worker failed to start: ${err.message}`));
    };
    const onExit = (code: number): void => {
      cleanup();
      reject(new ModelError(`inference worker exited with code ${code} while loading the model`));
    };
    const cleanup = (): void => {
      worker.off('message', onMessage);
      worker.off('error', onError);
      worker.off('exit', onExit);
    };
    worker.on('message', onMessage);
    worker.on('error', onError);
    worker.on('exit', onExit);
  });
}

const CRASH = Symbol('crashWorkerForTest');

const PROVIDER_PRECISION: Record<ProviderName, Precision> = { cuda: 'fp32', cpu: 'int8' };

/**
 * Loads and verifies the model in `modelDir`, creates the one onnxruntime session in a worker
 * thread with the first execution provider that works, and returns the Classifier.
 * CUDA runs the FP32 file, CPU the INT8 file. Throws ModelError.
 */
export async function createClassifier(opts: CreateClassifierOptions): Promise<Classifier> {
  const manifest = opts.manifest ?? (await loadModelManifest(opts.modelDir));
  const requested = [...new Set(opts.executionProviders)];
  if (requested.length === 0)
    throw new ModelError('model.execution_providers: at least one provider is needed');
  const threads = opts.threads > 0 ? opts.threads : availableParallelism();
  const { height, width } = manifest.imageSize;
  const perImage = 3 * height * width;
  const classCount = manifest.classes.length;
  const init: WorkerInit = {
    candidates: requested.map((provider) => {
      const precision = PROVIDER_PRECISION[provider];
      return { provider, precision, modelPath: manifest.paths[precision] };
    }),
    threads,
    inputNames: ['original', 'segmented'],
    outputName: manifest.output,
    imageShape: [3, height, width],
    classCount,
  };

  const first = await startWorker(init);
  const used = first.candidate;
  const fallbackReason =
    used.provider === requested[0]
      ? null
      : first.attempts.map((a) => `${a.provider}: ${a.error}`).join('; ') || 'unknown';
  if (fallbackReason !== null) {
    // Exactly one line, whatever number of providers failed before this one.
    opts.log.warn(
      { requestedProviders: requested, executionProvider: used.provider, reason: fallbackReason },
      `execution provider ${requested[0]} unavailable; running the ${used.precision.toUpperCase()} model on ${used.provider} instead (${fallbackReason})`,
    );
  }
  const info: ModelInfo = {
    name: manifest.name,
    version: manifest.version,
    classes: [...manifest.classes],
    folders: [...manifest.folders],
    malignant: [...manifest.malignant],
    threshold: opts.threshold ?? manifest.threshold,
    uncertainBand: opts.uncertainBand ?? [...manifest.uncertain_band],
    temperature: manifest.temperature,
    executionProvider: used.provider,
    precision: used.precision,
    modelFile: used.modelPath,
    modelSha256: manifest.files[used.precision].sha256,
    requestedProviders: requested,
    fallbackReason,
    imageSize: { height, width },
    threads,
  };
  opts.log.info(
    {
      model: info.name,
      version: info.version,
      executionProvider: info.executionProvider,
      precision: info.precision,
      file: info.modelFile,
      threads,
    },
    'inference session ready',
  );

  // From here on the worker only ever gets the provider that worked, so info stays true.
  const restartInit: WorkerInit = { ...init, candidates: [used] };
  let worker: Worker | null = null;
  let state = 'ready' as ClassifierHealth['state'];
  // A function, so TypeScript does not narrow `state` across awaits.
  const isClosed = (): boolean => state === 'closed';
  let restarts = 0;
  let consecutiveRestarts = 0;
  let lastError: string | null = null;
  let starting: Promise<Worker> | null = null;
  let nextId = 1;
  const pending = new Map<number, Pending>();
  const errorListeners = new Set<(err: ModelError) => void>();

  const failAll = (err: Error): void => {
    for (const p of pending.values()) p.reject(err);
    pending.clear();
  };

  const attach = (w: Worker): void => {
    worker = w;
    state = 'ready';
    w.on('message', (msg: FromWorker) => {
      if (msg.type === 'result' || msg.type === 'error') {
        const p = pending.get(msg.id);
        if (!p) return;
        pending.delete(msg.id);
        if (msg.type === 'result') {
          for (const a of msg.inputs ?? []) recycleTensor(a);
          p.resolve(msg.probabilities);
        } else p.reject(new ModelError(`inference failed: ${msg.message}`));
      }
    });
    const crashed = (why: string): void => {
      if (worker !== w || state === 'closed') return;
      worker = null;
      lastError = why;
      state = consecutiveRestarts >= MAX_CONSECUTIVE_RESTARTS ? 'failed' : 'crashed';
      const err = new ModelError(`inference worker crashed: ${why}`);
      failAll(err);
      opts.log.error({ err: why, restarts, state }, 'inference worker crashed');
      for (const l of errorListeners) l(err);
    };
    w.on('error', (err) => crashed(err.message));
    w.on('exit', (code) => crashed(`exited with code ${code}`));
  };
  attach(first.worker);

  const ensureWorker = async (): Promise<Worker> => {
    if (state === 'closed') throw new ModelError('classifier is closed');
    if (state === 'failed')
      throw new ModelError(
        `inference worker crashed ${consecutiveRestarts + 1} times in a row, giving up (last: ${lastError})`,
      );
    if (worker) return worker;
    starting ??= (async () => {
      try {
        restarts++;
        consecutiveRestarts++;
        opts.log.warn({ restarts }, 'restarting the inference worker');
        const s = await startWorker(restartInit);
        if (isClosed()) {
          await s.worker.terminate();
          throw new ModelError('classifier is closed');
        }
        attach(s.worker);
        return s.worker;
      } catch (err) {
        if (!isClosed()) {
          state = 'failed';
          lastError = (err as Error).message;
        }
        throw err;
      } finally {
        starting = null;
      }
    })();
    return starting;
  };

  const toTransferable = (
    arr: Float32Array,
    seen: Set<ArrayBufferLike>,
    transfer: ArrayBuffer[],
    copy: boolean,
  ): Float32Array => {
    const buf = arr.buffer;
    const ownsWholeBuffer =
      buf instanceof ArrayBuffer &&
      arr.byteOffset === 0 &&
      arr.byteLength === buf.byteLength &&
      !seen.has(buf);
    if (copy || !ownsWholeBuffer) {
      const c = arr.slice();
      transfer.push(c.buffer);
      return c;
    }
    seen.add(buf);
    transfer.push(buf);
    return arr;
  };

  const toPrediction = (raw: Float32Array, row: number): Prediction => {
    const probabilities = applyTemperature(
      raw.subarray(row * classCount, (row + 1) * classCount),
      info.temperature,
    );
    let classIndex = 0;
    for (let i = 1; i < classCount; i++)
      if ((probabilities[i] as number) > (probabilities[classIndex] as number)) classIndex = i;
    const byClass: Record<string, number> = {};
    info.classes.forEach((name, i) => (byClass[name] = probabilities[i] as number));
    return {
      probabilities,
      byClass,
      classIndex,
      className: info.classes[classIndex] as string,
      pBall: malignantProbability(probabilities, info.malignant),
    };
  };

  const classifier: Classifier & { [CRASH]: (code: number) => void } = {
    info,
    async classify(batch, classifyOpts = {}) {
      if (batch.length === 0) return [];
      batch.forEach((img, i) => {
        for (const key of ['original', 'segmented'] as const) {
          const a = img[key];
          if (!(a instanceof Float32Array)) throw new ModelError(`image ${i}: ${key} must be a Float32Array`);
          if (a.length !== perImage)
            throw new ModelError(
              `image ${i}: ${key} has ${a.length} values, the model takes 3x${height}x${width} = ${perImage}`,
            );
        }
      });
      const w = await ensureWorker();
      const copy = classifyOpts.transfer === false;
      const seen = new Set<ArrayBufferLike>();
      const transfer: ArrayBuffer[] = [];
      const original = batch.map((img) => toTransferable(img.original, seen, transfer, copy));
      const segmented = batch.map((img) => toTransferable(img.segmented, seen, transfer, copy));
      const id = nextId++;
      const raw = await new Promise<Float32Array>((resolve, reject) => {
        pending.set(id, { resolve, reject });
        const msg: ToWorker = { type: 'run', id, original, segmented };
        w.postMessage(msg, transfer);
      });
      consecutiveRestarts = 0;
      return batch.map((_, row) => toPrediction(raw, row));
    },
    async close() {
      if (state === 'closed') return;
      state = 'closed';
      failAll(new ModelError('classifier is closed'));
      const w = worker;
      worker = null;
      if (!w) return;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => void w.terminate().then(() => resolve()), 5000);
        w.once('exit', () => {
          clearTimeout(timer);
          resolve();
        });
        w.postMessage({ type: 'close' } satisfies ToWorker);
      });
    },
    health: () => ({ state, restarts, lastError }),
    onError(listener) {
      errorListeners.add(listener);
      return () => errorListeners.delete(listener);
    },
    [CRASH]: (code) => worker?.postMessage({ type: 'exit-for-test', code } satisfies ToWorker),
  };
  return classifier;
}

/** Test hook: makes the worker exit as a crash would. Not part of the public API. */
export function crashWorkerForTest(classifier: Classifier, code = 3): void {
  (classifier as Classifier & { [CRASH]?: (code: number) => void })[CRASH]?.(code);
}
