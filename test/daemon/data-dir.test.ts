/**
 * One daemon per data folder, and a damaged database stops a daemon at start with one line.
 * Real daemons (child processes) on real folders.
 */
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { freePort, makeDirs, sleep, startDaemon, writeConfig } from './helpers.js';

/** The exit code, or 'still running' after `ms` (a daemon that should have refused to start). */
const exitWithin = (d: { exited: Promise<number | string> }, ms = 60_000) =>
  Promise.race([d.exited, sleep(ms).then(() => 'still running')]);

t.test(
  'a second daemon on the same data folder is refused; after SIGKILL the next start works',
  async (t) => {
    const dirs = makeDirs('bw-lock-');
    t.teardown(() => rmSync(dirs.root, { recursive: true, force: true }));
    const port1 = await freePort();
    writeConfig(dirs, { mqttUrl: null, httpPort: port1 });
    const first = startDaemon(dirs.config, port1);
    t.teardown(() => first.child.kill('SIGKILL'));
    await first.ready();

    // Same data folder, another port: it must not get as far as serving.
    const port2 = await freePort();
    writeConfig(dirs, { mqttUrl: null, httpPort: port2 });
    const second = startDaemon(dirs.config, port2);
    t.teardown(() => second.child.kill('SIGKILL'));
    const code = await exitWithin(second);
    t.ok(code !== 0 && code !== 'still running', `the second daemon exits non-zero (${code})`);
    const lines = second
      .output()
      .split('\n')
      .filter((l) => /in use by another blastwatch/.test(l));
    t.equal(lines.length, 1, second.output());
    t.match(lines[0], `data folder ${dirs.data} is in use by another blastwatch (pid ${first.child.pid})`);
    t.notMatch(second.output(), /\n\s+at /, 'no stack trace');
    t.equal((await fetch(`http://127.0.0.1:${port1}/readyz`)).status, 200, 'the first one runs on');

    // The kernel drops the lock with the process: no stale lock after a SIGKILL.
    first.child.kill('SIGKILL');
    await first.exited;
    const third = startDaemon(dirs.config, port2);
    t.teardown(() => third.child.kill('SIGKILL'));
    await third.ready();
    third.child.kill('SIGTERM');
    t.equal(await third.exited, 0, 'a clean stop');
  },
);

t.test('a damaged database file: the daemon exits non-zero with one line saying what to do', async (t) => {
  const dirs = makeDirs('bw-corrupt-db-');
  t.teardown(() => rmSync(dirs.root, { recursive: true, force: true }));
  const port = await freePort();
  writeConfig(dirs, { mqttUrl: null, httpPort: port });
  const dbPath = join(dirs.data, 'blastwatch.db');
  writeFileSync(dbPath, Buffer.alloc(64 * 1024, 'not a database '));
  const d = startDaemon(dirs.config, port);
  t.teardown(() => d.child.kill('SIGKILL'));
  const code = await exitWithin(d);
  t.ok(code !== 0 && code !== 'still running', `exits non-zero (${code})`);
  const lines = d
    .output()
    .split('\n')
    .filter((l) => l.includes(dbPath));
  t.equal(lines.length, 1, d.output());
  t.match(
    lines[0],
    /is damaged \(file is not a database\): stop blastwatch, move .* aside, then restore a backup \(blastwatch restore\) or start empty/,
  );
  t.notMatch(d.output(), /internal error|\n\s+at /, 'no stack trace, no "internal error"');
});
