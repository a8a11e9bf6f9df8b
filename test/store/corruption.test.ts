/**
 * A damaged database stops the store from opening with one line that names the file and what to
 * do; damage found while running is remembered for health. Real SQLite files made by the store,
 * then damaged the way disks and file systems damage them.
 */
import {
  closeSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { DatabaseCorruptError, DB_FILE, openStore } from '../../src/store/index.js';

function tempDir(t: { teardown(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'bw-corrupt-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A closed store with `n` results (checkpointed: everything is in the main file). */
function filledStore(dir: string, n: number): string {
  const store = openStore({ dataDir: dir });
  store.db.transaction(() => {
    for (let i = 0; i < n; i++)
      store.results.commit(
        {
          status: 'done',
          sha256: i.toString(16).padStart(64, '0'),
          path: `/captures/smear-${i}.jpg`,
          file: `smear-${i}.jpg`,
          origin: 'capture',
          size: 1000 + i,
          className: 'Benign',
          pBall: 0.1,
          flag: false,
          capturedAt: i,
          processedAt: i,
        },
        null,
        () => [{ eventId: `e${i}`, topic: 'result', payload: JSON.stringify({ i, pad: 'x'.repeat(200) }) }],
      );
  })();
  store.close();
  return join(dir, DB_FILE);
}

function overwrite(path: string, offset: number, bytes: Buffer): void {
  const fd = openSync(path, 'r+');
  try {
    writeSync(fd, bytes, 0, bytes.length, offset);
  } finally {
    closeSync(fd);
  }
}

/** The one-line message: the file, that it is damaged, and what to do. */
const ADVICE =
  /^database .*blastwatch\.db is damaged \(.+\): stop blastwatch, move .*blastwatch\.db \(and its -wal\/-shm files\) aside, then restore a backup \(blastwatch restore\) or start empty: images still in the capture folder are classified again$/;

t.test('a sound store opens (the start-up check passes)', async (t) => {
  const dir = tempDir(t);
  filledStore(dir, 200);
  const store = openStore({ dataDir: dir });
  t.equal(store.results.counts().done, 200);
  t.equal(store.corruption, null);
  store.close();
});

t.test('a corrupted header: refused with one line, no stack trace needed', async (t) => {
  const dir = tempDir(t);
  const path = filledStore(dir, 50);
  overwrite(path, 0, Buffer.from('this is not an sqlite file at all'));
  const err = t.throws(() => openStore({ dataDir: dir })) as Error;
  t.ok(err instanceof DatabaseCorruptError, `${err.name}: ${err.message}`);
  t.match(err.message, ADVICE);
  t.notMatch(err.message, /\n/, 'one line');
});

t.test('a corrupted page in the middle of the file: found by the start-up check', async (t) => {
  const dir = tempDir(t);
  const path = filledStore(dir, 2000);
  const pageSize = readFileSync(path).readUInt16BE(16);
  const pages = statSync(path).size / pageSize;
  t.ok(pages > 20, `${pages} pages`);
  const garbage = Buffer.alloc(pageSize);
  for (let i = 0; i < garbage.length; i++) garbage[i] = (i * 131 + 7) & 0xff;
  overwrite(path, Math.floor(pages / 2) * pageSize, garbage);
  const err = t.throws(() => openStore({ dataDir: dir })) as Error;
  t.ok(err instanceof DatabaseCorruptError, `${err.name}: ${err.message}`);
  t.match(err.message, ADVICE);
  // quick_check reports the page, or SQLite already refuses to read it while checking.
  t.match(err.message, /quick_check: .*page|disk image is malformed/, 'says what was found');
  t.notMatch(err.message, /\n/, 'one line');
});

t.test('a zero-length database file: refused, not silently started empty', async (t) => {
  const dir = tempDir(t);
  filledStore(dir, 10);
  writeFileSync(join(dir, DB_FILE), '');
  const err = t.throws(() => openStore({ dataDir: dir })) as Error;
  t.ok(err instanceof DatabaseCorruptError, `${err.name}: ${err.message}`);
  t.match(err.message, /the file is empty \(0 bytes\)/);
  t.match(err.message, ADVICE);
  t.equal(statSync(join(dir, DB_FILE)).size, 0, 'left as it was, for the operator to look at');
});

t.test('no database file yet: a new one is created', async (t) => {
  const dir = tempDir(t);
  const store = openStore({ dataDir: dir });
  t.equal(store.results.counts().done, 0);
  store.close();
});

t.test('damage met while running is remembered with what to do; other failures are not', async (t) => {
  const dir = tempDir(t);
  filledStore(dir, 10);
  const store = openStore({ dataDir: dir });
  t.teardown(() => store.close());
  store.noteFailure(Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' }));
  t.equal(store.corruption, null);
  store.noteFailure(Object.assign(new Error('database disk image is malformed'), { code: 'SQLITE_CORRUPT' }));
  t.match(store.corruption, ADVICE);
});
