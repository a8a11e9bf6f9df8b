/**
 * The composition root: the ONE place that builds the parts and wires them together.
 *
 *   watcher ──hint──▶ pipeline (queue → stage: read/hash → prepareImage → classifier → outcome)
 *                         │ applies the outcome: store (result + outbox rows, one transaction)
 *                         ▼
 *                        bus ──outbox:added──▶ MQTT outbox publisher
 *                            ──result:stored─▶ dashboard live feed (src/serve/dashboard)
 *
 * Each part takes its own config section; the ones with a lifetime are extensions, started in
 * order and stopped in reverse order.
 */
import { mkdirSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import { createCapture, type Capture } from './capture.js';
import { isLoopbackHost, type ResolvedConfig } from './config/load.js';
import { createHealth, type Health } from './health.js';
import { createLis, mediaThumbnails, type Lis } from './lis/index.js';
import { specimenReportsFrom } from './lis/ports.js';
import type { Logger } from './log.js';
import { createDomainGate, loadDomainGate } from './gate/index.js';
import { watchMagnification } from './gate/magnification-watch.js';
import { loadModelManifest, type ModelManifest } from './infer/manifest.js';
import { Pipeline, type ClassifierLike, type DomainGateLike, type PrepareImage } from './pipeline/index.js';
import { OutboxPublisher, outboxMessages, redactUrl } from './publish/mqtt.js';
import { specimenAssignment, specimenEvents, specimenStoreOptions } from './specimen-wiring.js';
import type { Extension } from './runtime/extension.js';
import { EventBus } from './runtime/events.js';
import { createMetrics, observeGarbageCollection, type Metrics } from './runtime/metrics.js';
import { createHttpServer, type ServeContext, type ServerPlugin } from './serve/index.js';
import { lockDataDir, openStore, type DataDirLock, type Store } from './store/index.js';
import { readBackupStatus } from './store/backup.js';
import { createMaintenance } from './store/maintenance.js';

type Classifier = ClassifierLike & { close?(): Promise<void> };

export interface AppDeps {
  /** Defaults to src/preprocess's prepareImage. */
  prepareImage?: PrepareImage;
  /** Defaults to src/infer's createClassifier on config.model.dir. */
  classifier?: Classifier;
  /** Defaults to the gate model.json describes (src/gate's loadDomainGate). */
  gate?: DomainGateLike;
  /** Extra HTTP features; by default the dashboard (src/serve/dashboard) when it is installed. */
  plugins?: ServerPlugin[];
}

export interface App {
  config: ResolvedConfig;
  store: Store;
  bus: EventBus;
  pipeline: Pipeline;
  http: FastifyInstance;
  /** Address the HTTP server listens on (after start). */
  url: string;
  publisher: OutboxPublisher | null;
  /** LIS outbox and delivery; `lis.onSignOff` is the hook a sign-off calls inside its transaction. */
  lis: Lis;
  capture: Capture;
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

async function loadClassifier(
  config: ResolvedConfig['model'],
  manifest: ModelManifest | null,
  log: Logger,
): Promise<Classifier> {
  const { createClassifier } = await import('./infer/index.js');
  return createClassifier({
    modelDir: config.dir,
    ...(manifest ? { manifest } : {}),
    executionProviders: config.execution_providers,
    threads: config.threads,
    log: log.child({ component: 'infer' }),
    threshold: config.threshold,
    uncertainBand: config.uncertain_band,
  });
}

/** Opens the store; on failure closes the classifier's worker, which would keep the process alive. */
async function openStoreOrRelease(config: ResolvedConfig, log: Logger, release: () => Promise<void>) {
  try {
    return openStore({
      dataDir: config.data.dir,
      log: log.child({ component: 'store' }),
      specimens: specimenStoreOptions(config),
    });
  } catch (err) {
    await release().catch(() => undefined);
    throw err;
  }
}

/** The HTTP server as an extension: listens on start (and learns its URL), closes on stop. */
function httpExtension(
  http: FastifyInstance,
  config: ResolvedConfig['http'],
  onUrl: (url: string) => void,
): Extension {
  return {
    name: 'http',
    async start() {
      await http.listen({ host: config.host, port: config.port });
      const addr = http.server.address();
      const port = typeof addr === 'object' && addr ? addr.port : config.port;
      const host = config.host.includes(':') ? `[${config.host}]` : config.host;
      onUrl(`http://${host}:${port}`);
    },
    stop: () => http.close(),
  };
}

/**
 * The parts everything else stands on: the data folder's lock, bus, metrics, the model, the image
 * preparation, the store. The lock comes first: a second daemon on the same data.dir stops before
 * it loads a model or touches the database. On failure what was taken is released.
 */
async function createFoundation(config: ResolvedConfig, log: Logger, deps: AppDeps) {
  mkdirSync(config.data.dir, { recursive: true });
  const lock = lockDataDir(config.data.dir);
  try {
    return { lock, ...(await createParts(config, log, deps)) };
  } catch (err) {
    lock.release();
    throw err;
  }
}

async function createParts(config: ResolvedConfig, log: Logger, deps: AppDeps) {
  const bus = new EventBus();
  bus.onListenerError = (err, topic) => log.error({ err, topic }, 'event listener failed');
  const metrics = createMetrics();
  // The model first: without one there is nothing to do, and the error must be one clear line.
  // model.json is read and hash-checked once: the classifier and the gate both come from it.
  const manifest = deps.classifier ? null : await loadModelManifest(config.model.dir);
  const classifier = deps.classifier ?? (await loadClassifier(config.model, manifest, log));
  const info = classifier.info;
  const model = {
    name: info.name,
    version: info.version,
    execution_provider: info.executionProvider,
    precision: info.precision,
  };
  metrics.info.set(1, model);
  const prepareImage = deps.prepareImage ?? (await import('./preprocess/index.js')).prepareImage;
  // An injected classifier (tests, tools) has no model.json of its own: the pass-through gate.
  const gate =
    deps.gate ??
    (manifest ? await loadDomainGate(manifest, { threshold: info.threshold }) : createDomainGate());
  const store = await openStoreOrRelease(config, log, async () => {
    if (!deps.classifier) await classifier.close?.();
  });
  return { bus, metrics, classifier, model, prepareImage, gate, store };
}

/** The data folder's lock as an extension: released last, after the store is closed. */
function lockExtension(lock: DataDirLock): Extension {
  return { name: 'data-lock', start: () => undefined, stop: () => lock.release() };
}

/** Garbage collections into /metrics while the daemon runs. */
function gcMetricsExtension(metrics: Metrics): Extension {
  let stop = (): void => undefined;
  return {
    name: 'gc-metrics',
    start: () => {
      stop = observeGarbageCollection(metrics.gc);
    },
    stop: () => stop(),
  };
}

/** Calls the listeners when the inference worker has failed for good. */
function fatalOnWorkerFailure(
  classifier: Classifier,
  log: Logger,
): (listener: (reason: string) => void) => void {
  const listeners: ((reason: string) => void)[] = [];
  classifier.onError?.(() => {
    const h = classifier.health?.();
    if (h?.state !== 'failed') return;
    const reason = `inference worker failed for good: ${h.lastError ?? 'unknown error'}`;
    log.fatal(reason);
    for (const l of listeners) l(reason);
  });
  return (listener) => void listeners.push(listener);
}

type Foundation = Awaited<ReturnType<typeof createFoundation>>;

function createPipeline(config: ResolvedConfig, log: Logger, f: Foundation): Pipeline {
  const { store, bus, metrics, prepareImage, classifier, gate, model } = f;
  return new Pipeline({
    store,
    bus,
    metrics,
    prepareImage,
    classifier,
    gate,
    log: log.child({ component: 'pipeline' }),
    // No outbox rows when MQTT is off: nothing would ever drain them.
    outboxMessages:
      config.mqtt.url === null
        ? () => []
        : outboxMessages({ deviceId: config.device_id, uncertainBand: classifier.info.uncertainBand, model }),
    inResultTransaction: specimenAssignment(config, store, log),
    capture: config.capture,
    data: config.data,
    image: config.image,
    segment: config.segment,
    pipeline: config.pipeline,
  });
}

function createPublisher(config: ResolvedConfig, log: Logger, f: Foundation, health: Health) {
  const url = config.mqtt.url;
  if (url === null) return null;
  return new OutboxPublisher({
    config: { ...config.mqtt, url },
    store: f.store,
    bus: f.bus,
    metrics: f.metrics,
    log: log.child({ component: 'mqtt' }),
    health: health.payload,
  });
}

function createServeContext(
  config: ResolvedConfig,
  log: Logger,
  parts: Foundation & {
    pipeline: Pipeline;
    health: Health;
    publisher: OutboxPublisher | null;
    lis: Lis;
    startedAt: number;
  },
): ServeContext {
  const { store, pipeline, bus, metrics, classifier, health, publisher, lis, startedAt } = parts;
  const url = config.mqtt.url;
  return {
    config,
    log,
    store,
    pipeline,
    bus,
    metrics,
    classifier,
    startedAt,
    health: health.payload,
    readiness: health.readiness,
    healthState: health.state,
    mqtt: () => ({
      enabled: url !== null,
      connected: publisher?.connected ?? false,
      url: url === null ? null : redactUrl(url),
      error: publisher?.error ?? null,
    }),
    auth: { loopback: isLoopbackHost(config.http.host), token: config.http.auth_token, authenticators: [] },
    lis: { specimens: specimenReportsFrom(store), lis: lis.delivery, renderPdf: lis.renderPdf },
    // Runs inside each sign-off's and amendment's transaction: the LIS rows commit with the signature.
    onSignOff: (report) => lis.onSignOff(report),
  };
}

/** Starts the extensions in order; stops them in reverse order. */
function inOrder(extensions: readonly Extension[]): Pick<App, 'start' | 'stop'> {
  return {
    async start() {
      for (const ext of extensions) await ext.start();
    },
    async stop() {
      for (const ext of [...extensions].reverse()) await ext.stop();
    },
  };
}

/** The one line that says the daemon is up, and with what. */
function logRunning(log: Logger, config: ResolvedConfig, url: string, info: ClassifierLike['info']): void {
  const mqttUrl = config.mqtt.url;
  log.info(
    {
      capture: config.capture.dir,
      data: config.data.dir,
      http: url,
      model: `${info.name} ${info.version}`,
      provider: info.executionProvider,
      mqtt: mqttUrl === null ? 'off' : redactUrl(mqttUrl),
    },
    'blastwatch running',
  );
}

export async function createApp(config: ResolvedConfig, log: Logger, deps: AppDeps = {}): Promise<App> {
  const startedAt = Date.now();
  const f = await createFoundation(config, log, deps);
  const { store, bus, metrics, classifier } = f;
  const info = classifier.info;
  const pipeline = createPipeline(config, log, f);
  specimenEvents(store, bus, () => health.cameraWarnings());
  const capture = createCapture(config.capture, { offer: (item) => pipeline.offer(item), bus, log });
  metrics.watcherRunning.set(() => (capture.status().running && capture.status().dirAvailable ? 1 : 0));
  const lis = createLis({ db: store.db, config: config.lis, log, thumbnails: mediaThumbnails(store.media) });
  const watched = config.gate.magnification_watch ? info.redCellSize : null;
  const magnification = watchMagnification(watched, { bus, pipeline, metrics });
  const health = createHealth({
    config,
    store,
    metrics,
    model: info,
    startedAt,
    pipeline,
    capture,
    classifier: () => classifier.health?.(),
    // Read on each health call, after the publisher exists (it needs health for its messages).
    mqtt: () =>
      publisher === null
        ? null
        : {
            connected: publisher.connected,
            disconnectedSince: publisher.disconnectedSince,
            error: publisher.error,
          },
    lisProblems: () => lis.delivery?.problems() ?? [],
    magnification: () => magnification?.drift() ?? null,
    backup: () => readBackupStatus(config.data.dir),
  });
  const publisher = createPublisher(config, log, f, health);
  const context = createServeContext(config, log, { ...f, pipeline, health, publisher, lis, startedAt });
  const http = await createHttpServer(context, deps.plugins ?? (await loadDashboard(log)));

  // What runs, in start order; stopped in reverse. The lock, the store and the classifier come
  // first so they are closed last, after everything that uses them.
  const lifecycle = inOrder([
    lockExtension(f.lock),
    { name: 'store', start: () => undefined, stop: () => store.close() },
    { name: 'classifier', start: () => undefined, stop: () => classifier.close?.() },
    gcMetricsExtension(f.metrics),
    httpExtension(http, config.http, (url) => (app.url = url)),
    ...(publisher ? [publisher] : []),
    ...(lis.delivery ? [lis.delivery] : []),
    createMaintenance(store, config.data, log, () => pipeline.diskFreeBytes()),
    pipeline,
    capture,
  ]);
  const mqttUrl = config.mqtt.url;
  const app: App = {
    config,
    store,
    bus,
    pipeline,
    http,
    url: '',
    publisher,
    lis,
    capture,
    context,
    onFatal: fatalOnWorkerFailure(classifier, log),
    async start() {
      if (mqttUrl === null)
        log.info('MQTT off (mqtt.url is null): results are stored and served, not published');
      await lifecycle.start();
      // The health sent on connect may predate the watcher: refresh the retained one now.
      publisher?.publishHealth();
      logRunning(log, config, app.url, info);
    },
    async stop() {
      log.info('stopping: no new images; finishing the ones in progress');
      await lifecycle.stop();
      log.info('stopped');
    },
  };
  return app;
}
