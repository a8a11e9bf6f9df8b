/**
 * The input checks' ranges from in-domain figures: the 0.1 % and 99.9 % quantiles, widened on
 * each side by a share of the span between them, so a handful of odd training images neither
 * set the bound alone nor make the next in-domain image fail by a hair. Deterministic: the same
 * figures always give the same bounds. Offline only (scripts/fit-gate.ts).
 */

export interface RangeRule {
  lowQuantile: number;
  highQuantile: number;
  /** Each bound moves outwards by this share of (high quantile − low quantile). */
  widen: number;
}

export const DEFAULT_RANGE_RULE: Readonly<RangeRule> = Object.freeze({
  lowQuantile: 0.001,
  highQuantile: 0.999,
  widen: 0.1,
});

/** Linear-interpolation quantile (numpy's default) of values sorted ascending. */
export function quantileSorted(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) throw new RangeError('quantile of no values');
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.min(sorted.length - 1, lo + 1);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

/**
 * [low, high] for `values`; `sides` says which bounds the check uses (a sharper or less clipped
 * image than any in training is no reason to refuse it), the other is null.
 */
export function fitRange(
  values: readonly number[],
  sides: 'both' | 'low' | 'high',
  rule: RangeRule = DEFAULT_RANGE_RULE,
  scale: 'linear' | 'log' = 'linear',
): [number | null, number | null] {
  if (scale === 'log') {
    // For figures spread over orders of magnitude (focus): the rule on log(1 + value).
    const [low, high] = fitRange(values.map(Math.log1p), sides, rule);
    return [low === null ? null : Math.expm1(low), high === null ? null : Math.expm1(high)];
  }
  const sorted = [...values].sort((a, b) => a - b);
  const low = quantileSorted(sorted, rule.lowQuantile);
  const high = quantileSorted(sorted, rule.highQuantile);
  const margin = (high - low) * rule.widen;
  return [sides === 'high' ? null : low - margin, sides === 'low' ? null : high + margin];
}
