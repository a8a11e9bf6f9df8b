import type { ResolvedConfig } from './config/load.js';
import type { RaisedCameraWarning } from './domain/camera-warning.js';
import { DOMAIN_REASON_TEXT, type DomainReason } from './domain/applicability.js';
import {
  colourDrift,
  watchedBalances,
  type ColourDrift,
  type ColourDriftReference,
} from './gate/colour-drift.js';
import { magnificationProblem, type MagnificationDrift } from './gate/magnification-watch.js';
import type { ModelInfo } from './infer/index.js';
import { HEALTH_SCHEMA, type HealthPayload } from './publish/payloads.js';
import type { Metrics } from './runtime/metrics.js';
import type { BackupStatus } from './store/backup.js';
import { LONG_BEFORE_SESSION_CALLED, type CaptureClockCheck } from './store/capture-clock.js';
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
  config: Pick<ResolvedConfig, 'device_id' | 'capture' | 'mqtt' | 'gate'>;
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
  /** The red cells' size over the latest captures (src/gate/magnification-watch.ts); null when not watched. */
  magnification?(): MagnificationDrift | null;
  /** How the latest `blastwatch backup` went (src/store/backup.ts); null when none was tried. */
  backup?(): BackupStatus | null;
  /** The clock (tests). */
  now?: () => number;
}

/** A backup older than this is a problem: the nightly timer missed a night and the next. */
export const BACKUP_MAX_AGE_MS = 48 * 3_600_000;

/** The backups' problem in words: the latest failed, or the latest good one is too old. */
function backupProblem(b: BackupStatus | null, at: number): string | null {
  if (!b) return null;
  if (!b.ok)
    return (
      `backup failed at ${b.lastAttemptAt}: ${b.error ?? 'unknown error'}. Run blastwatch backup by ` +
      'hand to see it (systemd/README.md, "Backups")'
    );
  const age = b.lastOkAt === null ? null : at - Date.parse(b.lastOkAt);
  if (age === null || age <= BACKUP_MAX_AGE_MS) return null;
  return (
    `no backup for ${Math.floor(age / 3_600_000)} h (the latest: ${b.lastOkFile ?? '?'}): is ` +
    'blastwatch-backup.timer still enabled, and its folder still there?'
  );
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
  /**
   * The camera warnings raised now (src/domain/camera-warning.ts), each also one of the payload's
   * problems: what a specimen's images arrive under.
   */
  cameraWarnings(): RaisedCameraWarning[];
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

/** The share of out-of-domain images among the latest captures, against gate.drift_share. */
export interface DomainDrift {
  /** gate.drift_window: how many of the latest captured images are looked at. */
  window: number;
  /** Images in it so far (fewer than `window` until that many were classified). */
  judged: number;
  outOfDomain: number;
  /** outOfDomain / judged; null before any image. */
  share: number | null;
  /** gate.drift_share. */
  limit: number;
  /** More than `limit` of a full window is out of domain. */
  drifting: boolean;
  /** Reasons in the window, most frequent first. */
  reasons: { reason: DomainReason; count: number }[];
}

/**
 * The trend of the gate's judgements. One image unlike the training set is bad luck (a blurred
 * field); many in a row mean the camera, stain or magnification changed and no verdict can be
 * trusted. Only a full window is judged, so a start-up with a few dark frames does not cry drift.
 */
export function domainDrift(
  store: Store,
  gate: ResolvedConfig['gate'],
  recent = store.results.recentJudgements(gate.drift_window),
): DomainDrift {
  const counts = new Map<DomainReason, number>();
  let outOfDomain = 0;
  for (const j of recent) {
    if (j.inDomain) continue;
    outOfDomain += 1;
    for (const r of j.domain?.reasons ?? []) counts.set(r, (counts.get(r) ?? 0) + 1);
  }
  const judged = recent.length;
  return {
    window: gate.drift_window,
    judged,
    outOfDomain,
    share: judged === 0 ? null : outOfDomain / judged,
    limit: gate.drift_share,
    drifting: judged >= gate.drift_window && outOfDomain > gate.drift_share * gate.drift_window,
    reasons: [...counts]
      .map(([reason, count]) => ({ reason, count }))
      .sort((a, b) => b.count - a.count || a.reason.localeCompare(b.reason)),
  };
}

/**
 * The median green balance of the latest captures that count (countsForColourWatch: screened, or
 * refused only for their green or a contradicted benign call) against the training pictures'
 * highest (src/gate/colour-drift.ts): a camera that records green brighter than the training
 * camera, which most single pictures do not show.
 */
export function colourDriftOf(
  store: Store,
  gate: ResolvedConfig['gate'],
  reference: ColourDriftReference,
  recent = store.results.recentJudgements(gate.drift_window),
): ColourDrift {
  return colourDrift(watchedBalances(recent.map((j) => j.domain)), gate.drift_window, reference);
}

/** The colour problem in words, with its figures. */
function colourProblem(c: ColourDrift): string {
  return (
    'white balance changed? The camera records green brighter than the training camera did: the ' +
    `median green balance of the last ${c.measured} images screened or refused only for their ` +
    `green or a contradicted benign call is ` +
    `${(c.median ?? 0).toFixed(3)}, above ${c.high.toFixed(3)}, the highest of any training image. ` +
    'The gate refuses each field above that; the bright background hides the shift from the ' +
    'colour normalisation, and in the fields it still accepts the model misses more blasts: ' +
    "check the camera's white balance (docs/new-microscope.md)"
  );
}

const percent = (v: number): string => `${Math.round(v * 1000) / 10} %`;
const seconds = (ms: number): string => `${Math.round(ms / 1000)} s`;
const minutes = (ms: number): string => `${Math.round(ms / 60_000)} min`;

/** The capture clock's problems in words: a writer's clock ahead, captures left out of their session. */
function captureClockProblems(c: CaptureClockCheck): string[] {
  const problems: string[] = [];
  if (c.ahead > 0)
    problems.push(
      `capture clock ahead? ${c.ahead} of the last ${plural(c.captures, 'capture')} ` +
        `${c.ahead === 1 ? 'was' : 'were'} stamped up to ${seconds(c.maxAheadMs)} later than this ` +
        "station's clock when it read them: the camera PC's or the file server's clock runs ahead, so " +
        'a picture taken just before a specimen session starts can join it. Keep both clocks on one ' +
        'time source (NTP)',
    );
  const left = c.beforeSession;
  if (left.length > 0) {
    const one = left.length === 1;
    const named = left
      .slice(0, 3)
      .map((x) => `${x.file} (${x.accession}, ${seconds(x.beforeMs)} before)`)
      .join(', ');
    problems.push(
      `${plural(left.length, 'capture')} arrived during the open specimen session but ` +
        `${one ? 'is' : 'are'} stamped before it started, so ${one ? 'it is' : 'they are'} in no ` +
        `specimen: ${named}${left.length > 3 ? ', ...' : ''}. Assign ${one ? 'it' : 'them'} by hand ` +
        `if ${one ? 'it belongs' : 'they belong'} (the unassigned images); if this keeps happening, ` +
        "the capture clock runs behind this station's: keep both on one time source (NTP)",
    );
  }
  const long = c.longBeforeSession;
  if (long.captures >= LONG_BEFORE_SESSION_CALLED) {
    const span =
      long.minBeforeMs === long.maxBeforeMs
        ? minutes(long.minBeforeMs)
        : `${minutes(long.minBeforeMs)} to ${minutes(long.maxBeforeMs)}`;
    problems.push(
      `capture clock far behind? ${long.captures} captures arrived during the open specimen session ` +
        `(${long.accession}) stamped ${span} before it started, so they are in no specimen and the ` +
        "session cannot take the captures that follow either: the camera PC's or the file server's " +
        "clock runs far behind this station's, or old pictures were copied in late. Assign the ones " +
        'that belong by hand (the unassigned images), and keep both clocks on one time source (NTP)',
    );
  }
  return problems;
}

/** The drift problem in words, with its figures. */
function driftProblem(d: DomainDrift): string {
  const reasons = d.reasons.map((r) => `${DOMAIN_REASON_TEXT[r.reason]} (${r.count})`).join('; ');
  return (
    'camera, stain or magnification changed? The model may not apply here: ' +
    `${d.outOfDomain} of the last ${d.judged} images were unlike the images it was trained on ` +
    `(${percent(d.share ?? 0)}, above gate.drift_share ${percent(d.limit)})` +
    (reasons ? `; most often: ${reasons}` : '')
  );
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

/**
 * The camera watches over the latest captures, and the warnings they raise. Degraded, not
 * unready: images are still taken and judged one by one; the trend is what the lab must hear about.
 */
function cameraWatchesAt(s: HealthSources) {
  const { store } = s;
  // Both stored trends are judged on the same latest captures: read once.
  const recent = store.open ? store.results.recentJudgements(s.config.gate.drift_window) : null;
  const drift = recent ? domainDrift(store, s.config.gate, recent) : null;
  const camera: RaisedCameraWarning[] = [];
  if (drift?.drifting)
    camera.push({ watch: 'domain_drift', text: driftProblem(drift), window: drift.window });
  const reference = s.model.colourDrift;
  const colour = recent && reference ? colourDriftOf(store, s.config.gate, reference, recent) : null;
  if (colour?.drifting)
    camera.push({ watch: 'colour_drift', text: colourProblem(colour), window: colour.window });
  // The red-cell measure reads a changed white balance or exposure as a change of size too:
  // while either of those is called, it is the finding, and the size is not called on its own.
  const measured = s.magnification?.() ?? null;
  const magnification = measured && {
    ...measured,
    called: measured.differs !== null && !drift?.drifting && !colour?.drifting,
  };
  if (magnification?.called)
    camera.push({
      watch: 'magnification',
      text: magnificationProblem(magnification)!,
      window: magnification.window,
    });
  return { camera, drift, colour, magnification };
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
  const { camera, drift, colour, magnification } = cameraWatchesAt(s);
  problems.push(...camera.map((w) => w.text));
  const clock = store.open ? store.captureClock.check(s.config.gate.drift_window) : null;
  if (clock) problems.push(...captureClockProblems(clock));
  problems.push(...(s.lisProblems?.() ?? []));
  const backup = s.backup?.() ?? null;
  const backupIssue = backupProblem(backup, at);
  if (backupIssue) problems.push(backupIssue);
  return { problems, mqtt, backlog, drift, colour, magnification, clock, backup };
}

const round4 = (v: number | null): number | null => (v === null ? null : Math.round(v * 1e4) / 1e4);

/** The watches of the camera over the latest captures, as the health payload carries them. */
function cameraWatches(
  drift: DomainDrift | null,
  colour: ColourDrift | null,
  magnification: (MagnificationDrift & { called: boolean }) | null,
): Pick<HealthPayload, 'domain_drift' | 'colour_drift' | 'magnification'> {
  return {
    ...(drift
      ? {
          domain_drift: {
            window: drift.window,
            judged: drift.judged,
            out_of_domain: drift.outOfDomain,
            share: round4(drift.share),
            limit: drift.limit,
            drifting: drift.drifting,
          },
        }
      : {}),
    ...(colour
      ? {
          colour_drift: {
            window: colour.window,
            measured: colour.measured,
            median: round4(colour.median),
            high: colour.high,
            drifting: colour.drifting,
          },
        }
      : {}),
    ...(magnification
      ? {
          magnification: {
            window: magnification.window,
            measured: magnification.measured,
            median: round4(magnification.median),
            low: magnification.low,
            high: magnification.high,
            differs: magnification.differs,
            called: magnification.called,
          },
        }
      : {}),
  };
}

function healthPayload(s: HealthSources, at: number): HealthPayload {
  const { pipeline, store, metrics, model } = s;
  const w = s.capture.status();
  const { problems, mqtt, backlog, drift, colour, magnification, clock, backup } = problemsAt(s, at);
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
    ...cameraWatches(drift, colour, magnification),
    ...(clock
      ? {
          capture_clock: {
            captures: clock.captures,
            ahead: clock.ahead,
            max_ahead_s: Math.round(clock.maxAheadMs / 100) / 10,
            before_session: clock.beforeSession.length,
            long_before_session: clock.longBeforeSession.captures,
            max_long_before_s: Math.round(clock.longBeforeSession.maxBeforeMs / 1000),
          },
        }
      : {}),
    ...(backup
      ? {
          backup: {
            last_attempt_at: backup.lastAttemptAt,
            ok: backup.ok,
            error: backup.error,
            last_ok_at: backup.lastOkAt,
            last_ok_file: backup.lastOkFile,
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
  const cameraWarnings = () => cameraWatchesAt(s).camera;
  return { payload: () => healthPayload(s, now()), readiness, state, cameraWarnings };
}
