/**
 * Item 3, backlog: N files already in the capture folder at start-up, more arriving while the
 * start-up scan runs, and a restart (SIGTERM, graceful) in the middle of the backlog. Every file
 * must be classified exactly once and the daemon's memory must stay bounded (it must not read
 * the whole backlog into memory or queue it without limit).
 *
 * Scale: 500 files in CI; 5,000 with BLASTWATCH_RELIABILITY_FULL=1 (or BW_BACKLOG=N).
 */
import { readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import {
  freePort,
  isClassified,
  jpegVariant,
  makeDirs,
  MB,
  readResults,
  rssOf,
  sampleImages,
  scale,
  sleep,
  startDaemon,
  type DaemonProcess,
  until,
  writeConfig,
} from './harness.js';

const N = scale('BW_BACKLOG', 500, 5000);
// The whole file (.taprc's 300 s is per file): slow on a shared 2-core machine.
t.setTimeout(N * 1000 + 300_000);

/** Samples the child's RSS until stopped; returns the peak. */
function watchRss(d: DaemonProcess): { stop(): number; baseline: () => number } {
  let peak = 0;
  let first = 0;
  const timer = setInterval(() => {
    try {
      const { rss } = rssOf(d.child.pid!);
      if (first === 0) first = rss;
      peak = Math.max(peak, rss);
    } catch {
      /* exited */
    }
  }, 250);
  return {
    stop() {
      clearInterval(timer);
      return peak;
    },
    baseline: () => first,
  };
}

t.test(`backlog: ${N} files at start-up + arrivals during the scan + a restart mid-way`, async (t) => {
  t.setTimeout(Math.max(300_000, N * 400));
  const dirs = makeDirs('bw-backlog-');
  const httpPort = await freePort();
  // queue_max 64: the scan must wait for room (backpressure) instead of queueing everything.
  writeConfig(dirs, {
    mqttUrl: null,
    httpPort,
    extra: { pipeline: { concurrency: 2, queue_max: 64 }, capture: { rescan_interval_s: 5 } },
  });
  t.teardown(() => rmSync(dirs.root, { recursive: true, force: true }));
  const images = sampleImages().map((p) => readFileSync(p));
  const names: string[] = [];
  const put = (i: number) => {
    // Spread over sub-folders like a microscope's per-day folders.
    const sub = join(dirs.capture, `day-${i % 7}`);
    mkdirSync(sub, { recursive: true });
    const name = `day-${i % 7}/bl-${String(i).padStart(5, '0')}.jpg`;
    writeFileSync(join(dirs.capture, name), jpegVariant(images[i % images.length]!, `backlog-${i}`));
    names.push(name);
  };
  for (let i = 0; i < N; i++) put(i);

  const first = startDaemon(dirs.config, httpPort);
  t.teardown(() => first.child.kill('SIGKILL'));
  const rss1 = watchRss(first);
  // Arrivals while the start-up scan runs.
  let next = N;
  const arrivals = (async () => {
    for (let k = 0; k < 40; k++, next++) {
      put(next);
      await sleep(50);
    }
  })();
  await first.ready(180_000);
  await arrivals;
  const half = Math.floor(N / 2);
  await until(() => readResults(dirs.data).length >= half, N * 300, `half the backlog (${half})`, 500);
  first.child.kill('SIGTERM');
  t.equal(await first.exited, 0, 'graceful stop in the middle of the backlog');
  const peak1 = rss1.stop();
  const atRestart = readResults(dirs.data).length;
  t.ok(atRestart < next, `restarted mid-way (${atRestart} of ${next} done)`);

  const second = startDaemon(dirs.config, httpPort);
  t.teardown(() => second.child.kill('SIGKILL'));
  const rss2 = watchRss(second);
  for (let k = 0; k < 20; k++, next++) put(next);
  await second.ready(180_000);
  await until(() => readResults(dirs.data).length >= next, N * 400, `all ${next} files`, 500);
  await sleep(1500); // a late duplicate would show up now
  const peak2 = rss2.stop();
  const rows = readResults(dirs.data);
  t.equal(rows.length, next, `one row per file (${next})`);
  t.same(
    rows.filter((r) => !isClassified(r.status)).map((r) => `${r.file}: ${r.error ?? ''}`),
    [],
    'all done',
  );
  t.equal(new Set(rows.map((r) => r.sha256)).size, next, 'each file exactly once');
  t.same(new Set(rows.map((r) => r.file)), new Set(names), 'exactly the files in the folder');
  const msg = `peak RSS ${Math.round(peak1 / MB)} MB (first run), ${Math.round(peak2 / MB)} MB (second run)`;
  t.comment(msg);
  // The daemon alone, tiny model: ~200-300 MB. A backlog read into memory would be far more.
  t.ok(Math.max(peak1, peak2) < 700 * MB, `memory bounded: ${msg} < 700 MB`);
  second.child.kill('SIGTERM');
  t.equal(await second.exited, 0, 'clean stop');
});
