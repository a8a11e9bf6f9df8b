/**
 * A damaged database must stop the daemon with one line that says what to do, not run as "ready"
 * and keep writing into it (SQLite goes on writing pages of a file whose other pages are garbage).
 */

/** SQLite's result codes for a file that is not a database, or one whose pages are damaged. */
const CORRUPT_CODES = new Set(['SQLITE_CORRUPT', 'SQLITE_NOTADB']);

export function isCorruption(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && [...CORRUPT_CODES].some((c) => code.startsWith(c));
}

/** What the operator does about a damaged database file (the capture folder is the source). */
export function corruptionAdvice(path: string): string {
  return (
    `stop blastwatch, move ${path} (and its -wal/-shm files) aside, then restore a backup (blastwatch restore) or start ` +
    'empty: images still in the capture folder are classified again'
  );
}

/** The database at `path` is damaged: the daemon refuses to start on it. */
export class DatabaseCorruptError extends Error {
  override readonly name = 'DatabaseCorruptError';
  constructor(
    readonly path: string,
    readonly detail: string,
  ) {
    super(`database ${path} is damaged (${detail}): ${corruptionAdvice(path)}`);
  }
}

/**
 * The start-up check. quick_check is integrity_check without the index-versus-table cross-checks:
 * it reads every page of the file once (b-tree structure, free list, record formats), so it finds
 * a damaged page wherever it is. Its cost grows with the file: 202 ms for a store with 50,000
 * results (33 MB; integrity_check 332 ms) on the development machine, file in the page cache
 * (`npx tsx scripts/quick-check-timing.ts 50000`); from a cold SD card add the time to read the
 * file once. It grows linearly; a year of results at the default retention (365 days) and a few
 * hundred images a day is of that order. So the full check runs at every start: a bounded one
 * (the first N pages, or quick_check on some tables) would miss a damaged page it did not reach,
 * and a second or so at start-up is cheap next to running on a damaged file.
 */
export function startCheck(db: { pragma(sql: string): unknown }): string | null {
  // At most 3 findings, on one line: enough to say what is wrong, short enough for a log line.
  const rows = db.pragma('quick_check(3)') as { quick_check: string }[];
  const found = rows.map((r) => r.quick_check);
  if (found.length === 1 && found[0] === 'ok') return null;
  return found.join('; ').replace(/\s+/g, ' ').trim();
}
