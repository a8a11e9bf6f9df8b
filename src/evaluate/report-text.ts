/**
 * The readable report of `blastwatch evaluate` (without --json): the gate's figures, the camera
 * lines, the model's metrics over the accepted images and the set against the targets for another
 * microscope (docs/new-microscope.md).
 */
import { DOMAIN_REASON_TEXT, type DomainReason } from '../domain/applicability.js';
import type { MagnificationFigures } from '../gate/red-cell-size.js';
import { colourLines, magnificationLines } from './camera-lines.js';
import type { ColourFigures, LabelledEvaluation, Rejections, UnlabelledEvaluation } from './gate-metrics.js';
import type { SiteCheck } from './site-check.js';

const pct = (v: number | null): string => (v === null ? 'n/a' : `${(v * 100).toFixed(2)}%`);

const VERDICT_TEXT: Record<SiteCheck['verdict'], string> = {
  applies: 'the model applies to pictures like these',
  does_not_apply: 'the model does not apply to pictures like these: do not rely on its screen here',
  not_enough_images: 'no target missed, but too few malignant images to show the silent misses below 1%',
};

/** The set against the model card's targets for another camera (docs/new-microscope.md). */
function siteLines(m: LabelledEvaluation): string[] {
  const c = m.site_check;
  if (!c) return [];
  const mark = (key: keyof SiteCheck['targets']): string => (c.missed.includes(key) ? 'missed' : 'met');
  const t = c.targets;
  return [
    '',
    `against the targets for a microscope other than the training camera (docs/new-microscope.md):`,
    `  accepted ${pct(m.n ? m.n_accepted / m.n : null)} (target >= ${t.accepted_share * 100}%): ${mark('accepted_share')}`,
    `  accuracy on accepted ${pct(m.accuracy)} (target >= ${t.accuracy * 100}%): ${mark('accuracy')}`,
    `  silent misses ${pct(m.silent_miss_share)}, at most ${pct(c.silent_miss_upper_95)} with 95% confidence ` +
      `(target <= ${t.silent_miss_share * 100}%): ${mark('silent_miss_share')}`,
    `  verdict: ${VERDICT_TEXT[c.verdict]}`,
  ];
}

/** A report with the images' green balance (null without the gate or the reference). */
export type WithColour<T> = T & {
  colour_drift: ColourFigures | null;
  magnification: MagnificationFigures | null;
};

/** The gate's lines of the text report: accepted, and what was rejected for which reason. */
function gateLines(m: { n: number; n_accepted: number; rejected: Rejections; gate: boolean }): string[] {
  if (!m.gate) return ['out-of-domain gate: off (--no-gate): every image gets a verdict'];
  const reasons = Object.entries(m.rejected.by_reason)
    .sort((a, b) => b[1] - a[1])
    .map(([code, count]) => `${DOMAIN_REASON_TEXT[code as DomainReason]} (${code}): ${count}`);
  return [
    `accepted by the out-of-domain gate: ${m.n_accepted} of ${m.n}; rejected (cannot screen): ${m.rejected.total}`,
    ...reasons.map((r) => `  ${r}`),
  ];
}

/** What every report opens with: the header, the image count, the gate's and the camera's lines. */
function openingLines(
  m: WithColour<{ n: number; n_accepted: number; rejected: Rejections; gate: boolean }>,
  header: string,
  failed: number,
): string[] {
  return [
    header,
    `images: ${m.n}${failed ? ` (+${failed} failed, not counted)` : ''}`,
    ...gateLines(m),
    ...colourLines(m.colour_drift),
    ...magnificationLines(m.magnification, m.colour_drift?.above === true),
  ];
}

export function formatText(m: WithColour<LabelledEvaluation>, header: string, failed: number): string {
  const width = Math.max(...m.classes.map((c) => c.length), 'truth \\ predicted'.length);
  const cell = Math.max(6, ...m.classes.map((c) => c.length));
  const lines = openingLines(m, header, failed);
  if (m.gate) lines.push('the figures below cover the accepted images only');
  lines.push(`accuracy: ${pct(m.accuracy)}   macro-F1: ${m.macro_f1.toFixed(4)}   ECE: ${m.ece.toFixed(4)}`);
  lines.push('', 'confusion matrix (rows = truth, columns = predicted):');
  lines.push(`${'truth \\ predicted'.padEnd(width)}  ${m.classes.map((c) => c.padStart(cell)).join('  ')}`);
  m.confusion.forEach((row, i) =>
    lines.push(
      `${(m.classes[i] as string).padEnd(width)}  ${row.map((v) => String(v).padStart(cell)).join('  ')}`,
    ),
  );
  lines.push('', `${'class'.padEnd(width)}  precision     recall  specificity         F1  support`);
  m.classes.forEach((c, i) => {
    const p = m.per_class[c];
    if (!p) return;
    if (p.support === 0 && m.confusion.every((row) => row[i] === 0)) {
      lines.push(`${c.padEnd(width)}  no images of this class, none predicted`);
      return;
    }
    lines.push(
      `${c.padEnd(width)}  ${pct(p.precision).padStart(9)}  ${pct(p.recall).padStart(9)}  ${pct(p.specificity).padStart(11)}` +
        `  ${p.f1.toFixed(4).padStart(9)}  ${String(p.support).padStart(7)}`,
    );
  });
  const b = m.malignant;
  lines.push(
    '',
    `B-ALL (any malignant class) vs benign, flag = P(B-ALL) >= ${b.threshold}:`,
    `  sensitivity ${pct(b.sensitivity)} (${b.tp}/${b.tp + b.fn})   specificity ${pct(b.specificity)} (${b.tn}/${b.tn + b.fp})`,
    `  needs review (P(B-ALL) in the uncertain band): ${m.needs_review}`,
    `  silent misses (malignant, accepted, not flagged): ${m.silent_misses}` +
      (m.silent_miss_share === null ? '' : ` = ${pct(m.silent_miss_share)} of the malignant images`),
    ...siteLines(m),
  );
  return `${lines.join('\n')}\n`;
}

export function formatUnlabelled(
  m: WithColour<UnlabelledEvaluation>,
  header: string,
  failed: number,
): string {
  const lines = openingLines(m, header, failed);
  lines.push(
    `flagged as possible B-ALL (accepted images): ${m.flagged}`,
    `needs review (accepted images): ${m.needs_review}`,
  );
  return `${lines.join('\n')}\n`;
}
