/**
 * Times the FP32 and INT8 files that training/sweeps/int8_ratio.py writes (DIR/<name>.fp32.onnx,
 * DIR/<name>.int8.onnx) in onnxruntime-node, with the daemon's session options at 1 intra-op
 * thread, batch 1. FP32 and INT8 runs alternate, so a busy neighbour slows both alike. Prints the
 * medians and INT8/FP32 per network.
 *
 *   npx tsx scripts/int8-ratio.ts DIR [RUNS=500]
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { InferenceSession, Tensor } from 'onnxruntime-node';
import { daemonSessionOptions } from '../src/infer/session-options.js';

const [dir = '/tmp/int8-ratio', runs = '500'] = process.argv.slice(2);
const size = 3 * 224 * 224;
// byte/255 values, as the daemon feeds
const image = (): Float32Array =>
  Float32Array.from({ length: size }, () => Math.round(Math.random() * 255) / 255);
const feeds = {
  original: new Tensor('float32', image(), [1, 3, 224, 224]),
  segmented: new Tensor('float32', image(), [1, 3, 224, 224]),
};
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
const kinds = ['fp32', 'int8'] as const;
const stems = readdirSync(dir)
  .filter((f) => f.endsWith('.fp32.onnx'))
  .map((f) => f.slice(0, -'.fp32.onnx'.length));
for (const stem of stems) {
  const sessions = {} as Record<(typeof kinds)[number], InferenceSession>;
  for (const kind of kinds) {
    sessions[kind] = await InferenceSession.create(
      join(dir, `${stem}.${kind}.onnx`),
      daemonSessionOptions('cpu', 1),
    );
    for (let i = 0; i < 20; i++) await sessions[kind].run(feeds);
  }
  const ms = { fp32: [] as number[], int8: [] as number[] };
  for (let r = 0; r < Number(runs); r++)
    for (const kind of kinds) {
      const t0 = process.hrtime.bigint();
      await sessions[kind].run(feeds);
      ms[kind].push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
  for (const kind of kinds) await sessions[kind].release();
  const f = median(ms.fp32);
  const q = median(ms.int8);
  console.log(
    `${stem.padEnd(20)} fp32 ${f.toFixed(2)} ms  int8 ${q.toFixed(2)} ms  int8/fp32 ${(q / f).toFixed(2)}`,
  );
}
