// Times the FP32 and INT8 files written by int8_ratio.py in onnxruntime-node, with the daemon's
// session options (src/infer/worker.ts) at 1 intra-op thread, batch 1: FP32 and INT8 runs
// alternate, so a busy neighbour slows both alike. Prints the medians and INT8/FP32.
//   node training/sweeps/int8_ratio.mjs DIR [RUNS=500]
import { readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';

const ort = createRequire(import.meta.url)('onnxruntime-node');
const [dir = '/tmp/int8-ratio', runs = '500'] = process.argv.slice(2);
const options = {
  intraOpNumThreads: 1,
  interOpNumThreads: 1,
  graphOptimizationLevel: 'all',
  executionMode: 'sequential',
  extra: { session: { intra_op: { allow_spinning: '0' } } },
};
const size = 3 * 224 * 224;
const image = () => Float32Array.from({ length: size }, () => Math.round(Math.random() * 255) / 255);
const feeds = {
  original: new ort.Tensor('float32', image(), [1, 3, 224, 224]),
  segmented: new ort.Tensor('float32', image(), [1, 3, 224, 224]),
};
const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const stems = readdirSync(dir)
  .filter((f) => f.endsWith('.fp32.onnx'))
  .map((f) => f.slice(0, -'.fp32.onnx'.length));
for (const stem of stems) {
  const sessions = {};
  for (const kind of ['fp32', 'int8']) {
    sessions[kind] = await ort.InferenceSession.create(join(dir, `${stem}.${kind}.onnx`), options);
    for (let i = 0; i < 20; i++) await sessions[kind].run(feeds);
  }
  const ms = { fp32: [], int8: [] };
  for (let r = 0; r < Number(runs); r++)
    for (const kind of ['fp32', 'int8']) {
      const t0 = process.hrtime.bigint();
      await sessions[kind].run(feeds);
      ms[kind].push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
  const f = median(ms.fp32);
  const q = median(ms.int8);
  console.log(`${stem.padEnd(20)} fp32 ${f.toFixed(2)} ms  int8 ${q.toFixed(2)} ms  int8/fp32 ${(q / f).toFixed(2)}`);
}
