/** What one attempt is, what it reports, and how the run prints it. */
import type { Target } from './target.js';

export type Verdict = 'PASS' | 'FAIL' | 'SKIP';

export interface Outcome {
  verdict: Verdict;
  /** What was tried (one short clause). */
  tried: string;
  /** What happened (the evidence: statuses, counts, bytes). */
  happened: string;
}

export interface Credentials {
  token: string;
  user: string | null;
  password: string | null;
}

export interface AttackContext {
  target: Target;
  creds: Credentials;
  /** The installation listens on loopback only: no login by design (found by the preflight). */
  loopbackOnly: boolean;
  /** The capture folder when given and writable, else null (file-system attempts SKIP). */
  captureDir: string | null;
  /** The daemon's data folder when given (the second-daemon attempt), else null. */
  dataDir: string | null;
  /** The operator stopped the broker on purpose: health must say so. */
  expectBrokerDown: boolean;
  /** The operator filled the data disk below min_free_disk_mb on purpose. */
  expectDiskLow: boolean;
  /** Files the burst attempt writes at once. */
  burst: number;
  /** The capture.stability_ms of the installation (slow writers pause longer than this). */
  stabilityMs: number;
  /** Prefix of every file and upload this run creates (finds its own results, cleans up). */
  runId: string;
  /** Every file and temporary folder the run creates (removed at the end). */
  created: Set<string>;
}

export interface Attempt {
  name: string;
  /** The behaviour that counts as holding (printed by --list and in docs/reliability.md). */
  expects: string;
  run(ctx: AttackContext): Promise<Outcome>;
}

export const pass = (tried: string, happened: string): Outcome => ({ verdict: 'PASS', tried, happened });
export const fail = (tried: string, happened: string): Outcome => ({ verdict: 'FAIL', tried, happened });
export const skip = (tried: string, happened: string): Outcome => ({ verdict: 'SKIP', tried, happened });
/** PASS when `ok`, else FAIL, with the same clauses. */
export const verdict = (ok: boolean, tried: string, happened: string): Outcome =>
  ok ? pass(tried, happened) : fail(tried, happened);

/** One printed line: `PASS  name  tried -> happened`, without line breaks from odd file names. */
export function formatLine(name: string, o: Outcome): string {
  const flat = (s: string) => s.replace(/[\r\n\t]+/g, ' ').trim();
  return `${o.verdict}  ${name}  ${flat(o.tried)} -> ${flat(o.happened)}`;
}

/** Runs one attempt; an exception is a FAIL with its message (never a crash of the whole run). */
export async function runAttempt(a: Attempt, ctx: AttackContext): Promise<Outcome> {
  try {
    return await a.run(ctx);
  } catch (err) {
    const e = err as Error;
    const why = e.name === 'TimeoutError' || e.name === 'AbortError' ? `timed out (${e.message})` : e.message;
    return fail(a.expects, `error: ${why}`);
  }
}

export function summaryLine(outcomes: Outcome[]): string {
  const n = (v: Verdict) => outcomes.filter((o) => o.verdict === v).length;
  return `attack: ${n('PASS')} passed, ${n('FAIL')} failed, ${n('SKIP')} skipped`;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls `fn` until it returns a value other than undefined, or gives up after `ms`. */
export async function poll<T>(
  fn: () => Promise<T | undefined>,
  ms: number,
  everyMs = 250,
): Promise<T | undefined> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() + everyMs > end) return undefined;
    await sleep(everyMs);
  }
}
