/**
 * The lines of `blastwatch evaluate`'s text report about the camera itself: its green balance
 * and its magnification against the training images'. The JSON carries the same figures.
 */
import type { ColourFigures } from './gate-metrics.js';
import type { MagnificationFigures } from '../gate/red-cell-size.js';

export function colourLines(c: ColourFigures | null): string[] {
  if (!c || c.median === null) return [];
  const figures = `green balance of the images accepted or refused only for their green or a contradicted benign call: median ${c.median.toFixed(3)} over ${c.measured}, training images at most ${c.high.toFixed(3)}`;
  return [
    c.above
      ? `${figures}: the camera records green brighter than the training camera did (its bright background clips, so the colour normalisation cannot undo it; the gate refuses the fields above the training images' highest): check the white balance`
      : figures,
  ];
}

const ADVICE: Record<'smaller' | 'larger', string> = {
  smaller:
    "so the magnification is lower than the training camera's (the model lets more blasts through unflagged there): use the training data's objective and camera adapter",
  larger:
    "so the magnification is higher than the training camera's: use the training data's objective and camera adapter",
};

/**
 * The red-cell size: the whole set against all training images, then (a labelled set) each class
 * against its own class's training images, which names a smaller change, and what follows. A
 * brighter green (the colour figures above their training high) lowers the red cells' contrast
 * and makes them read smaller too, so a smaller call under it is named as possibly the green's.
 */
export function magnificationLines(f: MagnificationFigures | null, greenBrighter = false): string[] {
  if (!f || f.median === null) return [];
  const figures =
    `red-cell size of the same images: median radius ${f.median.toFixed(2)} px over ${f.measured}, ` +
    `training images ${f.low.toFixed(2)}-${f.high.toFixed(2)} px (medians of ${2 * f.needed} consecutive fields)`;
  const lines = [
    f.differs
      ? `${figures}: the red cells are ${f.differs} than in any stretch of the training images, ${ADVICE[f.differs]}`
      : f.measured < f.needed
        ? `${figures}: too few fields to judge the magnification (${f.needed} needed)`
        : figures,
  ];
  const classes = Object.entries(f.by_class ?? {});
  for (const [name, c] of classes) {
    const measured =
      c.median === null ? 'none measured' : `median ${c.median.toFixed(2)} px over ${c.measured}`;
    const line = `  ${name}: ${measured}, its training images ${c.low.toFixed(2)}-${c.high.toFixed(2)} px`;
    lines.push(
      c.differs ? `${line}: ${c.differs}` : c.measured < c.needed ? `${line}: too few to judge` : line,
    );
  }
  const called = classes.filter(([, c]) => c.differs !== null);
  const direction = called[0]?.[1].differs;
  if (!f.differs && direction && called.every(([, c]) => c.differs === direction))
    lines.push(
      `the red cells are ${direction} than in the training images of the same class in ${called.length} of ${classes.length} classes, ${ADVICE[direction]}`,
    );
  if (greenBrighter && (f.differs === 'smaller' || direction === 'smaller'))
    lines.push(
      'the brighter green makes red cells read smaller too: fix the white balance first, then check the magnification again',
    );
  return lines;
}
