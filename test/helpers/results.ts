/**
 * A classified result as the pipeline hands it to the store, for tests that need rows: a Pro-B
 * image flagged at P(B-ALL) 0.9, named after its sha256; `over` changes any field.
 */
import type { NewResult } from '../../src/domain/result.js';

export function classifiedResult(sha: string, over: Partial<NewResult> = {}): NewResult {
  return {
    status: 'done',
    sha256: sha,
    path: `/captures/${sha}.jpg`,
    file: `${sha}.jpg`,
    origin: 'capture',
    size: 100,
    className: 'Pro-B',
    classIndex: 3,
    pBall: 0.9,
    flag: true,
    needsReview: false,
    probabilities: { Benign: 0.1, 'Pro-B': 0.9 },
    modelName: 'm',
    modelVersion: '1',
    threshold: 0.5,
    capturedAt: 1,
    processedAt: Date.now(),
    ...over,
  };
}
