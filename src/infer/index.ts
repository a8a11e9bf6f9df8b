/**
 * Inference: model.json loading and verification, the onnxruntime worker, calibrated
 * probabilities and the screening decision.
 *
 *   const classifier = await createClassifier({ modelDir, executionProviders: ['cuda', 'cpu'], threads: 0, log });
 *   classifier.info.executionProvider;   // 'cpu' when CUDA was missing (one warning was logged)
 *   const [p] = await classifier.classify([{ original, segmented }]);  // Float32Array 3xHxW each
 *   const { flag, needsReview, label } = decide(p.pBall, classifier.info.threshold, classifier.info.uncertainBand);
 *   await classifier.close();
 *
 * Notes for callers:
 * - classify() TRANSFERS the input arrays to the worker (they are empty afterwards) unless
 *   `{ transfer: false }`; views into larger buffers are copied automatically.
 * - Calls may overlap; the worker runs them one at a time in arrival order. Batch several images
 *   into one call for throughput.
 * - A worker crash rejects the calls in flight with ModelError, is logged, and is passed to
 *   onError() listeners; the next classify() restarts the worker. After MAX_CONSECUTIVE_RESTARTS
 *   restarts without a success, or when a restart cannot load the model, health().state is
 *   'failed' and calls reject: report unhealthy and exit so the service manager restarts.
 * - decide(): flag = pBall >= threshold; needsReview = lo <= pBall <= hi (inclusive);
 *   label = 'uncertain' if needsReview, else 'b-all' if flag, else 'benign'.
 */
export { ModelError } from './errors.js';
export { loadModelManifest, sha256File, type ModelManifest } from './manifest.js';
export {
  createClassifier,
  MAX_CONSECUTIVE_RESTARTS,
  type Classifier,
  type ClassifierHealth,
  type ClassifyOptions,
  type CreateClassifierOptions,
  type ImagePair,
  type ModelInfo,
  type Precision,
  type Prediction,
  type ProviderName,
} from './classifier.js';
export {
  applyTemperature,
  decide,
  malignantProbability,
  type Decision,
  type DecisionLabel,
} from './decision.js';
