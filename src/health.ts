import type { ResolvedConfig } from './config/load.js';
import type { ModelInfo } from './infer/index.js';
import { HEALTH_SCHEMA, type HealthPayload } from './publish/payloads.js';
import type { Metrics } from './runtime/metrics.js';
import type { Store } from './store/index.js';
import type { WatchStatus } from './watch/index.js';

/**
 * A broker that has been unreachable for this long is a problem (shorter: a reconnect, or the
 * first connection after start-up, not worth a degraded state).
 */
export const MQTT_DOWN_GRACE_MS = 30_000;
/** An outbox message still undelivered after this long is a problem even while connected. */
export const OUTBOX_STALE_MS = 60_000;

/** The MQTT publisher's connection, as health reads it. */
export interface MqttState {
  readonly connected: boolean;
  /** Since when the broker has been unreachable (or not yet reached); null while connected. */
  readonly disconnectedSince: number | null;
  readonly error: string | null;
}

/** What health reads from the running parts (structural: the Pipeline and the capture extension). */
export interface HealthSources {
  config: Pick<ResolvedConfig, 'device_id' | 'capture' | 'mqtt'>;
  store: Store;
  metrics: Metrics;
  model: ModelInfo;
  startedAt: number;
  pipeline: {
    readonly queueDepth: number;
    readonly inFlight: number;
    readonly storeError: string | null;
    readonly lastImageAt: number | null;
    diskFreeBytes(): number | null;
    diskLow(): boolean;
  };
  capture: { readonly started: boolean; status(): WatchStatus };
  classifier(): { state: string; lastError: string | null } | undefined;
  /** The publisher's connection; null when MQTT is off (mqtt.url null). */
  mqtt(): MqttState | null;
  /** Delivery to the laboratory information system in words (reports held or waiting too long). */
  lisProblems?(): string[];
  /** The clock (tests). */
  now?: () => number;
}

export interface Health {
  /** The snapshot the retained MQTT health message and /api/health carry. */
  payload(): HealthPayload;
  /**
   * /readyz: ready when images can be taken: the model, the database, the capture folder and
   * room on the data disk. MQTT is deliberately not part of it: with the broker down images are
   * still classified, stored and shown on the dashboard, and their messages wait in the outbox
   * for the broker to come back. A 503 would tell an orchestrator or load balancer to stop
   * sending work or restart a daemon that is doing its job. The broker's state is a problem in
   * the health payload instead (state "degraded", /api/health, the retained `<prefix>/health`
   * on the next connect, blastwatch_health_degraded and blastwatch_outbox_* in /metrics).
   */
  readiness(): { ready: boolean; reasons: string[] };
  /** The payload's state without the rest of it (cheap enough for every /healthz). */
  state(): 'ok' | 'degraded';
}

const roundMs = (v: number | null): number | null => (v === null ? null : Math.round(v * 10) / 10);
const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());
const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

/** The MQTT problem in words, or null: a broker down past the grace, or messages stuck too long. */
function mqttProblem(
  state: MqttState,
  backlog: ReturnType<Store['outbox']['backlog']>,
  now: number,
): string | null {
  const waiting = `${plural(backlog.count, 'message')} waiting (${plural(backlog.alerts, 'alert')})`;
  const down = state.disconnectedSince;
  if (!state.connected && down !== null && now - down >= MQTT_DOWN_GRACE_MS)
    return `MQTT broker unreachable since ${iso(down)}${state.error ? ` (${state.error})` : ''}: ${waiting}`;
  const oldest = backlog.oldestCreatedAt;
  if (oldest !== null && now - oldest >= OUTBOX_STALE_MS)
    return `MQTT messages undelivered since ${iso(oldest)}: ${waiting}`;
  return null;
}

/** Why the daemon cannot take images now (empty when it can). */
function readinessReasons(s: HealthSources): string[] {
  const reasons: string[] = [];
  const ch = s.classifier();
  if (ch && ch.state !== 'ready' && ch.state !== 'crashed')
    reasons.push(`model: ${ch.state} (${ch.lastError ?? ''})`);
  if (!s.store.open) reasons.push('database closed');
  // Found damaged while running (a write failed with SQLITE_CORRUPT): results cannot be kept.
  else if (s.store.corruption !== null) reasons.push(s.store.corruption);
  const w = s.capture.status();
  if (!s.capture.started || !w.running) reasons.push('watcher not running');
  else if (!w.dirAvailable)
    reasons.push(
      `capture folder unavailable: ${s.config.capture.dir}${w.lastError ? ` (${w.lastError})` : ''}`,
    );
  // The disk guard refuses new images: they wait in the capture folder, none is taken.
  if (s.pipeline.diskLow()) {
    const free = s.pipeline.diskFreeBytes() ?? 0;
    reasons.push(
      `data disk nearly full (${Math.round(free / 1048576)} MB free, below data.min_free_disk_mb): new images wait`,
    );
  }
  return reasons;
}

/** Every problem, in words (readiness reasons first), and what the MQTT ones were read from. */
function problemsAt(s: HealthSources, at: number) {
  const problems = readinessReasons(s);
  const { pipeline, store } = s;
  if (pipeline.storeError && store.corruption === null) problems.push(`database: ${pipeline.storeError}`);
  const mqtt = s.mqtt();
  const backlog = mqtt !== null ? store.outbox.backlog() : null;
  const mqttIssue = mqtt !== null && backlog !== null ? mqttProblem(mqtt, backlog, at) : null;
  if (mqttIssue) problems.push(mqttIssue);
  problems.push(...(s.lisProblems?.() ?? []));
  return { problems, mqtt, backlog };
}

function healthPayload(s: HealthSources, at: number): HealthPayload {
  const { pipeline, store, metrics, model } = s;
  const w = s.capture.status();
  const { problems, mqtt, backlog } = problemsAt(s, at);
  const free = pipeline.diskFreeBytes();
  return {
    schema: HEALTH_SCHEMA,
    device_id: s.config.device_id,
    state: problems.length === 0 ? 'ok' : 'degraded',
    problems,
    uptime_s: Math.round((at - s.startedAt) / 1000),
    queue_depth: pipeline.queueDepth,
    in_flight: pipeline.inFlight,
    processed: store.results.counts(),
    latency_ms: {
      p50: roundMs(metrics.latency.percentile(50)),
      p95: roundMs(metrics.latency.percentile(95)),
    },
    outbox_backlog: backlog?.count ?? 0,
    ...(mqtt !== null && backlog !== null
      ? {
          mqtt: {
            connected: mqtt.connected,
            disconnected_since: iso(mqtt.disconnectedSince),
            alerts_waiting: backlog.alerts,
            oldest_waiting_at: iso(backlog.oldestCreatedAt),
          },
        }
      : {}),
    model: {
      name: model.name,
      version: model.version,
      execution_provider: model.executionProvider,
      precision: model.precision,
    },
    disk_free_bytes: free,
    last_image_at: iso(pipeline.lastImageAt ?? store.results.lastProcessedAt()),
    watcher: {
      running: w.running,
      dir_available: w.dirAvailable,
      last_scan_at: iso(w.lastScanAt),
      last_error: w.lastError,
    },
    at: new Date(at).toISOString(),
  };
}

export function createHealth(s: HealthSources): Health {
  const now = s.now ?? Date.now;
  const readiness = () => {
    const reasons = readinessReasons(s);
    return { ready: reasons.length === 0, reasons };
  };
  const state = () => (problemsAt(s, now()).problems.length === 0 ? 'ok' : 'degraded');
  return { payload: () => healthPayload(s, now()), readiness, state };
}
