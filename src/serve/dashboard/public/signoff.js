// The sign-off panel of a specimen: the verdict (the suggestion unless the reviewer overrides it),
// a comment and the signature, confirmed in a dialog. A signed specimen is locked: a change is an
// amendment, a new version that needs a reason. When someone else signed first (HTTP 409) the
// panel says so and shows their sign-off; nothing the reviewer typed is sent twice.
/* global FormData, localStorage */
import { postJson } from './api.js';
import { cameraWarningsWords } from './camera-warnings.js';
import {
  awaitsReading,
  isSigned,
  outOfDomainReadingsText,
  readAsBall,
  readClassCounts,
  VERDICT_SHORT,
  VERDICT_TEXT,
  VERDICTS,
} from './specimen-model.js';
import { state } from './state.js';
import { $, actorName, el, toast, when } from './ui.js';

/** A conflict message survives the redraw that shows the winner's sign-off. */
let conflictNotice = null;
/** The panel's "submit" for the keyboard's sign shortcut. */
let signFromKeyboard = null;

/** Changes when the panel must be redrawn (status or sign-off version), not on every new image. */
export function signOffKey(s) {
  return `${s.id}:${s.status}:${s.signOff ? s.signOff.version : 0}`;
}

function verdictChoice(name, selected, suggested) {
  return el(
    'fieldset',
    { class: 'verdict-choice' },
    el('legend', { text: 'Verdict' }),
    VERDICTS.map((v) =>
      el(
        'label',
        { class: `check verdict-${v}` },
        el('input', { type: 'radio', name, value: v, checked: v === selected, required: true }),
        ` ${VERDICT_TEXT[v]}`,
        v === suggested ? el('span', { class: 'meta', text: ' (suggested)' }) : null,
      ),
    ),
  );
}

function signerField() {
  if (state.session?.namedUser) {
    return el('p', { class: 'meta', text: `Signed as ${state.session.user}` });
  }
  return el(
    'label',
    {},
    'Your name ',
    el('input', {
      id: 'signer-name',
      class: 'actor-name',
      name: 'reviewer',
      required: true,
      maxlength: 80,
      autocomplete: 'name',
      value: localStorage.getItem('blastwatch.reviewer') || '',
    }),
  );
}

/** How many of the specimen's withheld fields wait for a reading, in words; '' when none. */
function unreadWithheldText(s) {
  const n = (s.images || []).filter(awaitsReading).length;
  if (n === 0) return '';
  return (
    `${n === 1 ? '1 field was' : `${n} fields were`} withheld as a benign call the model's own ` +
    `features contradict, and nobody has read ${n === 1 ? 'it' : 'them'} yet. The counts and the ` +
    `suggestion leave ${n === 1 ? 'it' : 'them'} out: look at ${n === 1 ? 'it' : 'them'} (under ` +
    '"Cannot screen") before signing.'
  );
}

/**
 * Fields the model could not screen that a person read as a B-ALL class: "2 fields the model
 * could not screen were read as a B-ALL class (Pre-B 1, Pro-B 1)"; '' when none.
 */
function readAsBallWords(s) {
  const benign = state.meta?.benignClass;
  if (!benign) return '';
  const read = (s.images || []).filter((img) => readAsBall(img, benign));
  if (read.length === 0) return '';
  const classes = [...readClassCounts(read)].map(([name, n]) => `${name} ${n}`).join(', ');
  const one = read.length === 1;
  return `${one ? '1 field' : `${read.length} fields`} the model could not screen ${one ? 'was' : 'were'} read as a B-ALL class (${classes})`;
}

function readAsBallText(s) {
  const words = readAsBallWords(s);
  return words
    ? `${words}. The counts and the suggestion leave such fields out; the signed report sends the reading to the laboratory.`
    : '';
}

/** Shows or hides one notice of the sign-off form. */
function showNotice(id, text) {
  const box = $(id);
  if (!box) return;
  box.textContent = text;
  box.hidden = !text;
}

/**
 * Updates what the specimen page says about the fields the model could not screen, from the
 * images as they are now: the sign-off form's notices (one withheld and unread, one read as a
 * B-ALL class) and the counts' line of readings (#count-read, drawn by specimen.js).
 */
export function updateReadingNotices() {
  const s = state.specimenPage.specimen;
  if (!s) return;
  showNotice('unread-withheld', unreadWithheldText(s));
  showNotice('read-as-ball', readAsBallText(s));
  const read = outOfDomainReadingsText(s.images, state.meta?.classes);
  showNotice('count-read', read ? `Read by a person where the model gave no verdict — ${read}` : '');
}

/**
 * What the confirmation says before the verdict: the camera warnings the specimen's images
 * arrived under, and about the fields the model could not screen: unread withheld fields (a first
 * signature), and B-ALL readings under a verdict other than "Suspicious" (a signature or an
 * amendment).
 */
function readingsWarning(s, verdict, what) {
  const unread = what === 'sign' ? unreadWithheldText(s) : '';
  const ball = verdict !== 'suspicious' ? readAsBallWords(s) : '';
  const camera = cameraWarningsWords(s);
  return [camera, unread, ball ? `${ball}, and the verdict is not "Suspicious".` : '']
    .filter(Boolean)
    .join(' ');
}

function confirmDialog(text, yesLabel) {
  const dialog = $('sign-confirm');
  $('sign-confirm-text').textContent = text;
  $('sign-confirm-yes').textContent = yesLabel;
  dialog.returnValue = '';
  dialog.showModal();
  return new Promise((resolve) => {
    // The close event is dispatched after the dialog has closed, as a task of its own: one from an
    // earlier confirmation that arrives once this one is open must not answer it (with an empty
    // returnValue, as a cancel), or the reviewer's "Sign" would then close a dialog nobody heeds.
    const onClose = () => {
      if (dialog.open) return;
      dialog.removeEventListener('close', onClose);
      resolve(dialog.returnValue === 'sign');
    };
    dialog.addEventListener('close', onClose);
  });
}

/**
 * Sends a sign-off or an amendment after the reviewer confirmed it. Returns true when stored;
 * a 409 leaves the notice for the redrawn panel.
 */
async function send(s, path, body, what) {
  const signer = actorName();
  if (!signer) {
    toast('Type your name first: a signature is kept with its signer.', true);
    $('signer-name')?.focus();
    return false;
  }
  const verdictWords = VERDICT_TEXT[body.verdict];
  const warning = readingsWarning(state.specimenPage.specimen || s, body.verdict, what);
  const ok = await confirmDialog(
    `${warning ? `${warning} ` : ''}` +
      `${s.accession}: ${verdictWords}. ${what === 'amend' ? `Reason: ${body.reason}. ` : ''}` +
      `Signed as ${signer}. A signed specimen is locked; later changes are amendments.`,
    what === 'amend' ? 'Sign amendment' : 'Sign',
  );
  if (!ok) return false;
  try {
    await postJson(path, state.session?.namedUser ? body : { ...body, reviewer: signer });
    toast(what === 'amend' ? `${s.accession}: amendment signed.` : `${s.accession}: signed.`);
    return true;
  } catch (err) {
    if (err.status === 409) {
      conflictNotice =
        `Someone else ${what === 'amend' ? 'changed' : 'signed'} this specimen first. ` +
        `Your ${what === 'amend' ? 'amendment' : 'sign-off'} (${verdictWords}) was not stored. ` +
        `Their sign-off is shown below; to change it, amend it with a reason.`;
      return true;
    }
    toast(`Not signed: ${err.message}`, true);
    return false;
  }
}

function signForm(s, onChange) {
  const form = el(
    'form',
    { id: 'signoff-form', class: 'review-form' },
    verdictChoice('verdict', s.suggestedVerdict, s.suggestedVerdict),
    el('p', { class: 'notice', id: 'unread-withheld', role: 'status', hidden: true }),
    el('p', { class: 'notice', id: 'read-as-ball', role: 'status', hidden: true }),
    el('label', {}, 'Comment ', el('textarea', { name: 'comment', rows: 3, maxlength: 2000 })),
    signerField(),
    el('div', { class: 'actions' }, el('button', { type: 'submit', id: 'sign-button', text: 'Sign… (s)' })),
  );
  const submit = async () => {
    const data = new FormData(form);
    const body = { verdict: String(data.get('verdict')), comment: String(data.get('comment') || '') };
    if (await send(s, `/api/specimens/${s.id}/sign`, body, 'sign')) await onChange();
  };
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    void submit();
  });
  signFromKeyboard = () => (form.reportValidity() ? submit() : undefined);
  return form;
}

function amendForm(s, onChange) {
  const form = el(
    'form',
    { id: 'amend-form', class: 'review-form', hidden: true },
    verdictChoice('verdict', s.finalVerdict, s.suggestedVerdict),
    el(
      'label',
      {},
      'Reason for the change (required) ',
      el('textarea', { name: 'reason', rows: 2, maxlength: 2000, required: true }),
    ),
    el('label', {}, 'Comment ', el('textarea', { name: 'comment', rows: 2, maxlength: 2000 })),
    signerField(),
    el(
      'div',
      { class: 'actions' },
      el('button', { type: 'submit', id: 'amend-sign', text: 'Sign amendment…' }),
    ),
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const body = {
      verdict: String(data.get('verdict')),
      comment: String(data.get('comment') || ''),
      reason: String(data.get('reason') || '').trim(),
      // The version the reviewer saw: an amendment that landed since makes the server refuse (409).
      version: s.signOff ? s.signOff.version : undefined,
    };
    if (!body.reason) {
      toast('An amendment needs a reason.', true);
      return;
    }
    if (await send(s, `/api/specimens/${s.id}/amend`, body, 'amend')) await onChange();
  });
  return form;
}

function signedSummary(s) {
  const so = s.signOff;
  return el(
    'div',
    { class: `signed-box verdict-${s.finalVerdict}`, id: 'signed-box' },
    el('p', {}, el('strong', { text: VERDICT_TEXT[s.finalVerdict] || s.finalVerdict })),
    so
      ? el('p', {
          class: 'meta',
          text: `${so.version > 1 ? `Amendment ${so.version - 1}, signed` : 'Signed'} by ${so.signer}, ${when(so.signedAt)}`,
        })
      : null,
    so && so.comment ? el('p', { class: 'comment', text: `“${so.comment}”` }) : null,
    so && so.reason ? el('p', { class: 'meta', text: `Reason for the change: ${so.reason}` }) : null,
    s.finalVerdict !== s.suggestedVerdict
      ? el('p', {
          class: 'meta',
          text: `The model suggested: ${VERDICT_SHORT[s.suggestedVerdict] || s.suggestedVerdict}`,
        })
      : null,
  );
}

/** The whole panel for specimen `s`; `onChange` reloads the page after a write (or a conflict). */
export function signOffPanel(s, onChange) {
  const panel = el('section', { class: 'signoff-panel', id: 'signoff-panel', 'data-key': signOffKey(s) });
  panel.append(el('h2', { text: 'Sign-off' }));
  if (conflictNotice) {
    panel.append(el('p', { class: 'conflict', id: 'signoff-conflict', role: 'alert', text: conflictNotice }));
    conflictNotice = null;
  }
  if (!isSigned(s)) {
    if (s.status === 'open') {
      panel.append(
        el('p', {
          class: 'meta',
          text: 'Images may still arrive: press Finish when the last field is captured, then sign.',
        }),
      );
    }
    panel.append(signForm(s, onChange));
    return panel;
  }
  signFromKeyboard = null;
  const amend = amendForm(s, onChange);
  panel.append(
    signedSummary(s),
    el('p', { class: 'meta locked', text: 'Locked: a change is an amendment, kept as a new version.' }),
    el('button', {
      type: 'button',
      class: 'secondary',
      id: 'amend-button',
      text: 'Amend…',
      onclick: (event) => {
        amend.hidden = false;
        event.currentTarget.hidden = true;
        amend.querySelector('textarea[name="reason"]').focus();
      },
    }),
    amend,
  );
  return panel;
}

/** The keyboard's sign shortcut: the same confirmation as the button. */
export async function requestSign() {
  if (!signFromKeyboard) {
    toast('This specimen is already signed: use Amend to change it.', true);
    return;
  }
  await signFromKeyboard();
}
