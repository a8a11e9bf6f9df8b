/** How many failed attempts one client address may make per window before it must wait. */
export interface FailureLimit {
  max: number;
  timeWindowMs: number;
}

interface Window {
  failures: number;
  resetAt: number;
  /** The refusal of this window has been logged (one line per address per window, not a flood). */
  refusalLogged: boolean;
}

/**
 * Counts FAILED attempts (wrong password, wrong token) per key, in fixed windows. Unlike a request
 * rate limit, a success costs nothing: someone who logs in and out all day never locks herself
 * out, while a guesser is stopped after `max` wrong tries until the window ends.
 */
export class FailureLimiter {
  private readonly windows = new Map<string, Window>();

  constructor(
    readonly limit: FailureLimit,
    /** Addresses remembered at most: a flood from many addresses must not grow memory without bound. */
    private readonly maxKeys = 10_000,
  ) {}

  /** Whole seconds until `key` may try again; 0 when it may try now. */
  retryAfterS(key: string, now = Date.now()): number {
    const w = this.windows.get(key);
    if (!w || w.resetAt <= now || w.failures < this.limit.max) return 0;
    return Math.max(1, Math.ceil((w.resetAt - now) / 1000));
  }

  /** Records a failure; returns how many `key` has in the current window. */
  fail(key: string, now = Date.now()): number {
    let w = this.windows.get(key);
    if (!w || w.resetAt <= now) {
      this.makeRoom(now);
      w = { failures: 0, resetAt: now + this.limit.timeWindowMs, refusalLogged: false };
      this.windows.set(key, w);
    }
    return ++w.failures;
  }

  /** True the first time a refusal of `key` is reported in its current window. */
  firstRefusal(key: string): boolean {
    const w = this.windows.get(key);
    if (!w || w.refusalLogged) return false;
    w.refusalLogged = true;
    return true;
  }

  private makeRoom(now: number): void {
    if (this.windows.size < this.maxKeys) return;
    for (const [key, w] of this.windows) if (w.resetAt <= now) this.windows.delete(key);
    // Still full: forget the oldest window (Map keeps insertion order).
    while (this.windows.size >= this.maxKeys) {
      const oldest = this.windows.keys().next().value;
      if (oldest === undefined) break;
      this.windows.delete(oldest);
    }
  }
}
