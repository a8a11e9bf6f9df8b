/**
 * What `blastwatch evaluate` reports about the out-of-domain gate: how many images it accepted,
 * what it rejected and why, and the silent misses among the accepted ones. The model's metrics
 * (src/evaluate/metrics.ts) are computed over the accepted images only, since those are the only
 * ones the daemon gives a verdict.
 */
import type { DomainCheck, DomainReason } from '../domain/applicability.js';
import { computeMetrics, type EvaluationMetrics, type Scored } from './metrics.js';
import { colourDrift, watchedBalances, type ColourDriftReference } from '../gate/colour-drift.js';
import { siteCheck, type SiteCheck } from './site-check.js';

/** One image through the daemon's path: the model's answer and the gate's judgement (null: no gate). */
export interface Judged {
  probabilities: readonly number[];
  pBall: number;
  domain: DomainCheck | null;
}

export interface Rejections {
  total: number;
  /** Images per reason; an image with several reasons counts under each. */
  by_reason: Partial<Record<DomainReason, number>>;
}

export interface GateFigures {
  /** Images classified (accepted and rejected; failures are listed apart). */
  n: number;
  /** Judged in domain: the images that get a verdict. */
  n_accepted: number;
  rejected: Rejections;
  /** Whether a gate judged the images (false with --no-gate: every image is accepted). */
  gate: boolean;
}

/** A class-per-folder set: the model's metrics over the accepted images, and the gate's figures. */
export type LabelledEvaluation = Omit<EvaluationMetrics, 'n'> &
  GateFigures & {
    rejected: Rejections & { by_class: Record<string, number> };
    /**
     * Malignant images accepted and not flagged: an image the daemon would call benign although
     * it is not, the one error a screening aid must not make quietly.
     */
    silent_misses: number;
    /** silent_misses / every malignant image classified (rejected ones included); null when none. */
    silent_miss_share: number | null;
    /** The set against the model card's targets for another camera; null without the gate. */
    site_check: SiteCheck | null;
  };

/** A folder without class folders: how many images the gate let through and how many were flagged. */
export interface UnlabelledEvaluation extends GateFigures {
  /** Accepted images flagged as possible B-ALL. */
  flagged: number;
  /** Accepted images in the uncertain band. */
  needs_review: number;
}

const accepted = (j: Judged): boolean => j.domain === null || j.domain.in;

function rejections(items: readonly Judged[]): Rejections {
  const by_reason: Partial<Record<DomainReason, number>> = {};
  let total = 0;
  for (const j of items) {
    if (accepted(j)) continue;
    total += 1;
    for (const r of j.domain?.reasons ?? []) by_reason[r] = (by_reason[r] ?? 0) + 1;
  }
  return { total, by_reason };
}

export function evaluateLabelled(
  items: readonly (Judged & { truth: number })[],
  classes: readonly string[],
  malignant: readonly boolean[],
  threshold: number,
  band: readonly [number, number],
  gate: boolean,
): LabelledEvaluation {
  const kept = items.filter(accepted);
  const scored: Scored[] = kept.map(({ truth, probabilities, pBall }) => ({ truth, probabilities, pBall }));
  const { n: nAccepted, ...metrics } = computeMetrics(scored, classes, malignant, threshold, band);
  const by_class: Record<string, number> = Object.fromEntries(classes.map((c) => [c, 0]));
  for (const j of items) if (!accepted(j)) by_class[classes[j.truth] as string]! += 1;
  const malignantTotal = items.filter((j) => malignant[j.truth] === true).length;
  const silentMisses = metrics.malignant.fn;
  return {
    n: items.length,
    n_accepted: nAccepted,
    rejected: { ...rejections(items), by_class },
    gate,
    ...metrics,
    silent_misses: silentMisses,
    silent_miss_share: malignantTotal > 0 ? silentMisses / malignantTotal : null,
    site_check: gate
      ? siteCheck({
          n: items.length,
          n_accepted: nAccepted,
          accuracy: metrics.accuracy,
          silent_misses: silentMisses,
          malignant_images: malignantTotal,
        })
      : null,
  };
}

/**
 * The images' green balance against the training images' highest (the daemon's health watches
 * the same over its latest captures): a camera recording green brighter than the training
 * camera. Images accepted, or refused only for their green or a contradicted benign call, count
 * (countsForColourWatch in colour-drift.ts).
 */
export interface ColourFigures {
  /** Images with a green balance that count. */
  measured: number;
  /** Their median; null when none. */
  median: number | null;
  /** model.json gate.colour_drift.high. */
  high: number;
  /** At least half the counted images measured, and their median above `high`. */
  above: boolean;
}

export function colourFigures(
  items: readonly Judged[],
  reference: ColourDriftReference | null | undefined,
): ColourFigures | null {
  if (!reference) return null;
  const balances = watchedBalances(items.map((j) => j.domain));
  const drift = colourDrift(balances, balances.length, reference);
  return { measured: drift.measured, median: drift.median, high: drift.high, above: drift.drifting };
}

export function evaluateUnlabelled(
  items: readonly Judged[],
  threshold: number,
  band: readonly [number, number],
  gate: boolean,
): UnlabelledEvaluation {
  const kept = items.filter(accepted);
  return {
    n: items.length,
    n_accepted: kept.length,
    rejected: rejections(items),
    gate,
    flagged: kept.filter((j) => j.pBall >= threshold).length,
    needs_review: kept.filter((j) => j.pBall >= band[0] && j.pBall <= band[1]).length,
  };
}
