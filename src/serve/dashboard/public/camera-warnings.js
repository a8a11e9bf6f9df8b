// What a specimen's page says about the camera warnings its images arrived under: health's
// watches over the latest captures (white balance, magnification, many fields unlike the training
// images) raised while they joined it. Kept with the specimen, so the person who signs it hears
// of them after they cleared.
import { el, when } from './ui.js';

/** The watch in a few words, for the sign-off confirmation. */
const WATCH_WORDS = {
  domain_drift: 'many fields unlike the training images',
  colour_drift: 'white balance',
  magnification: 'magnification',
};

const imagesText = (n) => `${n} image${n === 1 ? '' : 's'}`;

/** The notice on the specimen page; null when its images arrived under no camera warning. */
export function cameraWarningsNotice(s) {
  const list = s.cameraWarnings;
  if (!list.length) return null;
  return el(
    'div',
    { class: 'notice', id: 'camera-warnings', role: 'status' },
    el('p', {
      text:
        "The station warned that its camera may have changed while this specimen's images arrived " +
        '(a warning is judged on the latest captures, so those just before it was raised count too). ' +
        "Under such a change the model's figures do not hold and it misses more blasts: check the " +
        'microscope, and read the images yourself before relying on the counts.',
    }),
    el(
      'ul',
      {},
      list.map((w) =>
        el(
          'li',
          {},
          `${imagesText(w.images)}, ${when(w.firstAt)}${w.images > 1 ? ` – ${when(w.lastAt)}` : ''}: `,
          w.text,
        ),
      ),
    ),
    countedAfterSigning(s)
      ? el('p', {
          id: 'camera-warnings-after-signing',
          text:
            'A warning raised after the latest signature counted some of these images: the signed ' +
            'report and the laboratory system do not mention it. Read the images again, and amend ' +
            'the specimen if they need it.',
        })
      : null,
  );
}

/** Whether a camera warning counted images of this specimen after its latest signature. */
function countedAfterSigning(s) {
  const signedAt = Date.parse(s.signOff?.signedAt ?? '');
  if (Number.isNaN(signedAt)) return false;
  return s.audit.some((a) => a.action === 'camera_warning_counted' && Date.parse(a.at) > signedAt);
}

/** The sign-off confirmation's sentence about them; '' when none. */
export function cameraWarningsWords(s) {
  const list = s.cameraWarnings || [];
  if (!list.length) return '';
  const what = list.map((w) => `${WATCH_WORDS[w.watch] ?? w.watch} (${imagesText(w.images)})`).join(', ');
  return `The station warned about its camera while this specimen's images arrived: ${what}.`;
}

/** The list's badge for a specimen whose images arrived under a camera warning; null when none. */
export function cameraWarnedBadge(s) {
  const watches = s.cameraWarned || [];
  if (!watches.length) return null;
  return el('span', {
    class: 'badge camera-warned',
    title:
      `The station warned that its camera may have changed while its images arrived ` +
      `(${watches.map((w) => WATCH_WORDS[w] ?? w).join(', ')}): see the specimen page before relying on the counts.`,
    text: 'Camera warned',
  });
}
