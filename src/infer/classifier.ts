import { availableParallelism } from 'node:os';
import type { Logger } from '../log.js';
import { applyTemperature, malignantProbability } from './decision.js';
import { ModelError } from './errors.js';
import { loadModelManifest, verifyModelFile, type ModelManifest } from './manifest.js';
import type { Precision, ProviderName, WorkerInit } from './protocol.js';
import type { ColourDriftReference } from '../gate/colour-drift.js';
import type { RedCellReference } from '../gate/red-cell-size.js';
import type { ColourNormalisation } from '../preprocess/colour.js';
import type { ViewCount } from './views.js';
import {
  spawnWorker,
  startWorker,
  SupervisedWorker,
  type SpawnWorker,
  type StartedWorker,
  type WorkerHealth,
} from './worker-supervisor.js';

export type { Precision, ProviderName, SpawnWorker };
export { MAX_CONSECUTIVE_RESTARTS } from './worker-supervisor.js';

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
  /**
   * model.json `views`: how many turned and mirrored views of each image the model sees, their
   * probabilities averaged (src/infer/views.ts); 1 = the image as taken.
   */
  views: ViewCount;
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
  /**
   * model.json `preprocessing.colour`: the colour normalisation the model's inputs need
   * (prepareImage applies it); null or absent when the model was trained without one.
   */
  colour?: ColourNormalisation | null;
  /**
   * model.json `gate.colour_drift`: the training pictures' highest green balance, which health
   * compares the latest pictures' median with (src/gate/colour-drift.ts); null or absent = not
   * watched.
   */
  colourDrift?: ColourDriftReference | null;
  /**
   * model.json `acquisition.red_cell_radius`: the training pictures' red-cell size, which
   * `blastwatch evaluate` compares a check set with (src/gate/red-cell-size.ts); null or absent
   * = not checked.
   */
  redCellSize?: RedCellReference | null;
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
  /**
   * The head's pooled features (model.json `features_output`) when the running file has that
   * output: a view into one array shared by the batch, for the out-of-domain gate.
   */
  features?: Float32Array;
  /**
   * The model's run in the worker for the batch this image was in, ms: the inference itself,
   * without the hand-off to and from the worker thread (absent where a classifier cannot tell).
   */
  modelMs?: number;
}

export type ClassifierHealth = WorkerHealth;

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

const PROVIDER_PRECISION: Record<ProviderName, Precision> = { cuda: 'fp32', cpu: 'int8' };

/**
 * Loads and verifies the model in `modelDir`, creates the one onnxruntime session in a worker
 * thread with the first execution provider that works, and returns the Classifier.
 * CUDA runs the FP32 file, CPU the INT8 file. Throws ModelError.
 */
export function createClassifier(opts: CreateClassifierOptions): Promise<Classifier> {
  return openClassifier(opts, spawnWorker);
}

/** createClassifier with the worker threads created by `spawn` (each start and restart). */
export async function openClassifier(opts: CreateClassifierOptions, spawn: SpawnWorker): Promise<Classifier> {
  const manifest = opts.manifest ?? (await loadModelManifest(opts.modelDir));
  for (const warning of manifest.warnings)
    opts.log.warn({ model: manifest.name, version: manifest.version }, warning);
  const requested = [...new Set(opts.executionProviders)];
  if (requested.length === 0)
    throw new ModelError('model.execution_providers: at least one provider is needed');
  const threads = opts.threads > 0 ? opts.threads : availableParallelism();
  const { height, width } = manifest.imageSize;
  const init: WorkerInit = {
    candidates: requested.map((provider) => {
      const precision = PROVIDER_PRECISION[provider];
      return { provider, precision, modelPath: manifest.paths[precision] };
    }),
    threads,
    inputNames: ['original', 'segmented'],
    outputName: manifest.output,
    ...(manifest.features_output ? { featuresOutputName: manifest.features_output } : {}),
    imageShape: [3, height, width],
    classCount: manifest.classes.length,
    views: manifest.views,
  };
  const first = await startWorker(init, spawn);
  const info = modelInfo(manifest, opts, requested, first, threads);
  if (info.fallbackReason !== null) {
    // Exactly one line, whatever number of providers failed before this one.
    opts.log.warn(
      {
        requestedProviders: requested,
        executionProvider: info.executionProvider,
        reason: info.fallbackReason,
      },
      `execution provider ${requested[0]} unavailable; running the ${info.precision.toUpperCase()} model on ${info.executionProvider} instead (${info.fallbackReason})`,
    );
  }
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
  // From here on the worker only ever gets the provider that worked, so info stays true; each
  // restart checks that file against model.json again (loadModelManifest checked it for the first).
  const used = first.candidate;
  const worker = new SupervisedWorker(first.worker, { ...init, candidates: [used] }, spawn, opts.log, () =>
    verifyModelFile(used.modelPath, manifest.files[used.precision], `files.${used.precision}.path`),
  );
  return {
    info,
    async classify(batch, classifyOpts = {}) {
      if (batch.length === 0) return [];
      checkBatch(batch, height, width);
      const copy = classifyOpts.transfer === false;
      const seen = new Set<ArrayBufferLike>();
      const transfer: ArrayBuffer[] = [];
      const original = batch.map((img) => toTransferable(img.original, seen, transfer, copy));
      const segmented = batch.map((img) => toTransferable(img.segmented, seen, transfer, copy));
      // The worker adds each image's test-time views (its rows follow the image's own).
      const raw = await worker.run(original, segmented, transfer);
      return batch.map((_, row) =>
        toPrediction(raw.probabilities, row, info, raw.features, batch.length, raw.runMs),
      );
    },
    close: () => worker.close(),
    health: () => worker.health(),
    onError: (listener) => worker.onError(listener),
  };
}

function modelInfo(
  manifest: ModelManifest,
  opts: CreateClassifierOptions,
  requested: ProviderName[],
  first: StartedWorker,
  threads: number,
): ModelInfo {
  const used = first.candidate;
  const fallbackReason =
    used.provider === requested[0]
      ? null
      : first.attempts.map((a) => `${a.provider}: ${a.error}`).join('; ') || 'unknown';
  return {
    name: manifest.name,
    version: manifest.version,
    classes: [...manifest.classes],
    folders: [...manifest.folders],
    malignant: [...manifest.malignant],
    threshold: opts.threshold ?? manifest.threshold,
    uncertainBand: opts.uncertainBand ?? [...manifest.uncertain_band],
    temperature: manifest.temperature,
    views: manifest.views,
    executionProvider: used.provider,
    precision: used.precision,
    modelFile: used.modelPath,
    modelSha256: manifest.files[used.precision].sha256,
    requestedProviders: requested,
    fallbackReason,
    imageSize: { ...manifest.imageSize },
    threads,
    colour: manifest.preprocessing?.colour ?? null,
    colourDrift: manifest.gate?.colour_drift ?? null,
    redCellSize: manifest.acquisition?.red_cell_radius ?? null,
  };
}

function checkBatch(batch: ImagePair[], height: number, width: number): void {
  const perImage = 3 * height * width;
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
}

/**
 * The array itself when it owns its whole buffer (and no earlier array of the batch shares it),
 * its buffer added to `transfer`; otherwise (or with `copy`) a copy whose buffer is transferred.
 */
function toTransferable(
  arr: Float32Array,
  seen: Set<ArrayBufferLike>,
  transfer: ArrayBuffer[],
  copy: boolean,
): Float32Array {
  const buf = arr.buffer;
  const ownsWholeBuffer =
    buf instanceof ArrayBuffer && arr.byteOffset === 0 && arr.byteLength === buf.byteLength && !seen.has(buf);
  if (copy || !ownsWholeBuffer) {
    const c = arr.slice();
    transfer.push(c.buffer);
    return c;
  }
  seen.add(buf);
  transfer.push(buf);
  return arr;
}

/**
 * Image `row`'s prediction: the mean over its views of the temperature-scaled probabilities
 * (what the threshold was fitted on); its features are those of view 0, the image as taken,
 * which the out-of-domain gate was fitted on (the worker sends no others).
 */
function toPrediction(
  raw: Float32Array,
  row: number,
  info: ModelInfo,
  features: Float32Array | undefined,
  batchSize: number,
  modelMs: number,
): Prediction {
  const classCount = info.classes.length;
  const views = info.views;
  const probabilities = new Array<number>(classCount).fill(0);
  for (let v = 0; v < views; v++) {
    const start = (row * views + v) * classCount;
    const p = applyTemperature(raw.subarray(start, start + classCount), info.temperature);
    for (let i = 0; i < classCount; i++)
      probabilities[i] = (probabilities[i] as number) + (p[i] as number) / views;
  }
  let classIndex = 0;
  for (let i = 1; i < classCount; i++)
    if ((probabilities[i] as number) > (probabilities[classIndex] as number)) classIndex = i;
  const byClass: Record<string, number> = {};
  info.classes.forEach((name, i) => (byClass[name] = probabilities[i] as number));
  const prediction: Prediction = {
    probabilities,
    byClass,
    classIndex,
    className: info.classes[classIndex] as string,
    pBall: malignantProbability(probabilities, info.malignant),
    modelMs,
  };
  if (features) {
    const per = features.length / batchSize;
    prediction.features = features.subarray(row * per, (row + 1) * per);
  }
  return prediction;
}
