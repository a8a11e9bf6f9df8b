import { existsSync, mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { Logger } from '../log.js';
import { SpecimenCameraWarnings } from './camera-warnings.js';
import { CaptureClockQueries } from './capture-clock.js';
import { FilesTable } from './files.js';
import { corruptionAdvice, DatabaseCorruptError, isCorruption, startCheck } from './integrity.js';
import { MediaStore } from './media.js';
import { applyMigrations, MIGRATIONS } from './migrations.js';
import { OutboxTable } from './outbox.js';
import { ResultsTable } from './results.js';
import { Retention } from './retention.js';
import { ReviewsTable } from './reviews.js';
import { SpecimenSignOffs } from './specimen-signoff.js';
import { DEFAULT_VERDICT_RULE, SpecimensTable, type SpecimenStoreOptions } from './specimens.js';

export type { FileRow, FileStatus, FileUpdate } from './files.js';
export { corruptionAdvice, DatabaseCorruptError, isCorruption } from './integrity.js';
export { DataDirInUseError, DataDirLockError, lockDataDir, type DataDirLock } from './lock.js';
export type { OutboxDraft, OutboxRow } from './outbox.js';
export type { Committed, ResultQuery } from './results.js';
export type { ReviewWithResult } from './reviews.js';
export type { OnSignOff } from './specimen-signoff.js';
export {
  DEFAULT_VERDICT_RULE,
  SpecimenError,
  type SpecimenStoreOptions,
  type SpecimenWrite,
} from './specimens.js';

/** Name of the database file inside data.dir. */
export const DB_FILE = 'blastwatch.db';

export interface StoreOptions {
  dataDir: string;
  log?: Logger;
  /** busy_timeout: how long a writer waits for another process's lock before failing. */
  busyTimeoutMs?: number;
  /** Run PRAGMA quick_check on open (default true; see store/integrity.ts for its cost). */
  check?: boolean;
  /** Verdict rule, device id and change-feed messages of the specimens (defaults: provisional rule, no feed). */
  specimens?: Partial<SpecimenStoreOptions>;
}

/**
 * The daemon's SQLite store: one connection, synchronous calls (better-sqlite3), every write a
 * short transaction; images never enter the database (the dashboard's small pictures live beside it
 * in media.db, `store.media`). The tables are its fields: `store.files`, `store.results`,
 * `store.outbox`, `store.reviews`, `store.specimens` (with `store.signOffs`), `store.retention`.
 */
export class Store {
  readonly db: Database.Database;
  readonly path: string;
  readonly dataDir: string;
  readonly files: FilesTable;
  readonly outbox: OutboxTable;
  readonly results: ResultsTable;
  readonly reviews: ReviewsTable;
  readonly specimens: SpecimensTable;
  readonly signOffs: SpecimenSignOffs;
  readonly retention: Retention;
  /** Whether the capture files' clock agrees with this station's (src/store/capture-clock.ts). */
  readonly captureClock: CaptureClockQueries;
  /** The camera warnings each specimen's images arrived under (camera-warnings.ts). */
  readonly cameraWarnings: SpecimenCameraWarnings;
  /** The dashboard's pictures of each result, in their own file (media.ts). */
  readonly media: MediaStore;
  private readonly log: Logger | undefined;
  private readonly syncNormal: Database.Statement;
  private readonly syncFull: Database.Statement;
  private damage: string | null = null;

  constructor(opts: StoreOptions) {
    this.dataDir = opts.dataDir;
    this.log = opts.log;
    mkdirSync(opts.dataDir, { recursive: true });
    this.path = join(opts.dataDir, DB_FILE);
    this.db = this.openChecked(opts);
    this.migrate();
    this.syncNormal = this.db.prepare('PRAGMA synchronous = NORMAL');
    this.syncFull = this.db.prepare('PRAGMA synchronous = FULL');
    const lazy = (write: () => void) => this.withoutWaitingForDisk(write);
    this.files = new FilesTable(this.db, this.log);
    this.outbox = new OutboxTable(this.db, lazy);
    this.results = new ResultsTable(this.db, this.files, this.outbox, lazy);
    this.reviews = new ReviewsTable(this.db);
    this.specimens = new SpecimensTable(this.db, this.outbox, {
      rule: opts.specimens?.rule ?? DEFAULT_VERDICT_RULE,
      deviceId: opts.specimens?.deviceId ?? '',
      changeMessages: opts.specimens?.changeMessages ?? null,
    });
    this.cameraWarnings = new SpecimenCameraWarnings(this.db, this.specimens);
    this.signOffs = new SpecimenSignOffs(this.specimens, this.results, this.cameraWarnings);
    this.media = new MediaStore(opts.dataDir, opts.log);
    this.retention = new Retention(this.db, this.dataDir, this.media);
    this.captureClock = new CaptureClockQueries(this.db);
  }

  /**
   * Opens the file, sets the pragmas and checks it (store/integrity.ts). A damaged file is a
   * DatabaseCorruptError (one line: the file and what to do), never a stack trace.
   */
  private openChecked(opts: StoreOptions): Database.Database {
    // SQLite takes an empty file for a new database. A database file that exists and is empty was
    // emptied (a truncated write, a lost file system block): starting on it would silently drop
    // every result, so it is refused like a damaged one.
    if (existsSync(this.path) && statSync(this.path).size === 0)
      throw new DatabaseCorruptError(this.path, 'the file is empty (0 bytes)');
    let db: Database.Database | null = null;
    try {
      db = new Database(this.path);
      // WAL lets the dashboard read while the pipeline writes; FULL makes a committed transaction
      // survive power loss (better-sqlite3's WAL default NORMAL may roll the last one back).
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = FULL');
      db.pragma(`busy_timeout = ${opts.busyTimeoutMs ?? 5000}`);
      db.pragma('foreign_keys = ON');
      // Keep the WAL file from growing without bound on a small SD card after a big checkpoint.
      db.pragma('journal_size_limit = 16777216');
      // A 4 MB page cache, not better-sqlite3's 16 MB build default: the hot pages (outbox, recent
      // results, indexes) fit, the kernel caches the rest, and the daemon's RSS stays flat instead
      // of climbing by the cache's size as the database grows past it (docs/benchmark.md).
      db.pragma('cache_size = -4096');
      const problem = opts.check === false ? null : startCheck(db);
      if (problem !== null) throw new DatabaseCorruptError(this.path, `quick_check: ${problem}`);
      return db;
    } catch (err) {
      db?.close();
      if (isCorruption(err)) throw new DatabaseCorruptError(this.path, (err as Error).message);
      throw err;
    }
  }

  /**
   * Damage found while running (a statement failed with SQLITE_CORRUPT/SQLITE_NOTADB): a sentence
   * for health, null otherwise. It stays until the daemon is restarted on a sound file.
   */
  get corruption(): string | null {
    return this.damage;
  }

  /** Callers that catch a failed database call report it here; damage is remembered and logged once. */
  noteFailure(err: unknown): void {
    if (!isCorruption(err) || this.damage !== null) return;
    this.damage = `database ${this.path} is damaged (${(err as Error).message}): ${corruptionAdvice(this.path)}`;
    this.log?.fatal({ err }, this.damage);
  }

  /** The schema version this build writes (= number of migrations). */
  static get schemaVersion(): number {
    return MIGRATIONS.length;
  }

  private migrate(): void {
    const current = this.db.pragma('user_version', { simple: true }) as number;
    if (current > MIGRATIONS.length) {
      throw new Error(
        `${this.path}: database schema version ${current} is newer than this blastwatch (${MIGRATIONS.length}); ` +
          'upgrade blastwatch or restore an older database',
      );
    }
    applyMigrations(this.db, current, MIGRATIONS.length, (version) =>
      this.log?.info({ version }, 'database migrated'),
    );
  }

  /**
   * Runs `write` in a transaction committed with synchronous=NORMAL: written to the WAL, but with
   * no fsync of its own. Only for bookkeeping whose loss on power failure is harmless (a "sent"
   * mark: the message goes out again with the same event_id; the media flag). Every later FULL
   * commit (each result) fsyncs the WAL and with it this write, and the order of writes is kept,
   * so it can never outlive a result it depends on. A daemon crash (not a power loss) loses
   * nothing: the WAL is in the page cache. Saves an fsync per image on the event loop, where
   * better-sqlite3 waits for it.
   */
  private withoutWaitingForDisk(write: () => void): void {
    this.syncNormal.run();
    try {
      this.db.transaction(write)();
    } finally {
      this.syncFull.run();
    }
  }

  /** Truncating checkpoint: folds the WAL into the database and shrinks the WAL file. */
  checkpoint(): { busy: number; log: number; checkpointed: number } {
    const row = this.db.pragma('wal_checkpoint(TRUNCATE)') as {
      busy: number;
      log: number;
      checkpointed: number;
    }[];
    return row[0] ?? { busy: 0, log: 0, checkpointed: 0 };
  }

  /** Sizes of the database and its WAL, in bytes. */
  fileSizes(): { db: number; wal: number } {
    const size = (p: string) => {
      try {
        return statSync(p).size;
      } catch {
        return 0;
      }
    };
    return { db: size(this.path), wal: size(`${this.path}-wal`) };
  }

  integrityCheck(): string {
    return this.db.pragma('integrity_check', { simple: true }) as string;
  }

  get open(): boolean {
    return this.db.open;
  }

  close(): void {
    if (!this.db.open) return;
    this.files.flushIdentities();
    try {
      this.checkpoint();
    } catch (err) {
      this.log?.warn({ err }, 'checkpoint on close failed');
    }
    this.db.close();
    try {
      this.media.close();
    } catch (err) {
      this.log?.warn({ err }, 'closing media.db failed');
    }
  }
}

export function openStore(opts: StoreOptions): Store {
  return new Store(opts);
}
