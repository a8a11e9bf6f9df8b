/**
 * The model's own view of an image: how far its pooled features (the classifier head's input)
 * lie from the training classes. Mahalanobis distance to the nearest class mean under a shared
 * within-class covariance (Lee et al. 2018), with that covariance in probabilistic-PCA form:
 * the top `components` directions keep their own variances and every other direction shares the
 * mean of the remaining variance. So the file stays small (the class means and k basis vectors
 * instead of a 1280 × 1280 matrix), and a feature vector that leaves the training subspace
 * still scores far, through the residual term.
 *
 * score = min over classes c of [ Σ_j (v_j·(x − μ_c))² / λ_j + (‖x − μ_c‖² − Σ_j (v_j·(x − μ_c))²) / σ² ] / D
 * ≈ 1 for training images (a chi-square over D dimensions divided by D).
 */

export interface FeatureModel {
  /** Feature dimension D. */
  dim: number;
  /** Number of classes C. */
  classCount: number;
  /** Number of principal directions k. */
  components: number;
  /** C × D class means, row-major. */
  means: Float32Array;
  /** k × D orthonormal directions of the within-class covariance, row-major, largest first. */
  basis: Float32Array;
  /** k variances along the basis directions. */
  variances: Float32Array;
  /** Mean variance of the directions outside the basis. */
  residualVariance: number;
}

/** Per-model values computed once so that scoring one image is one k × D and one C × D product. */
export interface FeatureScorer {
  model: FeatureModel;
  /** C × k: the class means projected on the basis. */
  projectedMeans: Float64Array;
  /** C: squared norms of the class means. */
  meanNorms: Float64Array;
  /** k: scratch for the projected features. */
  projected: Float64Array;
  /** C: each class's distance from the last image scored. */
  distances: Float64Array;
}

export interface FeatureDistance {
  /** Normalised squared distance to the nearest class (see the module comment). */
  score: number;
  /** Index of the nearest class. */
  nearestClass: number;
  /** Every class's normalised squared distance: the scorer's scratch, valid until its next call. */
  distances: Float64Array;
}

export function createFeatureScorer(model: FeatureModel): FeatureScorer {
  const { dim, classCount, components, means, basis } = model;
  const projectedMeans = new Float64Array(classCount * components);
  const meanNorms = new Float64Array(classCount);
  for (let c = 0; c < classCount; c++) {
    const mean = means.subarray(c * dim, (c + 1) * dim);
    meanNorms[c] = dot(mean, mean, dim);
    for (let j = 0; j < components; j++)
      projectedMeans[c * components + j] = dot(basis.subarray(j * dim, (j + 1) * dim), mean, dim);
  }
  return {
    model,
    projectedMeans,
    meanNorms,
    projected: new Float64Array(components),
    distances: new Float64Array(classCount),
  };
}

function dot(a: ArrayLike<number>, b: ArrayLike<number>, n: number): number {
  let s = 0;
  for (let i = 0; i < n; i++) s += a[i]! * b[i]!;
  return s;
}

/** Distance of one feature vector (length D) from the training classes. */
export function featureDistance(scorer: FeatureScorer, features: Float32Array): FeatureDistance {
  const { dim, classCount, components, means, basis, variances, residualVariance } = scorer.model;
  if (features.length !== dim)
    throw new RangeError(`featureDistance: expected ${dim} features, got ${features.length}`);
  const projected = scorer.projected;
  for (let j = 0; j < components; j++)
    projected[j] = dot(basis.subarray(j * dim, (j + 1) * dim), features, dim);
  const norm = dot(features, features, dim);
  let best = Number.POSITIVE_INFINITY;
  let nearestClass = 0;
  for (let c = 0; c < classCount; c++) {
    const distanceSquared =
      norm - 2 * dot(features, means.subarray(c * dim, (c + 1) * dim), dim) + scorer.meanNorms[c]!;
    let inSubspace = 0;
    let whitened = 0;
    for (let j = 0; j < components; j++) {
      const z = projected[j]! - scorer.projectedMeans[c * components + j]!;
      inSubspace += z * z;
      whitened += (z * z) / variances[j]!;
    }
    const residual = Math.max(0, distanceSquared - inSubspace);
    const score = (whitened + residual / residualVariance) / dim;
    scorer.distances[c] = score;
    if (score < best) {
      best = score;
      nearestClass = c;
    }
  }
  return { score: best, nearestClass, distances: scorer.distances };
}

/**
 * The stats file beside the model: float32 little-endian, in this order: means (C × D), basis
 * (k × D), variances (k), residual variance (1). Its dimensions are in model.json's gate section.
 */
export function serializeFeatureModel(model: FeatureModel): Buffer {
  const { dim, classCount, components } = model;
  const values = new Float32Array(classCount * dim + components * dim + components + 1);
  values.set(model.means, 0);
  values.set(model.basis, classCount * dim);
  values.set(model.variances, classCount * dim + components * dim);
  values[values.length - 1] = model.residualVariance;
  const out = Buffer.alloc(values.length * 4);
  for (let i = 0; i < values.length; i++) out.writeFloatLE(values[i]!, i * 4);
  return out;
}

export function parseFeatureModel(
  bytes: Uint8Array,
  shape: { dim: number; classCount: number; components: number },
): FeatureModel {
  const { dim, classCount, components } = shape;
  const count = classCount * dim + components * dim + components + 1;
  if (bytes.length !== count * 4)
    throw new RangeError(
      `feature statistics: expected ${count * 4} bytes for ${classCount}x${dim} + ${components}x${dim}, got ${bytes.length}`,
    );
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const values = new Float32Array(count);
  for (let i = 0; i < count; i++) values[i] = view.getFloat32(i * 4, true);
  const model: FeatureModel = {
    dim,
    classCount,
    components,
    means: values.slice(0, classCount * dim),
    basis: values.slice(classCount * dim, classCount * dim + components * dim),
    variances: values.slice(classCount * dim + components * dim, count - 1),
    residualVariance: values[count - 1]!,
  };
  if (!(model.residualVariance > 0) || model.variances.some((v) => !(v > 0)))
    throw new RangeError('feature statistics: variances must be positive');
  return model;
}
