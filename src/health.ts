import type { ResolvedConfig } from './config/load.js';
import type { ModelInfo } from './infer/index.js';
import { HEALTH_SCHEMA, type HealthPayload } from './publish/payloads.js';
import type { Metrics } from './runtime/metrics.js';
import type { Store } from './store/index.js';
import type { WatchStatus } from './watch/index.js';

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
}

export interface Health {
  /** The snapshot the retained MQTT health message and /api/health carry. */
  payload(): HealthPayload;
  /** /readyz: ready when the model, the database and the capture folder are usable. */
  readiness(): { ready: boolean; reasons: string[] };
}

const roundMs = (v: number | null): number | null => (v === null ? null : Math.round(v * 10) / 10);
const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

export function createHealth(s: HealthSources): Health {
  const readiness = () => {
    const reasons: string[] = [];
    const ch = s.classifier();
    if (ch && ch.state !== 'ready' && ch.state !== 'crashed')
      reasons.push(`model: ${ch.state} (${ch.lastError ?? ''})`);
    if (!s.store.open) reasons.push('database closed');
    const w = s.capture.status();
    if (!s.capture.started || !w.running) reasons.push('watcher not running');
    else if (!w.dirAvailable)
      reasons.push(
        `capture folder unavailable: ${s.config.capture.dir}${w.lastError ? ` (${w.lastError})` : ''}`,
      );
    return { ready: reasons.length === 0, reasons };
  };

  const payload = (): HealthPayload => {
    const { pipeline, store, metrics, model } = s;
    const w = s.capture.status();
    const problems = readiness().reasons;
    const free = pipeline.diskFreeBytes();
    if (pipeline.diskLow())
      problems.push(`data disk nearly full (${Math.round((free ?? 0) / 1048576)} MB free)`);
    if (pipeline.storeError) problems.push(`database: ${pipeline.storeError}`);
    return {
      schema: HEALTH_SCHEMA,
      device_id: s.config.device_id,
      state: problems.length === 0 ? 'ok' : 'degraded',
      problems,
      uptime_s: Math.round((Date.now() - s.startedAt) / 1000),
      queue_depth: pipeline.queueDepth,
      in_flight: pipeline.inFlight,
      processed: store.results.counts(),
      latency_ms: {
        p50: roundMs(metrics.latency.percentile(50)),
        p95: roundMs(metrics.latency.percentile(95)),
      },
      outbox_backlog: s.config.mqtt.url !== null ? store.outbox.backlog().count : 0,
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
      at: new Date().toISOString(),
    };
  };
  return { payload, readiness };
}
