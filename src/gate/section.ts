/**
 * The `gate` section of model.json: what the fitting (scripts/fit-gate.ts) found to be the range
 * of the training images, per check, and the features' threshold. Validated strictly at load,
 * like the rest of what inference relies on.
 */
import { z } from 'zod';
import { colourDriftSchema } from './colour-drift.js';

/** [low, high]; null = no bound on that side. */
const bounds = z.tuple([z.number().nullable(), z.number().nullable()]);

/** One Gaussian of the appearance check: the training images as recorded, or one change of them. */
const appearanceComponent = z.strictObject({
  /** `original`, or the change's name (scripts/gate/augment.ts). */
  name: z.string().min(1),
  mean: z.array(z.number()).min(1),
  inverse_covariance: z.array(z.array(z.number())).min(1),
});

/**
 * The appearance check's Gaussians, whichever form the section gives them in: `components`, or
 * the one Gaussian (`mean`, `inverse_covariance`) that gates fitted before components existed.
 */
export function appearanceComponents(a: {
  mean?: number[] | undefined;
  inverse_covariance?: number[][] | undefined;
  components?: Array<{ mean: number[]; inverse_covariance: number[][] }> | undefined;
}): Array<{ mean: number[]; inverse_covariance: number[][] }> {
  return a.components ?? [{ mean: a.mean ?? [], inverse_covariance: a.inverse_covariance ?? [] }];
}

export const gateSectionSchema = z.looseObject({
  geometry: z.strictObject({
    /** Native width:height ratios of the source image, ≥ 1 (the long side over the short). */
    aspect_ratios: z.array(z.number().min(1)).min(1),
    /** Relative tolerance on the ratio. */
    aspect_tolerance: z.number().min(0).max(0.5),
    /** Shortest source side, in pixels: smaller images were upscaled, not photographed. */
    min_side: z.number().int().positive(),
  }),
  ranges: z.strictObject({
    mean_luma: bounds,
    laplacian_variance: bounds,
    clipped_share: bounds,
    cell_coverage: bounds,
    cell_count: bounds,
    a_star_cutoff: bounds,
  }),
  /**
   * The figures together (appearance.ts); absent = no joint check. One Gaussian (`mean`,
   * `inverse_covariance`) or several (`components`: the distance is to the nearest).
   */
  appearance: z
    .strictObject({
      figures: z.array(z.string()).min(1),
      mean: z.array(z.number()).min(1).optional(),
      inverse_covariance: z.array(z.array(z.number())).min(1).optional(),
      components: z.array(appearanceComponent).min(1).optional(),
      /** An image whose squared distance is above this is out of domain. */
      threshold: z.number().positive(),
    })
    .refine(
      (a) => (a.components === undefined) === (a.mean !== undefined && a.inverse_covariance !== undefined),
      {
        message: 'give either mean and inverse_covariance, or components',
      },
    )
    .refine(
      (a) =>
        appearanceComponents(a).every(
          (c) =>
            c.mean.length === a.figures.length &&
            c.inverse_covariance.length === a.figures.length &&
            c.inverse_covariance.every((row) => row.length === a.figures.length),
        ),
      { message: 'mean and inverse_covariance must have one entry per figure' },
    )
    .optional(),
  /** The model's own view; absent = no feature check (a model without the features output). */
  features: z
    .strictObject({
      /** The key under model.json `files` of the statistics file (feature-distance.ts layout). */
      file: z.string().min(1),
      dim: z.number().int().positive(),
      classes: z.number().int().min(2),
      components: z.number().int().positive(),
      /** An image whose feature distance is above this is out of domain. */
      threshold: z.number().positive(),
      /**
       * Refuse an image the classifier calls benign (P(B-ALL) below the threshold) whose features
       * lie nearer a malignant class's mean than any benign class's (reason features_disagree):
       * the two readings of the same features disagree on the one call that must not be wrong
       * quietly. Absent = off.
       */
      refuse_disagreement: z.boolean().optional(),
    })
    .optional(),
  /**
   * The training pictures' highest green balance: with `refuse`, the gate refuses a picture
   * above it, and health judges the latest pictures' median against it (colour-drift.ts);
   * absent = neither.
   */
  colour_drift: colourDriftSchema.optional(),
  /** How the thresholds were chosen (command, data, rule): provenance, not read by the daemon. */
  fitted: z.record(z.string(), z.unknown()).optional(),
});

export type GateSection = z.infer<typeof gateSectionSchema>;
export type GateRangeName = keyof GateSection['ranges'];
