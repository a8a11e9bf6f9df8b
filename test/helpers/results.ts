/**
 * Results for tests that need rows. classifiedResult: a classified result as the pipeline hands
 * it to the store, a Pro-B image flagged at P(B-ALL) 0.9, named after its sha256; `over` changes
 * any field.
 */
import type { NewResult } from '../../src/domain/result.js';
import { assignmentHint } from '../../src/domain/specimen-assignment.js';
import type { Committed, Store } from '../../src/store/index.js';

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

let landed = 0;

/**
 * A benign capture at time `at` stored and assigned by its sub-folder (`SPECIMEN/field.jpg`), as
 * the pipeline does with `specimen.assign: folder`, in one transaction; `over` changes any field.
 */
export function landInFolder(
  store: Store,
  file: string,
  at: number,
  over: Partial<NewResult> = {},
): Committed {
  landed += 1;
  const r: NewResult = {
    status: 'done',
    sha256: `${landed}`.padStart(64, 'f'),
    path: `/captures/${file}`,
    file,
    origin: 'capture',
    size: 1,
    className: 'Benign',
    pBall: 0.1,
    flag: false,
    capturedAt: at,
    processedAt: at,
    ...over,
  };
  return store.results.commit(
    r,
    null,
    () => [],
    (stored) =>
      store.specimens.assignNewResult(
        stored,
        assignmentHint({ relPath: file, origin: 'capture' }, { assign: 'folder', pattern: null }),
      )?.outbox ?? [],
  );
}
