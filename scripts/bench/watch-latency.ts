/**
 * The capture watcher alone: how long from a file renamed into the capture folder to the
 * watcher offering it, and the CPU that costs per image, with FILES images already in the folder
 * (the default config leaves processed images there). Each image is written as NAME.part and
 * renamed, like the camera and scripts/benchmark do; stability_ms is 0.
 *
 *   node --import tsx scripts/bench/watch-latency.ts [files-already-there=0] [images=200]
 *
 * The CPU figure is this process's CPU per image minus the same loop without a watcher (the
 * writes, renames and unlinks themselves).
 */
import {
  mkdtempSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { createCaptureWatcher } from '../../src/watch/index.js';
import { percentile } from './stats.js';

const existing = Number(process.argv[2] ?? 0);
const images = Number(process.argv[3] ?? 200);
const samples = fileURLToPath(new URL('../../test/fixtures/samples/Benign/', import.meta.url));
const bytes = readFileSync(
  join(
    samples,
    readdirSync(samples).find((f) => f.endsWith('.jpg'))!,
  ),
);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const cpuMs = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

async function run(withWatcher: boolean): Promise<{ cpuPerImage: number; latencies: number[] }> {
  const dir = mkdtempSync(join(tmpdir(), 'bw-watch-latency-'));
  for (let i = 0; i < existing; i++) writeFileSync(join(dir, `old-${i}.jpg`), 'x');
  let arrived: ((path: string) => void) | null = null;
  let offered = 0;
  const watcher = createCaptureWatcher(
    {
      dir,
      recursive: true,
      extensions: ['.jpg'],
      ignore: ['*.part'],
      usePolling: false,
      pollIntervalMs: 2000,
      stabilityMs: 0,
      rescanIntervalS: 3600,
    },
    {
      onCandidate: (f) => {
        offered++;
        arrived?.(f.path);
      },
    },
    pino({ level: 'warn' }),
  );
  if (withWatcher) {
    await watcher.start();
    // The start-up scan offers the old files: let it finish before timing.
    while (offered < existing) await sleep(50);
    await sleep(200);
  }
  const latencies: number[] = [];
  const cpu0 = cpuMs();
  for (let i = 0; i < images; i++) {
    const final = join(dir, `img-${i}.jpg`);
    writeFileSync(`${final}.part`, bytes);
    const got = new Promise<string>((resolve) => (arrived = (p) => p.endsWith(`img-${i}.jpg`) && resolve(p)));
    const t0 = performance.now();
    renameSync(`${final}.part`, final);
    if (withWatcher) {
      await got;
      latencies.push(performance.now() - t0);
    }
    unlinkSync(final);
    await sleep(10);
  }
  const cpuPerImage = (cpuMs() - cpu0) / images;
  await watcher.stop();
  rmSync(dir, { recursive: true, force: true });
  return { cpuPerImage, latencies };
}

const baseline = await run(false);
const watched = await run(true);
const sorted = watched.latencies.sort((a, b) => a - b);
console.log(
  JSON.stringify({
    files_already_in_folder: existing,
    images,
    rename_to_candidate_ms: {
      median: Math.round(percentile(sorted, 50) * 100) / 100,
      p95: Math.round(percentile(sorted, 95) * 100) / 100,
    },
    watcher_cpu_ms_per_image: Math.round((watched.cpuPerImage - baseline.cpuPerImage) * 100) / 100,
  }),
);
