/**
 * A consistent copy of the records while the daemon runs: the database (results, reviews,
 * specimens with their signatures and audit trail) and the photos uploaded from phones, which
 * exist nowhere else. media.db (thumbnails, masks) is left out: nothing in it is a record, and
 * the captures themselves stay in the lab's capture folder.
 *
 * The database is copied by `VACUUM INTO` on a connection of its own: one read transaction, so
 * the copy is the database as it stood at one instant even while the daemon writes (WAL readers
 * do not block the writer, nor it them), compacted, and written under a temporary name that is
 * renamed only once SQLite's integrity check passes on it. Uploads are never changed once
 * written, so they are mirrored into one folder beside the copies: only new files are copied.
 */
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join, relative } from 'node:path';
import Database from 'better-sqlite3';
import { DB_FILE, Store } from './index.js';
import { lockDataDir } from './lock.js';
import { MEDIA_DB_FILE } from './media.js';

/** Copies are named by their UTC time, so that names sort as times do. */
export const BACKUP_PREFIX = 'blastwatch-';
const BACKUP_SUFFIX = '.db';
const PARTIAL_SUFFIX = '.partial';
export const UPLOADS_DIR = 'uploads';
/**
 * In data.dir: how the latest backup went, so that the daemon's health can say when backups
 * fail or stop (a timer disabled, a share gone), which nobody would notice until a restore.
 */
export const BACKUP_STATUS_FILE = 'backup-status.json';

export interface BackupStatus {
  /** When the latest backup was tried (ISO time), and whether it worked. */
  lastAttemptAt: string;
  ok: boolean;
  /** Why it failed; null when it worked. */
  error: string | null;
  /** The latest copy that worked and when it was made; null before any. */
  lastOkAt: string | null;
  lastOkFile: string | null;
}

export interface BackupOptions {
  dataDir: string;
  /** The folder the copies go to (created if missing). */
  toDir: string;
  /** How many copies to keep, newest first (the new one included); at least 1. */
  keep: number;
  now?: Date;
}

export interface BackupResult {
  file: string;
  bytes: number;
  /** The copy's schema version (PRAGMA user_version) and what it holds. */
  schemaVersion: number;
  results: number;
  specimens: number;
  signed: number;
  /** Uploaded photos copied this time, and how many the mirror holds. */
  uploadsCopied: number;
  uploadsTotal: number;
  /** Older copies removed to keep `keep`. */
  removed: string[];
  ms: number;
}

/** A backup that could not be made, in one line that says what to do. */
export class BackupError extends Error {
  override readonly name = 'BackupError';
}

/** 2026-12-06T01:45:00.123Z → 20261206T014500123Z: sortable, and no two runs share a name. */
function stamp(at: Date): string {
  return at.toISOString().replace(/[-:.]/g, '');
}

/**
 * Makes the copy, and records in data.dir how it went (BACKUP_STATUS_FILE). Throws BackupError
 * with one line when the copy cannot be made; a status that cannot be written is only reported
 * (`statusError`): the copy is what matters.
 */
export function backupStore(opts: BackupOptions): BackupResult & { statusError: string | null } {
  const at = opts.now ?? new Date();
  const previous = readBackupStatus(opts.dataDir);
  try {
    const result = makeCopy({ ...opts, now: at });
    const statusError = writeStatus(opts.dataDir, {
      lastAttemptAt: at.toISOString(),
      ok: true,
      error: null,
      lastOkAt: at.toISOString(),
      lastOkFile: result.file,
    });
    return { ...result, statusError };
  } catch (err) {
    writeStatus(opts.dataDir, {
      lastAttemptAt: at.toISOString(),
      ok: false,
      error: (err as Error).message,
      lastOkAt: previous?.lastOkAt ?? null,
      lastOkFile: previous?.lastOkFile ?? null,
    });
    throw err;
  }
}

/** How the latest backup went; null when none was ever tried (or the record is unreadable). */
export function readBackupStatus(dataDir: string): BackupStatus | null {
  try {
    const s = JSON.parse(readFileSync(join(dataDir, BACKUP_STATUS_FILE), 'utf8')) as BackupStatus;
    return typeof s.lastAttemptAt === 'string' && typeof s.ok === 'boolean' ? s : null;
  } catch {
    return null;
  }
}

/** Written whole under a temporary name, then renamed; the error in words, or null. */
function writeStatus(dataDir: string, status: BackupStatus): string | null {
  const file = join(dataDir, BACKUP_STATUS_FILE);
  try {
    writeFileSync(`${file}${PARTIAL_SUFFIX}`, `${JSON.stringify(status, null, 1)}\n`);
    renameSync(`${file}${PARTIAL_SUFFIX}`, file);
    return null;
  } catch (err) {
    return `could not record the backup in ${file}: ${(err as Error).message}`;
  }
}

function makeCopy(opts: BackupOptions & { now: Date }): BackupResult {
  const started = performance.now();
  if (!Number.isInteger(opts.keep) || opts.keep < 1)
    throw new BackupError('keep must be a whole number of at least 1');
  const source = join(opts.dataDir, DB_FILE);
  if (!existsSync(source))
    throw new BackupError(`no database at ${source}: is data.dir right, and has the daemon run once?`);
  try {
    mkdirSync(opts.toDir, { recursive: true });
  } catch (err) {
    throw new BackupError(`cannot create ${opts.toDir}: ${(err as Error).message}`);
  }
  const name = `${BACKUP_PREFIX}${stamp(opts.now)}${BACKUP_SUFFIX}`;
  const file = join(opts.toDir, name);
  const partial = `${file}${PARTIAL_SUFFIX}`;
  rmSync(partial, { force: true });
  copyDatabase(source, partial);
  let figures: CopyFigures;
  try {
    figures = checkCopy(partial);
  } catch (err) {
    rmSync(partial, { force: true });
    throw err;
  }
  renameSync(partial, file);
  const uploads = mirrorUploads(join(opts.dataDir, UPLOADS_DIR), join(opts.toDir, UPLOADS_DIR));
  return {
    file,
    bytes: statSync(file).size,
    schemaVersion: figures.schemaVersion,
    results: figures.results,
    specimens: figures.specimens,
    signed: figures.signed,
    uploadsCopied: uploads.copied,
    uploadsTotal: uploads.total,
    removed: pruneCopies(opts.toDir, opts.keep),
    ms: Math.round(performance.now() - started),
  };
}

function copyDatabase(source: string, to: string): void {
  let db: Database.Database | null = null;
  try {
    // Not read-only: a WAL reader records its read mark in the -shm file. It reads, and changes
    // nothing; the daemon's folder lock is a file of its own and is not touched.
    db = new Database(source, { fileMustExist: true });
    // A checkpoint of the daemon's can hold the WAL briefly: wait rather than fail.
    db.pragma('busy_timeout = 10000');
    db.prepare('VACUUM INTO ?').run(to);
  } catch (err) {
    rmSync(to, { force: true });
    throw new BackupError(`could not copy ${source} to ${to}: ${(err as Error).message}`);
  } finally {
    db?.close();
  }
}

export interface RestoreOptions {
  dataDir: string;
  /** A copy `backupStore` made. */
  from: string;
  /** The uploads mirror to copy back; by default the `uploads` folder beside the copy. */
  uploadsFrom?: string;
  now?: Date;
}

/**
 * Result ids after the copy's last are given again to the next results, so media.db's pictures of
 * the results made since the copy would show beside other images: they are deleted (media.db
 * holds no record). Should media.db not open, it is set aside whole and starts afresh.
 */
function forgetLaterPictures(dataDir: string, maxResultId: number, suffix: string): void {
  const path = join(dataDir, MEDIA_DB_FILE);
  if (!existsSync(path)) return;
  try {
    const db = new Database(path, { fileMustExist: true });
    try {
      db.prepare('DELETE FROM media WHERE result_id > ?').run(maxResultId);
    } finally {
      db.close();
    }
  } catch {
    setAsideDatabase(path, suffix);
  }
}

/** Renames a SQLite database and its -wal and -shm files to `<name><suffix>`; returns the new names. */
function setAsideDatabase(path: string, suffix: string): string[] {
  const moved: string[] = [];
  for (const ext of ['', '-wal', '-shm'])
    if (existsSync(`${path}${ext}`)) {
      renameSync(`${path}${ext}`, `${path}${ext}${suffix}`);
      moved.push(`${path}${ext}${suffix}`);
    }
  return moved;
}

export interface RestoreResult {
  results: number;
  specimens: number;
  signed: number;
  /** Where the database it replaced (and its -wal/-shm) went; empty when there was none. */
  setAside: string[];
  uploadsCopied: number;
}

/**
 * Puts a copy back as data.dir's database, with the daemon stopped (it takes the daemon's
 * folder lock, so a running daemon makes it refuse). The copy is checked first; the database it
 * replaces is renamed aside with its -wal and -shm files, never deleted: a WAL file left beside a
 * restored database would be replayed into it and damage it. Uploads the folder lacks are copied
 * back. The next start migrates the copy like any database.
 */
export function restoreStore(opts: RestoreOptions): RestoreResult {
  if (!existsSync(opts.from)) throw new BackupError(`no copy at ${opts.from}`);
  const figures = checkCopy(opts.from);
  if (figures.schemaVersion > Store.schemaVersion)
    throw new BackupError(
      `${opts.from} was made by a newer blastwatch (schema ${figures.schemaVersion}, this one knows ` +
        `${Store.schemaVersion}): restore it with that version`,
    );
  const lock = lockDataDir(opts.dataDir);
  try {
    const target = join(opts.dataDir, DB_FILE);
    const suffix = `.before-restore-${stamp(opts.now ?? new Date())}`;
    const setAside = setAsideDatabase(target, suffix);
    copyFileSync(opts.from, `${target}${PARTIAL_SUFFIX}`);
    renameSync(`${target}${PARTIAL_SUFFIX}`, target);
    forgetLaterPictures(opts.dataDir, figures.maxResultId, suffix);
    const uploads = mirrorUploads(
      opts.uploadsFrom ?? join(dirname(opts.from), UPLOADS_DIR),
      join(opts.dataDir, UPLOADS_DIR),
    );
    return {
      results: figures.results,
      specimens: figures.specimens,
      signed: figures.signed,
      setAside,
      uploadsCopied: uploads.copied,
    };
  } finally {
    lock.release();
  }
}

/** What a copy holds, and its last result id. */
type CopyFigures = Pick<BackupResult, 'schemaVersion' | 'results' | 'specimens' | 'signed'> & {
  maxResultId: number;
};

/** SQLite's integrity check on a copy, and what it holds; BackupError in one line when it fails. */
function checkCopy(file: string): CopyFigures {
  let db: Database.Database;
  try {
    db = new Database(file, { readonly: true, fileMustExist: true });
  } catch (err) {
    throw new BackupError(`cannot open ${file}: ${(err as Error).message}`);
  }
  try {
    const check = db.pragma('integrity_check', { simple: true });
    if (check !== 'ok') throw new BackupError(`${file} failed SQLite's integrity check: ${String(check)}`);
    const count = (sql: string) => (db.prepare(sql).get() as { n: number }).n;
    return {
      schemaVersion: db.pragma('user_version', { simple: true }) as number,
      results: count('SELECT count(*) AS n FROM results'),
      specimens: count('SELECT count(*) AS n FROM specimens'),
      signed: count("SELECT count(*) AS n FROM specimens WHERE status IN ('signed', 'amended')"),
      maxResultId: count('SELECT coalesce(max(id), 0) AS n FROM results'),
    };
  } catch (err) {
    throw err instanceof BackupError
      ? err
      : new BackupError(`${file} is no blastwatch database: ${(err as Error).message}`);
  } finally {
    db.close();
  }
}

/** Copies the uploads the mirror does not have yet; returns how many, and how many it holds. */
function mirrorUploads(from: string, to: string): { copied: number; total: number } {
  if (!existsSync(from)) return { copied: 0, total: 0 };
  let copied = 0;
  let total = 0;
  for (const entry of readdirSync(from, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const src = join(entry.parentPath, entry.name);
    const dst = join(to, relative(from, src));
    total++;
    if (existsSync(dst) && statSync(dst).size === statSync(src).size) continue;
    mkdirSync(dirname(dst), { recursive: true });
    // Under a temporary name first: an interrupted copy never looks like a whole photo.
    copyFileSync(src, `${dst}${PARTIAL_SUFFIX}`);
    renameSync(`${dst}${PARTIAL_SUFFIX}`, dst);
    copied++;
  }
  return { copied, total };
}

/** Removes all but the newest `keep` copies, and copies an interrupted run left half-written. */
function pruneCopies(dir: string, keep: number): string[] {
  const names = readdirSync(dir);
  const copies = names
    .filter((n) => n.startsWith(BACKUP_PREFIX) && n.endsWith(BACKUP_SUFFIX))
    .sort()
    .reverse();
  const removed = [
    ...copies.slice(keep),
    ...names.filter((n) => n.startsWith(BACKUP_PREFIX) && n.endsWith(`${BACKUP_SUFFIX}${PARTIAL_SUFFIX}`)),
  ];
  for (const n of removed) rmSync(join(dir, n), { force: true });
  return removed;
}
