// One result: full-size picture with the original / overlay / mask / segmented switch, the
// figures, the review form and the review history.
/* global window */
import { api, imageUrl } from './api.js';
import { flagBadge, pictureFor, probabilityBars, timingsLine, verdictOf } from './cards.js';
import { historyTable, reviewForm } from './review.js';
import { isReviewable } from './specimen-model.js';
import { el, $, pct, when } from './ui.js';

function dl(pairs) {
  const list = el('dl', { class: 'facts' });
  for (const [term, value] of pairs) {
    if (value === null || value === undefined) continue;
    list.append(el('dt', { text: term }), el('dd', {}, value));
  }
  return list;
}

function deliveryText(d) {
  if (!d) return '—';
  if (d.state === 'off') return 'MQTT is off on this station';
  if (d.state === 'sent') return `Delivered to the broker (${d.sent} of ${d.queued} messages)`;
  if (d.state === 'partial') return `Partly delivered (${d.sent} of ${d.queued} messages)`;
  return 'Waiting for the broker';
}

const MASK_STAT_TEXT = {
  foregroundFraction: (v) => `cells cover ${pct(v)} of the picture`,
  componentCount: (v) => `${v} cell region${v === 1 ? '' : 's'}`,
  aStarThreshold: (v) => `stain cut-off a* ${v}`,
};

function maskStatsText(stats) {
  if (!stats) return null;
  return Object.entries(stats)
    .map(([k, v]) => (MASK_STAT_TEXT[k] ? MASK_STAT_TEXT[k](v) : `${k} ${v}`))
    .join(' · ');
}

/** The figures the out-of-domain judgement was made on, e.g. "meanLuma 3.5 · laplacianVar 12". */
function scoresText(scores) {
  const parts = Object.entries(scores || {}).map(([k, v]) => `${k} ${Math.round(v * 1000) / 1000}`);
  return parts.length ? parts.join(' · ') : null;
}

/** The big picture and its switch: original, overlay (mask over the original), mask, segmented. */
function detailPicture(r) {
  const kinds = [
    ['original', 'Original'],
    ['overlay', 'Overlay'],
    ['mask', 'Cell mask'],
    ['segmented', 'Segmented'],
  ].filter(([k]) => (k === 'overlay' ? r.images.original && r.images.mask : r.images[k]));
  const picture = el('div', { class: 'big-picture' }, pictureFor(r, kinds[0] ? kinds[0][0] : 'original'));
  const img = picture.querySelector('img');
  // Overlay: the cell mask laid over the original (multiply darkens everything the segmentation
  // did not keep). The mask was computed on the image squashed to a square, so stretching it over
  // the displayed original lines it up whatever the camera's aspect ratio.
  const maskLayer = el('img', { class: 'mask-layer', alt: '', hidden: true });
  const changedNote = el('p', {
    class: 'picture-note',
    hidden: true,
    text: 'The original file changed on disk after it was classified: showing the thumbnail the daemon kept of the classified image.',
  });
  if (img) {
    img.removeAttribute('width');
    img.removeAttribute('height');
    img.loading = 'eager';
    picture.append(maskLayer);
    // The daemon refuses an original whose bytes are no longer the classified ones (410): fall
    // back to its own thumbnail of those bytes, never to whatever the file holds now.
    img.addEventListener('error', () => {
      if (!img.src.endsWith('/image/original') || !r.images.thumbnail) return;
      img.src = imageUrl(r.id, 'thumbnail');
      changedNote.hidden = false;
    });
  }
  const toggle = el('div', {
    class: 'seg',
    role: 'group',
    'aria-label': 'Picture shown',
    id: 'detail-overlay',
  });
  for (const [kind, label] of kinds) {
    toggle.append(
      el('button', {
        type: 'button',
        'data-kind': kind,
        'aria-pressed': String(kind === kinds[0][0]),
        text: label,
        onclick: () => {
          if (img) img.src = imageUrl(r.id, kind === 'overlay' ? 'original' : kind);
          if (kind === 'overlay') maskLayer.src = imageUrl(r.id, 'mask');
          maskLayer.hidden = kind !== 'overlay';
          for (const b of toggle.children) b.setAttribute('aria-pressed', String(b.dataset.kind === kind));
        },
      }),
    );
  }
  return el('div', { class: 'detail-picture' }, toggle, picture, changedNote);
}

/** Verdict, probabilities and the figures of one result. */
function detailInfo(r) {
  return el(
    'div',
    { class: 'detail-info' },
    el(
      'div',
      { class: 'card-head' },
      flagBadge(r),
      r.review ? el('span', { class: 'badge reviewed', text: 'Reviewed' }) : null,
    ),
    el('h1', { class: 'file', text: r.file }),
    verdictOf(r, true),
    r.status === 'done' ? probabilityBars(r) : null,
    dl([
      ['Captured', when(r.capturedAt)],
      ['Analysed', when(r.processedAt)],
      ['Source', r.source === 'upload' ? 'Uploaded from the dashboard' : 'Microscope capture folder'],
      ['Image size', r.width ? `${r.width} × ${r.height} px` : null],
      ['Segmentation', maskStatsText(r.maskStats)],
      ['Checked on', r.outOfDomain ? scoresText(r.outOfDomain.scores) : null],
      // The full version (date+weights hash): it names the exact weights that produced this result.
      ['Model', r.model ? `${r.model.name} ${r.model.version}` : null],
      [
        'Flag threshold',
        r.threshold === null || r.threshold === undefined ? null : `P(B-ALL) ≥ ${pct(r.threshold)}`,
      ],
      ['Runs on', r.provider],
      ['Stage times', timingsLine(r.timings) || null],
      ['MQTT', deliveryText(r.delivery)],
      ['SHA-256', el('code', { text: r.sha256 || '—' })],
    ]),
  );
}

/** Shows result `id` in the detail view (also after a review is saved, to show the new history). */
export async function showDetail(id) {
  const view = $('view-detail');
  let r;
  try {
    r = await api(`/api/dashboard/results/${encodeURIComponent(id)}`);
  } catch (err) {
    view.replaceChildren(el('p', { class: 'error', text: `Could not load result ${id}: ${err.message}` }));
    return;
  }
  const info = detailInfo(r);
  const reviewBlock = el(
    'div',
    { class: 'review-block' },
    isReviewable(r) ? reviewForm(r, () => showDetail(r.id)) : null,
    el('h2', { text: 'Review history' }),
    historyTable(r.reviews || []),
  );
  info.append(reviewBlock);
  view.replaceChildren(
    el('p', {}, el('a', { href: '#/', class: 'back', onclick: backClick, text: '← Back' })),
    el('div', { class: 'detail' }, detailPicture(r), info),
  );
}

function backClick(event) {
  event.preventDefault();
  if (window.history.length > 1) window.history.back();
  else window.location.hash = '#/';
}
