/**
 * scripts/attack: the attacks of the security review, run against a lab's own installation.
 * See `scripts/attack --help` and docs/reliability.md ("Attack your own installation").
 */
import { randomBytes } from 'node:crypto';
import { accessSync, constants, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import {
  formatLine,
  runAttempt,
  skip,
  summaryLine,
  type Attempt,
  type AttackContext,
  type Outcome,
} from './attempt.js';
import { fileAttempts, needsCaptureDir } from './files.js';
import { healthAttempts, suiteOnlyAttempts } from './health.js';
import { authAttempts, rateLimitAttempts } from './http-auth.js';
import { browserAttempts } from './http-browser.js';
import { secondDaemon } from './second-daemon.js';
import { checkTarget, REQUEST_TIMEOUT_MS, Target } from './target.js';

const HELP = `Usage: scripts/attack --url http://HOST:PORT --token TOKEN [options]

Runs the attacks of blastwatch's security review against YOUR installation and prints one line
per attempt:  PASS|FAIL|SKIP  <name>  <what was tried> -> <what happened>
then "attack: N passed, M failed, K skipped". Exit 1 when any attempt failed, 2 on a usage error.

  --url URL              the daemon's root (http://127.0.0.1:8080). Only loopback unless
  --i-own-this-host      ...you pass this: the script sends traffic to --url and nowhere else
  --token TOKEN          http.auth_token (or env BLASTWATCH_ATTACK_TOKEN)
  --user NAME --password PASSWORD
                         a dashboard user (env BLASTWATCH_ATTACK_PASSWORD); else the token logs in
  --capture-dir DIR      the daemon's capture folder, writable: adds the file-system attempts
                         (hostile files, slow writers, symlink/hard-link swaps, overwrite, burst)
  --data-dir DIR         the daemon's data folder: adds "second-daemon" (starts this checkout's
                         daemon on it with an empty capture folder; it must refuse to start)
  --stability-ms MS      the installation's capture.stability_ms (default 1500); the slow
                         writers pause 700 ms longer, which must stay inside the retry window
                         (capture.retry_backoff_ms, doubling, max_attempts): a writer that
                         stalls longer than that is quarantined by design
  --burst N              images the burst attempt writes at once (default 50; 0 skips it)
  --expect-broker-down   you stopped the MQTT broker: health must report it
  --expect-disk-low      you filled the data disk below data.min_free_disk_mb: /readyz must be 503
  --only a,b,c           run only these attempts
  --list                 list the attempts and the behaviour each expects, run nothing

What it changes on the installation: uploads a few small images named "<run id>-…" (one carries
markup in its name), adds one review to its own upload, writes files named "<run id>-…" into the
capture folder (removed at the end; their results stay, findable by the run id). The rate-limit
attempts run last and may leave this machine rate-limited for the installation's window (1 min).
Run it when the microscope is idle; every request has an ${REQUEST_TIMEOUT_MS / 1000} s timeout, the run takes about a minute.

NOT run against an installation (they would harm it; the test suite runs them): SIGKILL while
feeding images, a broker outage, a full disk, a corrupt database, replacing the model under a
restarted worker, out-of-range config intervals, classify with a long command line. They are
listed as SKIP with the test that covers each.
`;

/** Past this the run stops, whatever hangs: the attempts are bounded, this bounds the bounds. */
const WHOLE_RUN_LIMIT_MS = 180_000;

interface Options {
  ctx: AttackContext;
  only: Set<string> | null;
}

function writableDir(dir: string): string | null {
  try {
    if (!statSync(dir).isDirectory()) return null;
    accessSync(dir, constants.W_OK);
    const probe = join(dir, `.blastwatch-attack-probe-${process.pid}`);
    writeFileSync(probe, '');
    unlinkSync(probe);
    return dir;
  } catch {
    return null;
  }
}

function parse(argv: string[]): Options | 'help' | 'list' {
  const { values } = parseArgs({
    args: argv,
    options: {
      url: { type: 'string' },
      token: { type: 'string' },
      user: { type: 'string' },
      password: { type: 'string' },
      'capture-dir': { type: 'string' },
      'data-dir': { type: 'string' },
      'stability-ms': { type: 'string', default: '1500' },
      burst: { type: 'string', default: '50' },
      'expect-broker-down': { type: 'boolean', default: false },
      'expect-disk-low': { type: 'boolean', default: false },
      'i-own-this-host': { type: 'boolean', default: false },
      only: { type: 'string' },
      list: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) return 'help';
  if (values.list) return 'list';
  if (!values.url) throw new Error('--url is required');
  const token = values.token ?? process.env.BLASTWATCH_ATTACK_TOKEN;
  if (!token) throw new Error('--token is required (or BLASTWATCH_ATTACK_TOKEN)');
  const password = values.password ?? process.env.BLASTWATCH_ATTACK_PASSWORD ?? null;
  if (values.user && !password) throw new Error('--user needs --password (or BLASTWATCH_ATTACK_PASSWORD)');
  const num = (name: string, v: string, max: number) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0 || n > max) throw new Error(`--${name} must be an integer 0..${max}`);
    return n;
  };
  // The wrapper changes to the repository root; relative folders are the caller's.
  const here = process.env.BLASTWATCH_ATTACK_CWD ?? process.cwd();
  const captureArg = values['capture-dir'] ? resolve(here, values['capture-dir']) : null;
  const captureDir = captureArg ? writableDir(captureArg) : null;
  if (values['capture-dir'] && !captureDir)
    process.stderr.write(
      `attack: ${values['capture-dir']} is not a writable folder: capture attempts skipped\n`,
    );
  return {
    ctx: {
      target: new Target(checkTarget(values.url, values['i-own-this-host'])),
      creds: { token, user: values.user ?? null, password },
      captureDir,
      dataDir: values['data-dir'] ? resolve(here, values['data-dir']) : null,
      expectBrokerDown: values['expect-broker-down'],
      expectDiskLow: values['expect-disk-low'],
      burst: num('burst', values.burst, 2000),
      stabilityMs: num('stability-ms', values['stability-ms'], 600_000),
      runId: `bwattack-${Date.now().toString(36)}-${randomBytes(2).toString('hex')}`,
      created: new Set(),
      loopbackOnly: false,
    },
    only: values.only ? new Set(values.only.split(',').map((s) => s.trim())) : null,
  };
}

/**
 * Attempts that log in or write with credentials: on a loopback-only installation there is no
 * login to attack (and writes need the page's session), so they SKIP there.
 */
const LOGIN_ATTEMPTS = new Set([
  'lowercase-bearer',
  'xss-file-name',
  'xss-review',
  'csrf-review',
  'csrf-upload-logout',
  'oversized-upload',
  'truncated-upload',
  'upload-not-image',
  'logout-cookie-samesite',
  'logout-ends-live-feed',
  'login-success-not-limited',
  'login-brute-force',
]);

function needsLogin(a: Attempt): Attempt {
  if (!LOGIN_ATTEMPTS.has(a.name)) return a;
  return {
    ...a,
    run: (ctx) =>
      ctx.loopbackOnly
        ? Promise.resolve(skip(a.expects, 'the installation listens on loopback only (no login by design)'))
        : a.run(ctx),
  };
}

/** The attempts in phases: HTTP and capture folder side by side, then the rate limits. */
function phases(): { http: Attempt[]; files: Attempt[]; last: Attempt[]; suite: Attempt[] } {
  return {
    http: [...authAttempts, ...browserAttempts(), ...healthAttempts].map(needsLogin),
    files: fileAttempts.map(needsCaptureDir),
    last: [...rateLimitAttempts.map(needsLogin), secondDaemon],
    suite: suiteOnlyAttempts,
  };
}

/** Why the run cannot start (unreachable, wrong token, still rate-limited), or null. */
async function preflight(ctx: AttackContext): Promise<string | null> {
  try {
    await ctx.target.fetch('/healthz');
  } catch (err) {
    return `cannot reach ${ctx.target.base.origin}: ${(err as Error).message}`;
  }
  const res = await ctx.target.fetch('/api/results?limit=1', {
    headers: { authorization: `Bearer ${ctx.creds.token}` },
  });
  if (res.status === 429)
    return 'this machine is still rate-limited (an earlier run?): wait a minute and retry';
  if (res.status === 401) return 'the installation refuses --token: check http.auth_token';
  if (res.status !== 200) return `GET /api/results with the token answered ${res.status}`;
  const session = await ctx.target.fetch('/api/dashboard/session');
  ctx.loopbackOnly =
    session.status === 200 &&
    (JSON.parse(session.body) as { loginRequired?: boolean }).loginRequired === false;
  return null;
}

/** Prints outcomes in the declared order as soon as each one and all before it are known. */
class OrderedPrinter {
  private readonly outcomes: Array<Outcome | undefined>;
  private next = 0;
  constructor(private readonly attempts: Attempt[]) {
    this.outcomes = attempts.map(() => undefined);
  }
  set(a: Attempt, o: Outcome): void {
    this.outcomes[this.attempts.indexOf(a)] = o;
    while (this.next < this.attempts.length && this.outcomes[this.next]) {
      process.stdout.write(`${formatLine(this.attempts[this.next]!.name, this.outcomes[this.next]!)}\n`);
      this.next++;
    }
  }
  all(): Outcome[] {
    return this.outcomes.filter((o): o is Outcome => o !== undefined);
  }
}

async function main(): Promise<number> {
  let opts: ReturnType<typeof parse>;
  try {
    opts = parse(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`attack: ${(err as Error).message}\n\n${HELP}`);
    return 2;
  }
  const p = phases();
  const every = [...p.http, ...p.files, ...p.last, ...p.suite];
  if (opts === 'help') {
    process.stdout.write(HELP);
    return 0;
  }
  if (opts === 'list') {
    for (const a of every) process.stdout.write(`${a.name.padEnd(26)} ${a.expects}\n`);
    return 0;
  }
  const { ctx, only } = opts;
  const pick = (list: Attempt[]) => (only ? list.filter((a) => only.has(a.name)) : list);
  const unknown = only ? [...only].filter((n) => !every.some((a) => a.name === n)) : [];
  if (unknown.length > 0) {
    process.stderr.write(`attack: unknown attempt(s): ${unknown.join(', ')} (see --list)\n`);
    return 2;
  }
  const chosen = { http: pick(p.http), files: pick(p.files), last: pick(p.last), suite: pick(p.suite) };
  const printer = new OrderedPrinter([...chosen.http, ...chosen.files, ...chosen.last, ...chosen.suite]);
  process.stdout.write(
    `attack: ${ctx.target.base.origin}, run id ${ctx.runId}, capture folder ${ctx.captureDir ?? '(none)'}\n`,
  );
  const cannot = await preflight(ctx);
  if (cannot) {
    process.stderr.write(`attack: ${cannot}\n`);
    return 2;
  }
  const started = Date.now();
  const watchdog = setTimeout(() => {
    process.stdout.write(
      `attack: aborted after ${WHOLE_RUN_LIMIT_MS / 1000} s\n${summaryLine(printer.all())}\n`,
    );
    process.exit(1);
  }, WHOLE_RUN_LIMIT_MS);
  watchdog.unref();
  const lane = async (list: Attempt[]) => {
    for (const a of list) printer.set(a, await runAttempt(a, ctx));
  };
  try {
    // The capture folder and the HTTP attempts side by side: the daemon classifies while it is attacked.
    await Promise.all([lane(chosen.http), lane(chosen.files)]);
    // Rate limits last (they may lock this client out for the window); the second daemon beside them.
    await Promise.all([
      lane(chosen.last.filter((a) => a !== secondDaemon)),
      lane(chosen.last.filter((a) => a === secondDaemon)),
    ]);
    await lane(chosen.suite);
  } finally {
    for (const path of ctx.created) rmSync(path, { recursive: true, force: true });
  }
  const outcomes = printer.all();
  process.stdout.write(
    `attack: ${((Date.now() - started) / 1000).toFixed(1)} s, ${ctx.target.sent} requests\n`,
  );
  process.stdout.write(`${summaryLine(outcomes)}\n`);
  return outcomes.some((o) => o.verdict === 'FAIL') ? 1 : 0;
}

// Exit as soon as the summary is out: keep-alive sockets to the installation would hold the
// process open for the server's keep-alive timeout.
process.exit(await main());
