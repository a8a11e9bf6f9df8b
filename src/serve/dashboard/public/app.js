// blastwatch dashboard. Plain JavaScript, no build step, no external resources (the lab LAN may
// have no internet). Every piece of text that comes from data (file names, notes, reviewer names)
// is put on the page with textContent, never as HTML.
/* global document, window, fetch, EventSource, FormData, localStorage, setTimeout, clearTimeout, URLSearchParams, CSS */

const state = {
  session: null,
  meta: null,
  overlay: 'thumbnail',
  filters: {},
  oldestId: null,
  queueCount: 0,
  /** sha256 of uploads waiting for their result -> card element */
  pendingUploads: new Map(),
};

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
  storeMs: 'save',
  totalMs: 'total',
};
const CLASS_COLOURS = ['#2e7d32', '#f59e0b', '#d9480f', '#9c1c4f', '#1d4ed8', '#6b7280'];

// ---------- small DOM helpers ----------

/** Creates an element; string children become text nodes (never parsed as HTML). */
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === 'class') node.className = value;
    else if (key === 'text') node.textContent = value;
    else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof window.Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function svg(tag, attrs) {
  const node = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, String(value));
  return node;
}

const $ = (id) => document.getElementById(id);

function pct(p) {
  if (p === null || p === undefined) return '—';
  const v = p * 100;
  return v >= 99.95 ? '>99.9 %' : v < 0.05 && v > 0 ? '<0.1 %' : `${v.toFixed(1)} %`;
}

function when(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  return d.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'medium' });
}

function bytes(n) {
  if (n === null || n === undefined) return '—';
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}

function classLabel(name) {
  const c = state.meta?.classes.find((x) => x.name === name);
  return c ? c.label : name || '—';
}

function classColour(name) {
  const i = state.meta ? state.meta.classes.findIndex((c) => c.name === name) : -1;
  return CLASS_COLOURS[i >= 0 ? i % CLASS_COLOURS.length : CLASS_COLOURS.length - 1];
}

let toastTimer = null;
function toast(message, isError) {
  const box = $('toast');
  box.textContent = message;
  box.className = isError ? 'toast error' : 'toast';
  box.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => (box.hidden = true), 5000);
}

// ---------- API ----------

async function api(path, options = {}) {
  const headers = { ...(options.headers || {}) };
  if (options.method && options.method !== 'GET' && state.session?.csrfToken) {
    headers['x-csrf-token'] = state.session.csrfToken;
  }
  const res = await fetch(path, { credentials: 'same-origin', ...options, headers });
  if (res.status === 401) {
    window.location.assign('/login');
    throw new Error('login required');
  }
  const data = res.headers.get('content-type')?.includes('json') ? await res.json() : null;
  if (!res.ok) throw new Error((data && data.error) || `HTTP ${res.status}`);
  return data;
}

function imageUrl(id, kind) {
  return `/api/dashboard/results/${encodeURIComponent(id)}/image/${kind}`;
}

// ---------- result cards ----------

function flagBadge(r) {
  if (r.status !== 'done') {
    return el('span', {
      class: 'badge failed',
      text: r.status === 'quarantined' ? 'Quarantined' : 'Could not be read',
    });
  }
  return el('span', { class: `badge ${r.flag}`, text: FLAG_TEXT[r.flag] || r.flag || '' });
}

function probabilityBars(r) {
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

function timingsLine(timings) {
  const parts = [];
  for (const [key, label] of Object.entries(STAGE_NAMES)) {
    if (typeof timings?.[key] === 'number') parts.push(`${label} ${Math.round(timings[key])} ms`);
  }
  return parts.join(' · ');
}

function pictureFor(r, kind) {
  if (!r.images || !r.images[kind]) {
    return el('div', { class: 'no-picture', text: r.status === 'done' ? 'No picture stored' : 'No picture' });
  }
  return el('img', {
    src: imageUrl(r.id, kind),
    alt: `${kind === 'thumbnail' ? 'Image' : kind === 'mask' ? 'Cell mask' : 'Segmented image'} of ${r.file}`,
    loading: 'lazy',
    width: 160,
    height: 160,
  });
}

function resultCard(r) {
  const card = el('article', {
    class: `card ${r.status === 'done' ? r.flag : 'failed'}`,
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
    r.status === 'done'
      ? el(
          'div',
          { class: 'verdict' },
          el('span', { class: 'pball' }, 'Chance of B-ALL: ', el('strong', { text: pct(r.pBall) })),
          el('span', { class: 'cls' }, 'Most likely: ', el('strong', { text: classLabel(r.class) })),
        )
      : el('p', { class: 'error', text: `Could not read this image: ${r.error || 'unknown error'}` }),
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

// ---------- live feed ----------

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
    class: form.get('class') || '',
    from: localMidnight(form.get('from'), 0),
    to: localMidnight(form.get('to'), 1),
    q: String(form.get('q') || '').trim(),
  };
}

function matchesFilters(r, f) {
  if (f.flagged && r.flag !== 'b-all') return false;
  if (f.review && !r.needsReview) return false;
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
async function loadFeed(append) {
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

function connectLive() {
  const live = $('live-state');
  const source = new EventSource('/api/dashboard/events');
  let hadError = false;
  source.addEventListener('open', () => {
    live.textContent = 'Live';
    live.className = 'live on';
    // After a drop, fetch what was missed.
    if (hadError && currentView() === 'feed') void loadFeed(false);
  });
  source.addEventListener('error', () => {
    hadError = true;
    live.textContent = 'Reconnecting…';
    live.className = 'live off';
  });
  source.addEventListener('result', (event) => {
    try {
      onLiveResult(JSON.parse(event.data));
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

// ---------- review queue ----------

async function refreshQueueCount() {
  try {
    const rows = await api('/api/dashboard/review-queue?limit=500');
    state.queueCount = rows.length;
    $('queue-count').textContent = rows.length ? String(rows.length) : '';
    return rows;
  } catch {
    return null;
  }
}

async function loadQueue() {
  const rows = await refreshQueueCount();
  if (!rows) return;
  const list = $('review-list');
  list.replaceChildren(...rows.map(resultCard));
  $('review-empty').hidden = rows.length > 0;
}

// ---------- detail ----------

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

function reviewForm(r) {
  const named = state.session?.namedUser;
  const form = el('form', { class: 'review-form', id: 'review-form' });
  const options = state.meta.classes.map((c) =>
    el('option', { value: c.name, selected: c.name === (r.review?.class || r.class) }, c.label),
  );
  const reviewer = el('input', {
    name: 'reviewer',
    required: true,
    maxlength: 80,
    autocomplete: 'name',
    value: localStorage.getItem('blastwatch.reviewer') || '',
  });
  form.append(
    el('h2', { text: 'Your review' }),
    el(
      'label',
      {},
      'Class seen by the reviewer ',
      el('select', { name: 'class', id: 'review-class' }, options),
    ),
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
        text: 'Save selected class',
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
      await showDetail(r.id);
    } catch (err) {
      toast(`Review not saved: ${err.message}`, true);
      for (const b of form.querySelectorAll('button')) b.disabled = false;
    }
  });
  return form;
}

function historyTable(reviews) {
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
        el('td', {
          text: v.class === v.modelClass ? 'confirmed' : `changed from ${classLabel(v.modelClass)}`,
        }),
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
        el('tr', {}, ...['When', 'Reviewer', 'Class', 'Change', 'Note'].map((h) => el('th', { text: h }))),
      ),
      body,
    ),
  );
}

async function showDetail(id) {
  const view = $('view-detail');
  let r;
  try {
    r = await api(`/api/dashboard/results/${encodeURIComponent(id)}`);
  } catch (err) {
    view.replaceChildren(el('p', { class: 'error', text: `Could not load result ${id}: ${err.message}` }));
    return;
  }
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
  if (img) {
    img.removeAttribute('width');
    img.removeAttribute('height');
    img.loading = 'eager';
    picture.append(maskLayer);
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
  const maskStats = maskStatsText(r.maskStats);
  const info = el(
    'div',
    { class: 'detail-info' },
    el(
      'div',
      { class: 'card-head' },
      flagBadge(r),
      r.review ? el('span', { class: 'badge reviewed', text: 'Reviewed' }) : null,
    ),
    el('h1', { class: 'file', text: r.file }),
    r.status === 'done'
      ? el(
          'div',
          { class: 'verdict big' },
          el('span', { class: 'pball' }, 'Chance of B-ALL: ', el('strong', { text: pct(r.pBall) })),
          el('span', { class: 'cls' }, 'Most likely: ', el('strong', { text: classLabel(r.class) })),
        )
      : el('p', { class: 'error', text: `Could not read this image: ${r.error || 'unknown error'}` }),
    r.status === 'done' ? probabilityBars(r) : null,
    dl([
      ['Captured', when(r.capturedAt)],
      ['Analysed', when(r.processedAt)],
      ['Source', r.source === 'upload' ? 'Uploaded from the dashboard' : 'Microscope capture folder'],
      ['Image size', r.width ? `${r.width} × ${r.height} px` : null],
      ['Segmentation', maskStats],
      ['Model', r.model ? `${r.model.name} ${r.model.version}` : null],
      ['Runs on', r.provider],
      ['Stage times', timingsLine(r.timings) || null],
      ['MQTT', deliveryText(r.delivery)],
      ['SHA-256', el('code', { text: r.sha256 || '—' })],
    ]),
  );
  const reviewBlock = el(
    'div',
    { class: 'review-block' },
    r.status === 'done' ? reviewForm(r) : null,
    el('h2', { text: 'Review history' }),
    historyTable(r.reviews || []),
  );
  info.append(reviewBlock);
  view.replaceChildren(
    el('p', {}, el('a', { href: '#/', class: 'back', onclick: backClick, text: '← Back' })),
    el('div', { class: 'detail' }, el('div', { class: 'detail-picture' }, toggle, picture), info),
  );
}

function backClick(event) {
  event.preventDefault();
  if (window.history.length > 1) window.history.back();
  else window.location.hash = '#/';
}

// ---------- upload ----------

function uploadFiles(files) {
  for (const file of files) void uploadOne(file);
}

async function uploadOne(file) {
  const max = state.session?.meta?.uploadMaxBytes;
  const card = el(
    'article',
    { class: 'card pending' },
    el(
      'div',
      { class: 'card-body' },
      el('p', { class: 'file', text: file.name }),
      el('p', { class: 'meta', text: 'Uploading and analysing…' }),
    ),
  );
  $('upload-list').prepend(card);
  const status = card.querySelector('.meta');
  if (max && file.size > max) {
    status.textContent = `Too large: ${bytes(file.size)} (limit ${bytes(max)}).`;
    card.classList.add('failed');
    return;
  }
  const form = new FormData();
  form.append('file', file, file.name);
  try {
    const res = await api('/api/dashboard/upload', { method: 'POST', body: form });
    if (res.id) {
      const done = resultCard(await api(`/api/dashboard/results/${res.id}`));
      if (res.duplicate) {
        done
          .querySelector('.card-body')
          .prepend(el('p', { class: 'meta', text: 'Already analysed: the same image was sent before.' }));
      }
      card.replaceWith(done);
      return;
    }
    status.textContent = 'Uploaded. Analysing…';
    state.pendingUploads.set(res.sha256, card);
  } catch (err) {
    status.textContent = `Upload failed: ${err.message}`;
    card.classList.add('failed');
  }
}

function setUpUpload() {
  const zone = $('drop-zone');
  for (const id of ['upload-camera', 'upload-file']) {
    $(id).addEventListener('change', (event) => {
      uploadFiles(event.target.files);
      event.target.value = '';
    });
  }
  zone.addEventListener('dragover', (event) => {
    event.preventDefault();
    zone.classList.add('over');
  });
  zone.addEventListener('dragleave', () => zone.classList.remove('over'));
  zone.addEventListener('drop', (event) => {
    event.preventDefault();
    zone.classList.remove('over');
    uploadFiles(event.dataTransfer.files);
  });
}

// ---------- status ----------

async function loadStatus() {
  let data;
  try {
    data = await api('/api/dashboard/status');
  } catch (err) {
    toast(`Could not load status: ${err.message}`, true);
    return;
  }
  const s = data.status;
  const grid = $('status-grid');
  const item = (label, value, tone) =>
    el('div', { class: `stat ${tone || ''}` }, el('dt', { text: label }), el('dd', { text: value }));
  grid.replaceChildren(
    item('Model', s.model ? `${s.model.name} ${s.model.version}` : 'not loaded', s.model ? '' : 'bad'),
    item('Runs on', s.provider || '—'),
    item('Flag threshold', s.threshold === null ? '—' : `P(B-ALL) ≥ ${pct(s.threshold)}`),
    item('Review band', s.uncertainBand ? `${pct(s.uncertainBand[0])} – ${pct(s.uncertainBand[1])}` : '—'),
    item('Waiting in queue', String(s.queueDepth)),
    item('Analysed', `${s.processed} images${s.failed ? `, ${s.failed} unreadable` : ''}`),
    item('Throughput', `${s.throughputPerMin.toFixed(1)} images/min`),
    item(
      'Time per image',
      s.latencyMs.p50 === null
        ? '—'
        : `typical ${Math.round(s.latencyMs.p50)} ms, slow ${Math.round(s.latencyMs.p95)} ms (p95)`,
    ),
    item(
      'MQTT broker',
      !s.broker.enabled ? 'off (not configured)' : s.broker.connected ? 'connected' : 'NOT connected',
      s.broker.enabled && !s.broker.connected ? 'bad' : '',
    ),
    item('Messages not yet delivered', String(s.outboxBacklog), s.outboxBacklog > 0 ? 'warn' : ''),
    item('Free disk', bytes(s.diskFreeBytes)),
    item('Last image', when(s.lastImageAt)),
  );
  const problems = $('status-problems');
  problems.replaceChildren(...(s.problems || []).map((p) => el('li', { text: p })));
  problems.hidden = !s.problems || s.problems.length === 0;
  $('daily-chart').replaceChildren(dailyChart(data.daily));
}

/** Stacked bars per day (inline SVG: no chart library, no network). */
function dailyChart(days) {
  const classes = state.meta.classes.map((c) => c.name);
  const width = 640;
  const height = 220;
  const pad = { left: 36, right: 8, top: 10, bottom: 36 };
  const totals = days.map((d) => classes.reduce((s, c) => s + (d.counts[c] || 0), 0) + (d.failed || 0));
  const max = Math.max(1, ...totals);
  const step = niceStep(max);
  const top = Math.ceil(max / step) * step;
  const chart = svg('svg', { viewBox: `0 0 ${width} ${height}`, role: 'img', class: 'chart-svg' });
  const title = svg('title');
  title.textContent = 'Results per day by class';
  chart.append(title);
  const plotH = height - pad.top - pad.bottom;
  const plotW = width - pad.left - pad.right;
  for (let v = 0; v <= top; v += step) {
    const y = pad.top + plotH - (v / top) * plotH;
    chart.append(svg('line', { x1: pad.left, x2: width - pad.right, y1: y, y2: y, class: 'grid' }));
    const t = svg('text', { x: pad.left - 6, y: y + 4, 'text-anchor': 'end', class: 'axis' });
    t.textContent = String(v);
    chart.append(t);
  }
  const slot = plotW / Math.max(1, days.length);
  const barW = Math.max(4, slot * 0.7);
  days.forEach((d, i) => {
    let y = pad.top + plotH;
    const x = pad.left + i * slot + (slot - barW) / 2;
    const segments = [...classes.map((c) => [c, d.counts[c] || 0]), ['failed', d.failed || 0]];
    for (const [name, n] of segments) {
      if (!n) continue;
      const h = (n / top) * plotH;
      y -= h;
      const rect = svg('rect', {
        x,
        y,
        width: barW,
        height: h,
        fill: name === 'failed' ? '#9ca3af' : classColour(name),
      });
      const tip = svg('title');
      tip.textContent = `${d.day}: ${n} ${name === 'failed' ? 'unreadable' : classLabel(name)}`;
      rect.append(tip);
      chart.append(rect);
    }
    if (days.length <= 16 || i % 2 === 0) {
      const label = svg('text', {
        x: x + barW / 2,
        y: height - pad.bottom + 16,
        'text-anchor': 'middle',
        class: 'axis',
      });
      label.textContent = d.day.slice(5);
      chart.append(label);
    }
  });
  const legend = el('ul', { class: 'legend' });
  for (const c of classes) {
    const swatch = el('span', { class: 'swatch' });
    swatch.style.backgroundColor = classColour(c);
    legend.append(el('li', {}, swatch, classLabel(c)));
  }
  const failedSwatch = el('span', { class: 'swatch' });
  failedSwatch.style.backgroundColor = '#9ca3af';
  legend.append(el('li', {}, failedSwatch, 'Unreadable'));
  return el('figure', {}, chart, legend);
}

function niceStep(max) {
  const raw = max / 4;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const n = raw / mag;
  return Math.max(1, (n <= 1 ? 1 : n <= 2 ? 2 : n <= 5 ? 5 : 10) * mag);
}

// ---------- router ----------

function currentView() {
  const hash = window.location.hash || '#/';
  if (hash.startsWith('#/result/')) return 'detail';
  if (hash === '#/review') return 'review';
  if (hash === '#/upload') return 'upload';
  if (hash === '#/status') return 'status';
  return 'feed';
}

async function route() {
  const view = currentView();
  for (const section of document.querySelectorAll('.view')) section.hidden = section.id !== `view-${view}`;
  for (const a of document.querySelectorAll('.tabs a')) {
    if (a.dataset.view === view) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  window.scrollTo(0, 0);
  if (view === 'feed') await loadFeed(false);
  else if (view === 'review') await loadQueue();
  else if (view === 'status') await loadStatus();
  else if (view === 'detail') await showDetail(window.location.hash.slice('#/result/'.length));
  document.body.dataset.ready = view;
}

// ---------- start ----------

async function start() {
  state.session = await api('/api/dashboard/session');
  state.meta = state.session.meta;
  $('device-name').textContent = state.meta.deviceId;
  $('user-name').textContent = state.session.loginRequired ? state.session.user : '';
  $('logout').hidden = !state.session.loginRequired;
  $('logout').addEventListener('click', async () => {
    await api('/logout', { method: 'POST' }).catch(() => null);
    window.location.assign('/login');
  });
  $('upload-max').textContent = String(Math.round((state.meta.uploadMaxBytes || 0) / 1048576));
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
  setUpUpload();
  window.addEventListener('hashchange', () => void route());
  connectLive();
  void refreshQueueCount();
  await route();
  window.setInterval(() => {
    if (currentView() === 'status') void loadStatus();
  }, 5000);
}

start().catch((err) => {
  if (err.message !== 'login required') toast(`The dashboard could not start: ${err.message}`, true);
});
