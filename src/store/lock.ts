import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';

/** The lock database inside data.dir: held exclusively by the running daemon. */
export const LOCK_FILE = 'blastwatch.lock';
/** The pid of the daemon holding the lock, for the message of the one refused. */
export const PID_FILE = 'blastwatch.pid';

/** Another process holds data.dir: two daemons would write one database and share one MQTT client id. */
export class DataDirInUseError extends Error {
  override readonly name = 'DataDirInUseError';
  constructor(
    readonly dataDir: string,
    readonly pid: number | null,
  ) {
    super(
      `data folder ${dataDir} is in use by another blastwatch (${pid === null ? 'pid unknown' : `pid ${pid}`}): ` +
        'stop it first, or give this one its own data.dir',
    );
  }
}

/** The lock cannot be taken at all (a read-only or unwritable data.dir): one line for the operator. */
export class DataDirLockError extends Error {
  override readonly name = 'DataDirLockError';
  constructor(
    readonly dataDir: string,
    readonly code: string,
    detail: string,
  ) {
    super(`cannot use the data folder ${dataDir} (${detail}): data.dir must be a writable local folder`);
  }
}

export interface DataDirLock {
  readonly path: string;
  /** Drops the lock (idempotent). Process death drops it too. */
  release(): void;
}

function readPid(path: string): number | null {
  try {
    const pid = Number.parseInt(readFileSync(path, 'utf8'), 10);
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

/**
 * Takes data.dir for this process, or throws DataDirInUseError.
 *
 * The lock is SQLite's own file lock (a POSIX advisory fcntl lock) on a small database of its
 * own: `locking_mode=EXCLUSIVE` plus one write transaction takes the EXCLUSIVE lock and keeps it
 * for as long as the connection is open. The kernel drops fcntl locks when the process dies, by
 * SIGKILL, OOM killer or power loss alike, so no stale lock is ever left behind and there is no
 * pid to guess about: the pid file is only read to name the holder in the message. Node has no
 * flock() without a native add-on; better-sqlite3 is already one. A separate file, because the
 * store's database runs in WAL mode with readers beside the writer and must not be locked
 * exclusively. Advisory locks need a local file system (not an NFS/SMB data.dir).
 */
export function lockDataDir(dataDir: string): DataDirLock {
  const path = join(dataDir, LOCK_FILE);
  const pidPath = join(dataDir, PID_FILE);
  // timeout 0: a held lock is an answer, not something to wait for.
  let db: Database.Database | null = null;
  try {
    db = new Database(path, { timeout: 0 });
    db.pragma('locking_mode = EXCLUSIVE');
    db.exec('BEGIN EXCLUSIVE');
    db.exec('CREATE TABLE IF NOT EXISTS holder (pid INTEGER NOT NULL, since INTEGER NOT NULL)');
    db.exec('DELETE FROM holder');
    db.prepare('INSERT INTO holder (pid, since) VALUES (?, ?)').run(process.pid, Date.now());
    db.exec('COMMIT');
  } catch (err) {
    db?.close();
    const code = (err as { code?: string }).code ?? '';
    if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED'))
      throw new DataDirInUseError(dataDir, readPid(pidPath));
    if (code.startsWith('SQLITE_')) throw new DataDirLockError(dataDir, code, (err as Error).message);
    throw err;
  }
  writeFileSync(pidPath, `${process.pid}\n`);
  const held = db;
  return {
    path,
    release() {
      if (!held.open) return;
      if (readPid(pidPath) === process.pid) rmSync(pidPath, { force: true });
      held.close();
    },
  };
}
