/**
 * A second daemon on the installation's data folder (only with --data-dir): it must refuse to
 * start. It is started with an empty capture folder of its own, MQTT off, retention off and HTTP
 * on a loopback port, and stopped (SIGTERM) at once if it does start, so that even an installation
 * without the guard only sees it open the database for a few seconds.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { cliEntry, repoRoot, testModelDir } from '../../test/daemon/helpers.js';
import { fail, skip, sleep, verdict, type Attempt } from './attempt.js';

/** Start-up of a refusing daemon takes a few seconds through tsx; a running one is stopped then. */
const REFUSAL_WITHIN_MS = 20_000;

const REFUSAL = /lock|already|another (daemon|instance|process|blastwatch)|in use/i;

export const secondDaemon: Attempt = {
  name: 'second-daemon',
  expects:
    'a second daemon on the same data folder refuses to start (exit ≠ 0, names the other daemon or the lock)',
  async run(ctx) {
    const tried = `start a second daemon on ${ctx.dataDir ?? '--data-dir'}`;
    if (!ctx.dataDir) return skip(tried, 'needs --data-dir (run on the daemon’s host)');
    const root = mkdtempSync(join(tmpdir(), 'bw-attack-second-'));
    const config = join(root, 'config.yaml');
    writeFileSync(
      config,
      stringify({
        device_id: `attack-second-${ctx.runId}`,
        log: { level: 'info', pretty: false },
        capture: { dir: join(root, 'captures-empty') },
        data: {
          dir: ctx.dataDir,
          retention_days: 0,
          retention_max_rows: 0,
          maintenance_interval_s: 86_400,
          min_free_disk_mb: 0,
        },
        model: { dir: testModelDir, threads: 1 },
        mqtt: { url: null },
        http: { host: '127.0.0.1', port: 0, auth_token: null, users: [] },
      }),
    );
    // Without the caller's BLASTWATCH_* variables: they would override this config (the real capture folder).
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('BLASTWATCH_')));
    const child = spawn(process.execPath, ['--import', 'tsx', cliEntry, 'run', '--config', config], {
      cwd: repoRoot,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out = (out + d).slice(-20_000)));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (out = (out + d).slice(-20_000)));
    const exited = new Promise<number | string>((resolve) =>
      child.on('exit', (code, signal) => resolve(code ?? signal ?? -1)),
    );
    try {
      const code = await Promise.race([exited, sleep(REFUSAL_WITHIN_MS).then(() => null)]);
      const last = out.trim().split('\n').filter(Boolean).at(-1)?.slice(0, 160) ?? '';
      if (code === null)
        return fail(
          tried,
          `still running after ${REFUSAL_WITHIN_MS / 1000} s: two daemons share the data folder`,
        );
      return verdict(code !== 0 && REFUSAL.test(out), tried, `exit ${code}: ${last}`);
    } finally {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        await Promise.race([exited, sleep(10_000)]);
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      }
      rmSync(root, { recursive: true, force: true });
    }
  },
};
