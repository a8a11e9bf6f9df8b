/**
 * What the bus does when an image joins a specimen (src/specimen-wiring.ts specimenEvents), on a
 * real store: the dashboard hears of every new member, a capture also counts under the camera
 * warnings raised then, and a photo uploaded from a phone (not the microscope camera's picture)
 * counts under none.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import type { CameraWarning } from '../../src/domain/camera-warning.js';
import { EventBus } from '../../src/runtime/events.js';
import { specimenEvents } from '../../src/specimen-wiring.js';
import { openStore } from '../../src/store/index.js';
import { landInFolder } from '../helpers/results.js';

t.test('new members are announced; captures count under the raised warnings, uploads do not', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'bw-specimen-events-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const store = openStore({ dataDir: dir });
  t.teardown(() => store.close());
  const bus = new EventBus();
  let raised: CameraWarning[] = [];
  specimenEvents(store, bus, () => raised);
  const announced: number[] = [];
  bus.on('specimen:changed', ({ specimenId }) => announced.push(specimenId));
  const land = (file: string, origin: 'capture' | 'upload') => {
    const committed = landInFolder(store, file, Date.now(), { origin });
    if (!committed.created) throw new Error('not created');
    bus.emit('result:stored', { result: committed.result, created: true });
    return store.specimens.specimenIdOf(committed.id)!;
  };

  const id = land('S1/clean.jpg', 'capture');
  t.same(store.cameraWarnings.of(id), [], 'nothing raised: nothing kept');
  raised = [{ watch: 'magnification', text: 'magnification changed? 5.90 px' }];
  land('S1/smaller.jpg', 'capture');
  land('S1/phone.jpg', 'upload');
  t.same(
    store.cameraWarnings.of(id).map((w) => [w.watch, w.images]),
    [['magnification', 1]],
    'the capture counts, the upload does not',
  );
  t.same(announced, [id, id, id], 'every new member is announced, the upload too');
});
