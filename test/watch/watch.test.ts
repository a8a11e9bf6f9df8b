import { spawn } from 'node:child_process';
import { chmod, mkdir, open, realpath, rename, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { globToRegExp, createNameFilter } from '../../src/watch/index.js';
import { harness, sleep, STABILITY_MS, tempDir, waitFor } from './harness.js';

const settle = () => sleep(STABILITY_MS * 4);

t.test('name filter: extensions case-insensitive, ignore globs, hidden names', async (t) => {
  const f = createNameFilter(['.jpg', 'png'], ['*.tmp', '~*', 'Thumbs.db', 'scan?.bmp']);
  t.ok(f.acceptsFile('a.jpg'));
  t.ok(f.acceptsFile('A.JPG'));
  t.ok(f.acceptsFile('b.Png'), 'an extension given without its dot still matches');
  t.notOk(f.acceptsFile('a.jpeg'), 'only configured extensions');
  t.notOk(f.acceptsFile('.a.jpg'), 'dotfile');
  t.notOk(f.acceptsFile('~lock.jpg'), 'leading ~');
  t.notOk(f.acceptsFile('x.jpg.tmp'));
  t.notOk(f.acceptsFile('thumbs.db'));
  t.notOk(f.acceptsFile('jpg'), 'no extension');
  t.ok(f.acceptsRelFile(join('day1', 'a.jpg'), true));
  t.notOk(f.acceptsRelFile(join('day1', 'a.jpg'), false), 'sub-folder when not recursive');
  t.notOk(f.acceptsRelFile(join('.cache', 'a.jpg'), true), 'inside a dot-folder');
  t.notOk(f.acceptsRelFile(join('..', 'a.jpg'), true), 'outside');
  t.ok(globToRegExp('scan?.bmp').test('scan1.bmp'));
  t.notOk(globToRegExp('scan?.bmp').test('scan12.bmp'));
  t.ok(globToRegExp('a(1)+[x].jpg').test('a(1)+[x].jpg'), 'regex characters are literal');
});

t.test('a new file becomes one candidate once stable', async (t) => {
  const h = await harness();
  t.teardown(h.cleanup);
  await h.watcher.start();
  t.same(h.candidates, [], 'empty folder: nothing');
  await writeFile(join(h.dir, 'a.jpg'), 'hello');
  await waitFor('a.jpg', () => h.of('a.jpg').length > 0);
  await settle();
  const [c] = h.of('a.jpg');
  t.equal(h.candidates.length, 1, 'exactly one candidate');
  t.equal(c?.path, join(await realpath(h.dir), 'a.jpg'), 'absolute real path');
  t.equal(c?.size, 5);
  t.equal(c?.mtimeMs, (await stat(join(h.dir, 'a.jpg'))).mtimeMs);
  t.equal(h.watcher.status().pendingStability, 0);
});

t.test('a file written in chunks is offered only with its final size', async (t) => {
  // Pauses well inside the window: the file never looks stable until the writer is done.
  const h = await harness({ stabilityMs: 1500 });
  t.teardown(h.cleanup);
  await h.watcher.start();
  const fh = await open(join(h.dir, 'slow.jpg'), 'w');
  // Written over longer than the window, so a tracker that did not re-stat would emit it early.
  let lastChunkAt = 0;
  for (let i = 0; i < 25; i++) {
    await fh.write(Buffer.alloc(1000, i));
    lastChunkAt = Date.now();
    await sleep(100);
  }
  await fh.close();
  await waitFor('slow.jpg', () => h.of('slow.jpg').length > 0);
  await sleep(2000);
  t.same(
    h.of('slow.jpg').map((c) => c.size),
    [25_000],
    'one candidate, final size',
  );
  // The last size is first seen at or after the last chunk; a timer may fire a millisecond early.
  const [offeredAt = NaN] = h.offeredAt('slow.jpg');
  t.ok(offeredAt >= lastChunkAt + 1500 - 5, 'not before the window after the last chunk');
});

t.test(
  'pauses longer than the window: the completed file is offered again with its final size',
  async (t) => {
    // The watcher cannot tell a paused writer from a finished one; what matters is that the
    // completed file is offered after the last chunk, so the pipeline's retry sees the whole image.
    const h = await harness();
    t.teardown(h.cleanup);
    await h.watcher.start();
    const path = join(h.dir, 'paused.jpg');
    const fh = await open(path, 'w');
    for (let i = 0; i < 3; i++) {
      await fh.write(Buffer.alloc(500, i));
      await sleep(STABILITY_MS * 3);
    }
    await fh.close();
    await waitFor('final size', () => h.of('paused.jpg').some((c) => c.size === 1500));
    const last = h.of('paused.jpg').at(-1);
    t.equal(last?.size, 1500, 'the last candidate has the final size');
    t.equal(last?.mtimeMs, (await stat(path)).mtimeMs, 'and the final mtime');
    t.ok(
      h.of('paused.jpg').every((c, i, all) => i === 0 || c.size > (all[i - 1]?.size ?? -1)),
      'each candidate is a new state of the file, no repeats',
    );
  },
);

t.test('filters: hidden, temp, ignored, other extensions, not regular files', async (t) => {
  const h = await harness();
  t.teardown(h.cleanup);
  const names = [
    'keep.jpg',
    'KEEP2.TIFF',
    '.hidden.jpg',
    'x.jpg.tmp',
    'y.part',
    '~lock.jpg',
    'notes.txt',
    'Thumbs.db',
  ];
  await mkdir(join(h.dir, '.cache'));
  await writeFile(join(h.dir, '.cache', 'in-dot-folder.jpg'), 'x');
  await mkdir(join(h.dir, 'folder.jpg'));
  for (const n of names) await writeFile(join(h.dir, n), 'data');
  await h.watcher.start();
  // The same set again while running, so the chokidar path is filtered too.
  await mkdir(join(h.dir, 'live'));
  await mkdir(join(h.dir, 'live', '.cache'));
  await writeFile(join(h.dir, 'live', '.cache', 'in-dot-folder.jpg'), 'x');
  for (const n of names) await writeFile(join(h.dir, 'live', n), 'data');
  await waitFor('keepers', () => h.candidates.length >= 4);
  await settle();
  t.same(h.candidates.map((c) => c.relPath).sort(), [
    'KEEP2.TIFF',
    'keep.jpg',
    'live/KEEP2.TIFF',
    'live/keep.jpg',
  ]);
});

t.test('recursive off: only the top folder, by scan and by event', async (t) => {
  const h = await harness({ recursive: false });
  t.teardown(h.cleanup);
  await mkdir(join(h.dir, 'sub'));
  await writeFile(join(h.dir, 'sub', 'old.jpg'), 'x');
  await writeFile(join(h.dir, 'top-old.jpg'), 'x');
  await h.watcher.start();
  await writeFile(join(h.dir, 'sub', 'new.jpg'), 'x');
  await writeFile(join(h.dir, 'top-new.jpg'), 'x');
  await waitFor('top files', () => h.candidates.length >= 2);
  await h.watcher.rescan();
  await settle();
  t.same([...new Set(h.candidates.map((c) => c.relPath))].sort(), ['top-new.jpg', 'top-old.jpg']);
});

t.test('recursive on: sub-folders, created before and after start', async (t) => {
  const h = await harness({ recursive: true });
  t.teardown(h.cleanup);
  await mkdir(join(h.dir, 'a', 'b'), { recursive: true });
  await writeFile(join(h.dir, 'a', 'b', 'deep.jpg'), 'x');
  await h.watcher.start();
  await mkdir(join(h.dir, 'day2', 'p1'), { recursive: true });
  await writeFile(join(h.dir, 'day2', 'p1', 'new.png'), 'xy');
  await waitFor('both', () => h.candidates.length >= 2);
  await settle();
  t.same(h.candidates.map((c) => c.relPath).sort(), ['a/b/deep.jpg', 'day2/p1/new.png']);
});

t.test(
  'a folder moved in with images, and one moved out: offered without a scan, then forgotten',
  async (t) => {
    const h = await harness({ recursive: true });
    t.teardown(h.cleanup);
    const outside = await tempDir('bw-watch-outside-');
    t.teardown(() => rm(outside, { recursive: true, force: true }));
    await h.watcher.start();
    // Made elsewhere, then moved in: inotify reports only the folder, never the files inside it.
    await mkdir(join(outside, 'day3', 'p2'), { recursive: true });
    await writeFile(join(outside, 'day3', 'a.jpg'), 'x');
    await writeFile(join(outside, 'day3', 'p2', 'b.jpg'), 'xy');
    await rename(join(outside, 'day3'), join(h.dir, 'day3'));
    await waitFor('files of the moved folder', () => h.candidates.length >= 2);
    // The moved-in folder is watched: a file written into it later arrives by event.
    await writeFile(join(h.dir, 'day3', 'p2', 'c.jpg'), 'xyz');
    await waitFor('a new file in it', () => h.candidates.length >= 3);
    await rename(join(h.dir, 'day3'), join(outside, 'day3-back'));
    await writeFile(join(outside, 'day3-back', 'gone.jpg'), 'x');
    await settle();
    t.same(h.candidates.map((c) => c.relPath).sort(), ['day3/a.jpg', 'day3/p2/b.jpg', 'day3/p2/c.jpg']);
    t.equal(h.watcher.status().lastError, null, 'no watcher error');
  },
);

t.test('symlinks: one leaving the folder is ignored and logged once, one inside is followed', async (t) => {
  const outside = await tempDir('bw-outside-');
  t.teardown(() => rm(outside, { recursive: true, force: true }));
  await writeFile(join(outside, 'secret.jpg'), 'outside');
  const h = await harness();
  t.teardown(h.cleanup);
  await mkdir(join(h.dir, 'real'));
  await writeFile(join(h.dir, 'real', 'target.jpg'), 'inside!');
  await symlink(join(outside, 'secret.jpg'), join(h.dir, 'escape.jpg'));
  await symlink(join(h.dir, 'real', 'target.jpg'), join(h.dir, 'link.jpg'));
  await symlink(outside, join(h.dir, 'outdir')); // a folder link leading out: never descended
  await h.watcher.start();
  await symlink(join(outside, 'secret.jpg'), join(h.dir, 'escape-live.jpg'));
  await waitFor('target', () => h.candidates.length >= 1);
  await h.watcher.rescan();
  await settle();
  const root = await realpath(h.dir);
  t.ok(
    h.candidates.every((c) => c.path === join(root, 'real', 'target.jpg')),
    'only the inside file, under its real path',
  );
  t.ok(h.candidates.length >= 1);
  t.notOk(
    h.candidates.some((c) => c.path.startsWith(outside)),
    'nothing outside the folder',
  );
  const warned = h.logs.filter((l) => l.msg.includes('leaves the capture folder'));
  t.same(
    warned.map((l) => String(l.link).split('/').pop()).sort(),
    ['escape-live.jpg', 'escape.jpg'],
    'one warning per escaping link, even across scans',
  );
});

t.test('files present before start are offered by the initial scan', async (t) => {
  const h = await harness();
  t.teardown(h.cleanup);
  for (let i = 0; i < 60; i++) await writeFile(join(h.dir, `pre-${i}.jpg`), `image ${i}`);
  await writeFile(join(h.dir, 'empty.jpg'), '');
  await h.watcher.start();
  t.ok(h.watcher.status().lastScanAt !== null, 'start() completed a scan');
  await waitFor('all 61', () => h.candidates.length >= 61);
  await settle();
  t.equal(h.candidates.length, 61);
  t.equal(new Set(h.candidates.map((c) => c.relPath)).size, 61, 'each once');
  t.equal(
    h.of('empty.jpg')[0]?.size,
    0,
    'a stable zero-byte file is offered (the pipeline records the error)',
  );
});

t.test('rescan() offers stable files again (the scan is stateless)', async (t) => {
  const h = await harness();
  t.teardown(h.cleanup);
  await writeFile(join(h.dir, 'a.jpg'), 'abc');
  await h.watcher.start();
  await waitFor('first', () => h.of('a.jpg').length === 1);
  await h.watcher.rescan();
  await waitFor('second', () => h.of('a.jpg').length === 2);
  t.same(h.of('a.jpg')[1], h.of('a.jpg')[0], 'same file, same identity');
});

t.test('periodic scan catches files the watcher never reported', async (t) => {
  // Polling with a huge interval stands in for a share without events or an inotify overflow.
  const h = await harness({ usePolling: true, pollIntervalMs: 600_000, rescanIntervalS: 1 });
  t.teardown(h.cleanup);
  await h.watcher.start();
  await writeFile(join(h.dir, 'missed.jpg'), 'x');
  await waitFor('missed.jpg', () => h.of('missed.jpg').length > 0);
  t.pass('found by the periodic scan');
});

t.test('a file replaced under the same name is offered with its new size and mtime', async (t) => {
  const h = await harness();
  t.teardown(h.cleanup);
  await h.watcher.start();
  const path = join(h.dir, 'reuse.jpg');
  await writeFile(path, 'first');
  await waitFor('first', () => h.of('reuse.jpg').length === 1);
  await sleep(50);
  // Camera software typically writes a temp file and renames it over the old one.
  await writeFile(join(h.dir, 'reuse.jpg.tmp'), 'second version');
  await rename(join(h.dir, 'reuse.jpg.tmp'), path);
  await waitFor('second', () => h.of('reuse.jpg').length === 2);
  const st = await stat(path);
  t.equal(h.of('reuse.jpg')[1]?.size, 14);
  t.equal(h.of('reuse.jpg')[1]?.mtimeMs, st.mtimeMs);
  // And overwritten in place.
  await sleep(50);
  await writeFile(path, 'third, longer version');
  await waitFor('third', () => h.of('reuse.jpg').length === 3);
  t.equal(h.of('reuse.jpg')[2]?.size, 21);
});

t.test('capture folder deleted and recreated: the watcher re-arms and new files are offered', async (t) => {
  const parent = await tempDir();
  const dir = join(parent, 'captures');
  await mkdir(dir);
  const h = await harness({}, dir);
  t.teardown(() => rm(parent, { recursive: true, force: true }));
  t.teardown(h.cleanup);
  await h.watcher.start();
  await writeFile(join(dir, 'a.jpg'), 'a');
  await waitFor('a', () => h.of('a.jpg').length === 1);

  // Slow: gone long enough for a probe to notice.
  await rm(dir, { recursive: true });
  await waitFor('unavailable', () => !h.watcher.status().dirAvailable);
  t.match(h.watcher.status().lastError, /ENOENT/);
  await sleep(700); // several probes while it is gone
  t.equal(h.logs.filter((l) => l.msg.includes('unavailable')).length, 1, 'one warning for the outage');
  await mkdir(dir);
  await writeFile(join(dir, 'b.jpg'), 'bb');
  await waitFor('b (scan after re-arm)', () => h.of('b.jpg').length === 1);
  await waitFor('available', () => h.watcher.status().dirAvailable);
  await writeFile(join(dir, 'c.jpg'), 'ccc');
  await waitFor('c (events after re-arm)', () => h.of('c.jpg').length === 1);

  // Fast: deleted and recreated between two probes; only the inode tells.
  await rm(dir, { recursive: true });
  await mkdir(dir);
  await writeFile(join(dir, 'd.jpg'), 'dddd');
  await waitFor('d', () => h.of('d.jpg').length === 1);
  await sleep(500);
  await writeFile(join(dir, 'e.jpg'), 'eeeee');
  await waitFor('e (events on the new folder)', () => h.of('e.jpg').length === 1);
  t.same(
    h.candidates.map((c) => c.relPath),
    ['a.jpg', 'b.jpg', 'c.jpg', 'd.jpg', 'e.jpg'],
    'each file once, nothing lost',
  );
});

t.test('capture folder missing at start: unavailable, then available and scanned', async (t) => {
  const parent = await tempDir();
  const dir = join(parent, 'not-yet');
  const h = await harness({}, dir);
  t.teardown(() => rm(parent, { recursive: true, force: true }));
  t.teardown(h.cleanup);
  await h.watcher.start();
  const s = h.watcher.status();
  t.equal(s.running, true);
  t.equal(s.dirAvailable, false);
  t.match(s.lastError, /not-yet/);
  t.equal(s.lastScanAt, null);
  await sleep(600);
  t.equal(h.logs.filter((l) => l.msg.includes('unavailable')).length, 1, 'warned once while retrying');
  await mkdir(dir);
  await writeFile(join(dir, 'first.jpg'), '1');
  await waitFor('available', () => h.watcher.status().dirAvailable);
  await waitFor('first', () => h.of('first.jpg').length === 1);
  t.equal(h.watcher.status().lastError, null);
  t.not(h.watcher.status().lastScanAt, null);
  await writeFile(join(dir, 'second.jpg'), '22');
  await waitFor('second (event)', () => h.of('second.jpg').length === 1);
});

t.test('stop() emits nothing more and leaves no handles: the process exits by itself', async (t) => {
  const script = fileURLToPath(new URL('./fixtures/start-stop.ts', import.meta.url));
  const dir = await tempDir();
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const child = spawn(process.execPath, ['--import', 'tsx', script, dir], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
  const code = await new Promise<number | null>((resolve) => {
    const kill = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('exit', (c) => {
      clearTimeout(kill);
      resolve(c);
    });
  });
  t.equal(code, 0, `exited by itself (stderr: ${err.slice(-500)})`);
  // At least one: the one-second rescan may offer a.jpg again if the child stalls.
  t.match(out, /candidates-before-stop [1-9]\d*\n/, 'the watcher ran before the stop');
  t.match(out, /candidates-after-stop 0\n/);
  t.match(out, /running false\n/);
});

t.test(
  'permissions removed and restored: unavailable, then everything created meanwhile is offered',
  async (t) => {
    // The daemon runs as its own user; as root nothing is ever "permission denied", so when the test
    // runs as root the watcher runs in a child process as `nobody`.
    const asRoot = process.getuid?.() === 0;
    const parent = await tempDir();
    t.teardown(() => rm(parent, { recursive: true, force: true }));
    await chmod(parent, 0o755);
    const dir = join(parent, 'captures');
    await mkdir(dir, { mode: 0o755 });
    await chmod(dir, 0o755);
    await writeFile(join(dir, 'before.jpg'), 'b');
    const script = fileURLToPath(new URL('./fixtures/watch-child.ts', import.meta.url));
    const child = spawn(process.execPath, ['--import', 'tsx', script, dir], {
      stdio: ['pipe', 'pipe', 'pipe'],
      ...(asRoot ? { uid: 65534, gid: 65534 } : {}),
      cwd: fileURLToPath(new URL('../../', import.meta.url)),
    });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    t.teardown(() => {
      child.kill('SIGKILL');
    });
    const lastStatus = (): { dirAvailable: boolean; lastError: string | null } | null => {
      const lines = out.split('\n').filter((l) => l.startsWith('S '));
      const last = lines.at(-1);
      return last ? (JSON.parse(last.slice(2)) as { dirAvailable: boolean; lastError: string | null }) : null;
    };
    const waitStatus = async (what: string, ok: (s: { dirAvailable: boolean }) => boolean): Promise<void> => {
      await waitFor(what, () => {
        child.stdin.write('s\n');
        const s = lastStatus();
        return s !== null && ok(s);
      });
    };
    await waitFor(`child ready (stderr: ${err})`, () => out.includes('READY\n'), 30_000);
    await waitFor('before.jpg', () => out.includes('C before.jpg 1\n'));

    await chmod(dir, 0o700); // owner root: the watcher's user can no longer read it
    await writeFile(join(dir, 'during.jpg'), 'dd');
    if (asRoot || process.getuid?.() !== 0) {
      await waitStatus('unavailable', (s) => !s.dirAvailable);
      t.match(lastStatus()?.lastError, /EACCES|permission/i, 'the error names the cause');
    }
    await chmod(dir, 0o755);
    await waitStatus('available again', (s) => s.dirAvailable);
    await waitFor('during.jpg', () => out.includes('C during.jpg 2\n'));
    await writeFile(join(dir, 'after.jpg'), 'aaa');
    await waitFor('after.jpg', () => out.includes('C after.jpg 3\n'));
    child.stdin.end('q\n');
    const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
    t.equal(code, 0, 'the child stopped cleanly');
    t.equal(err.match(/unavailable/g)?.length, 1, 'one warning for the outage');
  },
);

t.test(
  'odd file names: quotes, HTML and newlines are offered; a non-UTF-8 name is reported once',
  async (t) => {
    const h = await harness();
    t.teardown(h.cleanup);
    const odd = [
      'a "quoted" \'name\'.jpg',
      '<img src=x onerror=alert(1)>.jpg',
      'line\nbreak.jpg',
      'ünï cödé.jpg',
    ];
    for (const n of odd) await writeFile(join(h.dir, n), n);
    const root = await realpath(h.dir);
    // f, 0xff, .jpg: not UTF-8.
    await writeFile(Buffer.concat([Buffer.from(root + '/f'), Buffer.from([0xff]), Buffer.from('.jpg')]), 'x');
    await h.watcher.start();
    await waitFor('odd names', () => h.candidates.length >= odd.length);
    await h.watcher.rescan();
    await settle();
    t.same([...new Set(h.candidates.map((c) => c.relPath))].sort(), [...odd].sort());
    t.equal(
      h.logs.filter((l) => l.msg.includes('not valid UTF-8')).length,
      1,
      'one warning across two scans',
    );
  },
);
