/**
 * Evaluation metrics, computed the same way as training/blastwatch_train/evaluate.py so that
 * `blastwatch evaluate` on the test split reproduces the model card: 4-class metrics from the
 * argmax, B-ALL vs benign from the daemon's decision (P(B-ALL) >= threshold).
 */

export interface PerClassMetrics {
  precision: number;
  recall: number;
  specificity: number;
  f1: number;
  support: number;
}

export interface BinaryMetrics {
  threshold: number;
  /** null when undefined (no positives / no negatives in the set). */
  sensitivity: number | null;
  specificity: number | null;
  tp: number;
  fn: number;
  tn: number;
  fp: number;
}

export interface EvaluationMetrics {
  n: number;
  accuracy: number | null;
  macro_f1: number;
  classes: string[];
  /** confusion[truth][predicted], class order. */
  confusion: number[][];
  per_class: Record<string, PerClassMetrics>;
  /** B-ALL (any malignant class) vs benign, by the flag P(B-ALL) >= threshold. */
  malignant: BinaryMetrics;
  /** Expected calibration error of the top-class probability (15 bins), temperature applied. */
  ece: number;
  /** Images with P(B-ALL) inside the uncertain band (marked "needs review" by the daemon). */
  needs_review: number;
}

export interface Scored {
  truth: number;
  probabilities: readonly number[];
  pBall: number;
}

const ratio = (a: number, b: number): number | null => (b > 0 ? a / b : null);

export function computeMetrics(
  items: readonly Scored[],
  classes: readonly string[],
  malignant: readonly boolean[],
  threshold: number,
  band: readonly [number, number],
): EvaluationMetrics {
  const k = classes.length;
  const confusion = Array.from({ length: k }, () => new Array<number>(k).fill(0));
  const argmax = (p: readonly number[]): number => {
    let best = 0;
    for (let i = 1; i < p.length; i++) if ((p[i] as number) > (p[best] as number)) best = i;
    return best;
  };
  let tp = 0;
  let fn = 0;
  let tn = 0;
  let fp = 0;
  let needsReview = 0;
  for (const it of items) {
    (confusion[it.truth] as number[])[argmax(it.probabilities)]! += 1;
    const positive = malignant[it.truth] === true;
    const flagged = it.pBall >= threshold;
    if (positive && flagged) tp++;
    else if (positive) fn++;
    else if (flagged) fp++;
    else tn++;
    if (it.pBall >= band[0] && it.pBall <= band[1]) needsReview++;
  }
  const n = items.length;
  const per_class: Record<string, PerClassMetrics> = {};
  const f1s: number[] = [];
  let correct = 0;
  classes.forEach((name, c) => {
    const row = confusion[c] as number[];
    const ctp = row[c] as number;
    correct += ctp;
    const support = row.reduce((s, v) => s + v, 0);
    const predicted = confusion.reduce((s, r) => s + (r[c] as number), 0);
    const cfp = predicted - ctp;
    const cfn = support - ctp;
    const ctn = n - ctp - cfp - cfn;
    // 0 for an undefined ratio, as the training code does, so macro-F1 is comparable.
    const precision = ratio(ctp, ctp + cfp) ?? 0;
    const recall = ratio(ctp, ctp + cfn) ?? 0;
    const specificity = ratio(ctn, ctn + cfp) ?? 0;
    const f1 = precision + recall > 0 ? (2 * precision * recall) / (precision + recall) : 0;
    // Macro-F1 over the classes present or predicted (scikit-learn's default): a check set with
    // no Pro-B case says nothing about Pro-B, and a 0 for it would halve the figure.
    if (support > 0 || predicted > 0) f1s.push(f1);
    per_class[name] = { precision, recall, specificity, f1, support };
  });
  return {
    n,
    accuracy: ratio(correct, n),
    macro_f1: f1s.reduce((s, v) => s + v, 0) / (f1s.length || 1),
    classes: [...classes],
    confusion,
    per_class,
    malignant: {
      threshold,
      sensitivity: ratio(tp, tp + fn),
      specificity: ratio(tn, tn + fp),
      tp,
      fn,
      tn,
      fp,
    },
    ece: expectedCalibrationError(items),
    needs_review: needsReview,
  };
}

/** Same binning as evaluate.py: (lo, hi] bins of the top-class probability. */
export function expectedCalibrationError(items: readonly Scored[], bins = 15): number {
  if (items.length === 0) return 0;
  const count = new Array<number>(bins).fill(0);
  const confSum = new Array<number>(bins).fill(0);
  const correctSum = new Array<number>(bins).fill(0);
  for (const it of items) {
    let best = 0;
    for (let i = 1; i < it.probabilities.length; i++)
      if ((it.probabilities[i] as number) > (it.probabilities[best] as number)) best = i;
    const conf = it.probabilities[best] as number;
    if (conf <= 0) continue;
    const b = Math.min(bins - 1, Math.ceil(conf * bins) - 1);
    count[b]! += 1;
    confSum[b]! += conf;
    correctSum[b]! += best === it.truth ? 1 : 0;
  }
  let total = 0;
  for (let b = 0; b < bins; b++) {
    const c = count[b] as number;
    if (c === 0) continue;
    total += (c / items.length) * Math.abs((correctSum[b] as number) / c - (confSum[b] as number) / c);
  }
  return total;
}
