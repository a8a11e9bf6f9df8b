/**
 * A small hand-written Prometheus registry (counters, gauges, histograms with fixed buckets) plus
 * a ring buffer of recent end-to-end latencies for p50/p95 in the health message. Fixed memory,
 * no dependency, no timers.
 */
import { constants, PerformanceObserver } from 'node:perf_hooks';
import { DOMAIN_REASON_TEXT } from '../domain/applicability.js';

type Labels = Record<string, string>;

const labelKey = (labels: Labels): string =>
  Object.keys(labels)
    .sort()
    .map(
      (k) => `${k}="${String(labels[k]).replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`,
    )
    .join(',');

interface Metric {
  name: string;
  help: string;
  type: 'counter' | 'gauge' | 'histogram';
  render(): string[];
}

export class Counter implements Metric {
  readonly type = 'counter';
  private readonly values = new Map<string, number>();
  constructor(
    readonly name: string,
    readonly help: string,
  ) {}
  inc(labels: Labels = {}, by = 1): void {
    const k = labelKey(labels);
    this.values.set(k, (this.values.get(k) ?? 0) + by);
  }
  get(labels: Labels = {}): number {
    return this.values.get(labelKey(labels)) ?? 0;
  }
  render(): string[] {
    if (this.values.size === 0) return [`${this.name} 0`];
    return [...this.values].map(([k, v]) => `${this.name}${k ? `{${k}}` : ''} ${v}`);
  }
}

export class Gauge implements Metric {
  readonly type = 'gauge';
  private readonly values = new Map<string, number | (() => number)>();
  constructor(
    readonly name: string,
    readonly help: string,
  ) {}
  set(value: number | (() => number), labels: Labels = {}): void {
    this.values.set(labelKey(labels), value);
  }
  render(): string[] {
    return [...this.values].map(
      ([k, v]) => `${this.name}${k ? `{${k}}` : ''} ${typeof v === 'function' ? v() : v}`,
    );
  }
}

export class Histogram implements Metric {
  readonly type = 'histogram';
  private readonly series = new Map<string, { counts: number[]; sum: number; count: number }>();
  constructor(
    readonly name: string,
    readonly help: string,
    readonly buckets: number[],
  ) {}
  observe(value: number, labels: Labels = {}): void {
    const k = labelKey(labels);
    let s = this.series.get(k);
    if (!s)
      this.series.set(k, (s = { counts: new Array<number>(this.buckets.length).fill(0), sum: 0, count: 0 }));
    for (let i = 0; i < this.buckets.length; i++) if (value <= (this.buckets[i] as number)) s.counts[i]! += 1;
    s.sum += value;
    s.count += 1;
  }
  render(): string[] {
    const out: string[] = [];
    for (const [k, s] of this.series) {
      const sep = k ? `${k},` : '';
      this.buckets.forEach((b, i) => out.push(`${this.name}_bucket{${sep}le="${b}"} ${s.counts[i]}`));
      out.push(`${this.name}_bucket{${sep}le="+Inf"} ${s.count}`);
      out.push(`${this.name}_sum${k ? `{${k}}` : ''} ${s.sum}`);
      out.push(`${this.name}_count${k ? `{${k}}` : ''} ${s.count}`);
    }
    return out;
  }
}

/** Fixed-size window of recent values for percentiles. */
export class LatencyWindow {
  private readonly values: Float64Array;
  private next = 0;
  private filled = 0;
  constructor(size = 512) {
    this.values = new Float64Array(size);
  }
  add(v: number): void {
    this.values[this.next] = v;
    this.next = (this.next + 1) % this.values.length;
    this.filled = Math.min(this.filled + 1, this.values.length);
  }
  percentile(p: number): number | null {
    if (this.filled === 0) return null;
    const sorted = Array.from(this.values.subarray(0, this.filled)).sort((a, b) => a - b);
    const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
    return sorted[idx] ?? null;
  }
}

export class Registry {
  private readonly metrics: Metric[] = [];
  counter(name: string, help: string): Counter {
    return this.add(new Counter(name, help));
  }
  gauge(name: string, help: string): Gauge {
    return this.add(new Gauge(name, help));
  }
  histogram(name: string, help: string, buckets: number[]): Histogram {
    return this.add(new Histogram(name, help, buckets));
  }
  private add<M extends Metric>(m: M): M {
    this.metrics.push(m);
    return m;
  }
  /** Prometheus text exposition format 0.0.4. */
  render(): string {
    const lines: string[] = [];
    for (const m of this.metrics) {
      const body = m.render();
      if (body.length === 0) continue;
      lines.push(`# HELP ${m.name} ${m.help}`, `# TYPE ${m.name} ${m.type}`, ...body);
    }
    return `${lines.join('\n')}\n`;
  }
}

const STAGE_BUCKETS_MS = [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000];

/** Every metric the daemon exports, in one place. */
export function createMetrics() {
  const registry = new Registry();
  const outOfDomain = registry.counter(
    'blastwatch_out_of_domain_total',
    'Images given no verdict because they are unlike the training images, by reason (an image with several reasons counts under each; blastwatch_files_processed_total{outcome="out_of_domain"} counts images).',
  );
  // Every reason from the start, at 0: a series that appears only with its first image would
  // hide that first rise from rate() and alerts.
  for (const reason of Object.keys(DOMAIN_REASON_TEXT)) outOfDomain.inc({ reason }, 0);
  return {
    registry,
    filesProcessed: registry.counter(
      'blastwatch_files_processed_total',
      'Files processed, by outcome (done, out_of_domain, duplicate, failed, quarantined, retry).',
    ),
    outOfDomain,
    flags: registry.counter('blastwatch_flags_total', 'Results flagged as possible B-ALL.'),
    needsReview: registry.counter('blastwatch_needs_review_total', 'Results in the uncertain band.'),
    dropped: registry.counter('blastwatch_hints_dropped_total', 'Watcher hints dropped, by reason.'),
    stageSeconds: registry.histogram(
      'blastwatch_stage_duration_ms',
      'Duration of each pipeline stage in milliseconds.',
      STAGE_BUCKETS_MS,
    ),
    mqttPublished: registry.counter(
      'blastwatch_mqtt_acked_total',
      'Outbox messages acknowledged by the broker.',
    ),
    mqttConnects: registry.counter('blastwatch_mqtt_connects_total', 'Successful broker connections.'),
    queueDepth: registry.gauge('blastwatch_queue_depth', 'Images waiting in the processing queue.'),
    inFlight: registry.gauge('blastwatch_in_flight', 'Images being processed now.'),
    outboxBacklog: registry.gauge(
      'blastwatch_outbox_backlog',
      'MQTT messages not yet acknowledged by a broker.',
    ),
    outboxAlerts: registry.gauge(
      'blastwatch_outbox_alerts_waiting',
      'B-ALL alert messages not yet acknowledged by a broker.',
    ),
    outboxOldestAge: registry.gauge(
      'blastwatch_outbox_oldest_age_seconds',
      'Age of the oldest message not yet acknowledged by a broker (0 when none).',
    ),
    healthDegraded: registry.gauge(
      'blastwatch_health_degraded',
      '1 while the health state is degraded (its problems: /api/health).',
    ),
    outOfDomainShare: registry.gauge(
      'blastwatch_out_of_domain_share',
      'Share of out-of-domain images among the last gate.drift_window captured images (0 before any); above gate.drift_share health is degraded.',
    ),
    ...cameraWatchGauges(registry),
    capturesAhead: registry.gauge(
      'blastwatch_captures_stamped_ahead',
      "Captures among the last gate.drift_window modified more than 5 s later than this station's clock when it read them (the writer's clock runs ahead); above 0 health is degraded.",
    ),
    capturesBeforeSession: registry.gauge(
      'blastwatch_captures_before_session',
      'Captures among the last gate.drift_window that arrived during the open specimen session, stamped up to 10 minutes before it started, and in no specimen; above 0 health is degraded.',
    ),
    capturesLongBeforeSession: registry.gauge(
      'blastwatch_captures_long_before_session',
      'Captures among the last gate.drift_window that arrived during the open specimen session, stamped more than 10 minutes before it started, and in no specimen; from 3 on health is degraded (a capture clock far behind).',
    ),
    backupLastOk: registry.gauge(
      'blastwatch_backup_last_ok_timestamp_seconds',
      'When the latest blastwatch backup that worked was made (Unix time; 0 before any): alert when it is more than a day or two old.',
    ),
    backupOk: registry.gauge(
      'blastwatch_backup_ok',
      '1 when the latest blastwatch backup worked, 0 when it failed or none was ever tried.',
    ),
    diskFree: registry.gauge('blastwatch_data_disk_free_bytes', 'Free space on the data.dir file system.'),
    mqttConnected: registry.gauge('blastwatch_mqtt_connected', '1 while connected to the broker.'),
    watcherRunning: registry.gauge('blastwatch_watcher_running', '1 while the capture folder is watched.'),
    info: registry.gauge('blastwatch_model_info', 'Loaded model (labels) — value is always 1.'),
    latency: new LatencyWindow(512),
    ...processMemoryGauges(registry),
  };
}

/** The camera watches' figures, which /metrics reads from health (src/serve/index.ts). */
function cameraWatchGauges(registry: Registry) {
  return {
    greenBalanceMedian: registry.gauge(
      'blastwatch_green_balance_median',
      'Median green balance of the images screened or refused only for their green or a contradicted benign call among the last gate.drift_window captured ones (0 before any); above blastwatch_green_balance_high health is degraded (white balance changed).',
    ),
    greenBalanceHigh: registry.gauge(
      'blastwatch_green_balance_high',
      "The highest green balance of the model's training images (model.json gate.colour_drift.high; 0 when the model has none).",
    ),
    redCellRadiusMedian: registry.gauge(
      'blastwatch_red_cell_radius_median',
      'Median red-cell radius in pixels of the latest captures measured (gate.magnification_watch; 0 before any); outside blastwatch_red_cell_radius_low..high, over at least half a window, health is degraded (magnification changed).',
    ),
    redCellRadiusLow: registry.gauge(
      'blastwatch_red_cell_radius_low',
      "The smallest median red-cell radius of any window of the model's training images (model.json acquisition.red_cell_radius.low; 0 when not watched).",
    ),
    redCellRadiusHigh: registry.gauge(
      'blastwatch_red_cell_radius_high',
      "The largest median red-cell radius of any window of the model's training images (model.json acquisition.red_cell_radius.high; 0 when not watched).",
    ),
  };
}

/**
 * The process's memory, read when /metrics is scraped, under the names Prometheus' client
 * libraries give them so that existing dashboards find them. A growing RSS with a flat JS heap
 * points at native memory (libvips, onnxruntime, SQLite, malloc arenas); a growing heap at
 * JavaScript objects kept alive. The heap figures are the main thread's; the inference worker's
 * isolate is in the RSS alone.
 */
function processMemoryGauges(registry: Registry) {
  const gauges = {
    rss: registry.gauge('process_resident_memory_bytes', 'Resident memory size in bytes.'),
    heapTotal: registry.gauge('nodejs_heap_size_total_bytes', 'V8 heap size of the main thread in bytes.'),
    heapUsed: registry.gauge('nodejs_heap_size_used_bytes', 'V8 heap in use on the main thread in bytes.'),
    external: registry.gauge(
      'nodejs_external_memory_bytes',
      'Memory of C++ objects bound to JavaScript objects on the main thread (buffers included), in bytes.',
    ),
    arrayBuffers: registry.gauge(
      'nodejs_array_buffers_bytes',
      'Memory of ArrayBuffers and Buffers on the main thread in bytes (part of external).',
    ),
  };
  gauges.rss.set(() => process.memoryUsage.rss());
  gauges.heapTotal.set(() => process.memoryUsage().heapTotal);
  gauges.heapUsed.set(() => process.memoryUsage().heapUsed);
  gauges.external.set(() => process.memoryUsage().external);
  gauges.arrayBuffers.set(() => process.memoryUsage().arrayBuffers);
  const gc = registry.histogram(
    'nodejs_gc_duration_seconds',
    'Garbage collections of the main thread by kind (major, minor, incremental, weakcb), in seconds; _count is how many ran (observed while the daemon runs).',
    GC_BUCKETS_S,
  );
  return { memory: gauges, gc };
}

const GC_BUCKETS_S = [0.001, 0.01, 0.1, 1, 2, 5];
const GC_KINDS: Readonly<Record<number, string>> = {
  [constants.NODE_PERFORMANCE_GC_MAJOR]: 'major',
  [constants.NODE_PERFORMANCE_GC_MINOR]: 'minor',
  [constants.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental',
  [constants.NODE_PERFORMANCE_GC_WEAKCB]: 'weakcb',
};

/**
 * Records every garbage collection of this thread into `gc` until the returned function is
 * called. Memory that grows for thousands of images and then drops is garbage waiting for a
 * major collection; the count of major ones says whether one has run (docs/benchmark.md).
 */
export function observeGarbageCollection(gc: Histogram): () => void {
  const observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      // Node >= 16 puts the kind in `detail`; older type definitions do not declare it.
      const kind = (entry as { detail?: { kind?: number } | null }).detail?.kind;
      gc.observe(entry.duration / 1000, { kind: (kind !== undefined && GC_KINDS[kind]) || 'other' });
    }
  });
  observer.observe({ entryTypes: ['gc'] });
  return () => observer.disconnect();
}

export type Metrics = ReturnType<typeof createMetrics>;
