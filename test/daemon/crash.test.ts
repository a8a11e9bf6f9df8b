/**
 * Crash safety with the daemon as a real child process: SIGKILL in the middle of a batch, then
 * a restart, must leave exactly one result per image and every flag delivered to the broker.
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import t from 'tap';
import { eventId } from '../../src/publish/payloads.js';
import {
  eventIds,
  freePort,
  jpegVariant,
  makeDirs,
  sampleImages,
  startBroker,
  startDaemon,
  subscribe,
  until,
  writeConfig,
} from './helpers.js';

const PREFIX = 'blastwatch/e2e-scope';

function readDb(dataDir: string) {
  const db = new Database(join(dataDir, 'blastwatch.db'), { readonly: true, fileMustExist: true });
  try {
    return {
      // Classified: screened, or refused by the out-of-domain gate (a sample may be either).
      done: (
        db.prepare("SELECT count(*) AS n FROM results WHERE status IN ('done', 'out_of_domain')").get() as {
          n: number;
        }
      ).n,
      rows: db.prepare('SELECT sha256, flag, model_version, status FROM results').all() as {
        sha256: string;
        flag: number | null;
        model_version: string | null;
        status: string;
      }[],
      integrity: db.pragma('integrity_check', { simple: true }) as string,
    };
  } finally {
    db.close();
  }
}

const doneCount = (dataDir: string): number => {
  try {
    return readDb(dataDir).done;
  } catch {
    return 0;
  }
};

t.test('SIGKILL mid-batch, restart: one result per image, every flag reached the broker', async (t) => {
  const dirs = makeDirs('bw-crash-');
  const broker = await startBroker();
  const sub = await subscribe(broker.url, PREFIX, 'crash-sub');
  const httpPort = await freePort();
  writeConfig(dirs, { mqttUrl: broker.url, httpPort });
  t.teardown(async () => {
    await sub.close();
    await broker.close();
    rmSync(dirs.root, { recursive: true, force: true });
  });

  const samples = sampleImages();
  const N = 24;
  const shas = new Set<string>();
  const files: { name: string; bytes: Buffer }[] = [];
  for (let i = 0; i < N; i++) {
    const bytes = jpegVariant(readFileSync(samples[i % samples.length]!), `crash-${i}`);
    files.push({ name: `img-${String(i).padStart(3, '0')}.jpg`, bytes });
  }

  const first = startDaemon(dirs.config, httpPort);
  t.teardown(() => first.child.kill('SIGKILL'));
  await first.ready();
  for (const f of files) writeFileSync(join(dirs.capture, f.name), f.bytes);
  await until(() => doneCount(dirs.data) >= 4, 60_000, 'first results');
  first.child.kill('SIGKILL');
  t.equal(await first.exited, 'SIGKILL', 'daemon killed');
  const atKill = doneCount(dirs.data);
  t.ok(atKill < N, `killed mid-batch (${atKill} of ${N} done)`);

  const second = startDaemon(dirs.config, httpPort);
  t.teardown(() => second.child.kill('SIGKILL'));
  await second.ready();
  await until(() => doneCount(dirs.data) === N, 90_000, 'every image classified after restart');

  const db = readDb(dirs.data);
  t.equal(db.integrity, 'ok', 'integrity_check ok');
  for (const r of db.rows) shas.add(r.sha256);
  t.equal(db.rows.length, N, 'exactly one result row per image (no duplicates, no failures)');
  t.equal(shas.size, N, 'one result per distinct image');
  const flagged = db.rows.filter((r) => r.flag === 1);
  t.ok(flagged.length > 0, `the tiny model flags some images (${flagged.length})`);
  const expectedAlerts = new Set(flagged.map((r) => eventId(r.sha256, r.model_version!, 'alert')));
  await sub.waitFor(
    (m) =>
      [...expectedAlerts].every((id) => eventIds(m, 'alert').has(id)) && eventIds(m, 'result').size === N,
    30_000,
    'every alert and result delivered',
  );
  t.pass(`all ${expectedAlerts.size} alerts reached the broker (deduped by event_id)`);
  t.equal(eventIds(sub.messages, 'result').size, N, 'every result delivered');

  second.child.kill('SIGTERM');
  t.equal(await second.exited, 0, 'SIGTERM → exit 0');
});
