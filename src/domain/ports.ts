/**
 * What the pipeline needs from the stages it drives. Structural types: the real modules
 * (src/preprocess, src/infer) satisfy them, and tests can pass small fakes for fault injection.
 */
import type { GateInput, PictureInspection } from '../gate/index.js';
import type { ImagePair, ModelInfo, Prediction } from '../infer/index.js';
import type { ColourNormalisation } from '../preprocess/colour.js';
import type { DomainCheck } from './applicability.js';

export interface PreparedImageLike {
  decoded: {
    rgb: Uint8Array;
    width: number;
    height: number;
    source: { format: string; width: number; height: number; bytes: number };
  };
  segmentation: {
    mask: Uint8Array;
    segmented: Uint8Array;
    /** The figures the gate judges (src/segment's SegmentationStats has them and more). */
    stats: GateInput['segmentation'];
  };
  /** The pixels segmented and fed to the model, after colour normalisation; absent = `decoded.rgb`. */
  modelRgb?: Uint8Array;
  original: Float32Array;
  segmented: Float32Array;
  timings: { decodeMs: number; segmentMs: number; tensorMs: number };
}

export type PrepareImage = (
  input: Buffer,
  opts: {
    size: number;
    limitInputPixels: number;
    segment?: Partial<{ k: number; threshold: number; minObjectArea: number; minHoleArea: number }>;
    colour?: ColourNormalisation | null;
  },
) => Promise<PreparedImageLike>;

export interface ClassifierLike {
  info: ModelInfo;
  classify(batch: ImagePair[], opts?: { transfer?: boolean }): Promise<Prediction[]>;
  health?(): { state: string; restarts: number; lastError: string | null };
  onError?(listener: (err: Error) => void): () => void;
}

/**
 * The out-of-domain gate (src/gate): judges whether an image is like the training images before
 * any verdict is given. A port like the classifier, so tests can hand in a gate that refuses
 * chosen images.
 */
export interface DomainGateLike {
  judge(input: GateInput): DomainCheck;
  /**
   * The checks that need only the picture, made apart so that they can run while the model runs;
   * judge() is then given their result (`inspection`). A gate without it is judged in one go.
   */
  inspect?(input: Omit<GateInput, 'features' | 'inspection'>): PictureInspection;
}

/**
 * What the gate is shown of one image: the decoded pixels, the source's own geometry, the
 * segmentation figures, and the model's pooled features when the model exports them.
 */
export function gateInputOf(prepared: PreparedImageLike, prediction: Prediction | null): GateInput {
  const { decoded } = prepared;
  const features = (prediction as (Prediction & { features?: Float32Array | null }) | null)?.features;
  return {
    rgb: decoded.rgb,
    modelRgb: prepared.modelRgb,
    width: decoded.width,
    height: decoded.height,
    source: { width: decoded.source.width, height: decoded.source.height },
    segmentation: prepared.segmentation.stats,
    features: features ?? null,
    pBall: prediction?.pBall ?? null,
  };
}

/** A decode failure as src/decode throws it (duck-typed so a fake can throw one too). */
export interface DecodeErrorLike extends Error {
  kind: string;
  retryable: boolean;
}

export function isDecodeError(err: unknown): err is DecodeErrorLike {
  return (
    err instanceof Error &&
    err.name === 'DecodeError' &&
    typeof (err as Partial<DecodeErrorLike>).kind === 'string' &&
    typeof (err as Partial<DecodeErrorLike>).retryable === 'boolean'
  );
}
