/**
 * The soak run shared by test/reliability/soak.test.ts (bounded, CI) and scripts/soak.ts (the
 * documented hour): the real composed daemon in this process, an aedes broker, a feeder at a
 * fixed rate, inference slowed by a wrapper classifier, and a sampler once a second for
 * event-loop delay, RSS, open file descriptors, WAL size and /healthz latency.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  fileSize,
  freePort,
  jpegVariant,
  makeDirs,
  MB,
  openFds,
  percentile,
  PREFIX,
  readResults,
  rssOf,
  sampleImages,
  sleep,
  slowClassifier,
  startBroker,
  startInProcess,
  subscribe,
  until,
  isClassified,
} from './harness.js';

export interface SoakOptions {
  durationS: number;
  /** Images dropped per second. */
  rate: number;
  /** Added to every classify() call. */
  inferDelayMs: number;
  /** Progress lines (the script prints them; the test keeps quiet). */
  progress?: (line: string) => void;
}

export interface Sample {
  t: number;
  rssMb: number;
  fds: number;
  walMb: number;
  healthzMs: number;
  loopP99Ms: number;
  loopMaxMs: number;
  queue: number;
  done: number;
}

export interface SoakReport {
  options: SoakOptions;
  fed: number;
  done: number;
  distinct: number;
  notDone: number;
  alertsExpected: number;
  alertsReceived: number;
  samples: Sample[];
  summary: {
    rssMb: { warm: number; end: number; max: number };
    fds: { warm: number; end: number; max: number };
    walMb: { max: number; end: number };
    healthzMs: { p50: number; p99: number; max: number };
    loopDelayMs: { p99: number; max: number };
  };
}

const median = (v: number[]) => percentile(v, 50);

export async function runSoak(opts: SoakOptions): Promise<SoakReport> {
  const say = opts.progress ?? (() => undefined);
  const dirs = makeDirs('bw-soak-');
  const broker = await startBroker();
  const sub = await subscribe(broker.url, PREFIX, 'soak-sub');
  const classifier = await slowClassifier(opts.inferDelayMs);
  const d = await startInProcess(
    dirs,
    {
      mqttUrl: broker.url,
      httpPort: await freePort(),
      extra: {
        // Retention on so the database does the delete work it does in the field; maintenance
        // (retention + checkpoint) often enough to show up within a short run.
        data: { maintenance_interval_s: 10, retention_max_rows: 100_000 },
        capture: { rescan_interval_s: 30 },
      },
    },
    { classifier },
  );
  const wal = join(dirs.data, 'blastwatch.db-wal');
  const samples: Sample[] = [];
  const loop = monitorEventLoopDelay({ resolution: 10 });
  loop.enable();
  const images = sampleImages().map((p) => readFileSync(p));
  let fed = 0;
  const start = Date.now();
  const end = start + opts.durationS * 1000;
  try {
    const feeder = (async () => {
      while (Date.now() < end) {
        const due = Math.floor(((Date.now() - start) / 1000) * opts.rate);
        while (fed < due) {
          const name = `s-${String(fed).padStart(6, '0')}.jpg`;
          writeFileSync(
            join(dirs.capture, `${name}.part`),
            jpegVariant(images[fed % images.length]!, `soak-${fed}`),
          );
          renameSync(join(dirs.capture, `${name}.part`), join(dirs.capture, name));
          fed++;
        }
        await sleep(Math.max(20, Math.round(1000 / opts.rate / 2)));
      }
    })();
    const sampler = (async () => {
      while (Date.now() < end) {
        await sleep(1000);
        const t0 = performance.now();
        const res = await fetch(`${d.app.url}/healthz`);
        await res.arrayBuffer();
        const healthzMs = performance.now() - t0;
        if (res.status !== 200) throw new Error(`/healthz answered ${res.status}`);
        const s: Sample = {
          t: Math.round((Date.now() - start) / 1000),
          rssMb: rssOf().rss / MB,
          fds: openFds(),
          walMb: fileSize(wal) / MB,
          healthzMs,
          loopP99Ms: loop.percentile(99) / 1e6,
          loopMaxMs: loop.max / 1e6,
          queue: d.app.pipeline.queueDepth,
          done: d.app.store.results.counts().done,
        };
        loop.reset();
        samples.push(s);
        if (s.t % 60 === 0 || s.t <= 1)
          say(
            `t=${s.t}s fed=${fed} done=${s.done} queue=${s.queue} rss=${s.rssMb.toFixed(0)}MB fds=${s.fds} ` +
              `wal=${s.walMb.toFixed(2)}MB healthz=${s.healthzMs.toFixed(1)}ms loop p99=${s.loopP99Ms.toFixed(1)}ms`,
          );
      }
    })();
    await Promise.all([feeder, sampler]);
    await until(() => d.app.store.results.counts().done >= fed, 300_000, 'soak backlog drained', 200);
    const rows = readResults(dirs.data);
    const flagged = rows.filter((r) => r.flag === 1);
    const { eventId } = await import('../../src/publish/payloads.js');
    const { eventIds } = await import('./harness.js');
    const expectedAlerts = flagged.map((r) => eventId(r.sha256, r.model_version!, 'alert'));
    await sub
      .waitFor((m) => expectedAlerts.every((id) => eventIds(m, 'alert').has(id)), 60_000, 'soak alerts')
      .catch(() => undefined);
    const gotAlerts = eventIds(sub.messages, 'alert');

    // "Warm" = the median over the second quarter of the run (start-up allocations are done);
    // "end" = the median over the last quarter. Growth between them is what a leak shows as.
    const q = Math.max(1, Math.floor(samples.length / 4));
    const warm = samples.slice(q, 2 * q);
    const last = samples.slice(-q);
    const hz = samples.map((s) => s.healthzMs);
    return {
      options: { ...opts, progress: undefined },
      fed,
      done: rows.filter((r) => isClassified(r.status)).length,
      distinct: new Set(rows.map((r) => r.sha256)).size,
      notDone: rows.filter((r) => !isClassified(r.status)).length,
      alertsExpected: expectedAlerts.length,
      alertsReceived: expectedAlerts.filter((id) => gotAlerts.has(id)).length,
      samples,
      summary: {
        rssMb: {
          warm: median(warm.map((s) => s.rssMb)),
          end: median(last.map((s) => s.rssMb)),
          max: Math.max(...samples.map((s) => s.rssMb)),
        },
        fds: {
          warm: median(warm.map((s) => s.fds)),
          end: median(last.map((s) => s.fds)),
          max: Math.max(...samples.map((s) => s.fds)),
        },
        walMb: { max: Math.max(...samples.map((s) => s.walMb)), end: samples.at(-1)?.walMb ?? 0 },
        healthzMs: { p50: percentile(hz, 50), p99: percentile(hz, 99), max: Math.max(...hz) },
        loopDelayMs: {
          p99: percentile(
            samples.map((s) => s.loopP99Ms),
            99,
          ),
          max: Math.max(...samples.map((s) => s.loopMaxMs)),
        },
      },
    };
  } finally {
    loop.disable();
    await d.stop();
    await classifier.close();
    await sub.close();
    await broker.close();
    rmSync(dirs.root, { recursive: true, force: true });
  }
}
