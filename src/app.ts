/**
 * The composition root: the ONE place that builds the stages and wires them together.
 *
 *   watcher ──hint──▶ pipeline (queue → read/hash → prepareImage → classifier worker → store) ──▶ bus
 *                                                                                    │
 *                       MQTT outbox publisher ◀── outbox:added ────────────────────────┤
 *                       HTTP (ops API + dashboard live feed) ◀── result:stored ────────┘
 *
 * Stages know nothing about each other beyond the typed event bus and the store.
 */
import { mkdirSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import type { FastifyInstance } from 'fastify';
import type { Config } from './config/schema.js';
import { isLoopbackHost } from './config/load.js';
import type { Logger } from './log.js';
import { EventBus } from './pipeline/events.js';
import { createMetrics } from './pipeline/metrics.js';
import { Pipeline } from './pipeline/index.js';
import type { ClassifierLike, PrepareImage } from './pipeline/ports.js';
import { HEALTH_SCHEMA, type HealthPayload } from './publish/payloads.js';
import { OutboxPublisher, redactUrl } from './publish/mqtt.js';
import { createHttpServer, type ServeContext, type ServerPlugin } from './serve/index.js';
import { openStore, type Store } from './store/index.js';
import { removeMedia } from './store/media.js';
import type { CaptureWatcher, WatchStatus } from './watch/index.js';

export interface AppDeps {
  /** Defaults to src/preprocess's prepareImage. */
  prepareImage?: PrepareImage;
  /** Defaults to src/infer's createClassifier on config.model.dir. */
  classifier?: ClassifierLike & { close?(): Promise<void> };
  /** Extra HTTP features; by default the dashboard (src/serve/dashboard) when it is installed. */
  plugins?: ServerPlugin[];
  /** Tests shorten the watcher's folder probe. */
  dirProbeIntervalMs?: number;
  /** mqtt.js reconnect delay (tests shorten it). */
  mqttReconnectMs?: number;
}

export interface App {
  config: Config;
  store: Store;
  bus: EventBus;
  pipeline: Pipeline;
  http: FastifyInstance;
  /** Address the HTTP server listens on (after start). */
  url: string;
  publisher: OutboxPublisher | null;
  watcher: CaptureWatcher;
  context: ServeContext;
  start(): Promise<void>;
  /** Graceful stop: intake off, in-flight finished, outbox flushed (bounded), offline, closed. */
  stop(): Promise<void>;
  /**
   * Called when the daemon cannot go on by itself (the inference worker failed for good): the
   * caller should stop and exit non-zero so that systemd/Docker restarts it.
   */
  onFatal(listener: (reason: string) => void): void;
}

/** The dashboard plugin's module, loaded when present (it lands separately). */
async function loadDashboard(log: Logger): Promise<ServerPlugin[]> {
  const modulePath = './serve/dashboard/index.js';
  try {
    const mod = (await import(modulePath)) as { registerDashboard?: ServerPlugin; default?: ServerPlugin };
    const plugin = mod.registerDashboard ?? mod.default;
    return plugin ? [plugin] : [];
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ERR_MODULE_NOT_FOUND' && String((err as Error).message).includes('dashboard')) {
      log.info('dashboard not installed: serving the ops API only');
      return [];
    }
    throw err;
  }
}

export async function createApp(config: Config, log: Logger, deps: AppDeps = {}): Promise<App> {
  const startedAt = Date.now();
  mkdirSync(config.data.dir, { recursive: true });
  const bus = new EventBus();
  bus.onListenerError = (err, topic) => log.error({ err, topic }, 'event listener failed');
  const metrics = createMetrics();

  // The model first: without one there is nothing to do, and the error must be one clear line.
  let classifier = deps.classifier;
  if (!classifier) {
    const { createClassifier } = await import('./infer/index.js');
    classifier = await createClassifier({
      modelDir: config.model.dir as string,
      executionProviders: config.model.execution_providers,
      threads: config.model.threads,
      log: log.child({ component: 'infer' }),
      threshold: config.model.threshold,
      uncertainBand: config.model.uncertain_band,
    });
  }
  const info = classifier.info;
  metrics.info.set(1, {
    name: info.name,
    version: info.version,
    execution_provider: info.executionProvider,
    precision: info.precision,
  });
  let prepareImage = deps.prepareImage;
  if (!prepareImage) {
    const mod = await import('./preprocess/index.js');
    prepareImage = mod.prepareImage;
  }

  let store: Store;
  try {
    store = openStore({ dataDir: config.data.dir, log: log.child({ component: 'store' }) });
  } catch (err) {
    // The classifier's worker thread would keep the process alive after the one-line error
    // (read-only or unwritable data dir): `blastwatch run` printed it and then never exited.
    if (!deps.classifier) await classifier.close?.().catch(() => undefined);
    throw err;
  }
  const mqttOn = config.mqtt.url !== null;
  const pipeline = new Pipeline({
    store,
    bus,
    metrics,
    log: log.child({ component: 'pipeline' }),
    prepareImage,
    classifier,
    deviceId: config.device_id as string,
    dataDir: config.data.dir,
    captureDir: config.capture.dir,
    publish: mqttOn,
    concurrency: config.pipeline.concurrency,
    queueMax: config.pipeline.queue_max,
    maxAttempts: config.capture.max_attempts,
    retryBackoffMs: config.capture.retry_backoff_ms,
    maxFileBytes: Math.round(config.image.max_file_mb * 1024 * 1024),
    limitInputPixels: config.image.max_input_pixels,
    segment: {
      k: config.segment.k,
      threshold: config.segment.threshold,
      minObjectArea: config.segment.min_object_area,
      minHoleArea: config.segment.min_hole_area,
    },
    moveProcessedTo: config.capture.move_processed_to,
    moveQuarantinedTo: config.capture.move_quarantined_to,
    minFreeDiskBytes: config.data.min_free_disk_mb * 1024 * 1024,
  });

  const { createCaptureWatcher } = await import('./watch/index.js');
  const watcher = createCaptureWatcher(
    {
      dir: config.capture.dir,
      recursive: config.capture.recursive,
      extensions: config.capture.extensions,
      ignore: config.capture.ignore,
      usePolling: config.capture.use_polling,
      pollIntervalMs: config.capture.poll_interval_ms,
      stabilityMs: config.capture.stability_ms,
      rescanIntervalS: config.capture.rescan_interval_s,
      requireMount: config.capture.require_mount,
      ...(deps.dirProbeIntervalMs !== undefined ? { dirProbeIntervalMs: deps.dirProbeIntervalMs } : {}),
    },
    { onCandidate: (file) => void pipeline.offer({ ...file, origin: 'capture' }) },
    log,
  );
  let watcherStarted = false;
  // Backpressure drops hints; when the queue has drained, scan again at once instead of waiting
  // for the next periodic scan, so a large backlog is worked through at full speed.
  let hintsDropped = false;
  bus.on('file:dropped', () => (hintsDropped = true));
  bus.on('pipeline:idle', () => {
    if (!hintsDropped || !watcherStarted) return;
    hintsDropped = false;
    void watcher.rescan().catch((err: unknown) => log.warn({ err }, 'rescan failed'));
  });
  bus.on('disk:state', ({ low }) => {
    if (!low && watcherStarted) void watcher.rescan().catch(() => undefined);
  });
  let lastWatch = '';
  /** The watcher's status; a change is announced on the bus (dashboard, logs) when observed. */
  const watchStatus = (): WatchStatus => {
    const w = watcher.status();
    const key = `${w.running}|${w.dirAvailable}|${w.lastError ?? ''}`;
    if (key !== lastWatch) {
      lastWatch = key;
      bus.emit('watcher:state', { running: w.running, dirAvailable: w.dirAvailable, lastError: w.lastError });
    }
    return w;
  };

  let publisher: OutboxPublisher | null = null;
  const health = (): HealthPayload => {
    const w = watchStatus();
    const problems = readiness().reasons;
    const free = pipeline.diskFreeBytes();
    if (pipeline.diskLow())
      problems.push(`data disk nearly full (${Math.round((free ?? 0) / 1048576)} MB free)`);
    if (pipeline.storeError) problems.push(`database: ${pipeline.storeError}`);
    const last = pipeline.lastImageAt ?? store.lastProcessedAt();
    return {
      schema: HEALTH_SCHEMA,
      device_id: config.device_id as string,
      state: problems.length === 0 ? 'ok' : 'degraded',
      problems,
      uptime_s: Math.round((Date.now() - startedAt) / 1000),
      queue_depth: pipeline.queueDepth,
      in_flight: pipeline.inFlight,
      processed: store.counts(),
      latency_ms: {
        p50: roundMs(metrics.latency.percentile(50)),
        p95: roundMs(metrics.latency.percentile(95)),
      },
      outbox_backlog: mqttOn ? store.outboxBacklog().count : 0,
      model: {
        name: info.name,
        version: info.version,
        execution_provider: info.executionProvider,
        precision: info.precision,
      },
      disk_free_bytes: free,
      last_image_at: last === null ? null : new Date(last).toISOString(),
      watcher: {
        running: w.running,
        dir_available: w.dirAvailable,
        last_scan_at: w.lastScanAt === null ? null : new Date(w.lastScanAt).toISOString(),
        last_error: w.lastError,
      },
      at: new Date().toISOString(),
    };
  };
  const readiness = () => {
    const reasons: string[] = [];
    const ch = classifier?.health?.();
    if (ch && ch.state !== 'ready' && ch.state !== 'crashed')
      reasons.push(`model: ${ch.state} (${ch.lastError ?? ''})`);
    if (!store.open) reasons.push('database closed');
    const w = watchStatus();
    if (!watcherStarted || !w.running) reasons.push('watcher not running');
    else if (!w.dirAvailable)
      reasons.push(
        `capture folder unavailable: ${config.capture.dir}${w.lastError ? ` (${w.lastError})` : ''}`,
      );
    return { ready: reasons.length === 0, reasons };
  };

  if (mqttOn) {
    publisher = new OutboxPublisher({
      settings: {
        url: config.mqtt.url as string,
        username: config.mqtt.username,
        password: config.mqtt.password,
        clientId: config.mqtt.client_id as string,
        topicPrefix: config.mqtt.topic_prefix as string,
        caFile: config.mqtt.ca_file,
        certFile: config.mqtt.cert_file,
        keyFile: config.mqtt.key_file,
        rejectUnauthorized: config.mqtt.reject_unauthorized,
        keepaliveS: config.mqtt.keepalive_s,
        healthIntervalS: config.mqtt.health_interval_s,
        ...(deps.mqttReconnectMs !== undefined ? { reconnectMs: deps.mqttReconnectMs } : {}),
      },
      store,
      bus,
      metrics,
      log: log.child({ component: 'mqtt' }),
      health,
    });
  }

  const context: ServeContext = {
    config,
    log,
    store,
    pipeline,
    bus,
    metrics,
    classifier,
    health,
    readiness,
    mqtt: () => ({
      enabled: mqttOn,
      connected: publisher?.connected ?? false,
      url: config.mqtt.url === null ? null : redactUrl(config.mqtt.url),
      error: publisher?.error ?? null,
    }),
    auth: { loopback: isLoopbackHost(config.http.host), token: config.http.auth_token, authenticators: [] },
    startedAt,
  };
  metrics.watcherRunning.set(() => (watchStatus().running && watchStatus().dirAvailable ? 1 : 0));
  const plugins = deps.plugins ?? (await loadDashboard(log));
  const http = await createHttpServer(context, plugins);

  let maintenanceTimer: NodeJS.Timeout | null = null;
  const maintenance = () => {
    try {
      const removed = store.applyRetention({
        days: config.data.retention_days,
        maxRows: config.data.retention_max_rows,
      });
      for (const id of removed.ids) void removeMedia(config.data.dir, id);
      for (const path of removed.uploadPaths) void rm(path, { force: true });
      if (removed.ids.length) log.info({ removed: removed.ids.length }, 'retention: old results removed');
      const cp = store.checkpoint();
      if (cp.busy) log.debug({ cp }, 'checkpoint could not finish (readers active)');
      pipeline.diskFreeBytes();
    } catch (err) {
      log.warn({ err }, 'maintenance failed');
    }
  };

  const fatalListeners: ((reason: string) => void)[] = [];
  classifier.onError?.(() => {
    const h = classifier?.health?.();
    if (h?.state === 'failed') {
      const reason = `inference worker failed for good: ${h.lastError ?? 'unknown error'}`;
      log.fatal(reason);
      for (const l of fatalListeners) l(reason);
    }
  });

  const app: App = {
    config,
    store,
    bus,
    pipeline,
    http,
    url: '',
    publisher,
    watcher,
    context,
    onFatal(listener) {
      fatalListeners.push(listener);
    },
    async start() {
      if (!mqttOn) log.info('MQTT off (mqtt.url is null): results are stored and served, not published');
      else publisher?.start();
      await http.listen({ host: config.http.host, port: config.http.port });
      const addr = http.server.address();
      const port = typeof addr === 'object' && addr ? addr.port : config.http.port;
      const host = config.http.host.includes(':') ? `[${config.http.host}]` : config.http.host;
      app.url = `http://${host}:${port}`;
      maintenance();
      maintenanceTimer = setInterval(maintenance, config.data.maintenance_interval_s * 1000);
      pipeline.resumeRetries();
      await watcher.start();
      watcherStarted = true;
      watchStatus();
      // The health sent on connect may predate the watcher: refresh the retained one now.
      publisher?.publishHealth();
      log.info(
        {
          capture: config.capture.dir,
          data: config.data.dir,
          http: app.url,
          model: `${info.name} ${info.version}`,
          provider: info.executionProvider,
          mqtt: config.mqtt.url === null ? 'off' : redactUrl(config.mqtt.url),
        },
        'blastwatch running',
      );
    },
    async stop() {
      log.info('stopping: no new images; finishing the ones in progress');
      await watcher.stop().catch((err: unknown) => log.warn({ err }, 'watcher stop failed'));
      watcherStarted = false;
      await pipeline.stop();
      if (maintenanceTimer) clearInterval(maintenanceTimer);
      if (publisher) {
        const empty = await publisher.flush(config.mqtt.shutdown_flush_ms);
        if (!empty)
          log.warn(
            { backlog: store.outboxBacklog().count },
            'outbox not empty at shutdown: sent after the next start',
          );
        await publisher.stop();
      }
      await http.close();
      await classifier?.close?.();
      store.close();
      log.info('stopped');
    },
  };
  return app;
}

const roundMs = (v: number | null): number | null => (v === null ? null : Math.round(v * 10) / 10);
