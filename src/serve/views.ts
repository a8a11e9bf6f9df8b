import { DOMAIN_REASON_TEXT } from '../domain/applicability.js';
import type { Result } from '../domain/result.js';

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

/** The public JSON shape of a result on /api/results (snake_case, as documented). */
export function resultJson(r: Result) {
  const v = r.review;
  return {
    id: r.id,
    file: r.file,
    sha256: r.sha256,
    status: r.status,
    class: r.className,
    p_ball: r.pBall,
    flag: r.flag,
    needs_review: r.needsReview,
    error: r.error,
    error_kind: r.errorKind,
    probabilities: r.probabilities,
    model: r.modelVersion === null ? null : { name: r.modelName, version: r.modelVersion },
    captured_at: iso(r.capturedAt),
    processed_at: new Date(r.processedAt).toISOString(),
    timings: r.timings,
    attempts: r.attempts,
    origin: r.origin,
    review:
      v === null
        ? null
        : {
            id: v.id,
            result_id: v.resultId,
            reviewer: v.reviewer,
            class: v.className,
            agrees: v.agrees,
            note: v.note,
            created_at: v.createdAt,
          },
    delivery: r.delivery,
    // The gate's judgement; for an out-of-domain image (no class, p_ball or flag) the reasons in
    // words as well. null when the image was never judged.
    domain:
      r.domain === null
        ? null
        : {
            in: r.domain.in,
            reasons: r.domain.reasons,
            reasons_text: r.domain.reasons.map((reason) => DOMAIN_REASON_TEXT[reason]),
            scores: r.domain.scores,
          },
  };
}
