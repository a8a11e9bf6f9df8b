// The specimen page: counts and the flagged share with its 95 % interval, the suggested verdict
// with its rule in words, the images as a gallery grouped by predicted class (most suspicious
// first), the image under review, the sign-off panel, the sign-off versions and the audit trail;
// the downloads: the signed report (PDF) and the images (CSV).
/* global document, window */
import { api, imageUrl, postJson } from './api.js';
import { cameraWarningsNotice } from './camera-warnings.js';
import { signOffPanel, signOffKey, updateReadingNotices } from './signoff.js';
import {
  cannotScreenReason,
  countsLine,
  isScreened,
  isSigned,
  specimenFrom,
  VERDICT_TEXT,
} from './specimen-model.js';
import { reviewPanel, selectImage, showCurrent } from './specimen-review.js';
import {
  finishSpecimen,
  shareText,
  statusBadge,
  upsertSpecimen,
  verdictBadges,
  withActor,
} from './specimens.js';
import { state } from './state.js';
import { $, classColour, classLabel, el, pct, toast, when } from './ui.js';

/** Screened images by predicted class; the group holding the highest P(B-ALL) comes first. */
function galleryGroups(images) {
  const byClass = new Map();
  for (const img of images.filter(isScreened)) {
    const key = img.class || '';
    if (!byClass.has(key)) byClass.set(key, []);
    byClass.get(key).push(img);
  }
  const groups = [...byClass.entries()].map(([name, list]) => ({
    name,
    images: list.sort((a, b) => (b.pBall ?? 0) - (a.pBall ?? 0)),
  }));
  groups.sort((a, b) => (b.images[0].pBall ?? 0) - (a.images[0].pBall ?? 0));
  return groups;
}

function tile(img, index) {
  const cannot = cannotScreenReason(img);
  const classes = ['tile', img.flag || (cannot ? 'cannot' : ''), img.review ? 'reviewed' : ''];
  return el(
    'button',
    {
      type: 'button',
      class: classes.filter(Boolean).join(' '),
      'data-id': img.id,
      'data-index': index,
      title: img.file,
      'aria-label': `${img.file}${cannot ? `: ${cannot}` : `, P(B-ALL) ${pct(img.pBall)}`}`,
      onclick: () => selectImage(index),
    },
    el('img', { src: imageUrl(img.id, 'thumbnail'), alt: '', loading: 'lazy', width: 112, height: 112 }),
    el('span', { class: 'tile-p', text: cannot ? 'Cannot screen' : pct(img.pBall) }),
    img.review ? el('span', { class: 'tile-check', title: 'Reviewed', text: '✓' }) : null,
  );
}

/** The gallery, and `order`: the images in the order the keyboard walks them. */
function gallery(images) {
  const order = [];
  const box = el('div', { class: 'gallery', id: 'gallery' });
  for (const group of galleryGroups(images)) {
    const swatch = el('span', { class: 'swatch' });
    swatch.style.backgroundColor = classColour(group.name);
    box.append(
      el(
        'h3',
        { class: 'group-head', 'data-class': group.name },
        swatch,
        `${classLabel(group.name)} (${group.images.length})`,
      ),
      el(
        'div',
        { class: 'tiles' },
        group.images.map((img) => tile(img, order.push(img) - 1)),
      ),
    );
  }
  const cannot = images.filter((img) => !isScreened(img));
  if (cannot.length) {
    box.append(
      el('h3', { class: 'group-head cannot', text: `Cannot screen (${cannot.length})` }),
      el('p', {
        class: 'meta',
        text: 'Out of domain or unreadable: the model gives no verdict on these. They do not count as screened. An out-of-domain field can still be reviewed: choose the class you see.',
      }),
      el(
        'div',
        { class: 'tiles' },
        cannot.map((img) => tile(img, order.push(img) - 1)),
      ),
    );
  }
  if (!images.length) box.append(el('p', { class: 'empty', text: 'No images in this specimen yet.' }));
  return { box, order };
}

function cannotScreenText(c) {
  const parts = [];
  if (c.outOfDomain) parts.push(`${c.outOfDomain} out of domain`);
  if (c.failed) parts.push(`${c.failed} unreadable`);
  return `${c.outOfDomain + c.failed}${parts.length ? ` (${parts.join(', ')})` : ''}`;
}

function summary(s) {
  const c = s.counts;
  const stat = (label, value, id) =>
    el('div', { class: 'stat' }, el('dt', { text: label }), el('dd', { text: value, id }));
  const classes = (state.meta?.classes || []).map((k) => `${k.label}: ${c.byClass[k.name] || 0}`);
  return el(
    'section',
    { class: 'specimen-summary', 'aria-label': 'Counts' },
    el(
      'dl',
      { class: 'status-grid' },
      stat('Images', String(c.images), 'count-images'),
      stat('Screened', String(c.screened), 'count-screened'),
      stat('Flagged B-ALL', String(c.flagged), 'count-flagged'),
      stat('Cannot screen', cannotScreenText(c), 'count-cannot'),
      stat('Flagged share', shareText(s.flaggedShare), 'flagged-share'),
    ),
    el('p', { class: 'meta by-class', text: `Screened per predicted class — ${classes.join(' · ')}` }),
    // Filled by updateReadingNotices (signoff.js), which a reading made on this page calls too.
    el('p', { class: 'meta by-class', id: 'count-read', hidden: true }),
    el(
      'div',
      { class: `suggestion verdict-${s.suggestedVerdict}`, id: 'suggestion' },
      el(
        'p',
        {},
        'Suggested verdict: ',
        el('strong', { text: VERDICT_TEXT[s.suggestedVerdict] || s.suggestedVerdict }),
      ),
      s.rule ? el('p', { class: 'rule', id: 'verdict-rule', text: `Rule: ${s.rule}` }) : null,
      el('p', {
        class: 'meta',
        text: 'A count of the model’s flags, not a diagnosis: the verdict that counts is the signed one.',
      }),
    ),
  );
}

function versionsTable(signOffs) {
  if (!signOffs.length) return el('p', { class: 'meta', text: 'Not signed yet.' });
  const rows = [...signOffs]
    .sort((a, b) => b.version - a.version)
    .map((v) =>
      el(
        'tr',
        {},
        el('td', { text: String(v.version) }),
        el('td', { text: when(v.signedAt) }),
        el('td', { text: v.signer }),
        el('td', { text: VERDICT_TEXT[v.verdict] || v.verdict }),
        el('td', { text: v.suggestedVerdict ? VERDICT_TEXT[v.suggestedVerdict] || v.suggestedVerdict : '—' }),
        el('td', { text: v.comment }),
        el('td', { text: v.reason }),
      ),
    );
  return table(
    ['Version', 'When', 'Signed by', 'Verdict', 'Suggested then', 'Comment', 'Reason for change'],
    rows,
    'versions',
  );
}

function detailText(detail) {
  if (detail === null || detail === undefined) return '';
  if (typeof detail !== 'object') return String(detail);
  return Object.entries(detail)
    .map(
      ([k, v]) => `${k.replace(/_/g, ' ')}: ${typeof v === 'object' && v !== null ? JSON.stringify(v) : v}`,
    )
    .join('; ');
}

function auditTable(audit) {
  if (!audit.length) return el('p', { class: 'meta', text: 'Nothing recorded yet.' });
  const rows = audit.map((a) =>
    el(
      'tr',
      {},
      el('td', { text: when(a.at ?? a.created_at ?? a.createdAt) }),
      el('td', { text: a.actor ?? a.user ?? a.by ?? '—' }),
      el('td', { text: String(a.action ?? a.event ?? '').replace(/_/g, ' ') }),
      el('td', { text: detailText(a.detail ?? a.details ?? a.data) }),
    ),
  );
  return table(['When', 'Who', 'What', 'Details'], rows, 'audit');
}

function table(headers, rows, id) {
  return el(
    'div',
    { class: 'table-wrap' },
    el(
      'table',
      { class: 'history', id },
      el(
        'thead',
        {},
        el(
          'tr',
          {},
          headers.map((h) => el('th', { scope: 'col', text: h })),
        ),
      ),
      el('tbody', {}, rows),
    ),
  );
}

/**
 * The report of the signed version and the images as CSV. Plain links with `download`: the
 * browser downloads them itself, with the session cookie, under the name the server gives. Before
 * the signature there is no report, so no link, only the sentence that says when there is one.
 */
function downloads(s) {
  const base = `/api/specimens/${encodeURIComponent(s.id)}`;
  const version = s.signOff?.version;
  const report =
    isSigned(s) && version
      ? el('a', {
          class: 'button',
          id: 'report-pdf',
          href: `${base}/report.pdf`,
          download: true,
          title: `The printable report of sign-off version ${version}`,
          text: `Report v${version} (PDF)`,
        })
      : el('span', {
          class: 'meta',
          id: 'report-pending',
          text: 'The report (PDF) is available once the specimen is signed.',
        });
  return el(
    'div',
    { class: 'downloads', id: 'specimen-downloads' },
    report,
    el('a', {
      class: 'button secondary',
      id: 'images-csv',
      href: `${base}/images.csv`,
      download: true,
      title: 'Every image of this specimen with its class, P(B-ALL) and review, as CSV',
      text: 'Images (CSV)',
    }),
  );
}

function head(s) {
  return el(
    'div',
    { class: 'specimen-head' },
    el('h1', { id: 'specimen-accession', text: s.accession }),
    statusBadge(s),
    verdictBadges(s),
    el('span', { class: 'meta', text: countsLine(s.counts) }),
    el(
      'span',
      { class: 'actions' },
      s.status === 'open'
        ? el('button', {
            type: 'button',
            id: 'finish-specimen',
            text: 'Finish',
            title: 'No more images join this specimen; it then waits for a sign-off',
            onclick: async () => {
              if (await finishSpecimen(s)) await showSpecimen(s.id);
            },
          })
        : null,
      el('button', {
        type: 'button',
        class: 'secondary',
        id: 'shortcut-button',
        text: 'Keyboard shortcuts (?)',
        onclick: () => $('shortcut-help').showModal(),
      }),
    ),
  );
}

/** Adds a capture the session left out to this specimen, as the unassigned list would. */
async function addLeftOut(s, capture) {
  const body = withActor({ result_ids: [capture.resultId] });
  if (!body) return;
  try {
    await postJson(`/api/specimens/${s.id}/images`, body);
    toast(`${capture.file} added to ${s.accession}.`);
  } catch (err) {
    toast(`Not added: ${err.message}`, true);
  }
  await showSpecimen(s.id);
}

/**
 * Captures that arrived while this specimen's session ran but are stamped before it started: the
 * session could not take them, and they wait, unassigned, for a person to say where they belong
 * (one button adds one here; a signed specimen is locked, so it has none).
 */
function beforeStartNotice(s) {
  const list = s.capturesBeforeStart;
  if (!list.length) return null;
  const one = list.length === 1;
  return el(
    'div',
    { class: 'notice', id: 'before-start', role: 'status' },
    el('p', {
      text: `${list.length} capture${one ? '' : 's'} arrived during this specimen's session but ${one ? 'is' : 'are'} stamped before it started, so ${one ? 'it is' : 'they are'} not in it:`,
    }),
    el(
      'ul',
      {},
      list.map((c) =>
        el(
          'li',
          {},
          el('a', { href: `#/result/${c.resultId}`, text: c.file }),
          ` (${c.beforeS} s before the start) `,
          isSigned(s)
            ? null
            : el('button', {
                type: 'button',
                class: 'secondary small add-left-out',
                'data-id': c.resultId,
                text: 'Add to this specimen',
                onclick: () => void addLeftOut(s, c),
              }),
        ),
      ),
    ),
    el(
      'p',
      { class: 'meta' },
      'If one belongs to this specimen, add it here; if it belongs to another, assign it from the ',
      el('a', { href: '#/specimens/unassigned', text: 'unassigned images' }),
      ". If this keeps happening, the camera PC's or the file server's clock runs behind this station's: set both from the same time source (NTP).",
    ),
  );
}

/** Shows specimen `id`; a refresh of the same specimen keeps the image under review and the sign-off form. */
export async function showSpecimen(id) {
  const view = $('view-specimen');
  let s;
  try {
    s = specimenFrom(await api(`/api/specimens/${encodeURIComponent(id)}`));
  } catch (err) {
    view.replaceChildren(el('p', { class: 'error', text: `Could not load specimen ${id}: ${err.message}` }));
    return;
  }
  const page = state.specimenPage;
  const sameSpecimen = page.specimen && page.specimen.id === s.id && view.querySelector('#gallery');
  const currentId = sameSpecimen ? page.order[page.cursor]?.id : undefined;
  const { box, order } = gallery(s.images || []);
  page.specimen = s;
  page.order = order;
  const kept = order.findIndex((img) => img.id === currentId);
  if (kept >= 0) page.cursor = kept;
  else {
    page.cursor = 0;
    page.chosenClass = null;
  }
  upsertSpecimen(s);

  // The sign-off form is replaced only when the sign-off state changed: a live update must not
  // wipe a comment being typed.
  const oldPanel = view.querySelector('#signoff-panel');
  const panel =
    sameSpecimen && oldPanel?.dataset.key === signOffKey(s)
      ? oldPanel
      : signOffPanel(s, () => showSpecimen(s.id));

  view.replaceChildren(
    el('p', {}, el('a', { href: '#/', class: 'back', text: '← Specimens' })),
    head(s),
    downloads(s),
    el(
      'div',
      { class: 'specimen-layout' },
      el(
        'div',
        { class: 'specimen-main' },
        summary(s),
        cameraWarningsNotice(s),
        beforeStartNotice(s),
        el('h2', { text: 'Images' }),
        box,
      ),
      el('aside', { class: 'specimen-side' }, reviewPanel(), panel),
    ),
    el('h2', { text: 'Sign-off versions' }),
    versionsTable(s.signOffs.length ? s.signOffs : s.signOff ? [s.signOff] : []),
    el('h2', { text: 'Audit trail' }),
    auditTable(s.audit),
  );
  updateReadingNotices();
  showCurrent(false);
}

/** A live `specimen` event for the specimen on screen: redraw it, keeping the reviewer's place. */
let refreshTimer = null;
export function refreshSpecimenSoon(id) {
  const page = state.specimenPage;
  if (document.body.dataset.view !== 'specimen' || !page.specimen || page.specimen.id !== id) return;
  window.clearTimeout(refreshTimer);
  refreshTimer = window.setTimeout(() => void showSpecimen(id), 300);
}
