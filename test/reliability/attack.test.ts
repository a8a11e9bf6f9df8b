/**
 * scripts/attack, the lab's own attack run, against the real composed daemon as a lab deploys it:
 * a LAN bind (reached over loopback) with a shared token and a named user, the capture and data
 * folders given, MQTT configured but its broker down. Every attempt must come out as this file
 * says: PASS, SKIP (not applicable here), or FAIL only while listed in PENDING_FIXES.
 */
import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { hashPassword } from '../../src/runtime/password.js';
import { checkTarget } from '../../scripts/attack.d/target.js';
import { freePort, makeDirs, repoRoot, startInProcess } from './harness.js';

// Start-up, the run (about a minute on a loaded 2-core machine) and teardown.
t.setTimeout(300_000);

const TOKEN = 'attack-test-lan-token-0123456789abcdef';
const USER = { name: 'ada', password: 'correct horse battery staple' };

/**
 * Attempts that FAIL against this daemon because their fix is not in it yet. Each must FAIL here
 * (a listed attempt that starts to pass fails this test too, so the list cannot go stale): when a
 * fix is merged, remove its attempt from this list. Empty = every attack holds.
 */
const PENDING_FIXES: string[] = [];

/** Not applicable to this set-up (the disk is not low) or never run against an installation. */
const SKIPPED = [
  'readyz-disk-guard',
  'sigkill-while-feeding',
  'broker-outage',
  'disk-full',
  'corrupt-db',
  'worker-model-sha',
  'large-intervals',
  'classify-long-cmdline',
];

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

function attack(args: string[], timeoutMs = 240_000): Promise<Run> {
  const started = Date.now();
  return new Promise((resolve) => {
    const child = spawn(join(repoRoot, 'scripts/attack'), args, {
      cwd: repoRoot,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, ms: Date.now() - started });
    });
  });
}

t.test('refuses a host that is not this machine unless told it is the owner', async (t) => {
  const r = await attack(['--url', 'http://192.0.2.10:8080', '--token', TOKEN]);
  t.equal(r.code, 2, 'usage error, nothing sent');
  t.match(r.stderr, /refusing to attack 192\.0\.2\.10:8080/);
  for (const url of [
    'http://127.0.0.1:8080',
    'http://localhost:8080/',
    'http://[::1]:8080',
    'http://127.3.2.1',
  ])
    t.equal(checkTarget(url, false).origin, new URL(url).origin, `${url} is this machine`);
  for (const url of [
    'http://127.0.0.1.example.com:8080',
    'http://localhost.example.com',
    'http://10.0.0.5:8080',
    'http://0.0.0.0:8080',
  ])
    t.throws(() => checkTarget(url, false), /refusing to attack/, `${url} refused`);
  t.equal(checkTarget('http://10.0.0.5:8080', true).origin, 'http://10.0.0.5:8080', 'allowed by its owner');
  for (const url of ['ftp://127.0.0.1', 'http://u:p@127.0.0.1', 'http://127.0.0.1/api?x=1', 'not a url'])
    t.throws(() => checkTarget(url, true), /--url/, `${url} is not a server root`);
  const down = await attack(['--url', `http://127.0.0.1:${await freePort()}`, '--token', TOKEN]);
  t.equal(down.code, 2, 'unreachable: a usage error, no attempt run');
  t.match(down.stderr, /cannot reach/);
  const list = await attack(['--list']);
  t.equal(list.code, 0);
  t.match(list.stdout, /^second-daemon\s+a second daemon/m, '--list names each attempt with what it expects');
});

t.test('the attack run against a LAN-style daemon: every attempt as expected', async (t) => {
  const dirs = makeDirs('bw-attack-');
  const port = await freePort();
  const deadBroker = await freePort(); // nothing listens there: the broker is down
  // The dashboard is part of what a lab deploys: its default plugin list, not the harness's none.
  const d = await startInProcess(
    dirs,
    {
      mqttUrl: `mqtt://127.0.0.1:${deadBroker}`,
      httpPort: port,
      extra: {
        http: {
          host: '0.0.0.0',
          auth_token: TOKEN,
          users: [{ name: USER.name, password_hash: await hashPassword(USER.password) }],
        },
      },
    },
    { plugins: undefined },
  );
  t.teardown(async () => {
    await d.stop();
    rmSync(dirs.root, { recursive: true, force: true });
  });

  const r = await attack([
    '--url',
    `http://127.0.0.1:${port}`,
    '--token',
    TOKEN,
    '--user',
    USER.name,
    '--password',
    USER.password,
    '--capture-dir',
    dirs.capture,
    '--data-dir',
    dirs.data,
    '--stability-ms',
    '150',
    '--burst',
    '20',
    '--expect-broker-down',
  ]);
  t.comment(`scripts/attack took ${(r.ms / 1000).toFixed(1)} s\n${r.stdout}${r.stderr}`);

  const verdicts = new Map<string, string>();
  for (const m of r.stdout.matchAll(/^(PASS|FAIL|SKIP) {2}(\S+) {2}.+ -> .*$/gm)) verdicts.set(m[2]!, m[1]!);
  const list = (await attack(['--list'])).stdout
    .split('\n')
    .filter(Boolean)
    .map((l) => l.split(/\s+/)[0]!);
  t.ok(list.length >= 30, `${list.length} attempts listed`);
  t.same([...verdicts.keys()].sort(), [...list].sort(), 'one line per attempt, none missing');
  for (const name of list) {
    const want = PENDING_FIXES.includes(name) ? 'FAIL' : SKIPPED.includes(name) ? 'SKIP' : 'PASS';
    t.equal(
      verdicts.get(name),
      want,
      `${name}: ${want}${PENDING_FIXES.includes(name) ? ' (fix pending)' : ''}`,
    );
  }
  const summary = /^attack: (\d+) passed, (\d+) failed, (\d+) skipped$/m.exec(r.stdout);
  t.ok(summary, 'the summary line');
  t.equal(Number(summary?.[2]), PENDING_FIXES.length, 'failed = the pending fixes');
  t.equal(r.code, PENDING_FIXES.length > 0 ? 1 : 0, 'exit 1 exactly when an attempt failed');
  t.equal((await fetch(`http://127.0.0.1:${port}/healthz`)).status, 200, 'the daemon is alive afterwards');
});
