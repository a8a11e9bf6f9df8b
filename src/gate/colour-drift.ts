/**
 * A camera that records green brighter than the training camera did, which no single picture
 * shows. The training camera's backgrounds sit at the top of the green channel, so a brighter
 * green clips there: the colour normalisation, which reads the background, leaves it, and the
 * gate, which judges one picture at a time, accepts most of those pictures, because one field's
 * green balance varies with its stain about as much as the shift moves it. The model is then
 * less sure of blasts (models/MODEL_CARD.md, "Where the model applies": green x1.15 is the
 * camera shift with the most silent misses). Over many fields the stain's part averages out:
 * the median of the screened pictures' green balance (image-measures.ts) above the highest any
 * training picture had is a camera, not a stain.
 */
import { z } from 'zod';

export const COLOUR_DRIFT_FIGURE = 'green_balance';

/** model.json `gate.colour_drift`: the training pictures' green balance (scripts/fit-gate.ts). */
export const colourDriftSchema = z.strictObject({
  figure: z.literal(COLOUR_DRIFT_FIGURE),
  /** The highest green balance of the training and validation pictures as recorded. */
  high: z.number().positive(),
});

export type ColourDriftReference = z.infer<typeof colourDriftSchema>;

/** The reference from the training and validation originals' green balances. */
export function fitColourDrift(balances: readonly (number | null)[]): ColourDriftReference {
  let high = 0;
  for (const b of balances) if (b !== null && Number.isFinite(b)) high = Math.max(high, b);
  if (!(high > 0)) throw new Error('fitColourDrift: no picture with a measurable green balance');
  return { figure: COLOUR_DRIFT_FIGURE, high: Number(high.toFixed(4)) };
}

/** The median green balance of the latest screened pictures, against the reference. */
export interface ColourDrift {
  /** gate.drift_window: how many of the latest captured images are looked at. */
  window: number;
  /** In-domain images among them with a green balance. */
  measured: number;
  /** Their median; null before any. */
  median: number | null;
  /** The reference's `high`. */
  high: number;
  /** At least half a window measured and its median above `high`. */
  drifting: boolean;
}

/**
 * Judges the green balances of the latest screened pictures (nulls and out-of-domain pictures
 * left out by the caller or here). Half a window must be measured: a start-up, or a window that
 * is mostly out of domain (which the gate's own drift reports), is not judged on a few fields.
 */
export function colourDrift(
  balances: readonly (number | null | undefined)[],
  window: number,
  reference: ColourDriftReference,
): ColourDrift {
  const values = balances.filter((b): b is number => typeof b === 'number' && Number.isFinite(b));
  values.sort((a, b) => a - b);
  const n = values.length;
  const median =
    n === 0 ? null : n % 2 === 1 ? values[(n - 1) / 2]! : (values[n / 2 - 1]! + values[n / 2]!) / 2;
  return {
    window,
    measured: n,
    median,
    high: reference.high,
    drifting: median !== null && n >= Math.ceil(window / 2) && median > reference.high,
  };
}
