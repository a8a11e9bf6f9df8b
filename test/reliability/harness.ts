/**
 * Shared pieces for the reliability suite. The daemon harness (broker, subscriber, child daemon,
 * config writer) comes from test/daemon/helpers.ts; this adds what the fault tests need on top:
 * the scale switch, an in-process app with an optionally slowed classifier, database readers that
 * work while the daemon runs (or after it was killed), and RSS/fd probes.
 */
import { openSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { pino, type Logger } from 'pino';
import { createApp, type App, type AppDeps } from '../../src/app.js';
import { loadConfig } from '../../src/config/load.js';
import { createClassifier } from '../../src/infer/index.js';
import type { ClassifierLike } from '../../src/domain/ports.js';
import { tinyModelDir, writeConfig, type TestDirs } from '../daemon/helpers.js';

export * from '../daemon/helpers.js';

export const log = pino({ level: process.env.BW_TEST_LOG ?? 'silent' });

/** BLASTWATCH_RELIABILITY_FULL=1 runs every item at full scale (documented, not in CI). */
export const FULL = process.env.BLASTWATCH_RELIABILITY_FULL === '1';

/** `ci` in .ci/run, `full` with BLASTWATCH_RELIABILITY_FULL=1; an explicit env number wins. */
export function scale(envName: string, ci: number, full: number): number {
  const v = Number(process.env[envName]);
  return Number.isFinite(v) && v > 0 ? v : FULL ? full : ci;
}

export const PREFIX = 'blastwatch/e2e-scope';

/** The tiny model's classifier, each call delayed by `delayMs` (inference slower than the feed). */
export async function slowClassifier(
  delayMs: number,
): Promise<ClassifierLike & { close(): Promise<void>; calls: number }> {
  const real = await createClassifier({
    modelDir: tinyModelDir,
    executionProviders: ['cpu'],
    threads: 1,
    log,
    threshold: null,
    uncertainBand: null,
  });
  const wrapped = {
    info: real.info,
    calls: 0,
    async classify(...args: Parameters<ClassifierLike['classify']>) {
      wrapped.calls++;
      // Fault injection to prove the soak can fail: BW_INJECT_FD_LEAK=1 leaks one fd per call.
      if (process.env.BW_INJECT_FD_LEAK === '1') openSync('/dev/null', 'r');
      // A timer, not a busy wait: the real model runs in a worker and does not block the loop either.
      await new Promise((r) => setTimeout(r, delayMs));
      return real.classify(...args);
    },
    health: () => real.health(),
    // app.stop() closes it; a test's teardown may close it again.
    closed: false,
    async close() {
      if (wrapped.closed) return;
      wrapped.closed = true;
      await real.close();
    },
  };
  return wrapped;
}

export interface InProcess {
  app: App;
  stop(): Promise<void>;
}

/** Writes the config, loads it through the real loader and starts the real composition root. */
export async function startInProcess(
  dirs: TestDirs,
  over: Parameters<typeof writeConfig>[1],
  deps: AppDeps = {},
  logger: Logger = log,
): Promise<InProcess> {
  writeConfig(dirs, over);
  const { config } = loadConfig(dirs.config, {});
  config.mqtt.reconnect_ms = 200;
  config.capture.dir_probe_interval_ms = 200;
  const app = await createApp(config, logger, { plugins: [], ...deps });
  await app.start();
  let stopped = false;
  return {
    app,
    async stop() {
      if (stopped) return;
      stopped = true;
      await app.stop();
    },
  };
}

export interface ResultRow {
  id: number;
  file: string;
  sha256: string;
  status: string;
  flag: number | null;
  model_version: string | null;
  error_kind: string | null;
  error: string | null;
}

/** Every result row, read from the file by a separate connection (works after a SIGKILL too). */
/** Classified: screened (`done`) or refused by the out-of-domain gate: either way processed once. */
export function isClassified(status: string): boolean {
  return status === 'done' || status === 'out_of_domain';
}

export function readResults(dataDir: string): ResultRow[] {
  try {
    const db = new Database(join(dataDir, 'blastwatch.db'), { readonly: true, fileMustExist: true });
    try {
      db.pragma('busy_timeout = 5000');
      return db
        .prepare(
          'SELECT id, file, sha256, status, flag, model_version, error_kind, error FROM results ORDER BY id',
        )
        .all() as ResultRow[];
    } finally {
      db.close();
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'SQLITE_CANTOPEN') return [];
    throw err;
  }
}

export function integrityCheck(dataDir: string): string {
  const db = new Database(join(dataDir, 'blastwatch.db'), { fileMustExist: true });
  try {
    db.pragma('busy_timeout = 5000');
    return db.pragma('integrity_check', { simple: true }) as string;
  } finally {
    db.close();
  }
}

/** sha256 values that have more than one classified row (`done` or `out_of_domain`): must always be empty. */
export function duplicateDone(rows: ResultRow[]): string[] {
  const seen = new Map<string, number>();
  for (const r of rows) if (isClassified(r.status)) seen.set(r.sha256, (seen.get(r.sha256) ?? 0) + 1);
  return [...seen].filter(([, n]) => n > 1).map(([s]) => s);
}

/** Resident set size of a process in bytes (VmRSS), and its peak (VmHWM). */
export function rssOf(pid: number | 'self' = 'self'): { rss: number; peak: number } {
  const text = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? 0) * 1024;
  return { rss: kb('VmRSS'), peak: kb('VmHWM') };
}

export function openFds(pid: number | 'self' = 'self'): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

export function fileSize(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
}

export const MB = 1024 * 1024;

/** A logger that keeps every record (level >= info) for assertions on what the daemon said. */
export function capturingLogger(): { logger: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const logger = pino(
    { level: 'info' },
    {
      write(s: string) {
        lines.push(JSON.parse(s) as Record<string, unknown>);
      },
    },
  );
  return { logger, lines };
}
