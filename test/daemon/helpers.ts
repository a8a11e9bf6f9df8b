/** Shared helpers for the daemon, publish and serve tests: an in-process aedes broker and a subscriber. */
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { Aedes } from 'aedes';
import mqtt, { type MqttClient } from 'mqtt';

export interface TestBroker {
  port: number;
  url: string;
  broker: Aedes;
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

/** A QoS 1 subscriber to `<prefix>/#` that keeps every message. It reconnects by itself. */
export async function subscribe(url: string, prefix: string, clientId = `test-sub-${process.pid}-${Math.random().toString(16).slice(2)}`): Promise<Subscriber> {
  const client = mqtt.connect(url, { clientId, reconnectPeriod: 200, clean: false });
  const messages: Received[] = [];
  const waiters = new Set<() => void>();
  client.on('message', (topic, payload, packet) => {
    const text = payload.toString();
    let json: Record<string, unknown> | undefined;
    try {
      const v = JSON.parse(text) as unknown;
      if (v && typeof v === 'object') json = v as Record<string, unknown>;
    } catch {
      /* plain text (status) */
    }
    messages.push({ topic, payload: text, retain: packet.retain, ...(json ? { json } : {}) });
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
  for (const m of msgs) if (m.topic.endsWith(`/${suffix}`) && typeof m.json?.event_id === 'string') out.add(m.json.event_id);
  return out;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `fn` until it returns true (for state outside our control: files, databases). */
export async function until(fn: () => boolean | Promise<boolean>, timeoutMs = 30_000, what = 'condition', everyMs = 50): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await fn())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(everyMs);
  }
}
