import { extname } from 'node:path';
import { DOMAIN_REASON_TEXT } from '../../domain/applicability.js';
import type { Result, Review } from '../../domain/result.js';
import { asksForReview } from '../../domain/review.js';
import { decisionLabel } from '../../infer/decision.js';
import type { Flag, OutOfDomainView, ResultDetail, ResultView, ReviewView } from './deps.js';

/** What an out-of-domain result says instead of a verdict. */
export const CANNOT_SCREEN = 'Cannot screen: unlike the images the model was trained on';

/** Originals a browser can show as they are (TIFF is not one: the thumbnail stands in). */
const BROWSER_IMAGES = new Set(['.jpg', '.jpeg', '.png', '.bmp', '.webp', '.gif']);

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

export function reviewView(r: Review, modelClass: string | null): ReviewView {
  return {
    id: r.id,
    resultId: r.resultId,
    reviewer: r.reviewer,
    class: r.className,
    modelClass,
    note: r.note ?? '',
    at: new Date(r.createdAt).toISOString(),
    modelVersion: r.modelVersion,
    threshold: r.threshold,
  };
}

function outOfDomainView(r: Result): OutOfDomainView | null {
  if (r.status !== 'out_of_domain') return null;
  const reasons = r.domain?.reasons ?? [];
  return {
    message: CANNOT_SCREEN,
    reasons: reasons.map((code) => ({ code, text: DOMAIN_REASON_TEXT[code] })),
    scores: r.domain?.scores ?? {},
  };
}

/** The stored decision's word (src/infer/decision.ts); none for a failed or out-of-domain image. */
function flagOf(r: Result): Flag | null {
  if (r.status !== 'done') return null;
  return decisionLabel({ flag: r.flag === true, needsReview: r.needsReview === true });
}

/** A person must be able to look at an image the model could not screen, so its original is shown too. */
export function originalViewable(r: Result): boolean {
  return (
    (r.status === 'done' || r.status === 'out_of_domain') && BROWSER_IMAGES.has(extname(r.path).toLowerCase())
  );
}

export function toResultView(r: Result): ResultView {
  return {
    id: r.id,
    file: r.file,
    sha256: r.sha256 ?? '',
    status: r.status,
    source: r.origin,
    class: r.className,
    probabilities: r.probabilities,
    pBall: r.pBall,
    flag: flagOf(r),
    outOfDomain: outOfDomainView(r),
    // In the review queue: it asks for a person (a positive or uncertain screen, or a withheld
    // benign call) and none has looked yet.
    needsReview: asksForReview(r) && r.review === null,
    review: r.review ? reviewView(r.review, r.className) : null,
    error: r.error,
    timings: (r.timings ?? {}) as Record<string, number>,
    capturedAt: iso(r.capturedAt),
    processedAt: iso(r.processedAt),
    images: {
      original: originalViewable(r) || r.media,
      thumbnail: r.media,
      mask: r.media,
      segmented: r.media,
    },
  };
}

function deliveryState(queued: number, sent: number, mqttOn: boolean): ResultDetail['delivery']['state'] {
  if (queued === 0) return mqttOn ? 'pending' : 'off';
  if (sent === queued) return 'sent';
  return sent === 0 ? 'pending' : 'partial';
}

/** The detail view: the list view plus model, image, mask numbers, delivery and review history. */
export function toResultDetail(r: Result, reviews: readonly Review[], mqttOn: boolean): ResultDetail {
  const { queued, sent } = r.delivery;
  const image = r.image ?? {};
  const maskStats: Record<string, number> = {};
  for (const [k, v] of Object.entries(r.maskStats ?? {})) if (typeof v === 'number') maskStats[k] = v;
  return {
    ...toResultView(r),
    model: r.modelName ? { name: r.modelName, version: r.modelVersion ?? '' } : null,
    threshold: r.threshold,
    provider:
      typeof image.executionProvider === 'string'
        ? `${image.executionProvider}${typeof image.precision === 'string' ? ` (${image.precision})` : ''}`
        : null,
    width: typeof image.width === 'number' ? image.width : null,
    height: typeof image.height === 'number' ? image.height : null,
    maskStats: Object.keys(maskStats).length ? maskStats : null,
    delivery: { state: deliveryState(queued, sent, mqttOn), queued, sent },
    reviews: reviews.map((v) => reviewView(v, r.className)),
  };
}
