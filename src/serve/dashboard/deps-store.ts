import { extname } from 'node:path';
import { EventEmitter } from 'node:events';
import type { ServeContext } from '../index.js';
import type { ResultRow, ReviewRow } from '../../store/index.js';
import { mediaPath } from '../../store/media.js';
import {
  ReviewError,
  type DailyCount,
  type DashboardDeps,
  type DashboardMeta,
  type Flag,
  type ImageKind,
  type ResultDetail,
  type ResultView,
  type ReviewExport,
  type ReviewView,
  type StatusView,
} from './deps.js';

/** Originals a browser can show as they are (TIFF is not one: the thumbnail stands in). */
const BROWSER_IMAGES = new Set(['.jpg', '.jpeg', '.png', '.bmp', '.webp', '.gif']);
const THROUGHPUT_WINDOW_MS = 5 * 60_000;

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

function reviewView(r: ReviewRow, modelClass: string | null): ReviewView {
  return {
    id: r.id,
    resultId: r.result_id,
    reviewer: r.reviewer,
    class: r.class,
    modelClass,
    note: r.note ?? '',
    at: new Date(r.created_at).toISOString(),
  };
}

/** Same words as src/infer/decision.ts's label: uncertain wins over b-all. */
function flagOf(r: ResultRow): Flag | null {
  if (r.status !== 'done') return null;
  if (r.needs_review) return 'uncertain';
  return r.flag ? 'b-all' : 'benign';
}

function originalViewable(r: ResultRow): boolean {
  return r.status === 'done' && BROWSER_IMAGES.has(extname(r.path).toLowerCase());
}

export function toResultView(r: ResultRow): ResultView {
  return {
    id: r.id,
    file: r.file,
    sha256: r.sha256 ?? '',
    status: r.status,
    source: r.origin === 'upload' ? 'upload' : 'capture',
    class: r.class,
    probabilities: r.probabilities,
    pBall: r.p_ball,
    flag: flagOf(r),
    // The review queue: every positive screen and every uncertain one, until a person has looked.
    needsReview: r.status === 'done' && (r.flag === true || r.needs_review === true) && r.review === null,
    review: r.review ? reviewView(r.review, r.class) : null,
    error: r.error,
    timings: (r.timings ?? {}) as Record<string, number>,
    capturedAt: iso(r.captured_at),
    processedAt: iso(r.processed_at),
    images: {
      original: originalViewable(r) || r.media,
      thumbnail: r.media,
      mask: r.media,
      segmented: r.media,
    },
  };
}

/**
 * DashboardDeps over the daemon's store, pipeline and event bus. Every file path comes from the
 * database row of the id asked for.
 */
export function createStoreDeps(ctx: ServeContext): DashboardDeps {
  const { store, pipeline, bus, classifier, config } = ctx;
  const info = classifier.info;
  const benignIndex = info.malignant.indexOf(false);
  const meta: DashboardMeta = {
    deviceId: config.device_id ?? 'blastwatch',
    classes: info.classes.map((name, i) => ({
      name,
      label: info.malignant[i] === false && /^benign$/i.test(name) ? 'Benign (hematogones)' : name,
    })),
    benignClass: info.classes[benignIndex >= 0 ? benignIndex : 0] ?? 'Benign',
  };

  // Live feed and throughput both come from the bus's result:stored events.
  const emitter = new EventEmitter();
  emitter.setMaxListeners(100);
  const recent: number[] = [];
  bus.on('result:stored', ({ result, created }) => {
    const now = Date.now();
    recent.push(now);
    while (recent.length && (recent[0] as number) < now - THROUGHPUT_WINDOW_MS) recent.shift();
    if (created || emitter.listenerCount('result') > 0) emitter.emit('result', toResultView(result));
  });

  const detail = (r: ResultRow): ResultDetail => {
    const mqttOn = ctx.mqtt().enabled;
    const { queued, sent } = r.delivery;
    const image = r.image ?? {};
    const maskStats: Record<string, number> = {};
    for (const [k, v] of Object.entries(r.mask_stats ?? {})) if (typeof v === 'number') maskStats[k] = v;
    return {
      ...toResultView(r),
      model: r.model_name ? { name: r.model_name, version: r.model_version ?? '' } : null,
      provider:
        typeof image.executionProvider === 'string'
          ? `${image.executionProvider}${typeof image.precision === 'string' ? ` (${image.precision})` : ''}`
          : null,
      width: typeof image.width === 'number' ? image.width : null,
      height: typeof image.height === 'number' ? image.height : null,
      maskStats: Object.keys(maskStats).length ? maskStats : null,
      delivery: {
        state:
          queued === 0
            ? mqttOn
              ? 'pending'
              : 'off'
            : sent === queued
              ? 'sent'
              : sent === 0
                ? 'pending'
                : 'partial',
        queued,
        sent,
      },
      reviews: store.reviewsFor(r.id).map((v) => reviewView(v, r.class)),
    };
  };

  return {
    meta: () => meta,
    listResults: (q) =>
      store
        .listResults({
          limit: q.limit,
          ...(q.before !== undefined ? { before: q.before } : {}),
          ...(q.flaggedOnly ? { flagged: true } : {}),
          ...(q.needsReview ? { reviewQueue: true } : {}),
          ...(q.class ? { className: q.class } : {}),
          ...(q.from ? { from: Date.parse(q.from) } : {}),
          ...(q.to ? { to: Date.parse(q.to) } : {}),
          ...(q.search ? { search: q.search } : {}),
        })
        .map(toResultView),
    getResult(id) {
      const r = store.getResult(id);
      return r ? detail(r) : undefined;
    },
    imagePath(id, kind: ImageKind) {
      const r = store.getResult(id);
      if (!r) return undefined;
      if (kind === 'original') {
        if (originalViewable(r)) return r.path;
        return r.media ? mediaPath(config.data.dir, id, 'thumb') : undefined;
      }
      if (!r.media) return undefined;
      return mediaPath(config.data.dir, id, kind === 'thumbnail' ? 'thumb' : kind);
    },
    addReview(id, { reviewer, class: cls, note }) {
      const r = store.getResult(id);
      if (!r) throw new ReviewError('no such result', 404);
      if (r.status !== 'done') throw new ReviewError('only classified images can be reviewed');
      if (!info.classes.includes(cls)) throw new ReviewError('unknown class');
      const row = store.addReview({ resultId: id, reviewer, className: cls, note: note || null });
      return reviewView(row, r.class);
    },
    reviewQueue: (limit) => store.listResults({ limit, reviewQueue: true }).map(toResultView),
    exportReviews(): ReviewExport[] {
      // Latest review per result (the label to retrain with), with how many reviews it had.
      const byResult = new Map<number, { row: ReturnType<typeof store.allReviews>[number]; count: number }>();
      for (const row of store.allReviews()) {
        const prev = byResult.get(row.result_id);
        byResult.set(row.result_id, { row, count: (prev?.count ?? 0) + 1 });
      }
      return [...byResult.values()].map(({ row, count }) => ({
        resultId: row.result_id,
        file: row.file,
        sha256: row.sha256 ?? '',
        imagePath: row.path,
        modelClass: row.model_class,
        pBall: store.getResult(row.result_id)?.p_ball ?? null,
        reviewedClass: row.class,
        reviewer: row.reviewer,
        note: row.note ?? '',
        reviewedAt: new Date(row.created_at).toISOString(),
        reviewCount: count,
      }));
    },
    async ingestUpload(fileName, bytes) {
      const out = await pipeline.ingestUpload(fileName, bytes);
      if (out.resultId === null) {
        const err = new Error(
          `the daemon could not take the image now (${out.error ?? 'unknown reason'}); try again later`,
        );
        (err as Error & { statusCode: number }).statusCode = 503;
        throw err;
      }
      return { id: out.resultId, sha256: out.sha256, duplicate: out.duplicate };
    },
    status(): StatusView {
      const h = ctx.health();
      const mqtt = ctx.mqtt();
      const now = Date.now();
      const inWindow = recent.filter((t) => t >= now - THROUGHPUT_WINDOW_MS).length;
      const windowMs = Math.min(THROUGHPUT_WINDOW_MS, Math.max(60_000, now - ctx.startedAt));
      return {
        deviceId: h.device_id,
        model: h.model ? { name: h.model.name, version: h.model.version } : null,
        provider: h.model ? `${h.model.execution_provider} (${h.model.precision})` : null,
        threshold: info.threshold,
        uncertainBand: info.uncertainBand,
        queueDepth: h.queue_depth + h.in_flight,
        processed: h.processed.done,
        failed: h.processed.failed + h.processed.quarantined,
        throughputPerMin: (inWindow * 60_000) / windowMs,
        latencyMs: h.latency_ms,
        broker: { enabled: mqtt.enabled, connected: mqtt.connected, url: mqtt.url },
        outboxBacklog: h.outbox_backlog,
        diskFreeBytes: h.disk_free_bytes,
        lastImageAt: h.last_image_at,
        startedAt: new Date(ctx.startedAt).toISOString(),
        problems: h.problems,
      };
    },
    dailyCounts(days): DailyCount[] {
      const rows = store.dailyCounts(days);
      const out: DailyCount[] = [];
      const today = Date.now();
      for (let i = days - 1; i >= 0; i--) {
        const day = new Date(today - i * 86_400_000).toISOString().slice(0, 10);
        const counts: Record<string, number> = {};
        for (const c of info.classes) counts[c] = 0;
        let failed = 0;
        for (const row of rows) {
          if (row.day !== day) continue;
          if (row.class in counts) counts[row.class] = (counts[row.class] ?? 0) + row.n;
          else failed += row.n;
        }
        out.push({ day, counts, failed });
      }
      return out;
    },
    events: {
      on: (event, listener) => emitter.on(event, listener),
      off: (event, listener) => emitter.off(event, listener),
    },
    auth: {
      token: config.http.auth_token,
      users: config.http.users,
      loopback: ctx.auth.loopback,
    },
  };
}
