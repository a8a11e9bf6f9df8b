/**
 * How long the start-up database check and a backup take: fills a store in a temp folder with N
 * results (each with a result and an alert outbox row, and a file row, as the daemon writes them),
 * then times `PRAGMA quick_check` and `PRAGMA integrity_check` on a cold connection, and
 * `blastwatch backup`'s copy (src/store/backup.ts: VACUUM INTO, the integrity check of the copy).
 *
 *   npx tsx scripts/quick-check-timing.ts [N=50000]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { backupStore } from '../src/store/backup.js';
import { openStore } from '../src/store/index.js';

const n = Number(process.argv[2] ?? 50_000);
const dir = mkdtempSync(join(tmpdir(), 'bw-qc-'));
try {
  const store = openStore({ dataDir: dir });
  const fill = store.db.transaction(() => {
    for (let i = 0; i < n; i++) {
      const sha256 = i.toString(16).padStart(64, '0');
      const path = `/captures/2026-12-03/smear-${i}.jpg`;
      store.results.commit(
        {
          status: 'done',
          sha256,
          path,
          file: `smear-${i}.jpg`,
          origin: 'capture',
          size: 180_000 + i,
          className: i % 7 === 0 ? 'Pro-B' : 'Benign',
          pBall: (i % 100) / 100,
          flag: i % 7 === 0,
          capturedAt: 1_764_000_000_000 + i,
          processedAt: 1_764_000_000_000 + i,
        },
        { path, size: 180_000 + i, mtimeMs: i, status: 'done', sha256, attempts: 1 },
        () => [
          { eventId: `r-${sha256}`, topic: 'result', payload: JSON.stringify({ sha256, p: i }) },
          ...(i % 7 === 0 ? [{ eventId: `a-${sha256}`, topic: 'alert', payload: '{"flag":true}' }] : []),
        ],
      );
    }
  });
  fill();
  store.close();
  const { db: bytes } = {
    db: Number(new Database(join(dir, 'blastwatch.db')).pragma('page_count', { simple: true })),
  };
  for (const check of ['quick_check', 'integrity_check']) {
    const db = new Database(join(dir, 'blastwatch.db'));
    const t0 = performance.now();
    const out = db.pragma(check, { simple: true });
    const ms = performance.now() - t0;
    db.close();
    console.log(`${check}: ${ms.toFixed(0)} ms (${String(out)}) on ${n} results, ${bytes} pages of 4 KiB`);
  }
  const copy = backupStore({ dataDir: dir, toDir: join(dir, 'backups'), keep: 1 });
  console.log(
    `backup: ${copy.ms} ms, copy ${(copy.bytes / 1048576).toFixed(1)} MB (${copy.results} results; integrity ok)`,
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}
