/**
 * Item 4, capture folder trouble, against the real composed daemon: the folder deleted and
 * recreated; the folder gone (a share whose mount point disappears) with files created on the
 * share meanwhile; a bind mount unmounted and mounted again (root only). While the folder is
 * gone /readyz and the health payload say so; the daemon never crashes; everything created
 * meanwhile is classified afterwards.
 *
 * Permissions removed is proven at the watcher level by test/watch (as an unprivileged user:
 * root ignores mode bits) and here when the suite does not run as root.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import {
  freePort,
  isClassified,
  jpegVariant,
  makeDirs,
  readResults,
  sampleImages,
  startInProcess,
  until,
} from './harness.js';

// The whole file (.taprc's 300 s is per file): slow on a shared 2-core machine.
t.setTimeout(900_000);

t.test('capture folder deleted, vanished, unmounted: alert while gone, nothing lost', async (t) => {
  const dirs = makeDirs('bw-folder-');
  const d = await startInProcess(dirs, { mqttUrl: null, httpPort: await freePort() });
  t.teardown(async () => {
    await d.stop();
    try {
      execFileSync('umount', ['-l', dirs.capture], { stdio: 'ignore' });
    } catch {
      /* not mounted */
    }
    rmSync(dirs.root, { recursive: true, force: true });
  });
  const images = sampleImages().map((p) => readFileSync(p));
  let n = 0;
  const drop = (dir: string, count: number): string[] => {
    const names: string[] = [];
    for (let i = 0; i < count; i++, n++) {
      const name = `f-${n}.jpg`;
      writeFileSync(join(dir, name), jpegVariant(images[n % images.length]!, `folder-${n}`));
      names.push(name);
    }
    return names;
  };
  const doneNames = () =>
    new Set(
      readResults(dirs.data)
        .filter((r) => isClassified(r.status))
        .map((r) => r.file),
    );
  const allDone = (names: string[]) => () => {
    const s = doneNames();
    return names.every((x) => s.has(x));
  };
  const readyz = async () => {
    const res = await fetch(`${d.app.url}/readyz`);
    return { status: res.status, body: await res.text() };
  };

  const first = drop(dirs.capture, 3);
  await until(allDone(first), 30_000, 'first images');

  // A: deleted and recreated.
  rmSync(dirs.capture, { recursive: true });
  await until(async () => (await readyz()).status !== 200, 10_000, 'readyz reports the missing folder');
  const gone = await readyz();
  t.match(gone.body, /capture folder unavailable/, `readyz while deleted: ${gone.status} ${gone.body}`);
  t.match(d.app.context.health().problems.join('; '), /capture folder unavailable/, 'health payload says so');
  t.equal(d.app.context.health().state, 'degraded', 'health state degraded');
  t.equal(
    (await fetch(`${d.app.url}/healthz`)).status,
    200,
    'still alive (liveness) while the folder is gone',
  );
  mkdirSync(dirs.capture);
  const afterRecreate = drop(dirs.capture, 3);
  await until(allDone(afterRecreate), 30_000, 'images in the recreated folder');
  await until(async () => (await readyz()).status === 200, 10_000, 'ready again');
  t.pass('deleted and recreated: ready again, new images classified');

  // B: vanished (a share's mount point removed) while the microscope keeps writing to the share.
  const share = join(dirs.root, 'share-elsewhere');
  renameSync(dirs.capture, share);
  await until(async () => (await readyz()).status !== 200, 10_000, 'readyz reports the vanished folder');
  t.match((await readyz()).body, /capture folder unavailable/, 'unavailable while it is gone');
  const meanwhile = drop(share, 4);
  renameSync(share, dirs.capture);
  await until(allDone(meanwhile), 30_000, 'images created while the folder was gone');
  await until(async () => (await readyz()).status === 200, 10_000, 'ready again');
  t.pass('vanished and back: every image created meanwhile classified');

  // C: a real mount (bind mount of a "share") unmounted and mounted again: root only.
  const shareDir = join(dirs.root, 'nas');
  mkdirSync(shareDir);
  let mounted = false;
  try {
    execFileSync('mount', ['--bind', shareDir, dirs.capture], { stdio: 'pipe' });
    mounted = true;
  } catch (err) {
    t.comment(
      `bind mount not possible here (${(err as Error).message.split('\n')[0]}): unmount case skipped`,
    );
  }
  if (mounted) {
    const onShare = drop(dirs.capture, 3);
    await until(allDone(onShare), 30_000, 'images on the mounted share');
    execFileSync('umount', ['-l', dirs.capture]);
    const whileUnmounted = drop(shareDir, 3);
    // The empty mount point is a different folder (another device): the watcher re-arms on it.
    await new Promise((r) => setTimeout(r, 1500));
    const state = await readyz();
    t.comment(`readyz while unmounted: ${state.status} ${state.body}`);
    t.equal((await fetch(`${d.app.url}/healthz`)).status, 200, 'alive while unmounted');
    execFileSync('mount', ['--bind', shareDir, dirs.capture]);
    await until(allDone(whileUnmounted), 30_000, 'images written to the share while unmounted');
    t.pass('unmounted and mounted again: images written meanwhile classified');
    execFileSync('umount', ['-l', dirs.capture]);
  }

  // D: permissions removed (meaningless for root).
  if (process.getuid?.() !== 0) {
    chmodSync(dirs.capture, 0);
    await until(async () => (await readyz()).status !== 200, 10_000, 'readyz reports the unreadable folder');
    chmodSync(dirs.capture, 0o755);
    const afterPerm = drop(dirs.capture, 2);
    await until(allDone(afterPerm), 30_000, 'images after permissions restored');
  }

  const rows = readResults(dirs.data);
  t.equal(rows.length, n, `one result per image (${n}), none lost, none doubled`);
  t.ok(
    rows.every((r) => isClassified(r.status)),
    'all done',
  );
});

// Was a known limitation: an unmounted share is an ordinary empty folder and /readyz stayed 200.
// With capture.require_mount the folder must be a mount point: otherwise it is unavailable.
t.test('capture.require_mount: an unmounted share is unavailable, not empty', async (t) => {
  const dirs = makeDirs('bw-mount-');
  const shareDir = join(dirs.root, 'nas');
  mkdirSync(shareDir);
  const d = await startInProcess(dirs, {
    mqttUrl: null,
    httpPort: await freePort(),
    extra: { capture: { require_mount: true } },
  });
  t.teardown(async () => {
    await d.stop();
    try {
      execFileSync('umount', ['-l', dirs.capture], { stdio: 'ignore' });
    } catch {
      /* not mounted */
    }
    rmSync(dirs.root, { recursive: true, force: true });
  });
  const readyz = async () => {
    const res = await fetch(`${d.app.url}/readyz`);
    return { status: res.status, body: await res.text() };
  };
  const notMounted = `capture.dir ${dirs.capture} is not a mount point (share not mounted?)`;
  const images = sampleImages().map((p) => readFileSync(p));
  let n = 0;
  const drop = (dir: string, count: number): string[] => {
    const names: string[] = [];
    for (let i = 0; i < count; i++, n++) {
      const name = `m-${n}.jpg`;
      writeFileSync(join(dir, name), jpegVariant(images[n % images.length]!, `mount-${n}`));
      names.push(name);
    }
    return names;
  };
  const allDone = (names: string[]) => () => {
    const done = new Set(
      readResults(dirs.data)
        .filter((r) => isClassified(r.status))
        .map((r) => r.file),
    );
    return names.every((x) => done.has(x));
  };

  // Not mounted at start (a plain folder): unavailable, with the reason.
  const before = await readyz();
  t.equal(before.status, 503, 'readyz 503 while the share is not mounted');
  t.ok(before.body.includes(notMounted), `names the cause: ${before.body}`);
  t.equal((await fetch(`${d.app.url}/healthz`)).status, 200, 'alive');

  let mounted = false;
  try {
    execFileSync('mount', ['--bind', shareDir, dirs.capture], { stdio: 'pipe' });
    mounted = true;
  } catch (err) {
    t.comment(`bind mount not possible here (${(err as Error).message.split('\n')[0]}): mount cases skipped`);
  }
  if (!mounted) return;
  // A bind mount of a folder on the same file system: same device, only mountinfo tells.
  await until(async () => (await readyz()).status === 200, 10_000, 'ready once mounted');
  const onShare = drop(dirs.capture, 2);
  await until(allDone(onShare), 30_000, 'images on the mounted share');

  execFileSync('umount', ['-l', dirs.capture]);
  await until(async () => (await readyz()).status === 503, 10_000, 'readyz 503 once unmounted');
  t.ok((await readyz()).body.includes(notMounted), 'unmounted: names the cause');
  const whileUnmounted = drop(shareDir, 2);
  execFileSync('mount', ['--bind', shareDir, dirs.capture]);
  await until(async () => (await readyz()).status === 200, 10_000, 'ready once mounted again');
  await until(allDone(whileUnmounted), 30_000, 'images written to the share while unmounted');
  const rows = readResults(dirs.data);
  t.equal(rows.length, n, `one result per image (${n}), none lost, none doubled`);
});
