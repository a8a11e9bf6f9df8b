/**
 * The out-of-domain gate: judges, before any verdict, whether an image is like the images the
 * model was trained on. Input: the prepared image (decoded pixels, the source's geometry,
 * segmentation figures) and the model's pooled features; output: a DomainCheck with every
 * reason that fired and the figures it judged.
 *
 *   const gate = await loadDomainGate(manifest, { threshold });  // model.json's gate section
 *   const prepared = await prepareImage(bytes, opts);
 *   const [prediction] = await classifier.classify([{ original, segmented }]);
 *   const check = gate.judge({
 *     rgb: prepared.decoded.rgb, width: prepared.decoded.width, height: prepared.decoded.height,
 *     source: prepared.decoded.source, segmentation: prepared.segmentation.stats,
 *     features: prediction.features,   // a view into the batch's one features array
 *     pBall: prediction.pBall,         // the call the features must not contradict
 *   });
 *   // check.in false → status out_of_domain, check.reasons for people (DOMAIN_REASON_TEXT)
 *
 * judge() is synchronous and allocates nothing per pixel (well under a millisecond at 224 px).
 * Everything but the features check needs only the picture: `inspect()` runs those checks alone
 * (the daemon runs them while the model infers) and `judge({ ...input, inspection })` adds the
 * model's view to them without measuring the picture again.
 *
 * A model whose model.json carries no `gate` section (one trained before the gate existed) is
 * served without it: every image is judged in domain, unchecked.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { isAbsolute, join, normalize } from 'node:path';
import { IN_DOMAIN_UNCHECKED, type DomainCheck, type DomainReason } from '../domain/applicability.js';
import type { SegmentationStats } from '../segment/index.js';
import {
  createFeatureScorer,
  featureDistance,
  parseFeatureModel,
  type FeatureModel,
} from './feature-distance.js';
import {
  APPEARANCE_FIGURES,
  appearanceInputOf,
  appearanceVector,
  nearestAppearanceDistance,
  type AppearanceModel,
} from './appearance.js';
import { measureImage } from './image-measures.js';
import { appearanceComponents, type GateSection } from './section.js';

export { gateSectionSchema, type GateSection } from './section.js';
export { measureImage, type ImageMeasures } from './image-measures.js';

export interface GateInput {
  /** Decoded size×size RGB (HWC), before any colour normalisation: exposure, focus, clipping. */
  rgb: Uint8Array;
  /**
   * The same picture as the model is fed it (after colour normalisation, when the preprocessing
   * does one): its background colour is judged. Absent = `rgb`.
   */
  modelRgb?: Uint8Array | undefined;
  width: number;
  height: number;
  /** The source image's own size, before the squash to size×size. */
  source: { width: number; height: number };
  /** Segmentation statistics as src/segment returns them. */
  segmentation: Pick<SegmentationStats, 'foregroundFraction' | 'componentCount' | 'aStarThreshold'>;
  /** Pooled features from the model's second output, when the model has one. */
  features?: Float32Array | null | undefined;
  /** The classifier's P(B-ALL) for this image: the disagreement check compares its call. */
  pBall?: number | null | undefined;
  /** The picture's checks, already made by inspect() on this same input: not made again. */
  inspection?: PictureInspection | undefined;
}

/** The checks that need only the picture (all but the model's features): reasons and figures. */
export interface PictureInspection {
  readonly reasons: readonly DomainReason[];
  readonly scores: Readonly<Record<string, number>>;
}

export interface DomainGate {
  judge(input: GateInput): DomainCheck;
  /** The picture's checks alone (geometry, exposure, focus, segmentation, appearance). */
  inspect(input: Omit<GateInput, 'features' | 'inspection'>): PictureInspection;
  /** False for the pass-through gate of a model without a gate section. */
  readonly checking: boolean;
}

const NOTHING_INSPECTED: PictureInspection = Object.freeze({ reasons: [], scores: {} });

export interface DomainGateOptions {
  section: GateSection;
  /** The feature statistics the section's `features` names; null = no feature check. */
  featureModel?: FeatureModel | null;
  /**
   * How the classifier calls an image: its flag threshold and which classes are malignant. The
   * disagreement check (section `features.refuse_disagreement`) needs it; absent = no such check.
   */
  call?: ClassifierCall | null;
}

export interface ClassifierCall {
  /** P(B-ALL) at or above this is flagged; below it the call is benign. */
  threshold: number;
  /** One entry per class, in the feature statistics' class order. */
  malignant: readonly boolean[];
}

const inRange = (value: number, [low, high]: readonly [number | null, number | null]): -1 | 0 | 1 =>
  low !== null && value < low ? -1 : high !== null && value > high ? 1 : 0;

/** The gate for one model. Without options it judges every image in domain, unchecked. */
export function createDomainGate(options?: DomainGateOptions): DomainGate {
  if (!options)
    return { judge: () => IN_DOMAIN_UNCHECKED, inspect: () => NOTHING_INSPECTED, checking: false };
  const { section } = options;
  const scorer = options.featureModel && section.features ? createFeatureScorer(options.featureModel) : null;
  const featureThreshold = section.features?.threshold ?? Number.POSITIVE_INFINITY;
  const disagreement =
    scorer && section.features?.refuse_disagreement
      ? checkedCall(options.call, scorer.model.classCount)
      : null;
  const inspect = pictureInspector(section);
  return {
    checking: true,
    inspect,
    judge(input: GateInput): DomainCheck {
      const picture = input.inspection ?? inspect(input);
      const reasons = [...picture.reasons];
      const scores = { ...picture.scores };
      // The FP32 file run on CUDA may lack the features output: then only the input checks judge.
      if (scorer && input.features && input.features.length === scorer.model.dim) {
        const distance = featureDistance(scorer, input.features);
        scores.featureDistance = distance.score;
        if (!(distance.score <= featureThreshold)) reasons.push('features');
        if (disagreement && typeof input.pBall === 'number') {
          // Benign class's distance minus the nearest malignant class's: > 0 = nearer B-ALL.
          const margin = classMargin(distance.distances, disagreement.malignant);
          scores.featureMargin = margin;
          if (input.pBall < disagreement.threshold && margin > 0) reasons.push('features_disagree');
        }
      }
      return { in: reasons.length === 0, reasons, scores };
    },
  };
}

/** The classifier's call as the disagreement check needs it: present, one flag per feature class. */
function checkedCall(call: ClassifierCall | null | undefined, classCount: number): ClassifierCall {
  if (!call)
    throw new Error('gate.features.refuse_disagreement needs the classifier threshold and malignant classes');
  if (call.malignant.length !== classCount)
    throw new Error(`gate: ${call.malignant.length} malignant flags for ${classCount} feature classes`);
  return call;
}

/** The nearest benign class's distance minus the nearest malignant class's. */
function classMargin(distances: Float64Array, malignant: readonly boolean[]): number {
  let benign = Number.POSITIVE_INFINITY;
  let blast = Number.POSITIVE_INFINITY;
  for (let c = 0; c < distances.length; c++) {
    const d = distances[c]!;
    if (malignant[c]) blast = Math.min(blast, d);
    else benign = Math.min(benign, d);
  }
  return benign - blast;
}

/** The checks of the picture alone, against the section's fitted ranges and appearance model. */
function pictureInspector(section: GateSection): DomainGate['inspect'] {
  const { ranges, geometry, appearance } = section;
  const greenHigh = section.colour_drift?.refuse ? section.colour_drift.high : null;
  if (appearance && appearance.figures.join() !== APPEARANCE_FIGURES.join())
    throw new Error(`gate.appearance.figures must be ${APPEARANCE_FIGURES.join(', ')}: refit the gate`);
  const appearanceModels = appearance ? appearanceModelsOf(appearance) : null;
  const vector = new Float64Array(APPEARANCE_FIGURES.length);
  return (input) => {
    const reasons: DomainReason[] = [];
    const scores: Record<string, number> = {};
    const long = Math.max(input.source.width, input.source.height);
    const short = Math.min(input.source.width, input.source.height);
    const aspect = short > 0 ? long / short : Number.POSITIVE_INFINITY;
    scores.aspectRatio = aspect;
    const nativeAspect = geometry.aspect_ratios.some(
      (r) => Math.abs(aspect - r) <= r * geometry.aspect_tolerance,
    );
    if (!nativeAspect || short < geometry.min_side) reasons.push('geometry');

    const measures = measureImage(input.rgb, input.width, input.height);
    scores.meanLuma = measures.meanLuma;
    scores.laplacianVariance = measures.laplacianVariance;
    scores.clippedShare = measures.clippedShare;
    const exposure = inRange(measures.meanLuma, ranges.mean_luma);
    if (exposure < 0) reasons.push('underexposed');
    if (exposure > 0) reasons.push('overexposed');
    if (inRange(measures.laplacianVariance, ranges.laplacian_variance) !== 0) reasons.push('focus');
    if (inRange(measures.clippedShare, ranges.clipped_share) !== 0) reasons.push('clipping');

    const seg = input.segmentation;
    scores.cellCoverage = seg.foregroundFraction;
    scores.cellCount = seg.componentCount;
    scores.aStarCutoff = seg.aStarThreshold;
    if (inRange(seg.foregroundFraction, ranges.cell_coverage) !== 0) reasons.push('cell_coverage');
    if (inRange(seg.componentCount, ranges.cell_count) !== 0) reasons.push('cell_count');
    if (inRange(seg.aStarThreshold, ranges.a_star_cutoff) !== 0) reasons.push('segmentation_cutoff');
    if (appearance && appearanceModels) {
      const figures = appearanceInputOf(input, measures);
      scores.backgroundRedShare = figures.background.redShare;
      scores.backgroundBlueShare = figures.background.blueShare;
      const { greenBalance } = figures.background;
      if (greenBalance !== null) {
        scores.greenBalance = greenBalance;
        if (greenHigh !== null && greenBalance > greenHigh) reasons.push('green_balance');
      }
      const distance = nearestAppearanceDistance(appearanceModels, appearanceVector(figures, vector));
      scores.appearanceDistance = distance;
      if (!(distance <= appearance.threshold)) reasons.push('appearance');
    }
    return { reasons, scores };
  };
}

function appearanceModelsOf(appearance: NonNullable<GateSection['appearance']>): AppearanceModel[] {
  return appearanceComponents(appearance).map((c) => ({
    mean: c.mean,
    inverseCovariance: c.inverse_covariance,
  }));
}

/** What loadDomainGate needs of a loaded model.json (src/infer/manifest.ts ModelManifest). */
export interface GateManifest {
  dir: string;
  gate?: GateSection | undefined;
  files: { gate?: { path: string; sha256: string; bytes: number } | undefined };
  /** The classifier's own threshold and malignant classes (the disagreement check). */
  threshold: number;
  malignant: readonly boolean[];
}

/**
 * The gate model.json describes: its `gate` section and, when that names one, the feature
 * statistics file, whose sha256 is checked again on the bytes read (the manifest loader checked
 * the file; this read is the one used). Without a gate section: the pass-through gate.
 */
export async function loadDomainGate(
  manifest: GateManifest,
  opts: { threshold?: number | null | undefined } = {},
): Promise<DomainGate> {
  const section = manifest.gate;
  if (!section) return createDomainGate();
  if (!section.features) return createDomainGate({ section, featureModel: null });
  const entry = manifest.files.gate;
  if (!entry) throw new Error('model.json gate.features needs its statistics file listed as files.gate');
  const rel = normalize(entry.path);
  if (isAbsolute(rel) || rel.startsWith('..'))
    throw new Error('model.json files.gate.path must be inside the model folder');
  const bytes = await readFile(join(manifest.dir, rel));
  const actual = createHash('sha256').update(bytes).digest('hex');
  if (actual !== entry.sha256)
    throw new Error(
      `sha256 mismatch for gate statistics ${entry.path}: expected ${entry.sha256}, got ${actual}`,
    );
  const featureModel = parseFeatureModel(bytes, {
    dim: section.features.dim,
    classCount: section.features.classes,
    components: section.features.components,
  });
  // The threshold the daemon flags at: config model.threshold when set, else model.json's.
  const call = { threshold: opts.threshold ?? manifest.threshold, malignant: manifest.malignant };
  return createDomainGate({ section, featureModel, call });
}
