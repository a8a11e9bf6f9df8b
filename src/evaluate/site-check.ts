/**
 * Does the model apply to a lab's own labelled pictures? The targets are the ones the model card
 * holds the model to under each camera shift ("Where the model applies"): a microscope that is
 * not the training camera is such a shift. docs/new-microscope.md gives the procedure.
 */

/** The model card's per-shift targets. */
export const SITE_TARGETS = Object.freeze({
  /** Share of the pictures the out-of-domain gate accepts. */
  accepted_share: 0.9,
  /** 4-class accuracy over the accepted pictures. */
  accuracy: 0.97,
  /** Malignant pictures accepted and not flagged, of all malignant pictures. */
  silent_miss_share: 0.01,
});

export type SiteVerdict = 'applies' | 'does_not_apply' | 'not_enough_images';

export interface SiteCheck {
  targets: typeof SITE_TARGETS;
  /** The targets the set misses (keys of SITE_TARGETS); a share that cannot be computed misses. */
  missed: Array<keyof typeof SITE_TARGETS>;
  /**
   * One-sided 95 % upper bound of the silent-miss rate (Clopper-Pearson; with none missed, about
   * 3 / malignant images): what the set can rule out, not what it saw. null without malignant images.
   */
  silent_miss_upper_95: number | null;
  /**
   * `does_not_apply` when a target is missed; `not_enough_images` when none is but the set is too
   * small to show the silent-miss rate below its target (fewer than 299 malignant pictures with
   * none missed); `applies` otherwise.
   */
  verdict: SiteVerdict;
}

/** P(X <= k) for X ~ Binomial(n, p), summed in log space so large n does not underflow. */
function binomialCdf(k: number, n: number, p: number): number {
  if (p <= 0) return 1;
  if (p >= 1) return k >= n ? 1 : 0;
  const logP = Math.log(p);
  const logQ = Math.log1p(-p);
  let logTerm = n * logQ; // i = 0
  let sum = Math.exp(logTerm);
  for (let i = 0; i < k; i++) {
    logTerm += Math.log((n - i) / (i + 1)) + logP - logQ;
    sum += Math.exp(logTerm);
  }
  return Math.min(1, sum);
}

/**
 * The one-sided upper confidence bound of a binomial rate, k events in n trials: the p at which
 * seeing k or fewer has probability 1 - confidence (Clopper-Pearson, by bisection).
 */
export function binomialUpperBound(k: number, n: number, confidence = 0.95): number {
  if (!Number.isInteger(k) || !Number.isInteger(n) || k < 0 || n <= 0 || k > n)
    throw new RangeError(`binomialUpperBound: need integers 0 <= k <= n, n > 0 (k ${k}, n ${n})`);
  if (k === n) return 1;
  const alpha = 1 - confidence;
  let lo = k / n;
  let hi = 1;
  for (let i = 0; i < 60; i++) {
    const mid = (lo + hi) / 2;
    if (binomialCdf(k, n, mid) > alpha) lo = mid;
    else hi = mid;
  }
  return hi;
}

export interface SiteFigures {
  n: number;
  n_accepted: number;
  accuracy: number | null;
  silent_misses: number;
  /** Malignant pictures in the set, accepted or not. */
  malignant_images: number;
}

export function siteCheck(f: SiteFigures): SiteCheck {
  const acceptedShare = f.n > 0 ? f.n_accepted / f.n : null;
  const silentShare = f.malignant_images > 0 ? f.silent_misses / f.malignant_images : null;
  const missed: SiteCheck['missed'] = [];
  if (acceptedShare === null || acceptedShare < SITE_TARGETS.accepted_share) missed.push('accepted_share');
  if (f.accuracy === null || f.accuracy < SITE_TARGETS.accuracy) missed.push('accuracy');
  if (silentShare !== null && silentShare > SITE_TARGETS.silent_miss_share) missed.push('silent_miss_share');
  const upper = f.malignant_images > 0 ? binomialUpperBound(f.silent_misses, f.malignant_images) : null;
  const verdict: SiteVerdict =
    missed.length > 0
      ? 'does_not_apply'
      : upper === null || upper > SITE_TARGETS.silent_miss_share
        ? 'not_enough_images'
        : 'applies';
  return { targets: SITE_TARGETS, missed, silent_miss_upper_95: upper, verdict };
}
