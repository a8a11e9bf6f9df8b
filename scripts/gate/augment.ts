/**
 * The changes training itself applied to its images, at the ends of their ranges
 * (training/blastwatch_train/augment.py and the stain variants of scripts/perturb-images.ts):
 * the gate's fitting counts images changed this way as in domain, because the model learnt them
 * (or, for a darker exposure, because the colour normalisation undoes it).
 * Which ones depends on the weights' recipe, as model.json's `training` section records it.
 */
import sharp from 'sharp';
import { fnv1a, mulberry32 } from '../../src/runtime/seeded-random.js';
import { parseCameraShift } from '../camera-shifts.js';

export interface TrainingChange {
  name: string;
  /**
   * It clips the picture's highlights, so the colour normalisation cannot bring it back: it
   * widens the ranges and the feature statistics like any other change, but gets no appearance
   * Gaussian of its own (scripts/fit-gate.ts), which would reach out to over-exposed frames.
   */
  clipsHighlights?: boolean;
  apply(bytes: Buffer, relPath: string): Promise<Buffer>;
}

const png = (img: sharp.Sharp): Promise<Buffer> => img.png({ compressionLevel: 1 }).toBuffer();

/** A change made by the robustness report's own camera shift, so the gate learns the very change it is measured on. */
function cameraShiftChange(name: string, shiftName: string): TrainingChange {
  const shift = parseCameraShift(shiftName);
  return { name, apply: async (b, rel) => (await shift.apply(b, rel)).bytes };
}

const BASE_CHANGES: readonly TrainingChange[] = [
  // augment.py: Gaussian defocus blur, sigma up to 2 px at 224 px.
  { name: 'blur2', apply: (b) => png(sharp(b).removeAlpha().blur(2)) },
  // stain variants: exposure x0.85..1.15.
  { name: 'exposure0.85', apply: (b) => png(sharp(b).removeAlpha().linear(0.85, 0)) },
  {
    name: 'exposure1.15',
    clipsHighlights: true,
    apply: (b) => png(sharp(b).removeAlpha().linear(1.15, 0)),
  },
  // Not learnt but undone: a darker exposure leaves the background unclipped, so the colour
  // normalisation scales it back to the reference (src/preprocess/colour.ts) and the model sees
  // the picture it would have seen. The report's `brightness:` shift at its range's end.
  cameraShiftChange('exposure0.80', 'brightness:0.8'),
  // augment.py: JPEG re-encoding down to quality 60.
  { name: 'jpeg60', apply: (b) => sharp(b).removeAlpha().jpeg({ quality: 60 }).toBuffer() },
  // stain variants: exposure, saturation x0.75..1.25 and hue -20..20 degrees drawn per image.
  {
    name: 'stain',
    clipsHighlights: true,
    apply: (b, rel) => {
      const rand = mulberry32(fnv1a(`gate:${rel}`));
      const u = (lo: number, hi: number): number => lo + (hi - lo) * rand();
      const exposure = u(0.85, 1.15);
      const saturation = u(0.75, 1.25);
      const hue = Math.round(u(-20, 20));
      return png(sharp(b).removeAlpha().linear(exposure, 0).modulate({ saturation, hue }));
    },
  },
];

/** The part of model.json's `training` section that says what the weights learnt. */
export interface TrainingRecipe {
  /** Another camera's shifts on a share of the samples (augment.py's CAMERA_SHIFTS); null = none. */
  camera_shifts?: { share: number; channel_gain: number; temperature?: number } | null;
}

/**
 * A per-channel gain at each end of the range the camera shifts drew from: a lamp or white
 * balance that weights trained on them handle, so the gate must not refuse it for its colour.
 */
function channelGainChanges(gain: number): TrainingChange[] {
  const changes: TrainingChange[] = [];
  for (const [channel, name] of ['red', 'green', 'blue'].entries())
    for (const factor of [1 - gain, 1 + gain]) {
      const gains = [1, 1, 1];
      gains[channel] = factor;
      changes.push(gainsChange(`${name}${factor.toFixed(2)}`, gains));
    }
  return changes;
}

/**
 * The colour temperature at each end of its range (augment.py: red x (1 + t), blue x (1 - t)):
 * a warmer or cooler lamp moves red and blue together, which no single channel's gain covers.
 */
function temperatureChanges(t: number): TrainingChange[] {
  return [
    gainsChange(`warm${t.toFixed(2)}`, [1 + t, 1, 1 - t]),
    gainsChange(`cool${t.toFixed(2)}`, [1 - t, 1, 1 + t]),
  ];
}

function gainsChange(name: string, gains: readonly number[]): TrainingChange {
  return cameraShiftChange(name, `gains:${gains.map((g) => Number(g.toFixed(4))).join(',')}`);
}

/** The changes the weights with this recipe were trained on. */
export function trainingChanges(recipe: TrainingRecipe | undefined): readonly TrainingChange[] {
  const camera = recipe?.camera_shifts;
  if (!camera || !(camera.share > 0) || !(camera.channel_gain > 0)) return BASE_CHANGES;
  const temperature = camera.temperature ?? 0;
  return [
    ...BASE_CHANGES,
    ...channelGainChanges(camera.channel_gain),
    ...(temperature > 0 ? temperatureChanges(temperature) : []),
  ];
}
