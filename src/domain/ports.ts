/**
 * What the pipeline needs from the stages it drives. Structural types: the real modules
 * (src/preprocess, src/infer) satisfy them, and tests can pass small fakes for fault injection.
 */
import type { ImagePair, ModelInfo, Prediction } from '../infer/index.js';
import type { ColourNormalisation } from '../preprocess/colour.js';

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
    stats: object;
  };
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
