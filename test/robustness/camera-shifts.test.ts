/**
 * scripts/camera-shifts.ts `blank:CORNER`: the corner box is painted in one bright colour (the
 * field's background) and nothing else changes, on a real data-set image.
 */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import t from 'tap';
import { parseCameraShift } from '../../scripts/camera-shifts.js';

const sample = fileURLToPath(new URL('../fixtures/samples/Pro/WBC-Malignant-Pro-001.jpg', import.meta.url));

async function rgb(input: string | Buffer) {
  const { data, info } = await sharp(input).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height };
}

t.test('blank:br paints the bottom-right box in the background colour and leaves the rest', async (t) => {
  const before = await rgb(sample);
  const { bytes, ext } = await parseCameraShift('blank:br').apply(sample, join('Pro', 'x.jpg'));
  t.equal(ext, '.png', 'lossless, so the box is the only change');
  const after = await rgb(bytes);
  t.same([after.width, after.height], [before.width, before.height]);
  const boxWidth = Math.round(before.width * 0.2);
  const boxHeight = Math.round(before.height * 0.15);
  const inBox = (x: number, y: number) => x >= before.width - boxWidth && y >= before.height - boxHeight;
  const boxColours = new Set<string>();
  let changedOutside = 0;
  let changedInside = 0;
  for (let y = 0; y < before.height; y++)
    for (let x = 0; x < before.width; x++) {
      const o = (y * before.width + x) * 3;
      const same = [0, 1, 2].every((c) => after.data[o + c] === before.data[o + c]);
      if (inBox(x, y)) {
        boxColours.add(`${after.data[o]},${after.data[o + 1]},${after.data[o + 2]}`);
        if (!same) changedInside++;
      } else if (!same) changedOutside++;
    }
  t.equal(changedOutside, 0, 'no pixel outside the box changes');
  t.equal(boxColours.size, 1, 'the box is one colour');
  const [r, g, b] = [...boxColours][0]!.split(',').map(Number);
  t.ok(r! + g! + b! > 3 * 200, `the colour is the bright background (${r}, ${g}, ${b})`);
  t.ok(changedInside > 0, 'the scale mark in that corner is painted over');
});

t.test('blank: other corners, and a clear error for an unknown one', async (t) => {
  const before = await rgb(sample);
  const after = await rgb((await parseCameraShift('blank:tl').apply(sample, 'x')).bytes);
  const o = (before.height - 1) * before.width * 3 + (before.width - 1) * 3;
  t.same([...after.data.subarray(o, o + 3)], [...before.data.subarray(o, o + 3)], 'bottom-right kept');
  t.throws(() => parseCameraShift('blank:middle'), /blank: expected one of tl, tr, bl, br/);
});
