/**
 * The flag threshold under camera shifts. A silent miss is a malignant image the gate accepts and
 * the threshold does not flag, so the threshold that keeps silent misses rare depends on which
 * images the gate accepts: it is found after the gate, from validation images measured clean and
 * under each camera shift (scripts/fit-threshold.ts measures them, records the result and, when
 * asked, applies it).
 */

/**
 * The most a shift may miss silently, as a share of its malignant images: the target for another
 * camera (docs/new-microscope.md). The shifts are measured at the ends of their ranges, the worst
 * a camera within them brings, so the target itself is the rule, without a further margin.
 */
export const SHIFT_SILENT_SHARE = 0.01;

/** One validation image, clean or shifted. */
export interface ThresholdRecord {
  /** 'validation' or the shift's name. */
  set: string;
  name: string;
  malignant: boolean;
  /** The out-of-domain gate let it through, whatever the model's call (every check but the disagreement one). */
  accepted: boolean;
  /**
   * Its features lie nearer a malignant class than the benign one: the gate withholds it whenever
   * the call is benign (reason features_disagree), so at no threshold is it a silent miss.
   * Absent = false (a gate without that check).
   */
  disagrees?: boolean | undefined;
  /** Calibrated P(B-ALL), averaged over the model's views. */
  pBall: number;
}

/** Accepted at `threshold`: a disagreeing image is withheld when it would be called benign. */
export function acceptedAt(r: ThresholdRecord, threshold: number): boolean {
  return r.accepted && !(r.disagrees === true && r.pBall < threshold);
}

export interface SetBoundary {
  malignant: number;
  /** Silent misses the share allows this set. */
  allowed: number;
  /** The largest threshold that keeps to them; null when the gate accepts too few malignant images to bind. */
  boundary: number | null;
}

export interface ThresholdChoice {
  threshold: number;
  /** The clean rule's threshold (the training report's): never exceeded. */
  clean: number;
  share: number;
  bySet: Record<string, SetBoundary>;
  /** The set whose boundary set the threshold; null when the clean rule's stands. */
  binding: string | null;
}

/**
 * The largest threshold at or below `clean` at which no set has more than `share` of its
 * malignant images accepted and not flagged (flagged means pBall >= threshold).
 */
export function chooseThreshold(
  records: readonly ThresholdRecord[],
  clean: number,
  share: number = SHIFT_SILENT_SHARE,
): ThresholdChoice {
  const bySet: Record<string, SetBoundary> = {};
  let threshold = clean;
  let binding: string | null = null;
  for (const set of new Set(records.map((r) => r.set))) {
    const malignant = records.filter((r) => r.set === set && r.malignant);
    const allowed = Math.floor(share * malignant.length + 1e-9);
    // A disagreeing image is flagged or withheld, never missed: only the others can be.
    const accepted = malignant
      .filter((r) => r.accepted && r.disagrees !== true)
      .map((r) => r.pBall)
      .sort((a, b) => a - b);
    // A threshold at accepted[allowed] misses exactly the `allowed` lowest (ties are flagged).
    const boundary = accepted[allowed] ?? null;
    bySet[set] = { malignant: malignant.length, allowed, boundary };
    if (boundary !== null && boundary < threshold) {
      threshold = boundary;
      binding = set;
    }
  }
  return { threshold, clean, share, bySet, binding };
}

/** The band a person should look at, around the threshold (training/blastwatch_train/evaluate.py's rule). */
export function uncertainBand(threshold: number): [number, number] {
  return [threshold / 2, Math.min(0.95, Math.max(0.5, 1 - (1 - threshold) / 2))];
}

/** What one threshold does to one set: the silent misses and the false alarms among accepted images. */
export interface SetOutcome {
  malignant: number;
  /** Malignant, accepted and not flagged. */
  silentMisses: number;
  benignAccepted: number;
  /** Benign, accepted and flagged. */
  falseAlarms: number;
}

export function outcomesAt(
  records: readonly ThresholdRecord[],
  threshold: number,
): Record<string, SetOutcome> {
  const out: Record<string, SetOutcome> = {};
  for (const r of records) {
    const o = (out[r.set] ??= { malignant: 0, silentMisses: 0, benignAccepted: 0, falseAlarms: 0 });
    const flagged = r.pBall >= threshold;
    const accepted = acceptedAt(r, threshold);
    if (r.malignant) {
      o.malignant++;
      if (accepted && !flagged) o.silentMisses++;
    } else if (accepted) {
      o.benignAccepted++;
      if (flagged) o.falseAlarms++;
    }
  }
  return out;
}
