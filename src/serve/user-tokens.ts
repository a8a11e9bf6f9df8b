import { createHash } from 'node:crypto';
import { DEFAULT_USER_ROLE, type UserRole } from '../domain/roles.js';
import { verifyPassword } from '../runtime/password.js';

/** What the token check needs of a configured user (an `http.users` entry). */
export interface TokenHolder {
  name: string;
  role?: UserRole | undefined;
  api_token_hash?: string | null | undefined;
}

/** The user a token belongs to, with the role the configuration gives her now. */
export interface TokenOwner {
  name: string;
  role: UserRole;
}

interface CachedMatch {
  name: string;
  /** The stored hash the token was verified against: a changed or removed entry no longer matches. */
  apiTokenHash: string;
}

/** Verified tokens remembered at most; a script or two per user is the expected load. */
const DEFAULT_CACHE_SIZE = 256;

/** The cache key: a SHA-256 of the token, so the token itself is never kept in memory. */
function cacheKey(token: string): string {
  return createHash('sha256').update(token).digest('base64url');
}

/**
 * Per-user API tokens (`http.users[].api_token_hash`). Each hash is scrypt, slow on purpose, and
 * the token does not say whose it is, so a first use is checked against every user's hash (tens
 * of milliseconds each). A script polling the API must not pay that on every request: a token that
 * verified is remembered, keyed by its SHA-256, in a bounded most-recently-used map. A remembered
 * match holds only while the user's entry still carries the same hash, so a user removed or given
 * a new token loses the old one at once. Wrong tokens are not remembered: the caller counts them
 * against the client's address (FailureLimiter), which bounds the slow checks a guesser can cause.
 */
export class UserTokens {
  private readonly cache = new Map<string, CachedMatch>();
  /** Checks in progress by cache key: simultaneous first requests with one token share one check. */
  private readonly pending = new Map<string, Promise<TokenOwner | null>>();

  constructor(
    /** The current user list (read on every check, so the configuration stays the one truth). */
    private readonly users: () => readonly TokenHolder[],
    private readonly cacheSize = DEFAULT_CACHE_SIZE,
    /** The slow check of a token against a stored hash (a parameter so tests can count the calls). */
    private readonly verifyHash: (token: string, hash: string) => Promise<boolean> = verifyPassword,
  ) {}

  /** True when at least one user has a token; otherwise a Bearer header cannot be a user's. */
  get configured(): boolean {
    return this.users().some((u) => Boolean(u.api_token_hash));
  }

  /** The user whose token this is, or null. */
  async verify(token: string): Promise<TokenOwner | null> {
    const key = cacheKey(token);
    const remembered = this.fromCache(key);
    if (remembered) return remembered;
    const running = this.pending.get(key);
    if (running) return running;
    const check = this.verifySlowly(key, token).finally(() => this.pending.delete(key));
    this.pending.set(key, check);
    return check;
  }

  /** How many verified tokens are remembered (for tests and the bound). */
  get cachedCount(): number {
    return this.cache.size;
  }

  private fromCache(key: string): TokenOwner | null {
    const match = this.cache.get(key);
    if (!match) return null;
    const user = this.users().find((u) => u.name === match.name);
    if (!user || user.api_token_hash !== match.apiTokenHash) {
      this.cache.delete(key);
      return null;
    }
    // Most recently used last, so eviction drops the longest unused.
    this.cache.delete(key);
    this.cache.set(key, match);
    return { name: user.name, role: user.role ?? DEFAULT_USER_ROLE };
  }

  private async verifySlowly(key: string, token: string): Promise<TokenOwner | null> {
    // One at a time: scrypt takes 16 MiB per check, too much in parallel on a Pi.
    for (const user of this.users()) {
      const hash = user.api_token_hash;
      if (!hash || !(await this.verifyHash(token, hash))) continue;
      this.remember(key, { name: user.name, apiTokenHash: hash });
      return { name: user.name, role: user.role ?? DEFAULT_USER_ROLE };
    }
    return null;
  }

  private remember(key: string, match: CachedMatch): void {
    this.cache.delete(key);
    while (this.cache.size >= this.cacheSize) {
      const oldest = this.cache.keys().next().value;
      if (oldest === undefined) break;
      this.cache.delete(oldest);
    }
    this.cache.set(key, match);
  }
}
