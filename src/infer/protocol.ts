/** Messages between the Classifier (main thread) and the inference worker (worker.ts). */
import type { ViewCount } from './views.js';

export type ProviderName = 'cuda' | 'cpu';
export type Precision = 'int8' | 'fp32';

export interface SessionCandidate {
  provider: ProviderName;
  precision: Precision;
  modelPath: string;
}

export interface WorkerInit {
  /** Tried in order; the first that creates a session is used. */
  candidates: SessionCandidate[];
  /** intraOpNumThreads, already resolved (never 0). */
  threads: number;
  inputNames: readonly ['original', 'segmented'];
  outputName: string;
  /**
   * The pooled-feature output (model.json `features_output`), fetched with the probabilities
   * when the loaded file has it (the INT8 file does; an FP32 file may not). Absent = not asked.
   */
  featuresOutputName?: string;
  /** [channels, height, width] of one image. */
  imageShape: readonly [number, number, number];
  classCount: number;
  /**
   * Test-time views per image (model.json `views`, src/infer/views.ts): the worker runs image
   * i's view k as batch row i * views + k, so the probabilities have images × views rows (the
   * features only view 0's, one row per image).
   */
  views: ViewCount;
}

export interface ProviderAttempt {
  provider: ProviderName;
  error: string;
}

export type ToWorker =
  { type: 'run'; id: number; original: Float32Array[]; segmented: Float32Array[] } | { type: 'close' };

export type FromWorker =
  | { type: 'ready'; candidate: SessionCandidate; attempts: ProviderAttempt[] }
  | { type: 'fatal'; message: string; attempts: ProviderAttempt[] }
  /** probabilities: (N × views) × classCount, row-major, straight from the model's softmax: image i's view k at row i × views + k. */
  /** inputs: the run's input arrays, transferred back for reuse (src/preprocess/tensor-pool.ts). */
  /** features: N × featureCount, row-major, each image's view 0, when the model has the features output. */
  /** runMs: the session's run alone, in the worker (the rest of the round trip is hand-off). */
  | {
      type: 'result';
      id: number;
      runMs: number;
      probabilities: Float32Array;
      features?: Float32Array;
      inputs?: Float32Array[];
    }
  | { type: 'error'; id: number; message: string }
  | { type: 'closed' };
