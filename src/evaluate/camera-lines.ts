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

export function magnificationLines(f: MagnificationFigures | null): string[] {
  if (!f || f.median === null) return [];
  const figures =
    `red-cell size of the same images: median radius ${f.median.toFixed(2)} px over ${f.measured}, ` +
    `training images ${f.low.toFixed(2)}-${f.high.toFixed(2)} px (medians of ${2 * f.needed} consecutive fields)`;
  if (f.differs === 'smaller')
    return [
      `${figures}: the red cells are smaller than in any stretch of the training images, so the magnification is lower than the training camera's (the model lets more blasts through unflagged there): use the training data's objective and camera adapter`,
    ];
  if (f.differs === 'larger')
    return [
      `${figures}: the red cells are larger than in any stretch of the training images, so the magnification is higher than the training camera's: use the training data's objective and camera adapter`,
    ];
  if (f.measured < f.needed)
    return [`${figures}: too few fields to judge the magnification (${f.needed} needed)`];
  return [figures];
}
