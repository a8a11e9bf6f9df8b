/**
 * What `blastwatch classify` and `blastwatch evaluate` share: config + model loading and the
 * daemon's per-image path (read bytes → prepareImage with the config's limits and segmentation
 * → classify one image → the out-of-domain gate → decide), so that the CLI numbers are the
 * daemon's numbers. Offline only: the daemon wires the same stages in src/app.ts.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import { ConfigError, loadConfig } from '../config/load.js';
import type { DomainCheck } from '../domain/applicability.js';
import { gateInputOf, type DomainGateLike, type PrepareImage } from '../domain/ports.js';
import { loadDomainGate } from '../gate/index.js';
import { fieldRedCellRadius } from '../gate/sensor-noise.js';
import {
  createClassifier,
  decide,
  loadModelManifest,
  ModelError,
  type Classifier,
  type Decision,
  type Prediction,
} from '../infer/index.js';

export interface OpenedModel {
  config: Config;
  classifier: Classifier;
  prepareImage: PrepareImage;
  prepareOptions: Parameters<PrepareImage>[1];
  /** The daemon's out-of-domain gate for this model; null to judge nothing (`evaluate --no-gate`). */
  gate: DomainGateLike | null;
}

/** The preprocessing module is loaded lazily, like every heavy stage of the CLI. */
async function loadPrepareImage(): Promise<PrepareImage> {
  const { prepareImage } = await import('../preprocess/index.js');
  return prepareImage;
}

/**
 * Loads the config (default + file + environment), the model (hash-checked) and the
 * preprocessing. `modelDir` (--model) overrides model.dir. Throws ConfigError or ModelError.
 */
export async function openModel(opts: {
  configFile?: string | undefined;
  modelDir?: string | undefined;
  log: Logger;
  /** false: no gate, every image is given a verdict (the behaviour before the gate). Default true. */
  gate?: boolean;
}): Promise<OpenedModel> {
  const { config } = loadConfig(opts.configFile);
  if (opts.modelDir) config.model.dir = opts.modelDir;
  const modelDir = config.model.dir as string;
  const manifest = await loadModelManifest(modelDir);
  const prepareImage = await loadPrepareImage();
  const classifier = await createClassifier({
    modelDir,
    manifest,
    executionProviders: config.model.execution_providers,
    threads: config.model.threads,
    threshold: config.model.threshold,
    uncertainBand: config.model.uncertain_band,
    log: opts.log,
  });
  return {
    config,
    classifier,
    gate:
      opts.gate === false ? null : await loadDomainGate(manifest, { threshold: classifier.info.threshold }),
    prepareImage,
    prepareOptions: {
      size: manifest.imageSize.width,
      limitInputPixels: config.image.max_input_pixels,
      segment: {
        k: config.segment.k,
        threshold: config.segment.threshold,
        minObjectArea: config.segment.min_object_area,
        minHoleArea: config.segment.min_hole_area,
      },
      colour: manifest.preprocessing?.colour ?? null,
    },
  };
}

export const isUserFacing = (err: unknown): err is Error =>
  err instanceof ConfigError || err instanceof ModelError;

export interface ImageOutcome {
  /** The model's answer; a verdict only when `domain` is null or in domain. */
  prediction: Prediction;
  decision: Decision;
  sha256: string;
  /** The gate's judgement; null when no gate ran. */
  domain: DomainCheck | null;
  /** The red cells' size on the picture the model saw (src/gate/red-cell-size.ts), when asked for. */
  redCellRadius?: number | null;
}

/** One image through the daemon's path. Throws the underlying error (DecodeError, ENOENT…). */
export async function classifyFile(
  opened: OpenedModel,
  path: string,
  opts: { redCells?: boolean } = {},
): Promise<ImageOutcome> {
  const bytes = await readFile(path);
  // Same limit and unit as the daemon (src/app.ts).
  const maxFileBytes = Math.round(opened.config.image.max_file_mb * 1024 * 1024);
  if (bytes.length > maxFileBytes)
    throw Object.assign(new Error(`file is ${bytes.length} bytes, above image.max_file_mb`), {
      kind: 'too-large',
    });
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  const prepared = await opened.prepareImage(bytes, opened.prepareOptions);
  const [prediction] = await opened.classifier.classify([
    { original: prepared.original, segmented: prepared.segmented },
  ]);
  if (!prediction) throw new ModelError('classifier returned no prediction');
  const domain = opened.gate ? opened.gate.judge(gateInputOf(prepared, prediction)) : null;
  const { threshold, uncertainBand } = opened.classifier.info;
  const { width, height } = prepared.decoded;
  return {
    prediction,
    decision: decide(prediction.pBall, threshold, uncertainBand),
    sha256,
    domain,
    ...(opts.redCells
      ? {
          redCellRadius: fieldRedCellRadius(
            prepared.modelRgb ?? prepared.decoded.rgb,
            width,
            height,
            opened.classifier.info.redCellSize?.noise_high,
          ),
        }
      : {}),
  };
}

/** One line for a per-image failure: the error's message, with its kind for decode errors. */
export function describeFailure(err: unknown): { kind: string; message: string } {
  const e = err as Partial<NodeJS.ErrnoException & { kind: string }>;
  if (e?.name === 'DecodeError' && typeof e.kind === 'string')
    return { kind: e.kind, message: String(e.message) };
  if (e?.code === 'ENOENT') return { kind: 'not-found', message: 'no such file' };
  if (e?.code === 'EISDIR') return { kind: 'unreadable', message: 'is a directory' };
  if (e?.code === 'EACCES') return { kind: 'unreadable', message: 'permission denied' };
  if (err instanceof ModelError) return { kind: 'inference', message: err.message };
  if (typeof e?.kind === 'string') return { kind: e.kind, message: String(e.message) };
  return { kind: 'error', message: err instanceof Error ? err.message : String(err) };
}
