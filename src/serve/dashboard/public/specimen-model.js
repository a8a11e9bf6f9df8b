// What the specimen views show, in words, and the specimen API's JSON read into one shape. The
// API speaks snake_case (like /api/results); live events may wrap the specimen in `after`. The
// views read only what these functions return, so a renamed field is fixed here once.

/** A screen never says "negative" or "normal": at most it found nothing suspicious. */
export const VERDICT_TEXT = {
  suspicious: 'Suspicious — please look',
  insufficient: 'Insufficient — too few images screened',
  no_suspicious_cells: 'No suspicious cells found',
};
/** Short forms for the list and the buttons. */
export const VERDICT_SHORT = {
  suspicious: 'Suspicious',
  insufficient: 'Insufficient',
  no_suspicious_cells: 'No suspicious cells found',
};
export const VERDICTS = ['suspicious', 'insufficient', 'no_suspicious_cells'];

export const STATUS_TEXT = {
  open: 'Open',
  awaiting_signoff: 'Awaiting sign-off',
  signed: 'Signed',
  amended: 'Amended',
};

const pick = (obj, ...keys) => {
  for (const k of keys) if (obj && obj[k] !== undefined) return obj[k];
  return undefined;
};

function ruleText(rule) {
  if (!rule) return '';
  if (typeof rule === 'string') return rule;
  return pick(rule, 'text', 'words', 'description') || '';
}

export function signOffFrom(raw) {
  if (!raw) return null;
  return {
    version: raw.version,
    verdict: raw.verdict,
    comment: raw.comment || '',
    reason: raw.reason || '',
    signer: pick(raw, 'signer', 'user', 'signed_by') || '—',
    signedAt: pick(raw, 'signed_at', 'signedAt', 'at', 'created_at'),
    suggestedVerdict: pick(raw, 'suggested_verdict', 'suggestedVerdict') || null,
  };
}

/**
 * The card's flag word. /api/results gives `flag` and `needs_review` as booleans; the dashboard's
 * views give the word already. The same rule as the daemon's decisionLabel: uncertain wins.
 */
function flagLabel(raw) {
  if (typeof raw.flag === 'string') return raw.flag;
  if (raw.status !== 'done') return null;
  if (pick(raw, 'needs_review', 'needsReview') === true) return 'uncertain';
  return raw.flag === true ? 'b-all' : 'benign';
}

/** One image of a specimen (an /api/results item, or a dashboard result view). */
export function imageFrom(raw) {
  const review = raw.review
    ? { class: pick(raw.review, 'class', 'className'), reviewer: raw.review.reviewer }
    : null;
  const domain = raw.domain || null;
  // The reason codes: /api/results gives domain.reasons, a dashboard result view outOfDomain.reasons.
  const codes = domain
    ? domain.reasons || []
    : ((raw.outOfDomain && raw.outOfDomain.reasons) || []).map((r) => r.code);
  return {
    id: raw.id,
    file: raw.file,
    status: raw.status,
    class: pick(raw, 'class', 'className') ?? null,
    pBall: pick(raw, 'p_ball', 'pBall') ?? null,
    flag: flagLabel(raw),
    probabilities: raw.probabilities || null,
    error: raw.error || null,
    // The reasons in words as the daemon words them (src/domain/applicability.ts); the codes
    // only when a result carries no words.
    domainReasons:
      domain && Array.isArray(domain.reasons_text)
        ? domain.reasons_text
        : domain && Array.isArray(domain.reasons)
          ? domain.reasons
          : [],
    domainCodes: codes,
    review,
  };
}

/**
 * A field the gate withheld because the model called it benign against its own features, and
 * that nobody has read yet. The specimen's counts and suggestion leave it out (no verdict), so
 * a blast among such fields would not show in them: a person must look before signing.
 */
export const awaitsReading = (img) =>
  img.status === 'out_of_domain' && img.domainCodes.includes('features_disagree') && !img.review;

/**
 * A field the model gave no verdict on that a person read as a B-ALL class. The counts and the
 * suggestion leave it out; the signed report sends the reading to the laboratory (docs/lis.md).
 */
export const readAsBall = (img, benignClass) =>
  img.status === 'out_of_domain' && img.review !== null && img.review.class !== benignClass;

/** Fields the model could not screen that a person read, per class read (in the order met). */
export function readClassCounts(images) {
  const counts = new Map();
  for (const img of images || [])
    if (img.status === 'out_of_domain' && img.review)
      counts.set(img.review.class, (counts.get(img.review.class) || 0) + 1);
  return counts;
}

/**
 * The classes people read in the fields the model could not screen, as "Pre-B: 1 · Benign: 2"
 * in the model's class order (labels from `classes`); '' when none was read. The counts leave
 * those fields out; the signed report carries these readings.
 */
export function outOfDomainReadingsText(images, classes) {
  const counts = readClassCounts(images);
  if (counts.size === 0) return '';
  const order = (classes || []).map((c) => c.name);
  const label = (name) => (classes || []).find((c) => c.name === name)?.label ?? name;
  return [...counts]
    .sort((a, b) => order.indexOf(a[0]) - order.indexOf(b[0]))
    .map(([name, n]) => `${label(name)}: ${n}`)
    .join(' · ');
}

/** A specimen from the list, the detail, or a live event. */
export function specimenFrom(raw) {
  const s = raw.after || raw.specimen || raw;
  const c = s.counts || {};
  const share = pick(s, 'flagged_share', 'flaggedShare') ?? null;
  return {
    id: s.id,
    accession: s.accession,
    status: s.status,
    suggestedVerdict: pick(s, 'suggested_verdict', 'suggestedVerdict'),
    finalVerdict: pick(s, 'final_verdict', 'finalVerdict') ?? null,
    counts: {
      images: c.images ?? 0,
      screened: c.screened ?? 0,
      outOfDomain: pick(c, 'out_of_domain', 'outOfDomain') ?? 0,
      failed: c.failed ?? 0,
      flagged: c.flagged ?? 0,
      byClass: pick(c, 'by_class', 'byClass') || {},
    },
    flaggedShare: share,
    rule: ruleText(s.rule),
    createdAt: pick(s, 'created_at', 'createdAt'),
    updatedAt: pick(s, 'updated_at', 'updatedAt'),
    finishedAt: pick(s, 'finished_at', 'finishedAt') ?? null,
    /** One more on every change to the specimen itself (a reading of one of its images is none). */
    revision: s.revision ?? null,
    /** A capture session is running: new images from the microscope join this specimen. */
    sessionOpen: Boolean(pick(s, 'session_open', 'sessionOpen')),
    /** Withheld fields that ask for a person and nobody has read yet (the counts leave them out). */
    unreadWithheld: pick(s, 'unread_withheld', 'unreadWithheld') ?? 0,
    signOff: signOffFrom(pick(s, 'sign_off', 'signOff')),
    signOffs: (pick(s, 'sign_offs', 'signOffs') || []).map(signOffFrom),
    audit: s.audit || [],
    images: Array.isArray(s.images) ? s.images.map(imageFrom) : null,
    /** Captures that arrived during its session but are stamped before it started (in no specimen). */
    /** The camera watches that warned while its images arrived (list and live events). */
    cameraWarned: pick(s, 'camera_warned', 'cameraWarned') || [],
    /** Camera warnings raised while its images arrived (white balance, magnification, drift). */
    cameraWarnings: (pick(s, 'camera_warnings', 'cameraWarnings') || []).map((w) => ({
      watch: w.watch,
      text: w.text,
      images: w.images,
      firstAt: pick(w, 'first_at', 'firstAt'),
      lastAt: pick(w, 'last_at', 'lastAt'),
    })),
    capturesBeforeStart: (pick(s, 'captures_before_start', 'capturesBeforeStart') || []).map((c) => ({
      resultId: pick(c, 'result_id', 'resultId'),
      file: c.file,
      beforeS: pick(c, 'before_s', 'beforeS'),
    })),
  };
}

export const isSigned = (s) => s.status === 'signed' || s.status === 'amended';

/**
 * "2 fields to read" for a specimen not yet signed whose withheld fields wait for a person; ''
 * otherwise. Once signed the report has said they went unread, and only an amendment follows.
 */
export function toReadText(s) {
  const n = s.unreadWithheld || 0;
  if (n === 0 || isSigned(s)) return '';
  return `${n} field${n === 1 ? '' : 's'} to read`;
}

/** The list's "To read" filter: the specimens whose badge asks for a reading. */
export const hasFieldsToRead = (s) => toReadText(s) !== '';

/** Screened = the model gave a verdict; everything else is shown apart as "Cannot screen". */
export const isScreened = (img) => img.status === 'done';

/**
 * A person can record the class they see: the model looked at the picture, screened or withheld
 * (the server's rule: isReviewable in src/domain/review.ts).
 */
export const isReviewable = (img) => img.status === 'done' || img.status === 'out_of_domain';

export function cannotScreenReason(img) {
  if (img.status === 'out_of_domain') {
    const words = img.domainReasons;
    return `Out of domain${words.length ? `: ${words.join('; ')}` : ''}`;
  }
  if (img.status === 'quarantined') return `Quarantined${img.error ? `: ${img.error}` : ''}`;
  if (img.status === 'done') return '';
  return `Could not be read${img.error ? `: ${img.error}` : ''}`;
}

/** "9 of 14 screened images flagged" and the like, for the list and the page. */
export function countsLine(c) {
  const cannot = c.outOfDomain + c.failed;
  const parts = [`${c.screened} screened`, `${c.flagged} flagged`];
  if (cannot) parts.push(`${cannot} cannot screen`);
  return `${c.images} image${c.images === 1 ? '' : 's'}: ${parts.join(', ')}`;
}
