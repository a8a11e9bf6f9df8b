/**
 * Memory and idle-CPU measurement of the daemon (not a test: prints figures to report).
 *
 *   npx tsx scripts/soak-memory.ts [--images 3000] [--batch 100] [--idle-s 30] [--model DIR]
 *
 * Starts `blastwatch run` as a child process with temp folders (MQTT off: broker-independent),
 * feeds N distinct images (the sample JPEGs with a unique comment segment: new bytes, same pixels)
 * in batches, samples the child's RSS from /proc after every batch, then measures CPU time used
 * over an idle window (nothing arriving) from /proc/<pid>/stat, and `ps` for comparison.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';
import {
  freePort,
  jpegVariant,
  makeDirs,
  sampleImages,
  startDaemon,
  tinyModelDir,
  until,
  writeConfig,
} from '../test/daemon/helpers.js';

const { values } = parseArgs({
  options: {
    images: { type: 'string', default: '3000' },
    batch: { type: 'string', default: '100' },
    'idle-s': { type: 'string', default: '30' },
    model: { type: 'string' },
    keep: { type: 'boolean' },
  },
});
const total = Number(values.images);
const batch = Number(values.batch);
const idleS = Number(values['idle-s']);

const rssMb = (pid: number): number => {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
};
/** utime + stime of the process (all threads), in clock ticks (100/s on Linux). */
const cpuTicks = (pid: number): number => {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]);
};

const dirs = makeDirs('bw-soak-');
const port = await freePort();
writeConfig(dirs, {
  mqttUrl: null,
  httpPort: port,
  extra: {
    log: {},
    capture: { rescan_interval_s: 60, stability_ms: 500 },
    model: { dir: values.model ?? tinyModelDir },
    pipeline: { queue_max: 256 },
  },
});
// Quieter logs: one line per image at info would dominate the child's own CPU.
writeFileSync(dirs.config, readFileSync(dirs.config, 'utf8').replace('level: info', 'level: warn'));
const daemon = startDaemon(dirs.config, port);
await daemon.ready(120_000);
const pid = daemon.child.pid!;
const done = () => {
  const db = new Database(join(dirs.data, 'blastwatch.db'), { readonly: true });
  try {
    return (db.prepare('SELECT count(*) AS n FROM results').get() as { n: number }).n;
  } finally {
    db.close();
  }
};

const samples = sampleImages().map((p) => readFileSync(p));
const t0 = Date.now();
console.log(
  `daemon pid ${pid}, ${total} images in batches of ${batch}, model ${values.model ?? tinyModelDir}`,
);
console.log(`start: RSS ${rssMb(pid).toFixed(1)} MB`);
const series: { images: number; rss: number }[] = [];
for (let sent = 0; sent < total;) {
  const n = Math.min(batch, total - sent);
  for (let i = 0; i < n; i++) {
    const k = sent + i;
    const sub = join(dirs.capture, `b${String(Math.floor(k / 500)).padStart(3, '0')}`);
    if (k % 500 === 0) execFileSync('mkdir', ['-p', sub]);
    writeFileSync(join(sub, `img-${k}.jpg`), jpegVariant(samples[k % samples.length]!, `soak-${k}`));
  }
  sent += n;
  await until(() => done() >= sent, 600_000, `${sent} processed`, 250);
  const rss = rssMb(pid);
  series.push({ images: sent, rss });
  if (sent % (batch * 5) === 0 || sent === total)
    console.log(
      `${String(sent).padStart(6)} images  RSS ${rss.toFixed(1)} MB  (${((Date.now() - t0) / 1000).toFixed(0)} s)`,
    );
}
const elapsed = (Date.now() - t0) / 1000;
console.log(`throughput: ${(total / elapsed).toFixed(1)} images/s over ${elapsed.toFixed(0)} s`);

// Idle: let the last media writes settle, then measure CPU over the window.
await new Promise((r) => setTimeout(r, 5000));
const c0 = cpuTicks(pid);
const w0 = Date.now();
await new Promise((r) => setTimeout(r, idleS * 1000));
const c1 = cpuTicks(pid);
const idleCpuPct = ((c1 - c0) / 100 / ((Date.now() - w0) / 1000)) * 100;
const ps = execFileSync('ps', ['-o', 'pid,rss,pcpu,etime,cmd', '-p', String(pid)], { encoding: 'utf8' });

const firstThird = series.slice(0, Math.max(1, Math.floor(series.length / 3)));
const lastThird = series.slice(-Math.max(1, Math.floor(series.length / 3)));
const avg = (xs: { rss: number }[]) => xs.reduce((s, x) => s + x.rss, 0) / xs.length;
console.log('\nsummary');
console.log(`  images processed      ${done()}`);
console.log(
  `  RSS min/max           ${Math.min(...series.map((s) => s.rss)).toFixed(1)} / ${Math.max(...series.map((s) => s.rss)).toFixed(1)} MB`,
);
console.log(`  RSS first/last third  ${avg(firstThird).toFixed(1)} / ${avg(lastThird).toFixed(1)} MB (mean)`);
console.log(
  `  idle CPU              ${idleCpuPct.toFixed(2)} % of one core over ${idleS} s (from /proc/${pid}/stat)`,
);
console.log(`  ps:\n${ps.replace(/^/gm, '    ')}`);

daemon.child.kill('SIGTERM');
console.log(`  exit on SIGTERM       ${String(await daemon.exited)}`);
if (!values.keep) rmSync(dirs.root, { recursive: true, force: true });
else console.log(`  kept ${dirs.root}`);
