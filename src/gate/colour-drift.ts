/**
 * A camera that records green brighter than the training camera did. The training camera's
 * backgrounds sit at the top of the green channel, so a brighter green clips there: the colour
 * normalisation, which reads the background, leaves it, and the model is less sure of blasts
 * (models/MODEL_CARD.md, "A brighter green": accepted, green x1.15 is the camera shift with the
 * most silent misses). Two checks use the green balance of the unclipped pixels
 * (image-measures.ts):
 * - the gate refuses a picture whose balance is above the highest any training picture had
 *   (reason `green_balance`), since the model has never seen such a field;
 * - below that, one field's balance varies with its stain about as much as a camera moves it,
 *   so a camera only shows over many fields: the median of the latest pictures' balances above
 *   that highest is a camera, not a stain, and health says so.
 */
import { z } from 'zod';
import type { DomainCheck, DomainReason } from '../domain/applicability.js';

export const COLOUR_DRIFT_FIGURE = 'green_balance';

/** model.json `gate.colour_drift`: the training pictures' green balance (scripts/fit-gate.ts). */
export const colourDriftSchema = z.strictObject({
  figure: z.literal(COLOUR_DRIFT_FIGURE),
  /** The highest green balance of the training and validation pictures as recorded. */
  high: z.number().positive(),
  /** The gate refuses each picture above `high` (reason `green_balance`). Absent: it does not. */
  refuse: z.boolean().optional(),
});

export type ColourDriftReference = z.infer<typeof colourDriftSchema>;

/** The reference from the training and validation originals' green balances. */
export function fitColourDrift(balances: readonly (number | null)[]): ColourDriftReference {
  let high = 0;
  for (const b of balances) if (b !== null && Number.isFinite(b)) high = Math.max(high, b);
  if (!(high > 0)) throw new Error('fitColourDrift: no picture with a measurable green balance');
  return { figure: COLOUR_DRIFT_FIGURE, high: Number(high.toFixed(4)), refuse: true };
}

/** The median green balance of the latest pictures that count (countsForColourWatch), against the reference. */
export interface ColourDrift {
  /** gate.drift_window: how many of the latest captured images are looked at. */
  window: number;
  /** Images among them with a green balance that count for the watch (countsForColourWatch). */
  measured: number;
  /** Their median; null before any. */
  median: number | null;
  /** The reference's `high`. */
  high: number;
  /** At least half a window measured and its median above `high`. */
  drifting: boolean;
}

/**
 * Refusals that still leave the picture a smear of this camera: its green itself, and a benign
 * call the model's own features contradict (the features lie near a training class, so the
 * picture is like the training camera's).
 */
const THIS_CAMERAS_SMEAR: ReadonlySet<DomainReason> = new Set(['green_balance', 'features_disagree']);

/**
 * Whether a judged picture counts for the watch: screened pictures and those refused only for
 * reasons that leave them this camera's smears (THIS_CAMERAS_SMEAR); a picture refused for
 * anything else (a blank frame, another laboratory's smear) may not be a smear of this camera at
 * all.
 */
export function countsForColourWatch(check: Pick<DomainCheck, 'in' | 'reasons'>): boolean {
  return check.in || check.reasons.every((r) => THIS_CAMERAS_SMEAR.has(r));
}

/**
 * The green balances of the judged pictures that count for the watch, one entry each (undefined:
 * counted but not measurable); pictures not judged (null) or refused for other reasons are left out.
 */
export function watchedBalances(
  checks: readonly (Pick<DomainCheck, 'in' | 'reasons' | 'scores'> | null)[],
): (number | undefined)[] {
  const balances: (number | undefined)[] = [];
  for (const check of checks)
    if (check && countsForColourWatch(check)) balances.push(check.scores.greenBalance);
  return balances;
}

/**
 * Judges the green balances of the latest pictures (nulls left out here; watchedBalances leaves
 * out the pictures that may not be this camera's smears at all). Half a
 * window must be measured: a start-up, or a window that is mostly out of domain for other
 * reasons (which the gate's own drift reports), is not judged on a few fields.
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
