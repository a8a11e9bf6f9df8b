/** Shared helpers for the daemon, publish and serve tests: an in-process aedes broker and a subscriber. */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { Aedes } from 'aedes';
import mqtt, { type MqttClient } from 'mqtt';

export interface TestBroker {
  port: number;
  url: string;
  broker: Aedes;
  /**
   * Every PUBLISH the broker accepted from a client (not its own $SYS or will messages), in
   * order: what a publisher got into the broker, independent of delivery to subscribers.
   */
  accepted: Received[];
  /**
   * An outage: stops listening and drops every connection, but keeps the broker's memory
   * (retained messages, persistent sessions of clean=false subscribers), like a restarted
   * broker with persistence.
   */
  pause(): Promise<void>;
  /** Listens again on the same port. */
  resume(): Promise<void>;
  /** Shuts the broker down for good. */
  close(): Promise<void>;
}

/** Finds a free TCP port on 127.0.0.1. */
export async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const { port } = srv.address() as AddressInfo;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

/** An aedes broker on `port` (0 = any), in process. */
export async function startBroker(port = 0): Promise<TestBroker> {
  const broker = await Aedes.createBroker();
  const accepted: Received[] = [];
  broker.on('publish', (packet, client) => {
    if (client) accepted.push(received(packet.topic, Buffer.from(packet.payload), packet.retain));
  });
  const sockets = new Set<Socket>();
  let server: Server | null = null;
  const listen = async (p: number): Promise<number> => {
    const srv = createServer((socket) => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      broker.handle(socket);
    });
    await new Promise<void>((resolve, reject) => {
      srv.once('error', reject);
      srv.listen(p, '127.0.0.1', () => resolve());
    });
    server = srv;
    return (srv.address() as AddressInfo).port;
  };
  const actual = await listen(port);
  const pause = async () => {
    const srv = server;
    server = null;
    for (const s of sockets) s.destroy();
    sockets.clear();
    if (srv) await new Promise<void>((resolve) => srv.close(() => resolve()));
  };
  return {
    port: actual,
    url: `mqtt://127.0.0.1:${actual}`,
    broker,
    accepted,
    pause,
    async resume() {
      await listen(actual);
    },
    async close() {
      await pause();
      await new Promise<void>((resolve) => broker.close(() => resolve()));
    },
  };
}

export interface Received {
  topic: string;
  payload: string;
  retain: boolean;
  json?: Record<string, unknown>;
}

export interface Subscriber {
  client: MqttClient;
  messages: Received[];
  /** Resolves once `predicate` holds over the received messages (polls on each message). */
  waitFor(predicate: (msgs: Received[]) => boolean, timeoutMs?: number, what?: string): Promise<void>;
  close(): Promise<void>;
}

function received(topic: string, payload: Buffer, retain: boolean): Received {
  const text = payload.toString();
  let json: Record<string, unknown> | undefined;
  try {
    const v = JSON.parse(text) as unknown;
    if (v && typeof v === 'object') json = v as Record<string, unknown>;
  } catch {
    /* plain text (status) */
  }
  return { topic, payload: text, retain, ...(json ? { json } : {}) };
}

/** A QoS 1 subscriber to `<prefix>/#` that keeps every message. It reconnects by itself. */
export async function subscribe(
  url: string,
  prefix: string,
  clientId = `test-sub-${process.pid}-${Math.random().toString(16).slice(2)}`,
): Promise<Subscriber> {
  const client = mqtt.connect(url, { clientId, reconnectPeriod: 200, clean: false });
  const messages: Received[] = [];
  const waiters = new Set<() => void>();
  client.on('message', (topic, payload, packet) => {
    messages.push(received(topic, payload, packet.retain));
    for (const w of [...waiters]) w();
  });
  client.on('connect', () => client.subscribe(`${prefix}/#`, { qos: 1 }));
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('subscriber could not connect')), 10_000);
    client.once('connect', () => {
      client.subscribe(`${prefix}/#`, { qos: 1 }, () => {
        clearTimeout(t);
        resolve();
      });
    });
  });
  return {
    client,
    messages,
    waitFor(predicate, timeoutMs = 30_000, what = 'messages') {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (predicate(messages)) {
            clearTimeout(t);
            waiters.delete(check);
            resolve();
          }
        };
        const t = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`timed out waiting for ${what}; got ${messages.length} messages`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
    async close() {
      await client.endAsync(true);
    },
  };
}

/** Distinct event ids received on one topic suffix. */
export function eventIds(msgs: Received[], suffix: string): Set<string> {
  const out = new Set<string>();
  for (const m of msgs)
    if (m.topic.endsWith(`/${suffix}`) && typeof m.json?.event_id === 'string') out.add(m.json.event_id);
  return out;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `fn` until it returns true (for state outside our control: files, databases). */
export async function until(
  fn: () => boolean | Promise<boolean>,
  timeoutMs = 30_000,
  what = 'condition',
  everyMs = 50,
): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await fn())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(everyMs);
  }
}

// ---- the daemon as a child process -------------------------------------------------------------

export const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
export const cliEntry = join(repoRoot, 'src/cli.ts');
export const tinyModelDir = join(repoRoot, 'test/fixtures/tiny-model');
/**
 * The model the daemon tests run: the trained model in models/ when it exists (what ships),
 * else the tiny test model (arbitrary but deterministic flags: enough for the mechanics).
 * BW_TEST_MODEL=tiny forces the tiny one, BW_TEST_MODEL=<dir> picks a folder.
 */
export const testModelDir =
  process.env.BW_TEST_MODEL === 'tiny'
    ? tinyModelDir
    : (process.env.BW_TEST_MODEL ??
      (existsSync(join(repoRoot, 'models/model.json')) ? join(repoRoot, 'models') : tinyModelDir));

/** Real smear images: the committed samples, else the shared data set on the dev machine. */
export function sampleImages(): string[] {
  const roots = [join(repoRoot, 'test/fixtures/samples'), '/work/shared/data/all-smears'];
  for (const root of roots) {
    if (!existsSync(root)) continue;
    const out: string[] = [];
    for (const cls of readdirSync(root).sort()) {
      const dir = join(root, cls);
      let names: string[];
      try {
        names = readdirSync(dir)
          .filter((n) => /\.jpe?g$/i.test(n))
          .sort();
      } catch {
        continue;
      }
      out.push(...names.slice(0, 12).map((n) => join(dir, n)));
    }
    if (out.length > 0) return out;
  }
  throw new Error('no sample images: expected test/fixtures/samples/<Class>/*.jpg');
}

export interface TestDirs {
  root: string;
  capture: string;
  data: string;
  config: string;
}

/** Temp capture + data folders and a config file for the daemon. */
export function makeDirs(prefix = 'bw-e2e-'): TestDirs {
  const root = mkdtempSync(join(tmpdir(), prefix));
  const capture = join(root, 'captures');
  const data = join(root, 'var');
  mkdirSync(capture);
  mkdirSync(data);
  return { root, capture, data, config: join(root, 'config.yaml') };
}

/**
 * The same image with different bytes (a JPEG comment segment after SOI): a new sha256, the same
 * pixels. Lets tests and the soak script feed thousands of distinct files from a few samples.
 */
export function jpegVariant(jpeg: Buffer, tag: string): Buffer {
  if (jpeg[0] !== 0xff || jpeg[1] !== 0xd8) throw new Error('not a JPEG');
  const text = Buffer.from(`blastwatch-variant:${tag}`);
  const seg = Buffer.alloc(4);
  seg.writeUInt16BE(0xfffe, 0);
  seg.writeUInt16BE(text.length + 2, 2);
  return Buffer.concat([jpeg.subarray(0, 2), seg, text, jpeg.subarray(2)]);
}

/** Test settings: fast stability/rescan/retry, the tiny model, one device id. */
export function writeConfig(
  dirs: TestDirs,
  over: { mqttUrl: string | null; httpPort: number; extra?: Record<string, Record<string, unknown>> },
): void {
  const cfg: Record<string, Record<string, unknown> | string> = {
    device_id: 'e2e-scope',
    log: { level: 'info', pretty: false },
    capture: {
      dir: dirs.capture,
      stability_ms: 150,
      rescan_interval_s: 1,
      retry_backoff_ms: 150,
      max_attempts: 4,
      ...over.extra?.capture,
    },
    data: { dir: dirs.data, min_free_disk_mb: 1, ...over.extra?.data },
    model: { dir: testModelDir, threads: 1, ...over.extra?.model },
    pipeline: { concurrency: 2, ...over.extra?.pipeline },
    mqtt: {
      url: over.mqttUrl,
      keepalive_s: 5,
      health_interval_s: 5,
      shutdown_flush_ms: 3000,
      ...over.extra?.mqtt,
    },
    http: { host: '127.0.0.1', port: over.httpPort, ...over.extra?.http },
  };
  if (over.extra?.image) cfg.image = over.extra.image;
  writeFileSync(dirs.config, stringify(cfg));
}

export interface DaemonProcess {
  child: ChildProcess;
  output(): string;
  /** Resolves with the exit code (or signal name). */
  exited: Promise<number | string>;
  /** Waits until /readyz answers 200. */
  ready(timeoutMs?: number): Promise<void>;
}

/** Starts `blastwatch run --config FILE` through tsx. */
export function startDaemon(config: string, httpPort: number, env: NodeJS.ProcessEnv = {}): DaemonProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', cliEntry, 'run', '--config', config], {
    cwd: repoRoot,
    env: { ...process.env, BLASTWATCH_CONFIG: '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout?.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (out += d));
  const exited = new Promise<number | string>((resolve) =>
    child.on('exit', (code, signal) => resolve(code ?? signal ?? -1)),
  );
  let gone = false;
  void exited.then(() => (gone = true));
  return {
    child,
    output: () => out,
    exited,
    async ready(timeoutMs = 60_000) {
      await until(
        async () => {
          if (gone) throw new Error(`daemon exited during start-up:\n${out.slice(-3000)}`);
          try {
            const res = await fetch(`http://127.0.0.1:${httpPort}/readyz`);
            return res.status === 200;
          } catch {
            return false;
          }
        },
        timeoutMs,
        'daemon ready',
        100,
      );
    },
  };
}
