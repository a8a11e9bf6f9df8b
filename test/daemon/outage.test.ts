/**
 * Broker outage with a daemon restart inside it: flags produced while the broker is down wait in
 * the SQLite outbox across the restart and all arrive once the broker is back.
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

/** Classified results: screened, or refused by the out-of-domain gate (then without a flag). */
function results(dataDir: string): { sha256: string; flag: number | null; model_version: string }[] {
  try {
    const db = new Database(join(dataDir, 'blastwatch.db'), { readonly: true, fileMustExist: true });
    try {
      return db
        .prepare("SELECT sha256, flag, model_version FROM results WHERE status IN ('done', 'out_of_domain')")
        .all() as {
        sha256: string;
        flag: number | null;
        model_version: string;
      }[];
    } finally {
      db.close();
    }
  } catch {
    return [];
  }
}

t.test(
  'broker down while flags are produced, daemon restarted during the outage: no alert lost',
  async (t) => {
    const dirs = makeDirs('bw-outage-');
    const broker = await startBroker();
    const sub = await subscribe(broker.url, PREFIX, 'outage-sub');
    const httpPort = await freePort();
    writeConfig(dirs, { mqttUrl: broker.url, httpPort, extra: { mqtt: { shutdown_flush_ms: 500 } } });
    t.teardown(async () => {
      await sub.close();
      await broker.close();
      rmSync(dirs.root, { recursive: true, force: true });
    });
    const samples = sampleImages();
    const drop = (from: number, to: number) => {
      for (let i = from; i < to; i++)
        writeFileSync(
          join(dirs.capture, `o-${i}.jpg`),
          jpegVariant(readFileSync(samples[i % samples.length]!), `outage-${i}`),
        );
    };

    const first = startDaemon(dirs.config, httpPort);
    t.teardown(() => first.child.kill('SIGKILL'));
    await first.ready();
    await sub.waitFor(
      (m) => m.some((x) => x.topic === `${PREFIX}/status` && x.payload === 'online'),
      10_000,
      'online',
    );

    await broker.pause();
    drop(0, 8);
    await until(() => results(dirs.data).length === 8, 60_000, 'first batch classified during the outage');
    first.child.kill('SIGTERM');
    t.equal(await first.exited, 0, 'clean exit with the broker down');

    const second = startDaemon(dirs.config, httpPort);
    t.teardown(() => second.child.kill('SIGKILL'));
    await second.ready();
    drop(8, 16);
    await until(() => results(dirs.data).length === 16, 60_000, 'second batch classified during the outage');
    t.notOk(eventIds(sub.messages, 'alert').size, 'nothing delivered while the broker was down');

    await broker.resume();
    const rows = results(dirs.data);
    const flagged = rows.filter((r) => r.flag === 1);
    t.ok(flagged.length > 0, `flags produced during the outage (${flagged.length})`);
    const expected = new Set(flagged.map((r) => eventId(r.sha256, r.model_version, 'alert')));
    // Wait for results as well: after the subscriber's own reconnect, alerts and results are not
    // delivered in a fixed order relative to each other.
    await sub.waitFor(
      (m) => [...expected].every((id) => eventIds(m, 'alert').has(id)) && eventIds(m, 'result').size === 16,
      30_000,
      'all alerts and results after the outage',
    );
    t.pass(`all ${expected.size} alerts arrived after the outage`);
    t.equal(eventIds(sub.messages, 'alert').size, expected.size, 'no unexpected alerts');
    t.equal(eventIds(sub.messages, 'result').size, 16, 'every result delivered');
    second.child.kill('SIGTERM');
    t.equal(await second.exited, 0);
  },
);
