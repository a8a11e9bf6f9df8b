import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import t from 'tap';
import { createMetrics, observeGarbageCollection } from '../../src/runtime/metrics.js';

/** A real major collection on demand: V8's gc() exposed for this process, fetched from a fresh context. */
function forcedGc(): () => void {
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}

const majorCount = (text: string): number =>
  Number(/^nodejs_gc_duration_seconds_count\{kind="major"\} (\d+)$/m.exec(text)?.[1] ?? 0);

t.test('garbage collections are counted by kind while observed, and not after', async (t) => {
  const gc = forcedGc();
  const metrics = createMetrics();
  t.equal(majorCount(metrics.registry.render()), 0, 'nothing before observing');
  const stop = observeGarbageCollection(metrics.gc);
  gc();
  // The observer hears of a collection asynchronously.
  const deadline = Date.now() + 5000;
  while (majorCount(metrics.registry.render()) === 0 && Date.now() < deadline)
    await new Promise((r) => setTimeout(r, 20));
  const text = metrics.registry.render();
  const counted = majorCount(text);
  t.ok(counted >= 1, `the forced major collection is counted (${counted})`);
  t.match(text, /# TYPE nodejs_gc_duration_seconds histogram/);
  t.match(text, /nodejs_gc_duration_seconds_bucket\{kind="major",le="\+Inf"\} \d+/);
  stop();
  await new Promise((r) => setTimeout(r, 50));
  const before = majorCount(metrics.registry.render());
  gc();
  await new Promise((r) => setTimeout(r, 200));
  t.equal(majorCount(metrics.registry.render()), before, 'no longer counted once stopped');
});
