/**
 * What the bus does when an image joins a specimen (src/specimen-wiring.ts specimenEvents), on a
 * real store: the dashboard hears of every new member, a capture also counts under the camera
 * warnings raised then, and a photo uploaded from a phone (not the microscope camera's picture)
 * counts under none. A warning raised anew also counts the earlier captures of the window it was
 * judged on, once, whatever restarts in between.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import type { RaisedCameraWarning } from '../../src/domain/camera-warning.js';
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
  let raised: RaisedCameraWarning[] = [];
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
  raised = [{ watch: 'magnification', text: 'magnification changed? 5.90 px', window: 1 }];
  land('S1/smaller.jpg', 'capture');
  land('S1/phone.jpg', 'upload');
  t.same(
    store.cameraWarnings.of(id).map((w) => [w.watch, w.images]),
    [['magnification', 1]],
    'the capture counts, the upload does not',
  );
  t.same(announced, [id, id, id], 'every new member is announced, the upload too');
});

t.test('a warning raised anew counts the earlier captures of its window, once', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'bw-specimen-window-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const store = openStore({ dataDir: dir });
  t.teardown(() => store.close());
  let raised: RaisedCameraWarning[] = [];
  const smaller: RaisedCameraWarning = {
    watch: 'magnification',
    text: 'magnification changed? 5.90 px',
    window: 3,
  };
  /** The daemon's wiring on a fresh bus, as after a restart; what it announces. */
  const start = () => {
    const bus = new EventBus();
    specimenEvents(store, bus, () => raised);
    const announced: number[] = [];
    bus.on('specimen:changed', ({ specimenId }) => announced.push(specimenId));
    const land = (file: string) => {
      const committed = landInFolder(store, file, Date.now());
      if (!committed.created) throw new Error('not created');
      bus.emit('result:stored', { result: committed.result, created: true });
      return store.specimens.specimenIdOf(committed.id)!;
    };
    return { land, announced };
  };
  const counts = (id: number) => store.cameraWarnings.of(id).map((w) => [w.watch, w.images]);

  let daemon = start();
  const s1 = daemon.land('S1/a.jpg');
  daemon.land('S1/b.jpg');
  const s2 = daemon.land('S2/c.jpg');
  t.same([counts(s1), counts(s2)], [[], []], 'nothing raised: nothing counted');

  // Raised at d, judged on b, c, d: the camera may have changed anywhere among them.
  raised = [smaller];
  daemon.land('S2/d.jpg');
  t.same(counts(s1), [['magnification', 1]], "S1's b was in the window");
  t.same(counts(s2), [['magnification', 2]], "S2's c from the window, d as it arrived");
  t.same(daemon.announced.slice(-2).sort(), [s1, s2].sort(), 'both announced');
  const counted = (id: number) =>
    store.specimens
      .audit(id)
      .filter((a) => a.action === 'camera_warning_counted')
      .map((a) => [a.actor, a.details]);
  t.same(
    counted(s1),
    [['system', { watch: 'magnification', images: 1 }]],
    'the counting after the fact is audited',
  );
  t.same(
    counted(s2),
    [['system', { watch: 'magnification', images: 1 }]],
    'c only: d was counted as it arrived',
  );
  daemon.land('S2/e.jpg');
  t.same(counts(s2), [['magnification', 3]], 'raised still: one more, no window again');

  // A restart while it is raised raises nothing anew.
  daemon = start();
  daemon.land('S2/f.jpg');
  t.same([counts(s1), counts(s2)], [[['magnification', 1]], [['magnification', 4]]]);

  // Cleared at g, raised again at h: of its window (f, g, h), f was counted in the first episode.
  raised = [];
  const s3 = daemon.land('S3/g.jpg');
  raised = [smaller];
  daemon.land('S3/h.jpg');
  t.same(counts(s3), [['magnification', 2]], 'g from the window, h as it arrived');
  t.same(counts(s2), [['magnification', 4]], 'f is not counted twice');
  t.same(counts(s1), [['magnification', 1]]);
  t.equal(counted(s2).length, 1, 'nothing counted after the fact in S2 since');
  const episodes = store.db
    .prepare('SELECT watch, cleared_at IS NULL AS open FROM camera_warning_episodes ORDER BY id')
    .all();
  t.same(episodes, [
    { watch: 'magnification', open: 0 },
    { watch: 'magnification', open: 1 },
  ]);
});
