// The documented long soak (reliability item 10): the real composed daemon, an aedes broker, one
// image per second, inference slowed by 800 ms, for an hour; samples event-loop delay, RSS, open
// fds, WAL size and /healthz latency once a second and checks they stay flat.
//
//   node --import tsx scripts/soak.ts [--duration 3600] [--rate 1] [--infer-delay 800] [--out var/reliability]
//
// Writes <out>/soak-<timestamp>.json (every sample) and prints a summary; exits 1 when a bound
// is broken (fds +20, RSS +150 MB after warm-up, WAL >= 64 MB, /healthz p99 >= 200 ms, a lost
// image or alert). The bounded CI version is test/reliability/soak.test.ts.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { runSoak } from '../test/reliability/soak-core.js';

const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '3600' },
    rate: { type: 'string', default: '1' },
    'infer-delay': { type: 'string', default: '800' },
    out: { type: 'string', default: 'var/reliability' },
    'healthz-p99-ms': { type: 'string', default: '200' },
  },
});
const opts = {
  durationS: Number(values.duration),
  rate: Number(values.rate),
  inferDelayMs: Number(values['infer-delay']),
  progress: (l: string) => console.log(`${new Date().toISOString()} ${l}`),
};
console.log(
  `soak: ${opts.durationS} s at ${opts.rate} image/s, +${opts.inferDelayMs} ms per inference; node ${process.version}`,
);
const r = await runSoak(opts);
mkdirSync(values.out!, { recursive: true });
const file = join(values.out!, `soak-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
writeFileSync(file, JSON.stringify(r, null, 1));
const s = r.summary;
const checks: [string, boolean][] = [
  [
    `images: fed ${r.fed}, done ${r.done}, distinct ${r.distinct}, not done ${r.notDone}`,
    r.done === r.fed && r.distinct === r.fed && r.notDone === 0,
  ],
  [`alerts: ${r.alertsReceived}/${r.alertsExpected} delivered`, r.alertsReceived === r.alertsExpected],
  [`fds: warm ${s.fds.warm} → end ${s.fds.end} (max ${s.fds.max})`, s.fds.end - s.fds.warm <= 20],
  [
    `RSS: warm ${s.rssMb.warm.toFixed(0)} MB → end ${s.rssMb.end.toFixed(0)} MB (max ${s.rssMb.max.toFixed(0)})`,
    s.rssMb.end - s.rssMb.warm < 150,
  ],
  [`WAL: max ${s.walMb.max.toFixed(2)} MB, end ${s.walMb.end.toFixed(2)} MB`, s.walMb.max < 64],
  [
    `/healthz: p50 ${s.healthzMs.p50.toFixed(1)} ms, p99 ${s.healthzMs.p99.toFixed(1)} ms, max ${s.healthzMs.max.toFixed(0)} ms`,
    s.healthzMs.p99 < Number(values['healthz-p99-ms']),
  ],
  [
    `event-loop delay: p99 ${s.loopDelayMs.p99.toFixed(1)} ms, max ${s.loopDelayMs.max.toFixed(0)} ms`,
    s.loopDelayMs.p99 < 200,
  ],
];
for (const [line, ok] of checks) console.log(`${ok ? 'ok  ' : 'FAIL'} ${line}`);
console.log(`samples: ${file}`);
process.exit(checks.every(([, ok]) => ok) ? 0 : 1);
