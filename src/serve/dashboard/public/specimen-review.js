// Keyboard review on the specimen page, for a reviewer going through dozens of fields: the image
// under review (large, with its probabilities), next/previous, choose a class, mark reviewed
// (the per-image review API), sign; "?" shows the shortcuts.
/* global document, CSS */
import { api, imageUrl } from './api.js';
import { flagBadge, probabilityBars } from './cards.js';
import { requestSign, updateReadingNotices } from './signoff.js';
import { cannotScreenReason, isReviewable } from './specimen-model.js';
import { state } from './state.js';
import { $, actorName, classLabel, el, pct, toast } from './ui.js';

const page = state.specimenPage;

/** The empty panel; showCurrent() fills it. */
export function reviewPanel() {
  return el('section', { class: 'inspector', id: 'inspector', 'aria-live': 'polite' });
}

function classButtons(img) {
  const chosen = page.chosenClass || img.review?.class || img.class;
  return el(
    'div',
    { class: 'class-choice', role: 'group', 'aria-label': 'Class you see' },
    state.meta.classes.map((c, i) =>
      el(
        'button',
        {
          type: 'button',
          class: 'secondary',
          'data-class': c.name,
          'aria-pressed': String(c.name === chosen),
          onclick: () => chooseClass(i),
        },
        el('kbd', { text: String(i + 1) }),
        ` ${c.label}`,
      ),
    ),
  );
}

/** Draws the image under review and marks its tile; `scroll` brings the tile into view. */
export function showCurrent(scroll = true) {
  const box = $('inspector');
  if (!box) return;
  const img = page.order[page.cursor];
  for (const t of document.querySelectorAll('#gallery .tile.current')) t.classList.remove('current');
  if (!img) {
    box.replaceChildren(
      el('h2', { text: 'Review' }),
      el('p', { class: 'meta', text: 'No image to review.' }),
    );
    return;
  }
  const tile = document.querySelector(`#gallery .tile[data-index="${CSS.escape(String(page.cursor))}"]`);
  if (tile) {
    tile.classList.add('current');
    if (scroll) tile.scrollIntoView({ block: 'nearest' });
  }
  const cannot = cannotScreenReason(img);
  const picture = el('img', { src: imageUrl(img.id, 'original'), alt: `Image ${img.file}` });
  picture.addEventListener('error', () => {
    if (picture.src.endsWith('/original')) picture.src = imageUrl(img.id, 'thumbnail');
  });
  box.replaceChildren(
    el(
      'div',
      { class: 'inspector-head' },
      el('h2', { id: 'inspector-position', text: `Image ${page.cursor + 1} of ${page.order.length}` }),
      el(
        'span',
        { class: 'nav-buttons' },
        el('button', { type: 'button', class: 'secondary small', text: '← k', onclick: () => move(-1) }),
        el('button', { type: 'button', class: 'secondary small', text: 'j →', onclick: () => move(1) }),
      ),
    ),
    el('div', { class: 'inspector-picture' }, picture),
    el('a', { class: 'file', id: 'inspector-file', href: `#/result/${img.id}`, text: img.file }),
    cannot
      ? el('p', { class: 'error', text: `Cannot screen: ${cannot}` })
      : el(
          'div',
          {},
          el('div', { class: 'card-head' }, flagBadge(img)),
          el(
            'div',
            { class: 'verdict' },
            el('span', { class: 'pball' }, 'Chance of B-ALL: ', el('strong', { text: pct(img.pBall) })),
            el('span', { class: 'cls' }, 'Most likely: ', el('strong', { text: classLabel(img.class) })),
          ),
          probabilityBars(img),
        ),
    el('p', {
      class: 'review-line',
      id: 'inspector-review',
      text: img.review
        ? `Reviewed as ${classLabel(img.review.class)} by ${img.review.reviewer}`
        : 'Not reviewed yet',
    }),
    isReviewable(img) ? classButtons(img) : null,
    isReviewable(img)
      ? el(
          'div',
          { class: 'actions' },
          el('button', {
            type: 'button',
            id: 'mark-reviewed',
            text: 'Mark reviewed (r)',
            onclick: () => void markReviewed(),
          }),
        )
      : null,
  );
}

export function selectImage(index) {
  if (index < 0 || index >= page.order.length) return;
  if (index !== page.cursor) page.chosenClass = null;
  page.cursor = index;
  showCurrent();
}

function move(delta) {
  selectImage(Math.max(0, Math.min(page.order.length - 1, page.cursor + delta)));
}

function chooseClass(i) {
  const img = page.order[page.cursor];
  const c = state.meta.classes[i];
  if (!img || !c) return;
  if (!isReviewable(img)) {
    toast('This image could not be read: there is no picture to review.', true);
    return;
  }
  page.chosenClass = c.name;
  for (const b of document.querySelectorAll('#inspector .class-choice button')) {
    b.setAttribute('aria-pressed', String(b.dataset.class === c.name));
  }
}

/**
 * Stores a review of the current image with the chosen class (the model's if none), then moves on.
 * A field the model gave no class needs a class chosen: there is nothing to confirm.
 */
async function markReviewed() {
  const img = page.order[page.cursor];
  if (!img || !isReviewable(img)) return;
  const cls = page.chosenClass || img.review?.class || img.class;
  if (!cls) {
    toast(
      `The model gave no class for this image: choose the class you see (1–${state.meta.classes.length}) first.`,
      true,
    );
    return;
  }
  const reviewer = actorName();
  if (!reviewer) {
    toast('Type your name in the sign-off panel first: a review is kept with its reviewer.', true);
    $('signer-name')?.focus();
    return;
  }
  try {
    const saved = await api(`/api/dashboard/results/${img.id}/review`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ class: cls, note: '', reviewer }),
    });
    img.review = { class: saved.class ?? cls, reviewer: saved.reviewer ?? reviewer };
    updateReadingNotices();
  } catch (err) {
    toast(`Review not saved: ${err.message}`, true);
    return;
  }
  const tile = document.querySelector(`#gallery .tile[data-index="${CSS.escape(String(page.cursor))}"]`);
  if (tile && !tile.classList.contains('reviewed')) {
    tile.classList.add('reviewed');
    tile.append(el('span', { class: 'tile-check', title: 'Reviewed', text: '✓' }));
  }
  page.chosenClass = null;
  if (page.cursor < page.order.length - 1) move(1);
  else {
    showCurrent();
    toast('Last image reviewed. Sign the specimen when you are done (s).');
  }
}

function typingInto(target) {
  return target && target.closest && target.closest('input, textarea, select, [contenteditable]');
}

function onKey(event) {
  if (document.body.dataset.view !== 'specimen') return;
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  if (typingInto(event.target)) return;
  const help = $('shortcut-help');
  if (event.key === '?') {
    event.preventDefault();
    if (help.open) help.close();
    else if (!document.querySelector('dialog[open]')) help.showModal();
    return;
  }
  if (document.querySelector('dialog[open]')) return;
  const key = event.key;
  const onControl = event.target && event.target.closest && event.target.closest('button, a');
  if (key === 'j' || key === 'ArrowRight') move(1);
  else if (key === 'k' || key === 'ArrowLeft') move(-1);
  else if (/^[1-9]$/.test(key) && Number(key) <= state.meta.classes.length) chooseClass(Number(key) - 1);
  else if (key === 'r' || (key === 'Enter' && !onControl)) void markReviewed();
  else if (key === 'o') {
    const img = page.order[page.cursor];
    if (img) document.location.hash = `#/result/${img.id}`;
  } else if (key === 's') void requestSign();
  else return;
  event.preventDefault();
}

export function setUpKeyboardReview() {
  document.addEventListener('keydown', onKey);
}
