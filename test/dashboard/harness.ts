/**
 * What the browser tests drive: the REAL daemon (src/app.ts with the tiny test model, temporary
 * capture and data folders, MQTT off) or, for the plugin alone, the in-memory fixture.
 * `drop()` delivers an image the way the microscope does: a file appearing in the capture folder.
 */
import { copyFileSync, mkdirSync, mkdtempSync, renameSync, rmSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { App } from '../../src/app.js';
import type { DomainGateLike } from '../../src/domain/ports.js';
import type { DashboardUser } from '../../src/serve/dashboard/deps.js';
import { startFixtureServer } from './fixture-server.js';

export const TINY_MODEL = fileURLToPath(new URL('../fixtures/tiny-model/', import.meta.url));

export interface DashboardHarness {
  kind: 'daemon' | 'fixture';
  /** The daemon itself (daemon kind only). */
  app?: App;
  url: string;
  /**
   * Puts an image into the capture folder under `name`; resolves when its result is stored.
   * `stampedAt`: the file's modification time, as a writer with its own clock would stamp it
   * (daemon kind; the drop's own millisecond by default).
   */
  drop(samplePath: string, name: string, stampedAt?: Date): Promise<void>;
  close(): Promise<void>;
}

export interface HarnessOptions {
  host?: string;
  token?: string | null;
  users?: DashboardUser[];
  /** The out-of-domain gate (daemon kind only); the model's own by default. */
  gate?: DomainGateLike;
  /** The model folder (daemon kind only); the tiny test model by default. */
  modelDir?: string;
  /** gate.drift_window (daemon kind only); the default config's by default. */
  driftWindow?: number;
  /** A folder the daemon drops signed results into as HL7 files (daemon kind only); none by default. */
  lisFileDir?: string;
}

export async function startDaemonHarness(opts: HarnessOptions = {}): Promise<DashboardHarness> {
  const { loadConfig } = await import('../../src/config/load.js');
  const { createApp } = await import('../../src/app.js');
  const { createLogger } = await import('../../src/log.js');
  const root = mkdtempSync(join(tmpdir(), 'bw-dash-daemon-'));
  const capture = join(root, 'captures');
  const staging = join(root, 'staging');
  mkdirSync(capture);
  mkdirSync(staging);
  const { config } = loadConfig(null, {
    BLASTWATCH_CAPTURE_DIR: capture,
    BLASTWATCH_DATA_DIR: join(root, 'data'),
    BLASTWATCH_MODEL_DIR: opts.modelDir ?? TINY_MODEL,
    BLASTWATCH_HTTP_HOST: opts.host ?? '127.0.0.1',
    BLASTWATCH_HTTP_PORT: '0',
    BLASTWATCH_DEVICE_ID: 'test-scope',
    ...(opts.lisFileDir ? { BLASTWATCH_LIS_FILE_DIR: opts.lisFileDir } : {}),
  });
  config.capture.stability_ms = 150;
  config.capture.rescan_interval_s = 2;
  config.http.auth_token = opts.token ?? null;
  config.http.users = opts.users ?? [];
  config.model.threads = 1;
  if (opts.driftWindow !== undefined) config.gate = { ...config.gate, drift_window: opts.driftWindow };
  const log = createLogger({ level: process.env.BLASTWATCH_TEST_LOG ?? 'warn', pretty: false });
  const app = await createApp(config, log, opts.gate ? { gate: opts.gate } : {});
  await app.start();
  return {
    kind: 'daemon',
    app,
    // Bound to every address for the LAN tests: the browser still dials loopback.
    url: app.url.replace('://0.0.0.0:', '://127.0.0.1:'),
    async drop(samplePath, name, stampedAt) {
      const stored = app.bus.next('result:stored', ({ result }) => basename(result.file) === name);
      // Written elsewhere, then renamed in: the watcher sees a complete file, as from a camera.
      const tmp = join(staging, name);
      mkdirSync(dirname(tmp), { recursive: true });
      copyFileSync(samplePath, tmp);
      // The capture time is the file's mtime, which the kernel stamps from a clock that moves in
      // steps of a few ms: a copy made 1 ms after "Start specimen" can carry an earlier time.
      // Stamped with the drop's own millisecond, as a camera's file is well after any click.
      const now = new Date();
      utimesSync(tmp, now, stampedAt ?? now);
      renameSync(tmp, join(capture, name));
      await stored;
    },
    async close() {
      await app.stop();
      rmSync(root, { recursive: true, force: true });
    },
  };
}

/** The plugin alone over in-memory deps; class and P(B-ALL) follow the sample's folder. */
export async function startFixtureHarness(opts: HarnessOptions = {}): Promise<DashboardHarness> {
  const s = await startFixtureServer({
    loopback: (opts.host ?? '127.0.0.1') === '127.0.0.1',
    token: opts.token ?? null,
    users: opts.users ?? [],
  });
  return {
    kind: 'fixture',
    url: s.url,
    async drop(samplePath, name) {
      const folder = basename(dirname(samplePath));
      const className = ['Benign', 'Early', 'Pre', 'Pro'].includes(folder) ? folder : 'Pre';
      const r = s.deps.addResult({
        file: name,
        className,
        pBall: className === 'Benign' ? 0.1 : 0.92,
        imagePath: samplePath,
      });
      await s.deps.publish(r);
    },
    close: () => s.close(),
  };
}

/** The daemon when it can start here; BLASTWATCH_DASHBOARD_HARNESS=fixture forces the fixture. */
export async function startHarness(opts: HarnessOptions = {}): Promise<DashboardHarness> {
  if (process.env.BLASTWATCH_DASHBOARD_HARNESS === 'fixture') return startFixtureHarness(opts);
  return startDaemonHarness(opts);
}
