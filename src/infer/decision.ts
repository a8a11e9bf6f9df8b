/**
 * Turning the model's softmax into what the daemon reports: calibrated probabilities, P(B-ALL)
 * and the flag / needs-review decision.
 */

/** Smallest probability fed to log(): softmax outputs can be exactly 0 after INT8 quantization. */
const MIN_P = 1e-12;

/**
 * Temperature scaling applied to a softmax output: softmax(log(p) / T). This equals
 * softmax(z / T) for the logits z that produced p, because softmax is shift-invariant, so the
 * ONNX model can keep its softmax output. T > 1 softens, T < 1 sharpens, T = 1 is the identity.
 * Computed in float64; the result sums to 1.
 */
export function applyTemperature(p: ArrayLike<number>, temperature: number): number[] {
  const n = p.length;
  const scaled = new Array<number>(n);
  let max = -Infinity;
  for (let i = 0; i < n; i++) {
    const v = Math.log(Math.max(p[i] as number, MIN_P)) / temperature;
    scaled[i] = v;
    if (v > max) max = v;
  }
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const e = Math.exp((scaled[i] as number) - max);
    scaled[i] = e;
    sum += e;
  }
  for (let i = 0; i < n; i++) scaled[i] = (scaled[i] as number) / sum;
  return scaled;
}

/** P(B-ALL): the summed probability of every malignant class (= 1 - P(Benign) for this model). */
export function malignantProbability(
  probabilities: readonly number[],
  malignant: readonly boolean[],
): number {
  let p = 0;
  for (let i = 0; i < probabilities.length; i++) if (malignant[i]) p += probabilities[i] as number;
  // Guard float rounding so consumers can rely on [0, 1].
  return Math.min(1, Math.max(0, p));
}

export type DecisionLabel = 'b-all' | 'uncertain' | 'benign';

export interface Decision {
  /** pBall ≥ threshold: the image is flagged as suspicious for B-ALL (alert). */
  flag: boolean;
  /** lo ≤ pBall ≤ hi (both ends inclusive): the model is unsure, a person should look. */
  needsReview: boolean;
  /** One word for lists and dashboards: 'uncertain' when needsReview, else 'b-all' when flag, else 'benign'. */
  label: DecisionLabel;
}

/**
 * The screening decision for one image.
 * - `flag = pBall >= threshold`, independent of the band (an uncertain image can still be flagged,
 *   so a threshold inside the band never hides a positive);
 * - `needsReview = band[0] <= pBall <= band[1]`;
 * - `label` = 'uncertain' if needsReview, else 'b-all' if flag, else 'benign'.
 */
export function decide(pBall: number, threshold: number, band: readonly [number, number]): Decision {
  const flag = pBall >= threshold;
  const needsReview = pBall >= band[0] && pBall <= band[1];
  return { flag, needsReview, label: decisionLabel({ flag, needsReview }) };
}

/** The one word for a stored decision: 'uncertain' wins over 'b-all'. */
export function decisionLabel(d: { flag: boolean; needsReview: boolean }): DecisionLabel {
  return d.needsReview ? 'uncertain' : d.flag ? 'b-all' : 'benign';
}
