import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import t from 'tap';
import { trainingChanges } from '../../scripts/gate/augment.js';

const sample = fileURLToPath(new URL('../fixtures/samples/Benign/WBC-Benign-001.jpg', import.meta.url));

const rawPixels = async (bytes: Buffer): Promise<Buffer> => sharp(bytes).removeAlpha().raw().toBuffer();

t.test('weights that never saw another camera: the gate fits on the base changes only', async (t) => {
  const base = trainingChanges(undefined).map((c) => c.name);
  t.same(base, ['blur2', 'exposure0.85', 'exposure1.15', 'jpeg60', 'stain']);
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
    changes.slice(5).map((c) => c.name),
    ['red0.85', 'red1.15', 'green0.85', 'green1.15', 'blue0.85', 'blue1.15'],
  );
  const bytes = await readFile(sample);
  const before = await rawPixels(bytes);
  for (const [channel, change] of changes.slice(5).entries()) {
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
