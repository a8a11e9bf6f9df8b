/**
 * K-means on one byte channel, reproducing scikit-learn 1.2's
 * `KMeans(n_clusters=k, random_state=seed, n_init=10, algorithm="lloyd").fit(values)`, the call
 * in the seed paper's code, but computed on the 256-bin histogram instead of on every pixel.
 *
 * Why reproduce sklearn's procedure rather than solve 1-D K-means exactly: the exact optimum
 * differs from what sklearn returns on a sizeable share of smears (sklearn's ten k-means++
 * restarts stop in a local minimum, and the threshold 141 was tuned on those results), which
 * moved the mask IoU against the authors' pipeline from ~0.95 to the required ≥ 0.97.
 *
 * What is reproduced exactly: numpy's RandomState(seed) stream (one stream shared by the n_init
 * runs, as sklearn does), k-means++ with 2 + floor(ln k) local trials and D² sampling by
 * searchsorted over the cumulative distances IN PIXEL ORDER, Lloyd iterations with strict
 * (labels unchanged) and tolerance (Σ centre shift² ≤ 1e-4 × variance) convergence, the final
 * E-step, empty-cluster relocation, and the best-inertia selection across runs.
 * What is not bit-exact: float rounding order (sklearn centres the data and sums in threads);
 * it can only matter for values exactly half-way between centres or centres exactly on an integer.
 *
 * Cost: per image, one count per pixel (done by the caller's a* pass for kmeansBlocks), then
 * work per distinct value and per 256-pixel block; the only other per-pixel work is the
 * sampling walk inside one block per draw. Every sum keeps the order of the first
 * implementation, so results are bit-identical to it (checked on all 2797 data set images).
 */
import { NumpyRandomState } from './mt19937.js';

const BLOCK_SHIFT = 8; // 256-pixel blocks for the D² sampling search
const BLOCK = 1 << BLOCK_SHIFT;

export interface KMeansScratch {
  values: Int32Array; // distinct values present, ascending
  counts: Float64Array; // their pixel counts
  centred: Float64Array; // value − data mean (sklearn's X − X_mean)
  centredSq: Float64Array;
  closest: Float64Array; // per distinct value: D² to the nearest chosen centre
  trial: Float64Array; // 3 × 256: per candidate of a group of three, per distinct value: new D²
  candidatePot: Float64Array; // per candidate of the group: its potential
  bestTrial: Float64Array;
  distOfValue: Float64Array; // 256: D² per byte value (for the pixel-order walk)
  indexOfValue: Int32Array; // 256: distinct index per byte value, -1 if absent
  /** (blocks + 1) × m: count of each distinct value among the pixels before block b. */
  cumulative: Float64Array;
  blockCount: number;
  /** Results of searchThree: per trial, the block boundary the walk starts at and its D² sum. */
  searchLo: Int32Array;
  searchAcc: Float64Array;
  labels: Int32Array;
  labelsOld: Int32Array;
  bestLabels: Int32Array;
}

export function createKMeansScratch(pixelCount: number): KMeansScratch {
  const blockCount = Math.max(1, Math.ceil(pixelCount / BLOCK));
  return {
    values: new Int32Array(256),
    counts: new Float64Array(256),
    centred: new Float64Array(256),
    centredSq: new Float64Array(256),
    closest: new Float64Array(256),
    trial: new Float64Array(3 * 256),
    candidatePot: new Float64Array(3),
    bestTrial: new Float64Array(256),
    distOfValue: new Float64Array(256),
    indexOfValue: new Int32Array(256),
    cumulative: new Float64Array((blockCount + 1) * 256),
    blockCount,
    searchLo: new Int32Array(3),
    searchAcc: new Float64Array(3),
    labels: new Int32Array(256),
    labelsOld: new Int32Array(256),
    bestLabels: new Int32Array(256),
  };
}

export interface KMeansOptions {
  k: number;
  nInit: number;
  maxIterations: number;
  seed: number;
  /** sklearn's `tol` (relative to the data variance). */
  tol?: number;
}

export interface KMeansResult {
  /** Cluster centres in sklearn's order (not sorted). */
  centres: Float64Array;
  /** Centre of the cluster each byte value belongs to (NaN for values not present). */
  centreOfValue: Float64Array;
  inertia: number;
}

/**
 * K-means on the bytes `data[0..n)` (pixel order matters for the k-means++ sampling, exactly as
 * in sklearn), for callers that counted the bytes per block of 256 while producing them
 * (rgbToAStar8Counted's layout: 512 entries per block, a value's count in block b is
 * blockCounts[512·b + v] + blockCounts[512·b + 256 + v]); every byte lies in
 * [lowest, highest]. The image histogram is derived from the counts and, when `histogramOut`
 * is given, written there.
 */
export function kmeansBlocks(
  data: Uint8Array,
  n: number,
  blockCounts: Uint8Array,
  lowest: number,
  highest: number,
  opts: KMeansOptions,
  scratch: KMeansScratch = createKMeansScratch(n),
  centreOfValue: Float64Array = new Float64Array(256),
  histogramOut?: Uint32Array,
): KMeansResult {
  const s = scratch.blockCount * BLOCK >= n ? scratch : createKMeansScratch(n);
  const { values, counts } = s;
  const k = opts.k;

  // Cumulative per-block counts of each value: the cumulative D² up to any block boundary is
  // Σ_v D²_v × count_v, so the sampling search is a binary search over blocks plus a walk
  // inside one block instead of a pass over all pixels. Rows cover the values lowest..highest
  // (width w); the last row is the image histogram.
  const blocks = Math.ceil(n / BLOCK);
  const w = highest - lowest + 1;
  const cumulative = s.cumulative;
  accumulateBlockCounts(cumulative, blockCounts, blocks, lowest, w);
  const totals = blocks * w;

  const { m, total, sum } = collectValues(s, cumulative.subarray(totals), lowest, highest, n, histogramOut);
  centreOfValue.fill(NaN);
  if (m === 0 || n === 0) return { centres: new Float64Array(0), centreOfValue, inertia: 0 };
  const mean = sum / total;
  // sklearn subtracts the data mean first and computes every distance in those coordinates with
  // the expansion ||c||² − 2·x·c (+ ||x||²). With integer-valued data and k-means++ centres that
  // are data points, exact ties between two centres are common in the first E-step, and it is
  // this rounding that breaks them; so the same float operations are used here.
  const x = s.centred;
  const xx = s.centredSq;
  for (let j = 0; j < m; j++) {
    x[j] = values[j]! - mean;
    xx[j] = x[j]! * x[j]!;
  }
  let variance = 0;
  for (let j = 0; j < m; j++) variance += counts[j]! * xx[j]!;
  variance /= total;
  const tol = variance * (opts.tol ?? 1e-4);
  // D² per byte value for the search and the walk; values that do not occur stay 0, so in the
  // search's sums over lowest..highest they add exact zeros (the sums over the occurring
  // values, in ascending order, are unchanged).
  s.distOfValue.fill(0);

  const rs = new NumpyRandomState(opts.seed);
  const sampling: Sampling = { data, n, w, lowest, blocks };
  const centres = new Float64Array(k);
  const lloydWork = {
    centresNew: new Float64Array(k),
    weights: new Float64Array(k),
    shift: new Float64Array(k),
  };
  const bestCentres = new Float64Array(k);
  let bestInertia = Infinity;
  let haveBest = false;

  for (let run = 0; run < opts.nInit; run++) {
    kmeansPlusPlus(s, rs, sampling, m, x, xx, k, centres);
    const inertia = lloyd(s, x, m, centres, k, opts.maxIterations, tol, lloydWork);
    const labels = s.labels;
    if (!haveBest || (inertia < bestInertia && !sameClustering(labels, s.bestLabels, m, k))) {
      haveBest = true;
      bestInertia = inertia;
      bestCentres.set(centres);
      s.bestLabels.set(labels.subarray(0, m));
    }
  }
  // Back to a* units (sklearn: best_centers += X_mean).
  for (let c = 0; c < k; c++) bestCentres[c] = bestCentres[c]! + mean;
  for (let j = 0; j < m; j++) centreOfValue[values[j]!] = bestCentres[s.bestLabels[j]!]!;
  return { centres: bestCentres, centreOfValue, inertia: bestInertia };
}

/**
 * Row b + 1 of `cumulative` (width w, values lowest..highest) = row b + the counts of block b
 * (both tables of rgbToAStar8Counted's layout); row 0 is zeros, the last row the histogram.
 */
function accumulateBlockCounts(
  cumulative: Float64Array,
  blockCounts: Uint8Array,
  blocks: number,
  lowest: number,
  w: number,
): void {
  for (let v = 0; v < w; v++) cumulative[v] = 0;
  for (let b = 0; b < blocks; b++) {
    const row = (b + 1) * w;
    const prev = row - w;
    const even = b * 2 * BLOCK + lowest;
    const odd = even + BLOCK;
    for (let v = 0; v < w; v++) {
      cumulative[row + v] = cumulative[prev + v]! + blockCounts[even + v]! + blockCounts[odd + v]!;
    }
  }
}

/**
 * The distinct values present (ascending) into s.values / s.counts / s.indexOfValue, from the
 * histogram row `histogram` (values lowest..highest), copied to `histogramOut` when given.
 * Returns how many there are, their pixel total and the sum of count × value.
 */
function collectValues(
  s: KMeansScratch,
  histogram: Float64Array,
  lowest: number,
  highest: number,
  n: number,
  histogramOut: Uint32Array | undefined,
): { m: number; total: number; sum: number } {
  const { values, counts, indexOfValue } = s;
  let m = 0;
  let total = 0;
  let sum = 0;
  indexOfValue.fill(-1);
  if (histogramOut !== undefined) histogramOut.fill(0);
  for (let v = lowest; v <= highest; v++) {
    const c = n > 0 ? histogram[v - lowest]! : 0;
    if (c > 0) {
      values[m] = v;
      counts[m] = c;
      indexOfValue[v] = m;
      m++;
      total += c;
      sum += c * v;
      if (histogramOut !== undefined) histogramOut[v] = c;
    }
  }
  return { m, total, sum };
}

/** The pixels and the block grid the k-means++ sampling searches (see kmeansBlocks). */
interface Sampling {
  data: Uint8Array;
  n: number;
  /** Values lowest..highest: the width of a row of s.cumulative. */
  w: number;
  lowest: number;
  blocks: number;
}

/**
 * sklearn _kmeans_plusplus on the distinct values (centred coordinates `x`, squares `xx`,
 * pixel counts in s.counts): writes k initial centres into `centres`, drawing from `rs`.
 */
function kmeansPlusPlus(
  s: KMeansScratch,
  rs: NumpyRandomState,
  sampling: Sampling,
  m: number,
  x: Float64Array,
  xx: Float64Array,
  k: number,
  centres: Float64Array,
): void {
  const { data, n, w, lowest, blocks } = sampling;
  const { values, counts, indexOfValue, closest, distOfValue } = s;
  const trials = 2 + Math.floor(Math.log(k));
  const randVals = new Float64Array(trials);
  const candidateIds = new Int32Array(trials);
  const firstIndex = indexOfValue[data[rs.randint(n)]!]!;
  centres[0] = x[firstIndex]!;
  let pot = 0;
  for (let j = 0; j < m; j++) {
    const d = sqDistance(x[firstIndex]!, xx[firstIndex]!, x[j]!, xx[j]!);
    closest[j] = d;
    pot += counts[j]! * d;
  }
  for (let c = 1; c < k; c++) {
    for (let t = 0; t < trials; t++) randVals[t] = rs.nextDouble() * pot;
    // searchsorted(cumsum(closest_dist_sq in pixel order), randVals), side='left':
    // the first pixel whose cumulative D² reaches the random value.
    for (let j = 0; j < m; j++) distOfValue[values[j]!] = closest[j]!;
    // The trials' searches run three at a time in lockstep so that their dot products
    // (each summed in the same order as a lone search would) overlap in the CPU.
    for (let t0 = 0; t0 < trials; t0 += 3) {
      searchThree(s, w, lowest, blocks, randVals, t0, Math.min(trials, t0 + 3));
      for (let t = t0; t < trials && t < t0 + 3; t++) {
        const target = randVals[t]!;
        if (!(target > 0)) {
          candidateIds[t] = 0;
          continue;
        }
        const lo = s.searchLo[t - t0]!;
        let acc = s.searchAcc[t - t0]!;
        let found = n - 1; // numerical overshoot: sklearn clips to the last index
        for (let i = lo << BLOCK_SHIFT; i < n; i++) {
          acc += distOfValue[data[i]!]!;
          if (acc >= target) {
            found = i;
            break;
          }
        }
        candidateIds[t] = found;
      }
    }
    // Each candidate's potential Σ count × min(D², D²_to_candidate), three candidates per
    // pass (same per-candidate summation order); the lowest wins, the first on a tie.
    let bestPot = Infinity;
    let bestValue = 0;
    let bestOffset = -1; // in s.trial, or -1: in s.bestTrial
    for (let t0 = 0; t0 < trials; t0 += 3) {
      const t1 = Math.min(trials, t0 + 3);
      potentialsOfThree(s, m, candidateIds, t0, t1, data);
      for (let t = t0; t < t1; t++) {
        const candPot = s.candidatePot[t - t0]!;
        if (candPot < bestPot) {
          bestPot = candPot;
          bestValue = x[indexOfValue[data[candidateIds[t]!]!]!]!;
          bestOffset = t - t0;
          // A later group overwrites the trial buffers: keep the winner.
          if (t1 < trials) {
            const trial = s.trial;
            const keep = s.bestTrial;
            for (let j = 0; j < m; j++) keep[j] = trial[bestOffset * 256 + j]!;
            bestOffset = -1;
          }
        }
      }
    }
    pot = bestPot;
    if (bestOffset < 0) {
      for (let j = 0; j < m; j++) closest[j] = s.bestTrial[j]!;
    } else {
      const from = bestOffset * 256;
      for (let j = 0; j < m; j++) closest[j] = s.trial[from + j]!;
    }
    centres[c] = bestValue;
  }
}

/**
 * sklearn _kmeans_single_lloyd from `centres` (updated in place): E- and M-steps until the
 * labels stop changing (strict convergence) or the centres move less than `tol` in total, then
 * the final E-step when not strict. Leaves the labels of the distinct values in s.labels and
 * returns the inertia (Σ count × squared distance to the own centre).
 */
function lloyd(
  s: KMeansScratch,
  x: Float64Array,
  m: number,
  centres: Float64Array,
  k: number,
  maxIterations: number,
  tol: number,
  work: { centresNew: Float64Array; weights: Float64Array; shift: Float64Array },
): number {
  const { counts } = s;
  const { centresNew, weights, shift } = work;
  const labels = s.labels;
  const labelsOld = s.labelsOld;
  labelsOld.fill(-1, 0, m);
  let strict = false;
  for (let iter = 0; iter < maxIterations; iter++) {
    assignLabels(x, m, centres, k, labels);
    centresNew.fill(0);
    weights.fill(0);
    for (let j = 0; j < m; j++) {
      const c = labels[j]!;
      centresNew[c] = centresNew[c]! + counts[j]! * x[j]!;
      weights[c] = weights[c]! + counts[j]!;
    }
    relocateEmptyClusters(x, counts, m, centres, centresNew, weights, labels, k);
    for (let c = 0; c < k; c++) {
      if (weights[c]! > 0) centresNew[c] = centresNew[c]! / weights[c]!;
      // sklearn leaves a still-empty cluster's (zeroed) centre as is.
      shift[c] = Math.abs(centresNew[c]! - centres[c]!);
    }
    centres.set(centresNew);
    let same = true;
    for (let j = 0; j < m; j++) {
      if (labels[j] !== labelsOld[j]) {
        same = false;
        break;
      }
    }
    if (same) {
      strict = true;
      break;
    }
    let shiftTotal = 0;
    for (let c = 0; c < k; c++) shiftTotal += shift[c]! * shift[c]!;
    if (shiftTotal <= tol) break;
    labelsOld.set(labels.subarray(0, m));
  }
  if (!strict) assignLabels(x, m, centres, k, labels);
  let inertia = 0;
  for (let j = 0; j < m; j++) {
    const d = x[j]! - centres[labels[j]!]!;
    inertia += counts[j]! * d * d;
  }
  return inertia;
}

/**
 * For up to three sampling targets (targets[t0..t1)), the largest block boundary b whose
 * cumulative D² (Σ_v cumulative[b][v] × D²_v over v = lowest..highest, in that order) is below
 * the target, and
 * that sum (0 at b = 0): the binary search of a lone trial, three run in lockstep. The sums are
 * monotone in b, so the boundary found does not depend on the search order. Targets ≤ 0 are
 * left at b = 0 (the caller picks pixel 0 for them).
 */
function searchThree(
  s: KMeansScratch,
  w: number,
  lowest: number,
  blocks: number,
  targets: Float64Array,
  t0: number,
  t1: number,
): void {
  const cumulative = s.cumulative;
  const dist = s.distOfValue;
  const tA = targets[t0]!;
  const tB = t0 + 1 < t1 ? targets[t0 + 1]! : 0;
  const tC = t0 + 2 < t1 ? targets[t0 + 2]! : 0;
  let loA = 0;
  let loB = 0;
  let loC = 0;
  let hiA = tA > 0 ? blocks : 0;
  let hiB = tB > 0 ? blocks : 0;
  let hiC = tC > 0 ? blocks : 0;
  let accA = 0;
  let accB = 0;
  let accC = 0;
  while (loA < hiA || loB < hiB || loC < hiC) {
    // A finished search keeps evaluating its own boundary (harmless, keeps the loop simple).
    const midA = loA < hiA ? (loA + hiA + 1) >> 1 : loA;
    const midB = loB < hiB ? (loB + hiB + 1) >> 1 : loB;
    const midC = loC < hiC ? (loC + hiC + 1) >> 1 : loC;
    const rowA = midA * w;
    const rowB = midB * w;
    const rowC = midC * w;
    let sumA = 0;
    let sumB = 0;
    let sumC = 0;
    for (let v = 0; v < w; v++) {
      const d = dist[lowest + v]!;
      sumA += cumulative[rowA + v]! * d;
      sumB += cumulative[rowB + v]! * d;
      sumC += cumulative[rowC + v]! * d;
    }
    if (loA < hiA) {
      if (sumA < tA) {
        loA = midA;
        accA = sumA;
      } else hiA = midA - 1;
    }
    if (loB < hiB) {
      if (sumB < tB) {
        loB = midB;
        accB = sumB;
      } else hiB = midB - 1;
    }
    if (loC < hiC) {
      if (sumC < tC) {
        loC = midC;
        accC = sumC;
      } else hiC = midC - 1;
    }
  }
  s.searchLo[0] = loA;
  s.searchLo[1] = loB;
  s.searchLo[2] = loC;
  s.searchAcc[0] = accA;
  s.searchAcc[1] = accB;
  s.searchAcc[2] = accC;
}

/**
 * For the candidates candidateIds[t0..t1) (at most three): per distinct value the D² it would
 * have with the candidate added (min of its current D² and its D² to the candidate) into
 * s.trial[256·(t − t0) + j], and the candidate's potential Σ_j count_j × that, summed in j
 * order, into s.candidatePot[t − t0]. Three in one pass so the three sums overlap in the CPU.
 */
function potentialsOfThree(
  s: KMeansScratch,
  m: number,
  candidateIds: Int32Array,
  t0: number,
  t1: number,
  data: Uint8Array,
): void {
  const { centred: x, centredSq: xx, counts, closest, trial, indexOfValue } = s;
  const a = indexOfValue[data[candidateIds[t0]!]!]!;
  const b = t0 + 1 < t1 ? indexOfValue[data[candidateIds[t0 + 1]!]!]! : a;
  const c = t0 + 2 < t1 ? indexOfValue[data[candidateIds[t0 + 2]!]!]! : a;
  const xa = x[a]!;
  const xxa = xx[a]!;
  const xb = x[b]!;
  const xxb = xx[b]!;
  const xc = x[c]!;
  const xxc = xx[c]!;
  let potA = 0;
  let potB = 0;
  let potC = 0;
  for (let j = 0; j < m; j++) {
    const xj = x[j]!;
    const xxj = xx[j]!;
    const current = closest[j]!;
    const count = counts[j]!;
    const dA = sqDistance(xa, xxa, xj, xxj);
    const dB = sqDistance(xb, xxb, xj, xxj);
    const dC = sqDistance(xc, xxc, xj, xxj);
    const ddA = dA < current ? dA : current;
    const ddB = dB < current ? dB : current;
    const ddC = dC < current ? dC : current;
    trial[j] = ddA;
    trial[256 + j] = ddB;
    trial[512 + j] = ddC;
    potA += count * ddA;
    potB += count * ddB;
    potC += count * ddC;
  }
  s.candidatePot[0] = potA;
  s.candidatePot[1] = potB;
  s.candidatePot[2] = potC;
}

/** sklearn _euclidean_distances(..., squared=True) for one feature: −2·a·b + ||a||² + ||b||², ≥ 0. */
function sqDistance(a: number, aa: number, b: number, bb: number): number {
  const d = -2 * (a * b) + aa + bb;
  return d > 0 ? d : 0;
}

/**
 * Nearest centre per distinct value as sklearn's Lloyd E-step computes it: ||c||² − 2·x·c
 * (no ||x||² term), strict < so the lower cluster index wins a tie.
 */
function assignLabels(
  x: Float64Array,
  m: number,
  centres: Float64Array,
  k: number,
  labels: Int32Array,
): void {
  for (let j = 0; j < m; j++) {
    const v = x[j]!;
    let best = 0;
    let bestDist = Infinity;
    for (let c = 0; c < k; c++) {
      const cc = centres[c]!;
      const d = cc * cc + -2 * (v * cc);
      if (d < bestDist) {
        bestDist = d;
        best = c;
      }
    }
    labels[j] = best;
  }
}

/**
 * sklearn _relocate_empty_clusters_dense: each empty cluster takes one of the pixels farthest
 * from their (old) centre; that pixel's weight leaves its cluster. Works on sums, before averaging.
 */
function relocateEmptyClusters(
  values: Float64Array,
  counts: Float64Array,
  m: number,
  centresOld: Float64Array,
  sums: Float64Array,
  weights: Float64Array,
  labels: Int32Array,
  k: number,
): void {
  let empty = 0;
  for (let c = 0; c < k; c++) if (weights[c] === 0) empty++;
  if (empty === 0) return;
  // Distinct values by distance to their centre, farthest first; each stands for `count` pixels.
  const idx = Array.from({ length: m }, (_, j) => j);
  const dist = (j: number): number => (values[j]! - centresOld[labels[j]!]!) ** 2;
  idx.sort((a, b) => dist(b) - dist(a));
  let pos = 0;
  let usedOfValue = 0;
  for (let c = 0; c < k; c++) {
    if (weights[c] !== 0) continue;
    while (pos < m && usedOfValue >= counts[idx[pos]!]!) {
      pos++;
      usedOfValue = 0;
    }
    if (pos >= m) return;
    const j = idx[pos]!;
    usedOfValue++;
    const old = labels[j]!;
    sums[old] = sums[old]! - values[j]!;
    weights[old] = weights[old]! - 1;
    sums[c] = values[j]!;
    weights[c] = 1;
  }
}

/** sklearn _is_same_clustering: the two labelings are equal up to a permutation of labels. */
function sameClustering(a: Int32Array, b: Int32Array, m: number, k: number): boolean {
  const map = new Int32Array(k).fill(-1);
  for (let j = 0; j < m; j++) {
    const x = a[j]!;
    if (map[x] === -1) map[x] = b[j]!;
    else if (map[x] !== b[j]) return false;
  }
  return true;
}
