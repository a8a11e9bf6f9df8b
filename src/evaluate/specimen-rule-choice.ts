/**
 * Choosing the specimen verdict rule from simulated specimens (specimen-simulation.ts): every
 * rule of a grid is scored on the same draws, then the criterion picks one.
 *
 * The criterion, in order:
 *   1. one-class B-ALL specimens: sensitivity >= `sensitivityTarget` at every m in
 *      fromSize..toSize under every condition (clean and each shift);
 *   2. benign specimens: specificity >= `specificityFloor` at every such m and condition;
 *   3. of the rules left, the highest sensitivity for mixed B-ALL specimens (a share of blast
 *      images among normal ones), worst condition, averaged over m — one-class specimens alone
 *      cannot rank rules: on them nearly every rule is near 100 %, and maximising specificity on
 *      them picks rules that need a majority of flagged images, which a smear where blasts are a
 *      minority never reaches;
 *   4. within `tieTolerance` of the best: the higher worst-case specificity, then smaller k, x.
 */
import type { VerdictRule } from '../domain/specimen.js';
import { screenSpecimens } from './specimen-simulation.js';

/** Flagged-count histograms of one condition, indexed by specimen size m. */
export interface ConditionSimulation {
  /** One-class B-ALL specimens (the malignant subtypes pooled). */
  ball: ReadonlyArray<readonly number[]>;
  /** One-class benign (hematogone) specimens. */
  benign: ReadonlyArray<readonly number[]>;
  /** B-ALL specimens of which only a share of the images show blasts. */
  mixed: ReadonlyArray<readonly number[]>;
}

export interface RuleCriterion {
  sensitivityTarget: number;
  specificityFloor: number;
  fromSize: number;
  toSize: number;
  tieTolerance: number;
}

export interface RuleScore {
  rule: VerdictRule;
  /** Minimum over conditions and m = fromSize..toSize. */
  worstSensitivity: number;
  worstSpecificity: number;
  /** Minimum over conditions of the mixed-specimen sensitivity averaged over m = fromSize..toSize. */
  worstMixedSensitivity: number;
  /** Smallest m from which one-class sensitivity meets the target up to toSize under every condition. */
  sensitiveFrom: number;
}

/** Every rule with k = 1..maxFlagged and x = 1/shareSteps..1, with the given minScreened. */
export function ruleGrid(maxFlagged: number, shareSteps: number, minScreened: number): VerdictRule[] {
  const rules: VerdictRule[] = [];
  for (let k = 1; k <= maxFlagged; k++)
    // i / steps rather than i * step: 6 / 20 must be the same double as a share of 3 / 10 so a
    // share exactly at x counts as reaching it.
    for (let i = 1; i <= shareSteps; i++)
      rules.push({ minFlagged: k, minFlaggedShare: i / shareSteps, minScreened });
  return rules;
}

const histogram = (h: ReadonlyArray<readonly number[]>, m: number): readonly number[] => {
  const counts = h[m];
  if (!counts) throw new RangeError(`no simulated specimens of size ${m}`);
  return counts;
};

export function scoreRule(
  rule: VerdictRule,
  sims: ReadonlyMap<string, ConditionSimulation>,
  criterion: RuleCriterion,
): RuleScore {
  let worstSensitivity = 1;
  let worstSpecificity = 1;
  let worstMixedSensitivity = 1;
  let sensitiveFrom = 1;
  for (const sim of sims.values()) {
    let mixedSum = 0;
    for (let m = 1; m <= criterion.toSize; m++) {
      const s = screenSpecimens(histogram(sim.ball, m), histogram(sim.benign, m), m, rule);
      if (s.sensitivity.value < criterion.sensitivityTarget) sensitiveFrom = Math.max(sensitiveFrom, m + 1);
      if (m < criterion.fromSize) continue;
      worstSensitivity = Math.min(worstSensitivity, s.sensitivity.value);
      worstSpecificity = Math.min(worstSpecificity, s.specificity.value);
      mixedSum += screenSpecimens(histogram(sim.mixed, m), [1], m, rule).sensitivity.value;
    }
    worstMixedSensitivity = Math.min(
      worstMixedSensitivity,
      mixedSum / (criterion.toSize - criterion.fromSize + 1),
    );
  }
  return { rule, worstSensitivity, worstSpecificity, worstMixedSensitivity, sensitiveFrom };
}

export interface RuleChoice {
  chosen: RuleScore;
  /** Rules that passed steps 1 and 2. */
  eligible: number;
  /** Rules within the tie tolerance at step 3. */
  tied: number;
}

export function chooseRule(scores: readonly RuleScore[], criterion: RuleCriterion): RuleChoice {
  const eligible = scores.filter(
    (s) => s.sensitiveFrom <= criterion.fromSize && s.worstSpecificity >= criterion.specificityFloor,
  );
  if (eligible.length === 0)
    throw new Error('no rule of the grid meets the sensitivity target and the specificity floor');
  const best = Math.max(...eligible.map((s) => s.worstMixedSensitivity));
  const tied = eligible.filter((s) => s.worstMixedSensitivity >= best - criterion.tieTolerance);
  const [chosen] = [...tied].sort(
    (a, b) =>
      b.worstSpecificity - a.worstSpecificity ||
      a.rule.minFlagged - b.rule.minFlagged ||
      a.rule.minFlaggedShare - b.rule.minFlaggedShare,
  );
  return { chosen: chosen as RuleScore, eligible: eligible.length, tied: tied.length };
}
