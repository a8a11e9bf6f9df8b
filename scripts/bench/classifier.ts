/**
 * The inference worker alone (not a test: no assertions, prints figures). scripts/benchmark times
 * raw onnxruntime in its own thread and the whole daemon; this measures the Classifier itself.
 *   npx tsx scripts/bench/classifier.ts [--model DIR] [--threads N] [--rounds N] [--providers cpu|cuda,cpu]
 *     [--busy-ms N]
 * On the 12 committed sample images, through prepareImage() and the Classifier:
 * 1. batch-1 classify latency (what the daemon does per image): median and p95 ms; with
 *    --busy-ms N, this thread works N ms after each call before awaiting the answer, as the
 *    pipeline makes the gate's picture checks while the worker infers (overlapped: about
 *    max(N, the run); one after the other: N + the run);
 * 2. batch-12 classify: ms per image;
 * 3. the main thread's event-loop delay while inference runs (the reason for the worker):
 *    max and p99 ms, sampled every 10 ms;
 * 4. process RSS after the runs. The load average is printed: on a shared machine the figures
 *    scale with it.
 */
import { readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { BUNDLED_MODEL_DIR } from '../../src/config/load.js';
import { createClassifier, type ImagePair, type ProviderName } from '../../src/infer/index.js';
import { prepareImage } from '../../src/preprocess/index.js';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: BUNDLED_MODEL_DIR },
    threads: { type: 'string', default: '1' },
    rounds: { type: 'string', default: '10' },
    providers: { type: 'string', default: 'cpu' },
    'busy-ms': { type: 'string', default: '0' },
  },
});
const busyMs = Number(values['busy-ms']);
/** Synchronous work on this thread, as the gate's picture checks are. */
const busy = (ms: number): void => {
  const end = performance.now() + ms;
  while (performance.now() < end);
};
const rounds = Number(values.rounds);
const samplesDir = fileURLToPath(new URL('../../test/fixtures/samples', import.meta.url));
const files = readdirSync(samplesDir, { withFileTypes: true })
  .filter((d) => d.isDirectory())
  .flatMap((d) =>
    readdirSync(path.join(samplesDir, d.name))
      .sort()
      .map((f) => path.join(samplesDir, d.name, f)),
  );

const quantile = (xs: number[], q: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] as number;
};

const classifier = await createClassifier({
  modelDir: values.model,
  executionProviders: values.providers.split(',') as ProviderName[],
  threads: Number(values.threads),
  log: pino({ level: 'warn' }),
});
const size = classifier.info.imageSize.width;
const prepared: ImagePair[] = [];
for (const f of files) {
  const p = await prepareImage(readFileSync(f), { size, limitInputPixels: 50_000_000 });
  prepared.push({ original: p.original, segmented: p.segmented });
}
const fresh = (): ImagePair[] =>
  prepared.map((p) => ({ original: p.original.slice(), segmented: p.segmented.slice() }));

await classifier.classify(fresh().slice(0, 2)); // warm-up
const loop = monitorEventLoopDelay({ resolution: 10 });
loop.enable();
const single: number[] = [];
for (let r = 0; r < rounds; r++) {
  for (const pair of fresh()) {
    const t0 = performance.now();
    const answer = classifier.classify([pair]);
    if (busyMs > 0) busy(busyMs);
    await answer;
    single.push(performance.now() - t0);
  }
}
const batched: number[] = [];
for (let r = 0; r < rounds; r++) {
  const batch = fresh();
  const t0 = performance.now();
  await classifier.classify(batch);
  batched.push((performance.now() - t0) / batch.length);
}
loop.disable();
await classifier.close();
const i = classifier.info;
console.log(
  JSON.stringify(
    {
      model: `${i.name} ${i.version}`,
      file: path.basename(i.modelFile),
      provider: i.executionProvider,
      threads: i.threads,
      images: files.length,
      rounds,
      busy_ms: busyMs,
      batch1_ms: { median: +quantile(single, 0.5).toFixed(2), p95: +quantile(single, 0.95).toFixed(2) },
      batch12_ms_per_image: +quantile(batched, 0.5).toFixed(2),
      event_loop_delay_ms: {
        max: +(loop.max / 1e6).toFixed(1),
        p99: +(loop.percentile(99) / 1e6).toFixed(1),
      },
      rss_mb: Math.round(process.memoryUsage.rss() / 1024 / 1024),
      loadavg: os.loadavg().map((v) => +v.toFixed(2)),
      cpus: os.availableParallelism(),
    },
    null,
    2,
  ),
);
