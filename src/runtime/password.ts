import { randomBytes, scrypt, timingSafeEqual, createHash } from 'node:crypto';

/**
 * Password hashes (dashboard users; checked by config validation, made by `blastwatch hash-password`): `scrypt:<N>:<r>:<p>:<salt b64>:<hash b64>`. scrypt is in
 * node:crypto (no native add-on to build on a Pi) and is memory-hard, which slows offline guessing
 * if a config file leaks.
 */
const KEY_LENGTH = 32;
const DEFAULT_COST = { N: 16384, r: 8, p: 1 };

function scryptAsync(
  password: string,
  salt: Buffer,
  keylen: number,
  opts: { N: number; r: number; p: number },
) {
  return new Promise<Buffer>((resolve, reject) => {
    // maxmem: 128 * N * r * 2 leaves room for the parameters stored in the hash.
    scrypt(password, salt, keylen, { ...opts, maxmem: 256 * opts.N * opts.r + 1024 * 1024 }, (err, key) =>
      err ? reject(err) : resolve(key),
    );
  });
}

export async function hashPassword(password: string): Promise<string> {
  if (password.length === 0) throw new Error('the password is empty');
  const salt = randomBytes(16);
  const key = await scryptAsync(password, salt, KEY_LENGTH, DEFAULT_COST);
  const { N, r, p } = DEFAULT_COST;
  return `scrypt:${N}:${r}:${p}:${salt.toString('base64')}:${key.toString('base64')}`;
}

/** Parses a stored hash; null when it is not one of ours (the caller treats it as "never matches"). */
function parseHash(stored: string): { N: number; r: number; p: number; salt: Buffer; key: Buffer } | null {
  const parts = stored.split(':');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return null;
  const [N, r, p] = parts.slice(1, 4).map((s) => Number.parseInt(s, 10));
  if (!N || !r || !p || N > 1 << 20 || r > 32 || p > 16 || (N & (N - 1)) !== 0) return null;
  const salt = Buffer.from(parts[4] ?? '', 'base64');
  const key = Buffer.from(parts[5] ?? '', 'base64');
  if (salt.length < 8 || key.length < 16) return null;
  return { N, r, p, salt, key };
}

export function isValidHash(stored: string): boolean {
  return parseHash(stored) !== null;
}

export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const parsed = parseHash(stored);
  if (!parsed) return false;
  const key = await scryptAsync(password, parsed.salt, parsed.key.length, parsed);
  return timingSafeEqual(key, parsed.key);
}

/**
 * A new API token for `http.users[].api_token_hash`: 32 random bytes (256 bits, far beyond
 * guessing even at the hash's cost) in base64url, which survives URLs, headers and shells
 * unquoted. The `bw_` prefix lets a person, or a secret scanner, tell what a leaked string is.
 */
export function newApiToken(): string {
  return `bw_${randomBytes(32).toString('base64url')}`;
}

/** Constant-time comparison of two secrets of any length (hashing first equalises the lengths). */
export function secretsEqual(a: string, b: string): boolean {
  const da = createHash('sha256').update(a).digest();
  const db = createHash('sha256').update(b).digest();
  return timingSafeEqual(da, db) && a.length === b.length;
}
