import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import {
  createCaptureWatcher,
  type CandidateFile,
  type CandidateSink,
  type CaptureWatcher,
  type CaptureWatcherOptions,
} from '../../src/watch/index.js';
import type { Logger } from '../../src/log.js';

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `predicate` (a ref'd timer keeps the test alive) until true or `timeoutMs`, then throws. */
export async function waitFor(what: string, predicate: () => boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

export interface LogLine {
  level: number;
  msg: string;
  [key: string]: unknown;
}

/** Short windows for tests; generous enough for a loaded 2-core machine. */
export const STABILITY_MS = 300;

export interface Harness {
  dir: string;
  candidates: CandidateFile[];
  logs: LogLine[];
  watcher: CaptureWatcher;
  /** Candidates for a path relative to the capture folder. */
  of(relPath: string): CandidateFile[];
  /** When each of those candidates was offered (Date.now()). */
  offeredAt(relPath: string): number[];
  cleanup(): Promise<void>;
}

export async function tempDir(prefix = 'bw-watch-'): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}

export type CreateWatcher = (opts: CaptureWatcherOptions, sink: CandidateSink, log: Logger) => CaptureWatcher;

/**
 * A watcher on `dir` (a fresh temp folder by default) that records candidates and log lines,
 * made by `create` (createCaptureWatcher unless a test needs its own subclass).
 */
export async function harness(
  overrides: Partial<CaptureWatcherOptions> = {},
  dir?: string,
  create: CreateWatcher = createCaptureWatcher,
): Promise<Harness> {
  const base = dir ?? (await tempDir());
  const candidates: CandidateFile[] = [];
  const offered = new Map<CandidateFile, number>();
  const logs: LogLine[] = [];
  const log = pino(
    { level: 'debug' },
    { write: (line: string) => void logs.push(JSON.parse(line) as LogLine) },
  );
  const watcher = create(
    {
      dir: base,
      recursive: true,
      extensions: ['.jpg', '.jpeg', '.png', '.tif', '.tiff', '.bmp'],
      ignore: ['*.tmp', '*.part', '*.crdownload', '~*', 'Thumbs.db'],
      usePolling: false,
      pollIntervalMs: 100,
      stabilityMs: STABILITY_MS,
      // Long by default so a test counts exactly what events and explicit rescans produce.
      rescanIntervalS: 3600,
      dirProbeIntervalMs: 200,
      ...overrides,
    },
    {
      onCandidate: (f) => {
        offered.set(f, Date.now());
        candidates.push(f);
      },
    },
    log,
  );
  return {
    dir: base,
    candidates,
    logs,
    watcher,
    of: (rel) => candidates.filter((c) => c.relPath === rel),
    offeredAt: (rel) => candidates.filter((c) => c.relPath === rel).map((c) => offered.get(c) ?? NaN),
    async cleanup() {
      await watcher.stop();
      await rm(base, { recursive: true, force: true });
    },
  };
}
