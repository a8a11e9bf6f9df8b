/**
 * Attempts on what the installation says about itself under trouble the operator arranges
 * (a stopped broker, a nearly full disk), and the ones that stay in the test suite because they
 * would harm a lab's installation.
 */
import { bearer } from './api.js';
import { poll, skip, verdict, type Attempt } from './attempt.js';

interface HealthBody {
  state?: string;
  problems?: string[];
  outbox_backlog?: number;
}

/** A daemon waits out a grace period (a reconnect) before it calls the broker down: poll this long. */
const BROKER_DOWN_WAIT_MS = 45_000;

const healthMqtt: Attempt = {
  name: 'health-mqtt',
  expects:
    'with the broker down (past the daemon\'s grace) and messages waiting, /api/health is "degraded" and names MQTT (--expect-broker-down)',
  async run(ctx) {
    const tried = 'read /api/health while the operator keeps the broker stopped';
    if (!ctx.expectBrokerDown) return skip(tried, 'stop the broker and pass --expect-broker-down to check');
    // This run's uploads queue messages; the daemon reports the broker once its grace has passed.
    let last: HealthBody = {};
    const started = Date.now();
    const seen = await poll(
      async () => {
        const res = await ctx.target.fetch('/api/health', { headers: bearer(ctx) });
        last = JSON.parse(res.body) as HealthBody;
        const named = (last.problems ?? []).some((p) => /mqtt|broker/i.test(p));
        return last.state === 'degraded' && named && (last.outbox_backlog ?? 0) > 0 ? last : undefined;
      },
      BROKER_DOWN_WAIT_MS,
      1000,
    );
    const waited = ((Date.now() - started) / 1000).toFixed(0);
    return verdict(
      seen !== undefined,
      tried,
      `after ${waited} s: backlog ${last.outbox_backlog}, state ${last.state}, problems: ${(last.problems ?? []).join('; ') || 'none'}`,
    );
  },
};

const readyzDiskGuard: Attempt = {
  name: 'readyz-disk-guard',
  expects:
    '/readyz is 503 while the disk guard refuses images (checked when health reports a low disk, or --expect-disk-low)',
  async run(ctx) {
    const tried = 'compare /api/health and /readyz';
    const res = await ctx.target.fetch('/api/health', { headers: bearer(ctx) });
    const h = JSON.parse(res.body) as HealthBody;
    const low = (h.problems ?? []).some((p) => /disk/i.test(p));
    if (!low && !ctx.expectDiskLow)
      return skip(
        tried,
        'the data disk is not low (the full-disk attack runs in test/reliability/storage.test.ts)',
      );
    const ready = await ctx.target.fetch('/readyz', { headers: bearer(ctx) });
    return verdict(
      low && ready.status === 503,
      tried,
      `health disk problem ${low}; /readyz ${ready.status} ${ready.body.slice(0, 120)}`,
    );
  },
};

/** Destructive or out of reach from a lab's network and capture folder: proven by the test suite. */
function suiteOnly(name: string, expects: string, where: string): Attempt {
  return {
    name,
    expects,
    run: async () => skip(expects, `not run against an installation: ${where}`),
  };
}

export const healthAttempts: Attempt[] = [healthMqtt, readyzDiskGuard];

export const suiteOnlyAttempts: Attempt[] = [
  suiteOnly(
    'sigkill-while-feeding',
    'SIGKILL while images arrive loses and doubles nothing',
    'test/reliability/kill-loop.test.ts, test/daemon/crash.test.ts',
  ),
  suiteOnly(
    'broker-outage',
    'a broker outage loses no message; order and delivery resume',
    'test/daemon/outage.test.ts, test/reliability/broker.test.ts (health: health-mqtt)',
  ),
  suiteOnly(
    'disk-full',
    'a full data disk refuses images with a reason and recovers',
    'test/reliability/storage.test.ts',
  ),
  suiteOnly(
    'corrupt-db',
    'a corrupt database is reported (/readyz 503), never "ready"',
    'test/store/corruption.test.ts, test/daemon/data-dir.test.ts',
  ),
  suiteOnly(
    'worker-model-sha',
    "a restarted inference worker re-checks the model's sha256",
    'test/infer/model-swap.test.ts (replaces the model and kills the worker)',
  ),
  suiteOnly(
    'large-intervals',
    'out-of-range intervals are refused at load (no timer spinning)',
    'test/reliability/config-faults.test.ts, test/config',
  ),
  suiteOnly(
    'classify-long-cmdline',
    '`blastwatch classify` with 300 long paths runs (no SIGSEGV)',
    'test/cli/image-inputs.test.ts (a CLI run, not the daemon)',
  ),
];
