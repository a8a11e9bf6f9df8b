/**
 * Fits the FeatureModel of feature-distance.ts from training features: class means, the shared
 * within-class covariance, its top directions by subspace iteration (a fixed start, so the same
 * features always give the same file) and the mean variance left outside them. Offline only
 * (scripts/fit-gate.ts); the daemon only reads the result.
 */
import type { FeatureModel } from './feature-distance.js';

export interface FitFeatureOptions {
  components: number;
  /** Subspace iterations; the leading directions converge well before this. */
  iterations?: number;
}

/** rows: N feature vectors of length D; labels: class index of each, 0..classCount-1. */
export function fitFeatureModel(
  rows: readonly Float32Array[],
  labels: readonly number[],
  classCount: number,
  opts: FitFeatureOptions,
): FeatureModel {
  const n = rows.length;
  if (n === 0 || n !== labels.length) throw new RangeError('fitFeatureModel: need one label per feature row');
  const dim = rows[0]!.length;
  const k = Math.min(opts.components, dim - 1);
  const means = new Float64Array(classCount * dim);
  const counts = new Float64Array(classCount);
  rows.forEach((row, i) => {
    const c = labels[i]!;
    counts[c]! += 1;
    for (let d = 0; d < dim; d++) means[c * dim + d]! += row[d]!;
  });
  for (let c = 0; c < classCount; c++) {
    if (counts[c] === 0) throw new RangeError(`fitFeatureModel: class ${c} has no rows`);
    for (let d = 0; d < dim; d++) means[c * dim + d]! /= counts[c]!;
  }
  // Shared within-class covariance (upper triangle accumulated, then mirrored).
  const cov = new Float64Array(dim * dim);
  const centred = new Float64Array(dim);
  rows.forEach((row, i) => {
    const c = labels[i]!;
    for (let d = 0; d < dim; d++) centred[d] = row[d]! - means[c * dim + d]!;
    for (let a = 0; a < dim; a++) {
      const va = centred[a]!;
      if (va === 0) continue;
      const base = a * dim;
      for (let b = a; b < dim; b++) cov[base + b]! += va * centred[b]!;
    }
  });
  let trace = 0;
  for (let a = 0; a < dim; a++) {
    for (let b = a; b < dim; b++) {
      const v = cov[a * dim + b]! / n;
      cov[a * dim + b] = v;
      cov[b * dim + a] = v;
    }
    trace += cov[a * dim + a]!;
  }
  const { vectors, values } = topEigen(cov, dim, k, opts.iterations ?? 60);
  let kept = 0;
  for (const v of values) kept += v;
  // A floor keeps the whitening finite where a direction never varied in training.
  const floor = Math.max(1e-12, (trace / dim) * 1e-6);
  const residualVariance = Math.max(floor, (trace - kept) / (dim - k));
  return {
    dim,
    classCount,
    components: k,
    means: Float32Array.from(means),
    basis: Float32Array.from(vectors),
    variances: Float32Array.from(values, (v) => Math.max(v, floor)),
    residualVariance,
  };
}

/** Top-k eigenpairs of a symmetric dim × dim matrix: subspace iteration, then Rayleigh–Ritz. */
function topEigen(
  matrix: Float64Array,
  dim: number,
  k: number,
  iterations: number,
): { vectors: Float64Array; values: number[] } {
  const block = Math.min(dim, k + 8);
  // Fixed start: row r has a 1 at r and a deterministic small pattern elsewhere.
  let q = new Float64Array(block * dim);
  for (let r = 0; r < block; r++)
    for (let d = 0; d < dim; d++)
      q[r * dim + d] = (d === r ? 1 : 0) + 0.01 * Math.sin(1 + r * 7.31 + d * 0.917);
  orthonormaliseRows(q, block, dim);
  const product = new Float64Array(block * dim);
  for (let it = 0; it < iterations; it++) {
    multiplyRows(matrix, q, product, block, dim);
    [q] = [Float64Array.from(product)];
    orthonormaliseRows(q, block, dim);
  }
  // Rayleigh–Ritz: T = Q A Qᵀ (block × block), its eigenvectors rotate Q.
  multiplyRows(matrix, q, product, block, dim);
  const t = new Float64Array(block * block);
  for (let i = 0; i < block; i++)
    for (let j = 0; j < block; j++) {
      let s = 0;
      for (let d = 0; d < dim; d++) s += q[i * dim + d]! * product[j * dim + d]!;
      t[i * block + j] = s;
    }
  for (let i = 0; i < block; i++)
    for (let j = i + 1; j < block; j++) {
      const avg = (t[i * block + j]! + t[j * block + i]!) / 2;
      t[i * block + j] = avg;
      t[j * block + i] = avg;
    }
  const { values, vectors: rotation } = jacobiEigen(t, block);
  const order = values.map((v, i) => [v, i] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]);
  const vectors = new Float64Array(k * dim);
  const top: number[] = [];
  for (let r = 0; r < k; r++) {
    const [value, col] = order[r]!;
    top.push(value);
    for (let i = 0; i < block; i++) {
      const w = rotation[i * block + col]!;
      if (w === 0) continue;
      for (let d = 0; d < dim; d++) vectors[r * dim + d]! += w * q[i * dim + d]!;
    }
  }
  return { vectors, values: top };
}

/** out[r] = A · rows[r] for a symmetric A. */
function multiplyRows(
  a: Float64Array,
  rows: Float64Array,
  out: Float64Array,
  count: number,
  dim: number,
): void {
  for (let r = 0; r < count; r++) {
    const base = r * dim;
    for (let i = 0; i < dim; i++) {
      let s = 0;
      const ai = i * dim;
      for (let d = 0; d < dim; d++) s += a[ai + d]! * rows[base + d]!;
      out[base + i] = s;
    }
  }
}

/** Modified Gram–Schmidt on the rows, in place. */
function orthonormaliseRows(rows: Float64Array, count: number, dim: number): void {
  for (let r = 0; r < count; r++) {
    const br = r * dim;
    for (let p = 0; p < r; p++) {
      const bp = p * dim;
      let s = 0;
      for (let d = 0; d < dim; d++) s += rows[br + d]! * rows[bp + d]!;
      for (let d = 0; d < dim; d++) rows[br + d]! -= s * rows[bp + d]!;
    }
    let norm = 0;
    for (let d = 0; d < dim; d++) norm += rows[br + d]! ** 2;
    norm = Math.sqrt(norm) || 1;
    for (let d = 0; d < dim; d++) rows[br + d]! /= norm;
  }
}

/** Cyclic Jacobi eigen-decomposition of a small symmetric matrix; vectors are columns. */
function jacobiEigen(input: Float64Array, n: number): { values: number[]; vectors: Float64Array } {
  const a = Float64Array.from(input);
  const v = new Float64Array(n * n);
  for (let i = 0; i < n; i++) v[i * n + i] = 1;
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    for (let p = 0; p < n; p++) for (let q = p + 1; q < n; q++) off += a[p * n + q]! ** 2;
    if (off < 1e-30) break;
    for (let p = 0; p < n; p++)
      for (let q = p + 1; q < n; q++) {
        const apq = a[p * n + q]!;
        if (Math.abs(apq) < 1e-300) continue;
        const theta = (a[q * n + q]! - a[p * n + p]!) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let k = 0; k < n; k++) {
          const akp = a[k * n + p]!;
          const akq = a[k * n + q]!;
          a[k * n + p] = c * akp - s * akq;
          a[k * n + q] = s * akp + c * akq;
        }
        for (let k = 0; k < n; k++) {
          const apk = a[p * n + k]!;
          const aqk = a[q * n + k]!;
          a[p * n + k] = c * apk - s * aqk;
          a[q * n + k] = s * apk + c * aqk;
        }
        for (let k = 0; k < n; k++) {
          const vkp = v[k * n + p]!;
          const vkq = v[k * n + q]!;
          v[k * n + p] = c * vkp - s * vkq;
          v[k * n + q] = s * vkp + c * vkq;
        }
      }
  }
  return { values: Array.from({ length: n }, (_, i) => a[i * n + i]!), vectors: v };
}
