import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { harness, sleep, STABILITY_MS, waitFor } from './harness.js';

// Separate file: creating 5,000 files dominates its run time, and tap runs files in parallel.
const settle = () => sleep(STABILITY_MS * 4);

t.test(
  'backlog: 5,000 files at start plus files arriving during the scan, the scan waits for the stability queue',
  async (t) => {
    // A small queue bound so the scan's backpressure is exercised with a backlog that is quick to create.
    const h = await harness({ maxPendingStability: 500 });
    t.teardown(h.cleanup);
    const N = 5000;
    for (let d = 0; d < 10; d++) {
      await mkdir(join(h.dir, `day${d}`));
      for (let i = 0; i < N / 10; i++) await writeFile(join(h.dir, `day${d}`, `img-${i}.jpg`), `${d}-${i}`);
    }
    let maxPending = 0;
    const sampler = setInterval(() => {
      maxPending = Math.max(maxPending, h.watcher.status().pendingStability);
    }, 10);
    t.teardown(() => clearInterval(sampler));
    const starting = h.watcher.start();
    const live: string[] = [];
    for (let i = 0; i < 100; i++) {
      const rel = join('day0', `live-${i}.jpg`);
      live.push(rel);
      await writeFile(join(h.dir, rel), `live ${i}`);
      if (i % 10 === 0) await sleep(20);
    }
    await starting;
    await waitFor(
      'every file',
      () => new Set(h.candidates.map((c) => c.relPath)).size >= N + live.length,
      60_000,
    );
    await settle();
    clearInterval(sampler);
    const counts = new Map<string, number>();
    for (const c of h.candidates) counts.set(c.relPath, (counts.get(c.relPath) ?? 0) + 1);
    const preexisting = [...counts].filter(([rel]) => !rel.includes('live-'));
    t.equal(preexisting.length, N, 'every file present at start');
    t.ok(
      preexisting.every(([, n]) => n === 1),
      'each pre-existing file offered once',
    );
    t.ok(
      live.every((rel) => (counts.get(rel) ?? 0) >= 1),
      'every file that arrived during the scan',
    );
    t.ok(maxPending <= 500, `the stability queue stayed bounded (max ${maxPending})`);
    t.equal(h.watcher.status().pendingStability, 0);
  },
);
