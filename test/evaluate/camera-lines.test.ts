/**
 * The camera lines of `blastwatch evaluate`'s text report: a magnification called smaller while the
 * green is brighter than the training camera's is named as possibly the green's, since a brighter
 * green makes red cells read smaller too; a larger one, or one without the green, is not.
 */
import t from 'tap';
import { magnificationLines } from '../../src/evaluate/camera-lines.js';
import type { MagnificationFigures } from '../../src/gate/red-cell-size.js';

const range = { low: 6.15, high: 8.68, needed: 25 };
const smaller: MagnificationFigures = { ...range, measured: 300, median: 5.8, differs: 'smaller' };
const larger: MagnificationFigures = { ...range, measured: 300, median: 9.1, differs: 'larger' };
const GREEN = /the brighter green makes red cells read smaller too/;

t.test('a smaller call under a brighter green says the green may be why', async (t) => {
  const lines = magnificationLines(smaller, true);
  t.match(
    lines[0],
    /median radius 5\.80 px over 300, training images 6\.15-8\.68 px .*: the red cells are smaller/,
  );
  t.match(lines.at(-1), GREEN);
  t.notOk(
    magnificationLines(smaller, false).some((l) => GREEN.test(l)),
    'not without the green',
  );
  t.notOk(
    magnificationLines(larger, true).some((l) => GREEN.test(l)),
    'not for a larger call',
  );
});

t.test('classes called smaller one by one count too', async (t) => {
  const within: MagnificationFigures = {
    ...range,
    measured: 300,
    median: 6.5,
    differs: null,
    by_class: {
      Benign: { ...range, low: 6.56, high: 7.57, measured: 60, median: 6.0, differs: 'smaller' },
      'Pro-B': { ...range, low: 6.15, high: 6.7, measured: 90, median: 5.5, differs: 'smaller' },
    },
  };
  const lines = magnificationLines(within, true);
  t.match(lines.at(-2), /smaller than in the training images of the same class in 2 of 2 classes/);
  t.match(lines.at(-1), GREEN);
  t.same(
    magnificationLines({ ...range, measured: 0, median: null, differs: null }, true),
    [],
    'nothing measured',
  );
});
