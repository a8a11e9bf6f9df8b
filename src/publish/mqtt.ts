import { readFileSync } from 'node:fs';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import type { Logger } from '../log.js';
import type { ResolvedConfig } from '../config/load.js';
import type { Extension } from '../runtime/extension.js';
import type { EventBus } from '../runtime/events.js';
import type { Metrics } from '../runtime/metrics.js';
import type { OutboxRow, Store } from '../store/index.js';
import { STATUS_OFFLINE, STATUS_ONLINE, type HealthPayload } from './payloads.js';

export * from './payloads.js';
export * from './specimen-payload.js';

/** The mqtt config section of a daemon that publishes (url set). */
export type MqttConfig = ResolvedConfig['mqtt'] & { url: string };

export interface OutboxPublisherOptions {
  config: MqttConfig;
  store: Store;
  bus: EventBus;
  metrics: Metrics;
  log: Logger;
  health: () => HealthPayload;
  /** Messages published and not yet acknowledged at once (order is kept within the window). */
  window?: number;
  /** Reconnect when nothing was acknowledged for this long with messages in flight (default 60 s). */
  stallMs?: number;
}

/**
 * Publishes the SQLite outbox over MQTT with at-least-once delivery. The outbox is the source of
 * truth, not mqtt.js's in-memory store: a row is marked sent only in the PUBACK callback; after a
 * reconnect or a restart every unsent row goes out again, in id order. Consumers dedupe on the
 * payload's event_id.
 */
export class OutboxPublisher implements Extension {
  readonly name = 'mqtt';
  private client: MqttClient | null = null;
  /** Outbox ids published on this connection and not yet acknowledged. */
  private readonly inflight = new Set<number>();
  /** Highest id handed to mqtt.js on this connection; the next query starts after it. */
  private cursor = 0;
  private acked: number[] = [];
  private ackTimer: NodeJS.Timeout | null = null;
  private healthTimer: NodeJS.Timeout | null = null;
  private stallTimer: NodeJS.Timeout | null = null;
  /** When the last PUBACK arrived (or the window was last empty). */
  private lastProgressAt = Date.now();
  /** True between our 'connect' handling and the next 'close' (mqtt.js's own resend is done). */
  private ready = false;
  private draining = false;
  private drainAgain = false;
  /**
   * Every unsent row committed so far has been read (the last query returned less than it could):
   * new rows arrive with their `outbox:added` event and need no query. Cleared on connect and
   * whenever rows are committed that were not published straight from the event.
   */
  private caughtUp = false;
  private stopped = false;
  private readonly window: number;
  private lastError: string | null = null;
  /** Since when the broker has been out of reach (not yet reached counts from start()). */
  private downSince: number | null = null;
  private loggedDown = false;
  private readonly offBus: (() => void)[] = [];

  constructor(private readonly o: OutboxPublisherOptions) {
    this.window = o.window ?? 32;
  }

  get connected(): boolean {
    return this.client?.connected === true;
  }

  get error(): string | null {
    return this.lastError;
  }

  /** When the connection was lost (or start() if the broker was never reached); null while connected. */
  get disconnectedSince(): number | null {
    return this.connected ? null : this.downSince;
  }

  topic(suffix: string): string {
    return `${this.o.config.topic_prefix}/${suffix}`;
  }

  start(): void {
    const s = this.o.config;
    const opts: IClientOptions = {
      clientId: s.client_id,
      keepalive: s.keepalive_s,
      reconnectPeriod: s.reconnect_ms,
      connectTimeout: 10_000,
      // A broker that refuses us (auth, server busy) is retried instead of giving up for good.
      reconnectOnConnackError: true,
      clean: true,
      // Nothing is queued while offline: the outbox is the queue.
      queueQoSZero: false,
      will: { topic: this.topic('status'), payload: Buffer.from(STATUS_OFFLINE), qos: 1, retain: true },
      rejectUnauthorized: s.reject_unauthorized,
    };
    if (s.username !== null) opts.username = s.username;
    if (s.password !== null) opts.password = s.password;
    if (s.ca_file) opts.ca = readFileSync(s.ca_file);
    if (s.cert_file) opts.cert = readFileSync(s.cert_file);
    if (s.key_file) opts.key = readFileSync(s.key_file);

    this.downSince = Date.now();
    const client = mqtt.connect(s.url, opts);
    this.client = client;
    client.on('connect', () => this.onConnect());
    client.on('close', () => {
      this.ready = false;
      this.o.metrics.mqttConnected.set(0);
      this.downSince ??= Date.now();
      if (!this.stopped) {
        if (!this.loggedDown)
          this.o.log.warn(
            { url: redactUrl(s.url), error: this.lastError },
            'MQTT broker unreachable; results wait in the outbox',
          );
        this.loggedDown = true;
      }
    });
    client.on('error', (err) => {
      this.lastError = err.message;
      this.o.log.debug({ err: err.message }, 'mqtt error');
    });
    this.offBus.push(this.o.bus.on('outbox:added', ({ rows }) => this.onAdded(rows)));
    this.healthTimer = setInterval(() => this.publishHealth(), s.health_interval_s * 1000);
    this.stallTimer = setInterval(() => this.checkStall(), Math.min(15_000, this.stallMs / 2));
    this.stallTimer.unref();
  }

  /** Acknowledgements missing for this long while connected = a broker that lost them. */
  private get stallMs(): number {
    return this.o.stallMs ?? 60_000;
  }

  /**
   * A broker can keep the connection up and never acknowledge (overloaded, buggy, a proxy that
   * dropped packets). mqtt.js re-sends unacknowledged messages only after a reconnect, so force one.
   */
  private checkStall(): void {
    if (this.inflight.size === 0 || !this.connected) {
      this.lastProgressAt = Date.now();
      return;
    }
    if (Date.now() - this.lastProgressAt < this.stallMs) return;
    this.o.log.warn({ inflight: this.inflight.size }, 'no PUBACK for a while: reconnecting to re-send');
    this.lastProgressAt = Date.now();
    this.client?.stream?.destroy();
  }

  private onConnect(): void {
    this.lastError = null;
    this.downSince = null;
    this.loggedDown = false;
    this.o.metrics.mqttConnects.inc();
    this.o.metrics.mqttConnected.set(1);
    this.o.log.info({ url: redactUrl(this.o.config.url) }, 'MQTT connected');
    // mqtt.js has re-sent (and seen acknowledged) what it kept from the last connection before
    // emitting 'connect'; anything still unacknowledged is re-read from the outbox.
    this.flushAcks();
    this.inflight.clear();
    this.cursor = 0;
    this.caughtUp = false;
    this.ready = true;
    this.client?.publish(this.topic('status'), STATUS_ONLINE, { qos: 1, retain: true });
    this.publishHealth();
    this.drain();
  }

  /**
   * Rows just committed: published from the event when they directly follow the last row read
   * and fit in the window (no query per result), else read from the outbox in order.
   */
  private onAdded(rows: readonly OutboxRow[] | undefined): void {
    const first = rows?.[0];
    if (
      rows &&
      first &&
      this.caughtUp &&
      !this.draining &&
      !this.stopped &&
      this.ready &&
      this.connected &&
      first.id === this.cursor + 1 &&
      rows.length <= this.window - this.inflight.size &&
      this.publishRows(rows)
    )
      return;
    this.caughtUp = false;
    this.drain();
  }

  /** Publishes unsent rows in order, keeping at most `window` unacknowledged. */
  drain(): void {
    if (this.stopped || !this.ready || !this.connected || this.caughtUp) return;
    if (this.draining) {
      this.drainAgain = true;
      return;
    }
    this.draining = true;
    try {
      do {
        this.drainAgain = false;
        const room = this.window - this.inflight.size;
        if (room <= 0) break;
        const rows = this.o.store.outbox.pending(this.cursor, room);
        if (!this.publishRows(rows)) break;
        if (rows.length === room) this.drainAgain = true;
        else this.caughtUp = true;
      } while (this.drainAgain && this.connected && this.inflight.size < this.window);
    } finally {
      this.draining = false;
    }
  }

  /** Hands rows to the client in order; false when the connection went before all were handed. */
  private publishRows(rows: readonly OutboxRow[]): boolean {
    for (const row of rows) {
      const client = this.client;
      if (!client?.connected) return false;
      this.inflight.add(row.id);
      this.cursor = row.id;
      client.publish(
        this.topic(row.topic),
        row.payload,
        { qos: row.qos, retain: row.retain === 1 },
        (err) => {
          this.inflight.delete(row.id);
          if (err) return; // connection lost: re-read from the outbox on reconnect
          this.acked.push(row.id);
          this.scheduleAckFlush();
          this.drain();
        },
      );
    }
    return true;
  }

  /** PUBACKs are written in small batches: one transaction, not one fsync per message. */
  private scheduleAckFlush(): void {
    if (this.acked.length >= 64) return this.flushAcks();
    this.ackTimer ??= setTimeout(() => this.flushAcks(), 25);
  }

  private flushAcks(): void {
    if (this.ackTimer) clearTimeout(this.ackTimer);
    this.ackTimer = null;
    if (this.acked.length === 0) return;
    const ids = this.acked;
    this.acked = [];
    try {
      this.o.store.outbox.markSent(ids);
    } catch (err) {
      // Not marked: they go out again later (a duplicate with the same event_id, never a loss).
      this.o.store.noteFailure(err);
      this.o.log.warn({ err }, 'could not mark outbox messages sent');
      return;
    }
    this.o.metrics.mqttPublished.inc({}, ids.length);
    this.o.bus.emit('outbox:sent', { ids });
  }

  publishHealth(): void {
    if (!this.connected) return;
    try {
      this.client?.publish(this.topic('health'), JSON.stringify(this.o.health()), { qos: 1, retain: true });
    } catch (err) {
      this.o.log.warn({ err }, 'health message failed');
    }
  }

  /** Waits until the outbox is empty or `timeoutMs` passed (broker down included); true when empty. */
  async flush(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      this.flushAcks();
      if (this.o.store.outbox.backlog().count === 0) return true;
      const left = deadline - Date.now();
      if (left <= 0 || this.stopped) return false;
      this.drain();
      await new Promise<void>((resolve) => {
        const t = setTimeout(done, Math.min(left, 200));
        const off = this.o.bus.on('outbox:sent', done);
        function done() {
          clearTimeout(t);
          off();
          resolve();
        }
      });
    }
  }

  /**
   * Waits up to mqtt.shutdown_flush_ms for the outbox to drain, then publishes the retained
   * `offline` and disconnects cleanly (the will is not sent). What is unsent goes out after the
   * next start.
   */
  async stop(): Promise<void> {
    if (this.stopped) return;
    if (!(await this.flush(this.o.config.shutdown_flush_ms)))
      this.o.log.warn(
        { backlog: this.o.store.outbox.backlog().count },
        'outbox not empty at shutdown: sent after the next start',
      );
    this.stopped = true;
    for (const off of this.offBus) off();
    if (this.healthTimer) clearInterval(this.healthTimer);
    if (this.stallTimer) clearInterval(this.stallTimer);
    this.flushAcks();
    const client = this.client;
    if (!client) return;
    if (client.connected) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 2000);
        client.publish(this.topic('status'), STATUS_OFFLINE, { qos: 1, retain: true }, () => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    this.flushAcks();
    await client.endAsync(true).catch(() => undefined);
    this.flushAcks();
  }
}

/** The broker URL without credentials, for logs. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return url.replace(/\/\/[^@/]*@/, '//***@');
  }
}
