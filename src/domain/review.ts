/**
 * Which results a person can review, and which wait for one in the review queue.
 *
 * A review records the class a person sees. The model's verdict is not needed for that: a field
 * the gate withheld still has a picture, and a hematologist who looks at it may want to record
 * what it shows (the export then carries a labelled picture the model could not read, which is
 * what a retraining needs most). Only a file that could not be read at all has nothing to review.
 *
 * The queue holds what asks for a person: a flagged or uncertain verdict, and a benign call
 * withheld because the model's own features contradict it (its reason text says "look at this
 * field yourself"). Other out-of-domain fields (a blank frame, a defocused one, another camera's
 * colours) do not wait there: they say something about the capture, which the dashboard's status
 * and the drift warning report, not about a patient's cells.
 */
import type { DomainReason } from './applicability.js';
import type { Result, ResultStatus } from './result.js';

/** Statuses whose result has a picture the model looked at. */
const REVIEWABLE_STATUSES: readonly ResultStatus[] = ['done', 'out_of_domain'];

/** Out-of-domain reasons that put a withheld field in the review queue. */
export const REVIEW_QUEUE_REASONS: readonly DomainReason[] = ['features_disagree'];

export function isReviewable(status: ResultStatus): boolean {
  return REVIEWABLE_STATUSES.includes(status);
}

/**
 * The result asks for a person, whether or not one has looked yet. The store's review-queue query
 * (src/store/results.ts) says the same in SQL; a test holds the two together.
 */
export function asksForReview(r: Pick<Result, 'status' | 'flag' | 'needsReview' | 'domain'>): boolean {
  if (r.status === 'done') return r.flag === true || r.needsReview === true;
  if (r.status === 'out_of_domain')
    return (r.domain?.reasons ?? []).some((x) => REVIEW_QUEUE_REASONS.includes(x));
  return false;
}
