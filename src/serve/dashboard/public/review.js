// The review queue, and the review form and history on the detail page.
/* global FormData, localStorage */
import { api } from './api.js';
import { resultCard } from './cards.js';
import { state } from './state.js';
import { $, classLabel, el, pct, toast, when } from './ui.js';

export async function refreshQueueCount() {
  try {
    const rows = await api('/api/dashboard/review-queue?limit=500');
    state.queueCount = rows.length;
    $('queue-count').textContent = rows.length ? String(rows.length) : '';
    return rows;
  } catch {
    return null;
  }
}

export async function loadQueue() {
  const rows = await refreshQueueCount();
  if (!rows) return;
  const list = $('review-list');
  list.replaceChildren(...rows.map(resultCard));
  $('review-empty').hidden = rows.length > 0;
}

/**
 * The class picker, on the latest review's class or the model's. A field the model gave no class
 * has no default: the reviewer chooses, so that saving without looking cannot record "Benign".
 */
function classSelect(r) {
  const current = r.review?.class || r.class;
  const options = state.meta.classes.map((c) =>
    el('option', { value: c.name, selected: c.name === current }, c.label),
  );
  if (!current) {
    options.unshift(el('option', { value: '', selected: true, disabled: true }, 'Choose the class you see'));
  }
  return el('select', { name: 'class', id: 'review-class', required: true }, options);
}

/** The review form of result `r`; `onSaved` runs after the server stored the review. */
export function reviewForm(r, onSaved) {
  const named = state.session?.namedUser;
  const form = el('form', { class: 'review-form', id: 'review-form' });
  const reviewer = el('input', {
    name: 'reviewer',
    required: true,
    maxlength: 80,
    autocomplete: 'name',
    value: localStorage.getItem('blastwatch.reviewer') || '',
  });
  form.append(
    el('h2', { text: r.class ? 'Your review' : 'Your reading' }),
    r.class
      ? null
      : el('p', {
          class: 'meta',
          id: 'review-own-reading',
          text: 'The model gave no verdict on this picture. Record the class you see: it is kept as your reading, with your name, and exported with the reviews.',
        }),
    el('label', {}, 'Class seen by the reviewer ', classSelect(r)),
    el('label', {}, 'Note (optional) ', el('textarea', { name: 'note', rows: 3, maxlength: 2000 })),
    named
      ? el('p', { class: 'meta', text: `Signed as ${state.session.user}` })
      : el('label', {}, 'Your name ', reviewer),
    el(
      'div',
      { class: 'actions' },
      r.class
        ? el('button', {
            type: 'submit',
            name: 'action',
            value: 'confirm',
            text: `Confirm: ${classLabel(r.class)}`,
          })
        : null,
      el('button', {
        type: 'submit',
        name: 'action',
        value: 'save',
        class: 'secondary',
        text: r.class ? 'Save selected class' : 'Save my reading',
      }),
    ),
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const action = event.submitter?.value;
    const body = {
      class: action === 'confirm' ? r.class : data.get('class'),
      note: data.get('note') || '',
      reviewer: named ? state.session.user : String(data.get('reviewer') || '').trim(),
    };
    if (!named) localStorage.setItem('blastwatch.reviewer', body.reviewer);
    for (const b of form.querySelectorAll('button')) b.disabled = true;
    try {
      await api(`/api/dashboard/results/${r.id}/review`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      toast('Review saved.');
      await refreshQueueCount();
      await onSaved();
    } catch (err) {
      toast(`Review not saved: ${err.message}`, true);
      for (const b of form.querySelectorAll('button')) b.disabled = false;
    }
  });
  return form;
}

/** The model a review signed: its full version (never broken) and the reviewed result's flag threshold. */
function reviewedModel(v) {
  if (!v.modelVersion) return el('td', { text: '—' });
  const threshold = v.threshold === null || v.threshold === undefined ? null : `flag ≥ ${pct(v.threshold)}`;
  return el(
    'td',
    {},
    el('span', { class: 'model-version', text: v.modelVersion }),
    threshold ? el('br') : null,
    threshold,
  );
}

/** What a review did to the model's class; a withheld field had none, so the review is a reading. */
function changeText(v) {
  if (!v.modelClass) return 'own reading (no model verdict)';
  return v.class === v.modelClass ? 'confirmed' : `changed from ${classLabel(v.modelClass)}`;
}

export function historyTable(reviews) {
  if (!reviews.length) return el('p', { class: 'meta', text: 'No reviews yet.' });
  const body = el('tbody');
  for (const v of reviews) {
    body.append(
      el(
        'tr',
        {},
        el('td', { text: when(v.at) }),
        el('td', { text: v.reviewer }),
        el('td', { text: classLabel(v.class) }),
        el('td', { text: changeText(v) }),
        reviewedModel(v),
        el('td', { text: v.note || '' }),
      ),
    );
  }
  return el(
    'div',
    { class: 'table-wrap' },
    el(
      'table',
      { class: 'history' },
      el(
        'thead',
        {},
        el(
          'tr',
          {},
          ...['When', 'Reviewer', 'Class', 'Change', 'Model', 'Note'].map((h) => el('th', { text: h })),
        ),
      ),
      body,
    ),
  );
}
