// The live feed: filtered, paged list of results, and new results pushed over Server-Sent Events.
/* global document, window, EventSource, FormData, URLSearchParams, CSS, setTimeout, clearTimeout */
import { api, imageUrl } from './api.js';
import { resultCard } from './cards.js';
import { refreshQueueCount } from './review.js';
import { state } from './state.js';
import { $, el, toast } from './ui.js';

function readFilters() {
  const form = new FormData($('filters'));
  // Date inputs are local days; the server filters on instants (from inclusive, to exclusive).
  const localMidnight = (day, addDays) => {
    if (!day) return '';
    const d = new Date(`${day}T00:00:00`);
    d.setDate(d.getDate() + addDays);
    return Number.isNaN(d.getTime()) ? '' : d.toISOString();
  };
  return {
    flagged: form.get('flagged') ? '1' : '',
    review: form.get('review') ? '1' : '',
    out_of_domain: form.get('out_of_domain') ? '1' : '',
    class: form.get('class') || '',
    from: localMidnight(form.get('from'), 0),
    to: localMidnight(form.get('to'), 1),
    q: String(form.get('q') || '').trim(),
  };
}

function matchesFilters(r, f) {
  if (f.flagged && r.flag !== 'b-all') return false;
  if (f.review && !r.needsReview) return false;
  if (f.out_of_domain && r.status !== 'out_of_domain') return false;
  if (f.class && r.class !== f.class) return false;
  if (f.q && !r.file.toLowerCase().includes(f.q.toLowerCase())) return false;
  const t = r.processedAt || '';
  if (f.from && t < f.from) return false;
  if (f.to && t >= f.to) return false;
  return true;
}

function queryString(f, extra) {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries({ ...f, ...extra })) if (v) params.set(k, v);
  return params.toString();
}

let feedRequest = 0;
export async function loadFeed(append) {
  // Filters change quickly while typing: only the latest request may fill the list.
  const mine = ++feedRequest;
  state.filters = readFilters();
  const extra = { limit: '40' };
  if (append && state.oldestId) extra.before = String(state.oldestId);
  let rows;
  try {
    rows = await api(`/api/dashboard/results?${queryString(state.filters, extra)}`);
  } catch (err) {
    toast(`Could not load results: ${err.message}`, true);
    return;
  }
  if (mine !== feedRequest) return;
  const list = $('feed-list');
  if (!append) list.replaceChildren();
  for (const r of rows) list.append(resultCard(r));
  if (rows.length) state.oldestId = rows[rows.length - 1].id;
  $('feed-more').hidden = rows.length < 40;
  $('feed-empty').hidden = list.children.length > 0;
}

function onLiveResult(r) {
  // Feed
  const list = $('feed-list');
  const existing = list.querySelector(`[data-id="${CSS.escape(String(r.id))}"]`);
  if (matchesFilters(r, state.filters)) {
    const card = resultCard(r);
    card.classList.add('new');
    if (existing) existing.replaceWith(card);
    else list.prepend(card);
    $('feed-empty').hidden = true;
  } else {
    $('feed-hint').textContent = 'New results arrived that your filters hide.';
  }
  // Upload waiting for this image?
  const waiting = state.pendingUploads.get(r.sha256);
  if (waiting) {
    waiting.replaceWith(resultCard(r));
    state.pendingUploads.delete(r.sha256);
  }
  if (r.needsReview) refreshQueueCount();
  if (r.status === 'done' && r.flag === 'b-all') document.title = `(!) blastwatch — B-ALL flag`;
}

/**
 * Opens the live stream. `onReconnect` runs after a dropped connection is back (to fetch what was
 * missed); `onSpecimen` gets each `specimen` event, `onResult` each result after the feed took it.
 */
export function connectLive({ onReconnect, onSpecimen, onResult }) {
  const live = $('live-state');
  const source = new EventSource('/api/dashboard/events');
  let hadError = false;
  source.addEventListener('open', () => {
    live.textContent = 'Live';
    live.className = 'live on';
    if (hadError) onReconnect();
  });
  source.addEventListener('error', () => {
    hadError = true;
    live.textContent = 'Reconnecting…';
    live.className = 'live off';
  });
  source.addEventListener('result', (event) => {
    try {
      const r = JSON.parse(event.data);
      onLiveResult(r);
      onResult?.(r);
    } catch (err) {
      window.console.error(err);
    }
  });
  source.addEventListener('specimen', (event) => {
    try {
      onSpecimen?.(JSON.parse(event.data));
    } catch (err) {
      window.console.error(err);
    }
  });
}

function setOverlay(kind) {
  state.overlay = kind;
  for (const b of $('feed-overlay').querySelectorAll('button')) {
    b.setAttribute('aria-pressed', String(b.dataset.kind === kind));
  }
  for (const card of document.querySelectorAll('#feed-list .card, #review-list .card')) {
    const id = card.dataset.id;
    const img = card.querySelector('.picture img');
    if (img) img.src = imageUrl(id, kind);
  }
}

/** Wires the filters (class list, debounced input), "Show older results" and the picture switch. */
export function setUpFeed() {
  for (const c of state.meta.classes) $('filter-class').append(el('option', { value: c.name }, c.label));
  // On a phone the filters start folded: the feed is what matters at the microscope.
  if (window.matchMedia('(max-width: 700px)').matches) $('filter-box').open = false;
  let debounce = null;
  $('filters').addEventListener('input', () => {
    clearTimeout(debounce);
    debounce = setTimeout(() => {
      $('feed-hint').textContent = '';
      void loadFeed(false);
    }, 250);
  });
  $('filters').addEventListener('submit', (event) => event.preventDefault());
  $('feed-more').addEventListener('click', () => void loadFeed(true));
  for (const b of $('feed-overlay').querySelectorAll('button'))
    b.addEventListener('click', () => setOverlay(b.dataset.kind));
}
