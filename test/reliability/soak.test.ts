/**
 * Item 10, soak (bounded): the daemon in this process with inference slowed by a wrapper
 * classifier, fed faster than the field rate, sampled every second. Bounds are generous enough
 * for a shared 2-core CI machine, tight enough to catch a leak: fds that grow by > 20, RSS that
 * grows by > 150 MB after warm-up, a WAL that is never checkpointed, /healthz that stalls.
 * The hour-long run: `npx tsx scripts/soak.ts` (docs/reliability.md).
 *
 * Scale: 75 s at 2 images/s with 250 ms added per inference in CI; BLASTWATCH_RELIABILITY_FULL=1
 * runs 3600 s at 1 image/s with 800 ms.
 */
import t from 'tap';
import { FULL, scale } from './harness.js';
import { runSoak } from './soak-core.js';

// The whole file (.taprc's 300 s is per file): slow on a shared 2-core machine.
t.setTimeout((scale('BW_SOAK_S', 75, 3600) + 600) * 1000);

t.test('soak: event-loop delay, RSS, fds, WAL flat; /healthz answers; nothing lost', async (t) => {
  const durationS = scale('BW_SOAK_S', 75, 3600);
  t.setTimeout((durationS + 400) * 1000);
  const r = await runSoak({
    durationS,
    rate: FULL ? 1 : 2,
    inferDelayMs: FULL ? 800 : 250,
    progress: (l) => t.comment(l),
  });
  const s = r.summary;
  t.comment(JSON.stringify({ fed: r.fed, done: r.done, ...s }));
  t.ok(r.fed >= durationS * (FULL ? 1 : 2) * 0.9, `fed ${r.fed} images`);
  t.equal(r.done, r.fed, 'every fed image classified');
  t.equal(r.distinct, r.fed, 'each exactly once');
  t.equal(r.notDone, 0, 'no failures');
  t.equal(r.alertsReceived, r.alertsExpected, `every alert delivered (${r.alertsExpected})`);
  t.ok(r.samples.length >= durationS * 0.5, `sampled (${r.samples.length} samples)`);
  t.ok(
    s.fds.end - s.fds.warm <= 20,
    `open fds flat: warm ${s.fds.warm} → end ${s.fds.end} (max ${s.fds.max})`,
  );
  t.ok(
    s.rssMb.end - s.rssMb.warm < 150,
    `RSS flat: warm ${s.rssMb.warm.toFixed(0)} MB → end ${s.rssMb.end.toFixed(0)} MB (max ${s.rssMb.max.toFixed(0)})`,
  );
  t.ok(s.walMb.max < 64, `WAL bounded by checkpoints: max ${s.walMb.max.toFixed(2)} MB`);
  // The product requirement is 200 ms at p99 (scripts/soak.ts enforces it on a quiet machine).
  // CI shares 2 cores with other test files (and here with a training job, load ~25): the bound
  // only catches a loop that stalls for seconds; BW_HEALTHZ_P99_MS tightens it.
  const bound = Number(process.env.BW_HEALTHZ_P99_MS ?? 5000);
  t.ok(
    s.healthzMs.p99 < bound,
    `/healthz p50 ${s.healthzMs.p50.toFixed(1)} ms, p99 ${s.healthzMs.p99.toFixed(1)} ms (< ${bound}), max ${s.healthzMs.max.toFixed(0)}`,
  );
  t.ok(s.healthzMs.p50 < 1000, `/healthz p50 under 1 s (${s.healthzMs.p50.toFixed(1)} ms)`);
  t.ok(
    s.loopDelayMs.p99 < bound,
    `event-loop delay p99 ${s.loopDelayMs.p99.toFixed(1)} ms (< ${bound}), max ${s.loopDelayMs.max.toFixed(0)} ms`,
  );
});
