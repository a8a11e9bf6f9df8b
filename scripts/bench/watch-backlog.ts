// The capture watcher with a large folder: time to offer a backlog, rescan time, idle CPU and RSS,
// for inotify and polling (scripts/bench/watch-latency.ts times single new files).
// Usage: node --import tsx scripts/bench/watch-backlog.ts [files=5000] [idleSeconds=10]
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { createCaptureWatcher } from '../../src/watch/index.js';

const files = Number(process.argv[2] ?? 5000);
const idleS = Number(process.argv[3] ?? 10);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const mb = (n: number): string => (n / 2 ** 20).toFixed(0);

const dir = await mkdtemp(join(tmpdir(), 'bw-bench-watch-'));
const perFolder = Math.ceil(files / 10);
for (let d = 0, made = 0; d < 10 && made < files; d++) {
  await mkdir(join(dir, `day${d}`));
  for (let i = 0; i < perFolder && made < files; i++, made++) {
    await writeFile(join(dir, `day${d}`, `img-${i}.jpg`), Buffer.alloc(1024, i));
  }
}
console.log(`${files} files in ${dir}; node ${process.version}`);

async function idleCpuPercent(seconds: number): Promise<number> {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await sleep(seconds * 1000);
  const cpu = process.cpuUsage(cpu0);
  return ((cpu.user + cpu.system) / 1000 / (performance.now() - t0)) * 100;
}
console.log(`baseline (no watcher): idle CPU ${(await idleCpuPercent(idleS)).toFixed(2)} % over ${idleS} s`);

for (const usePolling of [false, true]) {
  let seen = 0;
  const watcher = createCaptureWatcher(
    {
      dir,
      recursive: true,
      extensions: ['.jpg'],
      ignore: [],
      usePolling,
      pollIntervalMs: 2000,
      stabilityMs: 1500,
      rescanIntervalS: 60,
    },
    { onCandidate: () => void seen++ },
    pino({ level: 'warn' }),
  );
  const t0 = performance.now();
  await watcher.start();
  const startMs = performance.now() - t0;
  while (seen < files) await sleep(50);
  const allMs = performance.now() - t0;
  await sleep(2000);
  const rssBefore = process.memoryUsage().rss;
  const idleCpuPct = await idleCpuPercent(idleS);
  seen = 0;
  const r0 = performance.now();
  await watcher.rescan();
  while (seen < files) await sleep(50);
  const rescanMs = performance.now() - r0;
  for (let i = 0; i < 4; i++) {
    seen = 0;
    await watcher.rescan();
    while (seen < files) await sleep(50);
  }
  const rssAfter = process.memoryUsage().rss;
  await watcher.stop();
  console.log(
    `${usePolling ? 'polling 2 s' : 'inotify    '}: start() ${startMs.toFixed(0)} ms, all offered ${allMs.toFixed(0)} ms ` +
      `(window 1500 ms), idle CPU ${idleCpuPct.toFixed(2)} % over ${idleS} s, rescan+offer ${rescanMs.toFixed(0)} ms, ` +
      `RSS ${mb(rssBefore)} MiB -> ${mb(rssAfter)} MiB after 5 rescans`,
  );
}
await rm(dir, { recursive: true, force: true });
