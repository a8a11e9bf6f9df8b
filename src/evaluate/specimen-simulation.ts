/**
 * Specimen-level screening simulated from image-level predictions: a specimen is m images drawn
 * without replacement from the pool of one class, and its verdict comes from the daemon's own
 * rule (suggestVerdict). The verdict depends only on (screened, flagged), so one simulation of
 * flagged counts per (pool, m) serves every rule: rules are compared on the same draws.
 *
 * What this cannot represent: the public data carry no patient IDs, so the images of a simulated
 * specimen come from many patients of one class, not from one patient's smear (whose images are
 * correlated), and a real B-ALL smear mixes blasts with normal cells. Real specimens will do worse.
 */
import {
  suggestVerdict,
  wilsonInterval,
  type SpecimenVerdict,
  type VerdictRule,
} from '../domain/specimen.js';
import { mulberry32 } from '../runtime/seeded-random.js';

/** The simulation's PRNG: reproducible from its seed on any platform. */
export const seededRandom = mulberry32;

/**
 * Draws `count` images without replacement from `pool` (a partial Fisher–Yates shuffle of the
 * pool in place, which stays a uniform permutation from draw to draw) and returns how many of
 * them were flagged.
 */
function drawFlagged(pool: boolean[], count: number, random: () => number): number {
  let flagged = 0;
  for (let i = 0; i < count; i++) {
    const j = i + Math.floor(random() * (pool.length - i));
    const picked = pool[j] as boolean;
    pool[j] = pool[i] as boolean;
    pool[i] = picked;
    if (picked) flagged++;
  }
  return flagged;
}

function checkSize(m: number, poolSize: number): void {
  if (!Number.isInteger(m) || m < 1 || m > poolSize)
    throw new RangeError(`specimen size ${m} must be an integer in 1..${poolSize} (the pool size)`);
}

/**
 * How many of `draws` simulated specimens of m images, drawn without replacement from `flags`
 * (the pool's per-image flag), had each number of flagged images: result[f] = draws with f
 * flagged, f = 0..m.
 */
export function simulateFlaggedCounts(
  flags: readonly boolean[],
  m: number,
  draws: number,
  random: () => number,
): number[] {
  checkSize(m, flags.length);
  const pool = flags.slice();
  const counts = new Array<number>(m + 1).fill(0);
  for (let d = 0; d < draws; d++) {
    const f = drawFlagged(pool, m, random);
    counts[f] = (counts[f] as number) + 1;
  }
  return counts;
}

/**
 * As simulateFlaggedCounts, for a specimen that mixes two pools: each of its m images shows
 * blasts with probability `blastShare` (drawn from `blastFlags`), else it is a normal cell (drawn
 * from `normalFlags`) — closer to a real B-ALL smear, where blasts are a share of the cells.
 */
export function simulateMixedFlaggedCounts(
  blastFlags: readonly boolean[],
  normalFlags: readonly boolean[],
  blastShare: number,
  m: number,
  draws: number,
  random: () => number,
): number[] {
  checkSize(m, Math.min(blastFlags.length, normalFlags.length));
  const blasts = blastFlags.slice();
  const normals = normalFlags.slice();
  const counts = new Array<number>(m + 1).fill(0);
  for (let d = 0; d < draws; d++) {
    let blastImages = 0;
    for (let i = 0; i < m; i++) if (random() < blastShare) blastImages++;
    const f = drawFlagged(blasts, blastImages, random) + drawFlagged(normals, m - blastImages, random);
    counts[f] = (counts[f] as number) + 1;
  }
  return counts;
}

export type VerdictTally = Record<SpecimenVerdict, number>;

/** The verdicts `rule` gives to specimens of m screened images with the given flagged-count histogram. */
export function tallyVerdicts(flaggedCounts: readonly number[], m: number, rule: VerdictRule): VerdictTally {
  const tally: VerdictTally = { suspicious: 0, insufficient: 0, no_suspicious_cells: 0 };
  flaggedCounts.forEach((draws, flagged) => {
    if (draws > 0) tally[suggestVerdict({ screened: m, flagged }, rule)] += draws;
  });
  return tally;
}

export interface Rate {
  /** Specimens counted in the numerator. */
  count: number;
  draws: number;
  value: number;
  /** 95 % Wilson interval of the simulated proportion (Monte Carlo error only). */
  low: number;
  high: number;
}

export function rate(count: number, draws: number): Rate {
  const { low, high } = wilsonInterval(count, draws);
  return { count, draws, value: draws > 0 ? count / draws : 0, low, high };
}

/** Specimen-level figures of one rule at one specimen size. */
export interface SpecimenScreening {
  /** B-ALL specimens called suspicious. */
  sensitivity: Rate;
  /** Benign specimens not called suspicious (insufficient counts as not suspicious). */
  specificity: Rate;
  /** B-ALL specimens called insufficient. */
  insufficientBall: Rate;
  /** Benign specimens called insufficient. */
  insufficientBenign: Rate;
}

/** Sums histograms of equal length (the malignant subtypes' pools pooled into B-ALL specimens). */
export function addCounts(histograms: ReadonlyArray<readonly number[]>): number[] {
  const first = histograms[0];
  if (!first) return [];
  return first.map((_, f) => histograms.reduce((sum, h) => sum + (h[f] ?? 0), 0));
}

/** Sensitivity, specificity and insufficient shares of `rule` for specimens of m images. */
export function screenSpecimens(
  ballCounts: readonly number[],
  benignCounts: readonly number[],
  m: number,
  rule: VerdictRule,
): SpecimenScreening {
  const sum = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0);
  const ball = tallyVerdicts(ballCounts, m, rule);
  const benign = tallyVerdicts(benignCounts, m, rule);
  const ballDraws = sum(ballCounts);
  const benignDraws = sum(benignCounts);
  return {
    sensitivity: rate(ball.suspicious, ballDraws),
    specificity: rate(benignDraws - benign.suspicious, benignDraws),
    insufficientBall: rate(ball.insufficient, ballDraws),
    insufficientBenign: rate(benign.insufficient, benignDraws),
  };
}
