// The Specimens view (the landing page): one row per smear with its status, verdict and counts,
// filtered by status, kept current by the live feed; "Start specimen" for session capture, and
// the unassigned images with a way to give them to a specimen; "Export CSV" of all specimens.
/* global document, FormData, CSS, localStorage, setTimeout, clearTimeout */
import { cameraWarnedBadge } from './camera-warnings.js';
import { api, imageUrl, postJson } from './api.js';
import {
  STATUS_TEXT,
  VERDICT_SHORT,
  countsLine,
  hasFieldsToRead,
  isSigned,
  toReadText,
  specimenFrom,
  imageFrom,
  cannotScreenReason,
} from './specimen-model.js';
import { state } from './state.js';
import { $, actorName, classLabel, el, pct, toast, when } from './ui.js';

const FILTERS = {
  all: () => true,
  open: (s) => s.status === 'open',
  awaiting: (s) => s.status === 'awaiting_signoff',
  unread: hasFieldsToRead,
  signed: isSigned,
};

/**
 * What the list last loaded, by id (the latest 200 changes and every specimen not signed yet,
 * whatever its age); live events update it in place.
 */
const specimensById = new Map();
let currentFilter = 'all';
/** The accession search: its text, and what the server found for it (any age), by id. */
let searchText = '';
const foundById = new Map();
const matchesSearch = (s) => s.accession.toLowerCase().includes(searchText.toLowerCase());

/** The filter named by the hash: `#/specimens/<filter>`, or all on `#/`. */
export function specimenFilterFromHash(hash) {
  const m = /^#\/specimens\/(\w+)/.exec(hash);
  return m && (FILTERS[m[1]] || m[1] === 'unassigned') ? m[1] : 'all';
}

export function statusBadge(s) {
  const status = el('span', { class: `badge status-${s.status}`, text: STATUS_TEXT[s.status] || s.status });
  if (!s.sessionOpen) return status;
  return el('span', {}, status, ' ', el('span', { class: 'badge capturing', text: 'Capturing' }));
}

/**
 * "2 fields to read" on a specimen not yet signed: fields the model withheld, which its counts and
 * suggestion leave out, so a blast among them would show nowhere else on the list. Null when none.
 */
export function toReadBadge(s) {
  const text = toReadText(s);
  if (!text) return null;
  return el('span', {
    class: 'badge to-read',
    title:
      'Withheld by the model: it could not screen these fields, and the counts and the suggestion ' +
      'leave them out. Read them on the specimen page before signing.',
    text,
  });
}

/** The suggestion, or once signed the person's verdict (and the suggestion when she overrode it). */
export function verdictBadges(s) {
  if (s.finalVerdict) {
    return el(
      'span',
      { class: 'verdicts' },
      el('span', {
        class: `badge verdict-${s.finalVerdict}`,
        text: `Signed: ${VERDICT_SHORT[s.finalVerdict] || s.finalVerdict}`,
      }),
      s.finalVerdict !== s.suggestedVerdict
        ? el('span', {
            class: 'meta',
            text: ` suggested: ${VERDICT_SHORT[s.suggestedVerdict] || s.suggestedVerdict}`,
          })
        : null,
    );
  }
  return el('span', {
    class: `badge verdict-${s.suggestedVerdict}`,
    text: `Suggested: ${VERDICT_SHORT[s.suggestedVerdict] || s.suggestedVerdict}`,
  });
}

/** A share of counted images: all of them is exactly 100 %, not "over 99.9 %" as for a probability. */
const sharePct = (v) => (v === 1 ? '100 %' : pct(v));

export function shareText(share) {
  if (!share) return '—';
  return `${sharePct(share.value)} (95 % CI ${sharePct(share.low)} – ${sharePct(share.high)})`;
}

/**
 * `body` with the acting person's name when she has no named account (the server stores every
 * specimen action with its actor), or null after asking her to type it.
 */
export function withActor(body) {
  if (state.session?.namedUser) return body;
  const reviewer = actorName();
  if (reviewer) return { ...body, reviewer };
  toast('Type your name first: every action on a specimen is kept with its author.', true);
  const field = [...document.querySelectorAll('input.actor-name')].find((i) => i.offsetParent !== null);
  field?.focus();
  return null;
}

/** Finishing a session: no more images join it, and it waits for a sign-off. */
export async function finishSpecimen(s) {
  const body = withActor({});
  if (!body) return null;
  try {
    const done = specimenFrom(await postJson(`/api/specimens/${s.id}/finish`, body));
    upsertSpecimen(done);
    toast(`${s.accession}: finished, awaiting sign-off.`);
    return done;
  } catch (err) {
    toast(`Could not finish ${s.accession}: ${err.message}`, true);
    return null;
  }
}

function specimenRow(s) {
  const link = el('a', { class: 'accession', href: `#/specimen/${s.id}`, text: s.accession });
  return el(
    'tr',
    {
      'data-id': s.id,
      'data-status': s.status,
      class: `verdict-row-${s.finalVerdict || s.suggestedVerdict}`,
    },
    el('th', { scope: 'row', 'data-label': 'Accession' }, link),
    el('td', { 'data-label': 'Status' }, statusBadge(s), toReadBadge(s), cameraWarnedBadge(s)),
    el('td', { 'data-label': 'Verdict', class: 'verdict-cell' }, verdictBadges(s)),
    el('td', { 'data-label': 'Images', class: 'counts-cell', text: countsLine(s.counts) }),
    el('td', { 'data-label': 'Flagged share', text: shareText(s.flaggedShare) }),
    el('td', { 'data-label': 'Updated', class: 'time-cell', text: when(s.updatedAt || s.createdAt) }),
    el(
      'td',
      { 'data-label': '', class: 'row-actions' },
      s.status === 'open'
        ? el('button', {
            type: 'button',
            class: 'secondary small finish',
            text: 'Finish',
            onclick: () => void finishSpecimen(s).then(() => renderList()),
          })
        : null,
    ),
  );
}

function updateCounts() {
  const all = [...specimensById.values()];
  const tab = (name) => $('specimen-filter').querySelector(`[data-filter="${name}"] .count`);
  tab('open').textContent = String(all.filter(FILTERS.open).length || '');
  tab('awaiting').textContent = String(all.filter(FILTERS.awaiting).length || '');
  tab('unread').textContent = String(all.filter(FILTERS.unread).length || '');
}

function renderList() {
  updateCounts();
  if (currentFilter === 'unassigned') {
    fillAssignTargets();
    return;
  }
  const source = searchText ? foundById : specimensById;
  const rows = [...source.values()]
    .filter(FILTERS[currentFilter])
    .sort((a, b) => String(b.updatedAt || '').localeCompare(String(a.updatedAt || '')) || b.id - a.id);
  const list = $('specimen-list');
  if (!rows.length) {
    list.replaceChildren();
    $('specimen-empty').textContent = searchText
      ? `No specimen here whose accession contains “${searchText}”.`
      : 'No specimens here yet.';
    $('specimen-empty').hidden = false;
    return;
  }
  $('specimen-empty').hidden = true;
  const head = el(
    'thead',
    {},
    el(
      'tr',
      {},
      ...['Accession', 'Status', 'Verdict', 'Images', 'Flagged share', 'Updated', ''].map((h) =>
        el('th', { scope: 'col', text: h }),
      ),
    ),
  );
  list.replaceChildren(
    el(
      'div',
      { class: 'table-wrap' },
      el('table', { class: 'specimen-table' }, head, el('tbody', {}, rows.map(specimenRow))),
    ),
  );
}

/** Puts a specimen from a reply or a live event into the list (and redraws it when shown). */
export function upsertSpecimen(s) {
  if (s && s.id !== undefined) {
    specimensById.set(s.id, s);
    if (searchText && matchesSearch(s)) foundById.set(s.id, s);
  }
  if (document.body.dataset.view === 'specimens') renderList();
}

async function fetchSpecimens() {
  const items = await api('/api/specimens?all_unsigned=true');
  const list = Array.isArray(items) ? items : items.items || [];
  specimensById.clear();
  for (const raw of list) {
    const s = specimenFrom(raw);
    specimensById.set(s.id, s);
  }
}

/** Looks the typed accession up on the server (any age), then shows what it found. */
async function search(text) {
  searchText = text.trim();
  foundById.clear();
  if (searchText) {
    try {
      const items = await api(`/api/specimens?q=${encodeURIComponent(searchText)}&limit=200`);
      // A newer search may have started while this one was on its way: keep only the latest.
      if (text.trim() !== searchText) return;
      for (const raw of items) {
        const s = specimenFrom(raw);
        foundById.set(s.id, s);
      }
    } catch (err) {
      toast(`Could not search: ${err.message}`, true);
    }
  }
  renderList();
}

let searchTimer = null;

export async function loadSpecimens(filter) {
  currentFilter = filter;
  for (const a of $('specimen-filter').querySelectorAll('a')) {
    if (a.dataset.filter === filter) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  try {
    await fetchSpecimens();
  } catch (err) {
    toast(`Could not load specimens: ${err.message}`, true);
    return;
  }
  const unassigned = filter === 'unassigned';
  $('unassigned').hidden = !unassigned;
  $('specimen-list').hidden = unassigned;
  $('specimen-empty').hidden = true;
  if (unassigned) await loadUnassigned();
  else renderList();
  void refreshUnassignedCount();
}

// ---------- unassigned images ----------

async function fetchUnassigned() {
  const items = await api('/api/specimens/unassigned');
  return (Array.isArray(items) ? items : items.items || []).map(imageFrom);
}

export async function refreshUnassignedCount() {
  try {
    const images = await fetchUnassigned();
    $('specimen-filter').querySelector('[data-filter="unassigned"] .count').textContent = String(
      images.length || '',
    );
    return images;
  } catch {
    return null;
  }
}

function pickTile(img) {
  const cannot = cannotScreenReason(img);
  return el(
    'label',
    { class: 'pick', 'data-id': img.id },
    el('input', { type: 'checkbox', name: 'result', value: img.id }),
    el('img', {
      src: imageUrl(img.id, 'thumbnail'),
      alt: `Image ${img.file}`,
      loading: 'lazy',
      width: 120,
      height: 120,
    }),
    el('span', { class: 'file', text: img.file }),
    el('span', {
      class: 'meta',
      text: cannot || `${classLabel(img.class)} · P(B-ALL) ${pct(img.pBall)}`,
    }),
  );
}

async function loadUnassigned() {
  const images = await refreshUnassignedCount();
  if (!images) {
    toast('Could not load the unassigned images.', true);
    return;
  }
  $('unassigned-list').replaceChildren(...images.map(pickTile));
  $('unassigned-empty').hidden = images.length > 0;
  fillAssignTargets();
}

/** Specimens an image may still join: every one not signed (a signed specimen is locked). */
function fillAssignTargets() {
  const select = $('assign-target');
  const chosen = select.value;
  const targets = [...specimensById.values()].filter((s) => !isSigned(s));
  select.replaceChildren(
    el('option', { value: '', text: targets.length ? 'Choose…' : 'No open specimen: start one first' }),
    ...targets.map((s) => el('option', { value: s.id, text: `${s.accession} (${STATUS_TEXT[s.status]})` })),
  );
  if (targets.some((s) => String(s.id) === chosen)) select.value = chosen;
}

async function assignSelected(event) {
  event.preventDefault();
  const target = Number(new FormData($('assign-form')).get('specimen'));
  const ids = [...$('unassigned-list').querySelectorAll('input[name="result"]:checked')].map((i) =>
    Number(i.value),
  );
  if (!target || !ids.length) {
    toast('Tick at least one image and choose a specimen.', true);
    return;
  }
  const body = withActor({ result_ids: ids });
  if (!body) return;
  try {
    await postJson(`/api/specimens/${target}/images`, body);
    const s = specimensById.get(target);
    toast(`${ids.length} image${ids.length === 1 ? '' : 's'} assigned to ${s ? s.accession : target}.`);
  } catch (err) {
    toast(`Not assigned: ${err.message}`, true);
  }
  await loadSpecimens('unassigned');
}

async function startSpecimen(event) {
  event.preventDefault();
  const form = $('start-specimen');
  const accession = String(new FormData(form).get('accession') || '').trim();
  if (!accession) return;
  const body = withActor({ accession });
  if (!body) return;
  const button = form.querySelector('button');
  button.disabled = true;
  try {
    const s = specimenFrom(await postJson('/api/specimens', body));
    // The name stays for the next specimen; the accession number is this one's only.
    form.querySelector('input[name="accession"]').value = '';
    upsertSpecimen(s);
    toast(`${s.accession} started: images captured now belong to it until you press Finish.`);
  } catch (err) {
    toast(`Could not start ${accession}: ${err.message}`, true);
  } finally {
    button.disabled = false;
  }
}

/** A live `specimen` event: the list redraws the row; unassigned images may have moved. */
export function onLiveSpecimen(raw) {
  const s = specimenFrom(raw);
  upsertSpecimen(s);
  const row = $('specimen-list').querySelector(`tr[data-id="${CSS.escape(String(s.id))}"]`);
  if (row) row.classList.add('new');
  return s;
}

/**
 * "Export CSV" beside the filters: every specimen, whatever the filter, as the server writes it.
 * A plain link with `download`, so the browser saves it with the session cookie.
 */
function exportLink() {
  return el('a', {
    class: 'button secondary',
    id: 'specimens-csv',
    href: '/api/specimens.csv',
    download: true,
    title: 'All specimens with their status, verdicts, counts and sign-off, as CSV',
    text: 'Export CSV',
  });
}

export function setUpSpecimens() {
  const filters = $('specimen-filter');
  const bar = el('div', { class: 'list-bar' });
  filters.replaceWith(bar);
  bar.append(filters, exportLink());
  // A named account signs as itself; otherwise the name is typed once and remembered.
  const name = $('actor-name');
  name.value = localStorage.getItem('blastwatch.reviewer') || '';
  name.closest('label').hidden = Boolean(state.session?.namedUser);
  $('start-specimen').addEventListener('submit', (event) => void startSpecimen(event));
  $('assign-form').addEventListener('submit', (event) => void assignSelected(event));
  // The accession search, looked up a moment after typing stops.
  $('specimen-search').addEventListener('input', (event) => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => void search(event.target.value), 250);
  });
}
