import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import t from 'tap';
import { trainingChanges } from '../../scripts/gate/augment.js';

const sample = fileURLToPath(new URL('../fixtures/samples/Benign/WBC-Benign-001.jpg', import.meta.url));

const rawPixels = async (bytes: Buffer): Promise<Buffer> => sharp(bytes).removeAlpha().raw().toBuffer();

t.test('weights that never saw another camera: the gate fits on the base changes only', async (t) => {
  const base = trainingChanges(undefined).map((c) => c.name);
  t.same(base, ['blur2', 'exposure0.85', 'exposure1.15', 'exposure0.80', 'jpeg60', 'stain']);
  t.same(
    trainingChanges(undefined)
      .filter((c) => c.clipsHighlights)
      .map((c) => c.name),
    ['exposure1.15', 'stain'],
    'the changes that can brighten clip highlights',
  );
  t.same(
    trainingChanges({ camera_shifts: null }).map((c) => c.name),
    base,
  );
  t.same(
    trainingChanges({ camera_shifts: { share: 0, channel_gain: 0.15 } }).map((c) => c.name),
    base,
    'a share of 0 taught no shifts',
  );
});

t.test('weights trained on camera shifts: each channel at both ends of their gain range', async (t) => {
  const changes = trainingChanges({ camera_shifts: { share: 0.5, channel_gain: 0.15 } });
  t.same(
    changes.slice(6).map((c) => c.name),
    ['red0.85', 'red1.15', 'green0.85', 'green1.15', 'blue0.85', 'blue1.15'],
  );
  const bytes = await readFile(sample);
  const before = await rawPixels(bytes);
  for (const [channel, change] of changes.slice(6).entries()) {
    const target = Math.floor(channel / 2);
    const factor = channel % 2 === 0 ? 0.85 : 1.15;
    const after = await rawPixels(await change.apply(bytes, 'Benign/WBC-Benign-001.jpg'));
    t.equal(after.length, before.length);
    let worst = 0;
    let othersChanged = 0;
    for (let i = 0; i < before.length; i++) {
      const c = i % 3;
      if (c !== target) {
        if (after[i] !== before[i]) othersChanged++;
        continue;
      }
      const expected = Math.min(255, before[i]! * factor);
      worst = Math.max(worst, Math.abs(after[i]! - expected));
    }
    t.equal(othersChanged, 0, `${change.name}: the other channels are untouched`);
    t.ok(
      worst <= 1,
      `${change.name}: the channel is scaled by ${factor} (worst ${worst.toFixed(2)} levels off)`,
    );
  }
});

/** Worst difference, in levels, between each channel of `after` and `before` scaled by its gain. */
function worstOff(before: Buffer, after: Buffer, gains: readonly number[]): number {
  let worst = 0;
  for (let i = 0; i < before.length; i++) {
    const expected = Math.min(255, before[i]! * gains[i % 3]!);
    worst = Math.max(worst, Math.abs(after[i]! - expected));
  }
  return worst;
}

t.test('a darker exposure: every channel x 0.8, which the colour normalisation undoes', async (t) => {
  const change = trainingChanges(undefined).find((c) => c.name === 'exposure0.80');
  if (!change) throw new Error('no exposure0.80 change');
  const bytes = await readFile(sample);
  const before = await rawPixels(bytes);
  const after = await rawPixels(await change.apply(bytes, 'Benign/WBC-Benign-001.jpg'));
  t.equal(after.length, before.length);
  t.ok(worstOff(before, after, [0.8, 0.8, 0.8]) <= 1, 'each level scaled by 0.8');
});

t.test('weights trained on a colour temperature: a warm and a cool lamp at its range ends', async (t) => {
  const recipe = { camera_shifts: { share: 0.5, channel_gain: 0.15, temperature: 0.1 } };
  const changes = trainingChanges(recipe);
  t.same(
    changes.slice(12).map((c) => c.name),
    ['warm0.10', 'cool0.10'],
  );
  t.same(
    trainingChanges({ camera_shifts: { share: 0.5, channel_gain: 0.15, temperature: 0 } }).map((c) => c.name),
    changes.slice(0, 12).map((c) => c.name),
    'no temperature range: no lamp changes',
  );
  const bytes = await readFile(sample);
  const before = await rawPixels(bytes);
  for (const [change, gains] of [
    [changes[12]!, [1.1, 1, 0.9]],
    [changes[13]!, [0.9, 1, 1.1]],
  ] as const) {
    const after = await rawPixels(await change.apply(bytes, 'Benign/WBC-Benign-001.jpg'));
    const worst = worstOff(before, after, gains);
    t.ok(
      worst <= 1,
      `${change.name}: red x ${gains[0]}, green kept, blue x ${gains[2]} (worst ${worst} off)`,
    );
  }
});
