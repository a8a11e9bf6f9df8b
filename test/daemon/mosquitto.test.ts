/**
 * Integration with a real Debian mosquitto (CI installs the `mosquitto` package): results and
 * alerts arrive, and a broker restart (persistence on, like a production broker) loses nothing.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import t from 'tap';
import { createApp } from '../../src/app.js';
import { loadConfig } from '../../src/config/load.js';
import {
  eventIds,
  freePort,
  jpegVariant,
  makeDirs,
  sampleImages,
  subscribe,
  until,
  writeConfig,
} from './helpers.js';

const MOSQUITTO = process.env.MOSQUITTO_BIN ?? '/usr/sbin/mosquitto';
const PREFIX = 'blastwatch/e2e-scope';
const log = pino({ level: process.env.BW_TEST_LOG ?? 'silent' });

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });
}

async function startMosquitto(conf: string, port: number): Promise<ChildProcess> {
  const child = spawn(MOSQUITTO, ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  await until(
    async () => {
      if (child.exitCode !== null) throw new Error(`mosquitto exited: ${err}`);
      return portOpen(port);
    },
    10_000,
    'mosquitto listening',
  );
  return child;
}

async function stopMosquitto(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const gone = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await gone;
}

t.test('the daemon publishes to a real mosquitto and survives its restart', async (t) => {
  if (!existsSync(MOSQUITTO)) {
    t.fail(`install mosquitto: ${MOSQUITTO} not found (Debian: apt-get install mosquitto)`);
    return;
  }
  const dirs = makeDirs('bw-mosq-');
  const port = await freePort();
  const conf = join(dirs.root, 'mosquitto.conf');
  writeFileSync(
    conf,
    [
      `listener ${port} 127.0.0.1`,
      'allow_anonymous true',
      'persistence true',
      // Run as root, mosquitto drops to the `mosquitto` user and could not save its persistence
      // file in our temp dir (sessions would be lost across the restart): stay who we are.
      `user ${userInfo().username}`,
      `persistence_location ${dirs.root}/`,
      'log_dest stderr',
      'log_type error',
      '',
    ].join('\n'),
  );
  let mosq = await startMosquitto(conf, port);
  const url = `mqtt://127.0.0.1:${port}`;
  const sub = await subscribe(url, PREFIX, 'mosq-sub');
  writeConfig(dirs, { mqttUrl: url, httpPort: await freePort() });
  const { config } = loadConfig(dirs.config, {});
  config.mqtt.reconnect_ms = 200;
  config.capture.dir_probe_interval_ms = 200;
  const app = await createApp(config, log, { plugins: [] });
  t.teardown(async () => {
    await app.stop();
    await sub.close();
    await stopMosquitto(mosq);
    rmSync(dirs.root, { recursive: true, force: true });
  });
  await app.start();
  const samples = sampleImages();
  const drop = (from: number, to: number) => {
    for (let i = from; i < to; i++)
      writeFileSync(
        join(dirs.capture, `m-${i}.jpg`),
        jpegVariant(readFileSync(samples[i % samples.length]!), `mosq-${i}`),
      );
  };
  drop(0, 4);
  await sub.waitFor((m) => eventIds(m, 'result').size === 4, 60_000, 'results via mosquitto');
  t.pass('results delivered through mosquitto');

  await stopMosquitto(mosq);
  t.ok(existsSync(join(dirs.root, 'mosquitto.db')), 'mosquitto saved its sessions (persistence) on stop');
  drop(4, 10);
  // Classified: screened, or refused by the out-of-domain gate (a sample may be either).
  const classified = (): number => app.store.results.counts().done + app.store.results.counts().out_of_domain;
  await until(() => classified() === 10, 60_000, 'classified while mosquitto is down');
  t.ok(app.store.outbox.backlog().count > 0, 'messages wait in the outbox');
  mosq = await startMosquitto(conf, port);
  await until(() => app.store.outbox.backlog().count === 0, 60_000, 'outbox drained after the restart');
  const flagged = app.store.results.list({ limit: 100, flagged: true }).length;
  await sub
    .waitFor(
      (m) => eventIds(m, 'result').size === 10 && eventIds(m, 'alert').size === flagged,
      60_000,
      'every result and alert after the broker restart',
    )
    .catch((err: Error) => {
      throw new Error(
        `${err.message}: ${sub.messages.map((m) => `${m.topic}:${String(m.json?.file ?? m.payload.slice(0, 10))}`).join(', ')}`,
      );
    });
  t.pass(`10 results and ${flagged} alerts delivered across a mosquitto restart`);
});
