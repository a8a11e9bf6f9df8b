import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import type { Worker } from 'node:worker_threads';
import { pino, type Logger } from 'pino';
import { openClassifier, type Classifier, type CreateClassifierOptions } from '../../src/infer/classifier.js';
import { spawnWorker } from '../../src/infer/worker-supervisor.js';
import { mulberry32 } from '../../src/runtime/seeded-random.js';

export const tinyModelDir = fileURLToPath(new URL('../fixtures/tiny-model/', import.meta.url));
export const IMAGE_VALUES = 3 * 224 * 224;

/** A pino logger whose JSON lines are collected in `lines`, to assert on what was logged. */
export function captureLogger(): { log: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString('utf8').split('\n'))
        if (line.trim()) lines.push(JSON.parse(line) as Record<string, unknown>);
      cb();
    },
  });
  return { log: pino({ level: 'debug' }, stream), lines };
}

/** Deterministic, varied image-like data in [0,1] (mulberry32), so different seeds differ clearly. */
export function fakeImage(seed: number): Float32Array {
  const random = mulberry32(seed);
  const out = new Float32Array(IMAGE_VALUES);
  // A per-image brightness and per-channel tint make the tiny model's outputs differ between seeds.
  const bright = ((seed * 37) % 100) / 100;
  for (let i = 0; i < out.length; i++) {
    const r = random();
    const channel = Math.floor(i / (224 * 224));
    out[i] = Math.min(1, r * 0.5 + bright * (channel === seed % 3 ? 0.5 : 0.1));
  }
  return out;
}

export function fakePair(seed: number): { original: Float32Array; segmented: Float32Array } {
  return { original: fakeImage(seed), segmented: fakeImage(seed + 1000) };
}

/** Copies the tiny model to a temp folder, lets `edit` change model.json, returns the folder. */
export async function tinyModelCopy(
  edit: (manifest: Record<string, unknown>) => void = () => {},
): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'blastwatch-tiny-model-'));
  await cp(tinyModelDir, dir, { recursive: true });
  const manifestPath = join(dir, 'model.json');
  const manifest = JSON.parse(await readFile(manifestPath, 'utf8')) as Record<string, unknown>;
  edit(manifest);
  await writeFile(manifestPath, JSON.stringify(manifest, null, 2));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

const CRASHABLE_WORKER = new URL('./fixtures/crashable-worker.ts', import.meta.url);

/**
 * A classifier whose worker threads run test/infer/fixtures/crashable-worker.ts: `crash(code)`
 * makes the current worker exit with `code`, as a crash would.
 */
export async function createCrashableClassifier(
  opts: CreateClassifierOptions,
): Promise<{ classifier: Classifier; crash: (code?: number) => void }> {
  let current: Worker | null = null;
  const classifier = await openClassifier(opts, (init) => (current = spawnWorker(init, CRASHABLE_WORKER)));
  return {
    classifier,
    crash: (code = 3) => current?.postMessage({ type: 'exit-for-test', code }),
  };
}
