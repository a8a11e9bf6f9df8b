/**
 * The stages every image goes through besides decode, segmentation, tensors, inference, store and
 * publish, each alone on the daemon's own code: the colour normalisation before segmentation, the
 * out-of-domain gate's judgement, the magnification watch's measure (after the verdict), and the dashboard media (thumbnail JPEG, mask PNG, segmented
 * JPEG stored in media.db). Together with stages.ts they are what the daemon's CPU per
 * image is compared with (daemon_cpu_overhead_ratio).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InferenceSession, Tensor } from 'onnxruntime-node';
import type { DecodedImage } from '../../src/decode/index.js';
import { loadDomainGate, type GateInput } from '../../src/gate/index.js';
import { fieldRedCellRadius } from '../../src/gate/sensor-noise.js';
import type { ModelManifest } from '../../src/infer/index.js';
import { daemonSessionOptions } from '../../src/infer/session-options.js';
import { createColourScratch, normaliseForModel } from '../../src/preprocess/colour.js';
import type { Segmentation } from '../../src/segment/index.js';
import { encodeMedia, MediaStore } from '../../src/store/media.js';
import type { StageResult } from './stages.js';
import { round, summarize, timeLoop } from './stats.js';

/**
 * Colour normalisation as prepareImage runs it (a fresh output array per image: the raw pixels stay
 * for the thumbnail). Null when the model asks for none (then the daemon does none either).
 */
export async function benchNormalise(
  manifest: ModelManifest,
  decoded: DecodedImage[],
  rounds: number,
): Promise<{ result: StageResult; modelRgbs: Uint8Array[] } | null> {
  const params = manifest.preprocessing?.colour;
  if (!params) return null;
  const scratch = createColourScratch();
  // as prepareImage does: the decoded pixels themselves when already within the training range
  const normalise = (d: DecodedImage): Uint8Array =>
    normaliseForModel(d.rgb, d.width * d.height, params, scratch).modelRgb;
  const modelRgbs = decoded.map(normalise);
  const { samples, wallMs, cpuMsPerIteration } = await timeLoop(
    decoded.length * rounds,
    Math.max(30, decoded.length),
    (i) => void normalise(decoded[i % decoded.length]!),
  );
  return {
    result: { stage: 'normalise colour', ...summarize(samples, wallMs), cpu_ms: round(cpuMsPerIteration, 3) },
    modelRgbs,
  };
}

/**
 * The gate's judgement of each image (picture checks and the features check), on the features
 * the INT8 model gives for it. Null when the model has no gate section (the daemon then judges
 * nothing) or no features output.
 */
export async function benchGate(
  manifest: ModelManifest,
  decoded: DecodedImage[],
  modelRgbs: Uint8Array[] | null,
  segs: Segmentation[],
  tensors: { originals: Float32Array[]; segmenteds: Float32Array[] },
  iterations: number,
): Promise<StageResult | null> {
  const gate = await loadDomainGate(manifest);
  if (!gate.checking) return null;
  const { height, width } = manifest.imageSize;
  const session = await InferenceSession.create(manifest.paths.int8, daemonSessionOptions('cpu', 1));
  const inputs: GateInput[] = [];
  try {
    if (!session.outputNames.includes('features')) return null;
    for (const [i, d] of decoded.entries()) {
      const out = await session.run({
        original: new Tensor('float32', tensors.originals[i]!, [1, 3, height, width]),
        segmented: new Tensor('float32', tensors.segmenteds[i]!, [1, 3, height, width]),
      });
      inputs.push({
        rgb: d.rgb,
        modelRgb: modelRgbs?.[i],
        width: d.width,
        height: d.height,
        source: { width: d.source.width, height: d.source.height },
        segmentation: segs[i]!.stats,
        features: Float32Array.from(out.features!.data as Float32Array),
        // A benign call, so the disagreement check runs as well.
        pBall: 0,
      });
    }
  } finally {
    await session.release();
  }
  const { samples, wallMs, cpuMsPerIteration } = await timeLoop(
    iterations,
    Math.max(30, inputs.length),
    (i) => void gate.judge(inputs[i % inputs.length]!),
  );
  return { stage: 'gate', ...summarize(samples, wallMs), cpu_ms: round(cpuMsPerIteration, 3) };
}

/**
 * The magnification watch's red-cell measure of each picture as the model sees it, as the daemon
 * makes it once idle (src/gate/magnification-watch.ts): off the path to a verdict, but CPU the
 * daemon spends per capture. Null when the model has no red-cell reference (nothing is measured).
 */
export async function benchMagnification(
  manifest: ModelManifest,
  decoded: DecodedImage[],
  modelRgbs: Uint8Array[] | null,
  rounds: number,
): Promise<StageResult | null> {
  const reference = manifest.acquisition?.red_cell_radius;
  if (!reference) return null;
  const pictures = decoded.map((d, i) => modelRgbs?.[i] ?? d.rgb);
  const { samples, wallMs, cpuMsPerIteration } = await timeLoop(
    pictures.length * rounds,
    Math.max(10, pictures.length),
    (i) => {
      const d = decoded[i % decoded.length]!;
      void fieldRedCellRadius(pictures[i % pictures.length]!, d.width, d.height, reference.noise_high);
    },
  );
  return { stage: 'magnification watch', ...summarize(samples, wallMs), cpu_ms: round(cpuMsPerIteration, 3) };
}

/** The dashboard media of each image, encoded and stored as the pipeline does (one id per call). */
export async function benchMedia(
  decoded: DecodedImage[],
  segs: Segmentation[],
  iterations: number,
  warmup: number,
): Promise<StageResult> {
  const dir = mkdtempSync(join(tmpdir(), 'bw-bench-media-'));
  const media = new MediaStore(dir);
  let nextId = 1; // every call a new result id, as in the daemon, warm-up included
  try {
    const { samples, wallMs, cpuMsPerIteration } = await timeLoop(iterations, warmup, async (i) => {
      const d = decoded[i % decoded.length]!;
      const seg = segs[i % segs.length]!;
      const parts = await encodeMedia({
        rgb: d.rgb,
        width: d.width,
        height: d.height,
        mask: seg.mask,
        segmented: seg.segmented,
        maskSize: Math.round(Math.sqrt(seg.mask.length)),
      });
      media.put(nextId++, parts);
    });
    return {
      stage: 'media',
      ...summarize(samples, wallMs),
      cpu_ms: round(cpuMsPerIteration, 3),
      note: 'thumbnail JPEG, mask PNG, segmented JPEG: one row in media.db',
    };
  } finally {
    media.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
