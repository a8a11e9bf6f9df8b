/**
 * One image through the daemon's path, keeping what the out-of-domain gate judges: the decoded
 * pixels, the source geometry, the segmentation figures, the prediction and its pooled features.
 * Shared by scripts/fit-gate.ts and scripts/gate-report.ts.
 */
import { readFile } from 'node:fs/promises';
import { openModel, type OpenedModel } from '../../src/evaluate/classify-file.js';
import type { GateInput } from '../../src/gate/index.js';
import type { SegmentationStats } from '../../src/segment/index.js';
import type { Prediction } from '../../src/infer/index.js';
import { createLogger } from '../../src/log.js';

export interface MeasuredImage {
  gateInput: GateInput;
  prediction: Prediction;
}

export async function openModelQuietly(modelDir: string): Promise<OpenedModel> {
  return openModel({ modelDir, log: createLogger({ level: 'warn', pretty: false }) });
}

/** Measures image bytes (or a file). The features are copied: the batch buffer is not kept. */
export async function measureImage(opened: OpenedModel, input: Buffer | string): Promise<MeasuredImage> {
  const bytes = typeof input === 'string' ? await readFile(input) : input;
  const prepared = await opened.prepareImage(bytes, opened.prepareOptions);
  const [prediction] = await opened.classifier.classify([
    { original: prepared.original, segmented: prepared.segmented },
  ]);
  if (!prediction) throw new Error('classifier returned no prediction');
  const { decoded, segmentation } = prepared;
  return {
    prediction,
    gateInput: {
      rgb: decoded.rgb,
      modelRgb: prepared.modelRgb,
      width: decoded.width,
      height: decoded.height,
      source: { width: decoded.source.width, height: decoded.source.height },
      // prepareImage returns src/segment's SegmentationStats (the port types them loosely).
      segmentation: segmentation.stats as SegmentationStats,
      features: prediction.features ? Float32Array.from(prediction.features) : null,
      pBall: prediction.pBall,
    },
  };
}
