/**
 * Inference: model.json loading and verification, the onnxruntime worker, calibrated
 * probabilities and the screening decision. See docs in each module.
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
