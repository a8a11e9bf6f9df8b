// The result card (feed, review queue, upload list) and the pieces the detail page reuses.
import { imageUrl } from './api.js';
import { state } from './state.js';
import { classColour, classLabel, el, pct, when } from './ui.js';

const FLAG_TEXT = {
  'b-all': 'Possible B-ALL',
  uncertain: 'Uncertain — please review',
  benign: 'Looks benign',
};
const STAGE_NAMES = {
  queueMs: 'waiting',
  readMs: 'read',
  decodeMs: 'decode',
  segmentMs: 'segment',
  tensorMs: 'prepare',
  inferMs: 'model',
  gateMs: 'checks',
  storeMs: 'save',
  totalMs: 'total',
};

export function flagBadge(r) {
  // No verdict: neither the flag's red nor the benign green.
  if (r.status === 'out_of_domain')
    return el('span', { class: 'badge out-of-domain', text: 'Cannot screen' });
  if (r.status !== 'done') {
    return el('span', {
      class: 'badge failed',
      text: r.status === 'quarantined' ? 'Quarantined' : 'Could not be read',
    });
  }
  return el('span', { class: `badge ${r.flag}`, text: FLAG_TEXT[r.flag] || r.flag || '' });
}

export function probabilityBars(r) {
  const list = el('ul', { class: 'bars', 'aria-label': 'Probability of each class' });
  if (!r.probabilities) return list;
  const names = state.meta ? state.meta.classes.map((c) => c.name) : Object.keys(r.probabilities);
  for (const name of names) {
    const p = r.probabilities[name] ?? 0;
    const fill = el('span', { class: 'fill' });
    fill.style.width = `${Math.max(0, Math.min(100, p * 100)).toFixed(1)}%`;
    fill.style.backgroundColor = classColour(name);
    list.append(
      el(
        'li',
        { class: name === r.class ? 'top' : '' },
        el('span', { class: 'name', text: classLabel(name) }),
        el('span', { class: 'track' }, fill),
        el('span', { class: 'value', text: pct(p) }),
      ),
    );
  }
  return list;
}

export function timingsLine(timings) {
  const parts = [];
  for (const [key, label] of Object.entries(STAGE_NAMES)) {
    if (typeof timings?.[key] === 'number') parts.push(`${label} ${Math.round(timings[key])} ms`);
  }
  return parts.join(' · ');
}

/**
 * What an out-of-domain result shows instead of a verdict: the sentence and each reason in words.
 * The image is there for a person to look at; the model says nothing about it.
 */
export function cannotScreen(r) {
  const ood = r.outOfDomain || {
    message: 'Cannot screen: unlike the images the model was trained on',
    reasons: [],
  };
  return el(
    'div',
    { class: 'cannot-screen' },
    el('p', { class: 'cannot-screen-message', text: `${ood.message}.` }),
    ood.reasons.length
      ? el('ul', { class: 'reasons' }, ...ood.reasons.map((reason) => el('li', { text: reason.text })))
      : null,
  );
}

/** The verdict block of a card or the detail page: the model's answer, why there is none, or the read error. */
export function verdictOf(r, big) {
  if (r.status === 'out_of_domain') return cannotScreen(r);
  if (r.status !== 'done')
    return el('p', { class: 'error', text: `Could not read this image: ${r.error || 'unknown error'}` });
  return el(
    'div',
    { class: big ? 'verdict big' : 'verdict' },
    el('span', { class: 'pball' }, 'Chance of B-ALL: ', el('strong', { text: pct(r.pBall) })),
    el('span', { class: 'cls' }, 'Most likely: ', el('strong', { text: classLabel(r.class) })),
  );
}

export function pictureFor(r, kind) {
  if (!r.images || !r.images[kind]) {
    return el('div', {
      class: 'no-picture',
      text: r.status === 'done' || r.status === 'out_of_domain' ? 'No picture stored' : 'No picture',
    });
  }
  return el('img', {
    src: imageUrl(r.id, kind),
    alt: `${kind === 'thumbnail' ? 'Image' : kind === 'mask' ? 'Cell mask' : 'Segmented image'} of ${r.file}`,
    loading: 'lazy',
    width: 160,
    height: 160,
  });
}

export function resultCard(r) {
  const card = el('article', {
    class: `card ${r.status === 'done' ? r.flag : r.status === 'out_of_domain' ? 'out-of-domain' : 'failed'}`,
    'data-id': r.id,
    'data-sha': r.sha256 || '',
  });
  const kind = r.images && r.images[state.overlay] ? state.overlay : 'thumbnail';
  const picture = el(
    'a',
    { class: 'picture', href: `#/result/${r.id}`, 'aria-label': 'Open details' },
    pictureFor(r, kind),
  );
  const body = el(
    'div',
    { class: 'card-body' },
    el(
      'div',
      { class: 'card-head' },
      flagBadge(r),
      r.review ? el('span', { class: 'badge reviewed', text: 'Reviewed' }) : null,
    ),
    el('a', { class: 'file', href: `#/result/${r.id}`, text: r.file }),
    verdictOf(r, false),
    r.review
      ? el('p', {
          class: 'review-line',
          text: `Reviewed as ${classLabel(r.review.class)} by ${r.review.reviewer}`,
        })
      : null,
    r.status === 'done' ? probabilityBars(r) : null,
    el('p', { class: 'meta', text: `${when(r.processedAt)}${r.source === 'upload' ? ' · uploaded' : ''}` }),
    el('p', { class: 'timings', text: timingsLine(r.timings) }),
  );
  card.append(picture, body);
  return card;
}
