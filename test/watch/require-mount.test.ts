/**
 * capture.require_mount: an unmounted share is an ordinary empty folder; with the option on it is
 * "unavailable" like a missing folder (one warning, a clear lastError) and recovers when mounted.
 */
import { statSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { isMountPoint } from '../../src/watch/mount.js';
import { CaptureWatcherImpl } from '../../src/watch/watcher.js';
import { harness, sleep, tempDir, waitFor } from './harness.js';

t.test('isMountPoint: / and /proc are, a plain temp folder is not', async (t) => {
  t.equal(await isMountPoint('/'), true, '/');
  // /proc is on another device than / (checked, not assumed: skip where it is not).
  if (statSync('/proc').dev !== statSync('/').dev) t.equal(await isMountPoint('/proc'), true, '/proc');
  const dir = await tempDir();
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  t.equal(await isMountPoint(dir), false, 'a folder on its parent file system');
});

t.test('require_mount on a folder that is not a mount point: unavailable with a clear reason', async (t) => {
  const h = await harness({ requireMount: true });
  t.teardown(() => rm(h.dir, { recursive: true, force: true }));
  t.teardown(h.cleanup);
  await writeFile(join(h.dir, 'on-the-sd-card.jpg'), 'x');
  await h.watcher.start();
  const s = h.watcher.status();
  t.equal(s.running, true);
  t.equal(s.dirAvailable, false, 'unavailable, not an empty folder');
  t.equal(s.lastError, `capture.dir ${h.dir} is not a mount point (share not mounted?)`);
  await sleep(700); // several probes
  t.equal(h.logs.filter((l) => l.msg.includes('unavailable')).length, 1, 'one warning per outage');
  t.same(h.candidates, [], 'nothing under the bare mount point is offered');
});

t.test('require_mount off (the default): the same folder is available', async (t) => {
  const h = await harness({});
  t.teardown(() => rm(h.dir, { recursive: true, force: true }));
  t.teardown(h.cleanup);
  await h.watcher.start();
  t.equal(h.watcher.status().dirAvailable, true);
});

t.test('share unmounted and mounted again: unavailable, then scanned, nothing lost', async (t) => {
  // The mount check overridden: mounting needs root, the watcher's handling does not.
  let mounted = true;
  class SwitchedShare extends CaptureWatcherImpl {
    protected override isMountPoint(): Promise<boolean> {
      return Promise.resolve(mounted);
    }
  }
  const h = await harness(
    { requireMount: true },
    undefined,
    (opts, sink, log) => new SwitchedShare(opts, sink, log),
  );
  t.teardown(() => rm(h.dir, { recursive: true, force: true }));
  t.teardown(h.cleanup);
  await writeFile(join(h.dir, 'a.jpg'), 'a');
  await h.watcher.start();
  t.equal(h.watcher.status().dirAvailable, true, 'mounted: available');
  await waitFor('a', () => h.of('a.jpg').length === 1);

  mounted = false;
  await waitFor('unavailable', () => !h.watcher.status().dirAvailable);
  t.match(h.watcher.status().lastError, /is not a mount point \(share not mounted\?\)/);
  await writeFile(join(h.dir, 'b.jpg'), 'bb');
  await sleep(700);
  t.equal(h.logs.filter((l) => l.msg.includes('unavailable')).length, 1, 'one warning per outage');
  t.equal(h.of('b.jpg').length, 0, 'not watched while unmounted');

  mounted = true;
  await waitFor('available', () => h.watcher.status().dirAvailable);
  await waitFor('b (scan after the remount)', () => h.of('b.jpg').length === 1);
  t.equal(h.watcher.status().lastError, null);
  t.equal(h.logs.filter((l) => l.msg.includes('available again')).length, 1, 'one line when it is back');
  // The scan after a re-arm offers what is there again (the pipeline dedupes): b is not lost.
  t.same([...new Set(h.candidates.map((c) => c.relPath))].sort(), ['a.jpg', 'b.jpg'], 'nothing lost');
});
