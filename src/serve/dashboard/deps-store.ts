import type { ModelInfo } from '../../infer/index.js';
import type { Store } from '../../store/index.js';
import { mediaPath } from '../../store/media.js';
import type { ServeContext } from '../index.js';
import {
  ReviewError,
  type DailyCount,
  type DashboardDeps,
  type DashboardMeta,
  type ImageKind,
  type ReviewExport,
  type StatusView,
} from './deps.js';
import { LiveFeed } from './live-feed.js';
import { ingestUpload } from './upload.js';
import { originalViewable, reviewView, toResultDetail, toResultView } from './views.js';

function dashboardMeta(deviceId: string, info: ModelInfo): DashboardMeta {
  const benignIndex = info.malignant.indexOf(false);
  return {
    deviceId,
    classes: info.classes.map((name, i) => ({
      name,
      label: info.malignant[i] === false && /^benign$/i.test(name) ? 'Benign (hematogones)' : name,
    })),
    benignClass: info.classes[benignIndex >= 0 ? benignIndex : 0] ?? 'Benign',
  };
}

/** Latest review per result (the label to retrain with), with how many reviews it had. */
function exportReviews(store: Store): ReviewExport[] {
  const byResult = new Map<number, { row: ReturnType<Store['reviews']['all']>[number]; count: number }>();
  for (const row of store.reviews.all()) {
    const prev = byResult.get(row.resultId);
    byResult.set(row.resultId, { row, count: (prev?.count ?? 0) + 1 });
  }
  return [...byResult.values()].map(({ row, count }) => ({
    resultId: row.resultId,
    file: row.file,
    sha256: row.sha256 ?? '',
    imagePath: row.path,
    modelClass: row.modelClass,
    pBall: row.pBall,
    reviewedClass: row.className,
    reviewer: row.reviewer,
    note: row.note ?? '',
    reviewedAt: new Date(row.createdAt).toISOString(),
    reviewCount: count,
  }));
}

function statusView(ctx: ServeContext, feed: LiveFeed): StatusView {
  const info = ctx.classifier.info;
  const h = ctx.health();
  const mqtt = ctx.mqtt();
  return {
    deviceId: h.device_id,
    model: h.model ? { name: h.model.name, version: h.model.version } : null,
    provider: h.model ? `${h.model.execution_provider} (${h.model.precision})` : null,
    threshold: info.threshold,
    uncertainBand: info.uncertainBand,
    queueDepth: h.queue_depth + h.in_flight,
    processed: h.processed.done,
    failed: h.processed.failed + h.processed.quarantined,
    throughputPerMin: feed.throughputPerMin(ctx.startedAt),
    latencyMs: h.latency_ms,
    broker: { enabled: mqtt.enabled, connected: mqtt.connected, url: mqtt.url },
    outboxBacklog: h.outbox_backlog,
    diskFreeBytes: h.disk_free_bytes,
    lastImageAt: h.last_image_at,
    startedAt: new Date(ctx.startedAt).toISOString(),
    problems: h.problems,
  };
}

/** Results per UTC day and class for the last `days` days; failures in their own count. */
function dailyCounts(store: Store, classes: readonly string[], days: number): DailyCount[] {
  const rows = store.results.dailyCounts(days);
  const out: DailyCount[] = [];
  const today = Date.now();
  for (let i = days - 1; i >= 0; i--) {
    const day = new Date(today - i * 86_400_000).toISOString().slice(0, 10);
    const counts: Record<string, number> = {};
    for (const c of classes) counts[c] = 0;
    let failed = 0;
    for (const row of rows) {
      if (row.day !== day) continue;
      if (row.class in counts) counts[row.class] = (counts[row.class] ?? 0) + row.n;
      else failed += row.n;
    }
    out.push({ day, counts, failed });
  }
  return out;
}

/**
 * DashboardDeps over the daemon's store, pipeline and live feed (one is started on the bus when
 * none is given). Every file path comes from the database row of the id asked for.
 */
export function createStoreDeps(ctx: ServeContext, feed?: LiveFeed): DashboardDeps {
  const { store, pipeline, classifier, config } = ctx;
  const info = classifier.info;
  const meta = dashboardMeta(config.device_id, info);
  const live = feed ?? new LiveFeed(ctx.bus);
  if (!feed) live.start();

  return {
    meta: () => meta,
    listResults: (q) =>
      store.results
        .list({
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
      const r = store.results.get(id);
      return r ? toResultDetail(r, store.reviews.forResult(id), ctx.mqtt().enabled) : undefined;
    },
    imagePath(id, kind: ImageKind) {
      const r = store.results.get(id);
      if (!r) return undefined;
      if (kind === 'original') {
        if (originalViewable(r)) return r.path;
        return r.media ? mediaPath(config.data.dir, id, 'thumb') : undefined;
      }
      if (!r.media) return undefined;
      return mediaPath(config.data.dir, id, kind === 'thumbnail' ? 'thumb' : kind);
    },
    addReview(id, { reviewer, class: cls, note }) {
      const r = store.results.get(id);
      if (!r) throw new ReviewError('no such result', 404);
      if (r.status !== 'done') throw new ReviewError('only classified images can be reviewed');
      if (!info.classes.includes(cls)) throw new ReviewError('unknown class');
      const row = store.reviews.add({ resultId: id, reviewer, className: cls, note: note || null });
      return reviewView(row, r.className);
    },
    reviewQueue: (limit) => store.results.list({ limit, reviewQueue: true }).map(toResultView),
    exportReviews: () => exportReviews(store),
    async ingestUpload(fileName, bytes) {
      const out = await ingestUpload(
        { dataDir: config.data.dir, store, offer: (item) => pipeline.offer(item) },
        fileName,
        bytes,
      );
      if (out.resultId === null) {
        const err = new Error(
          `the daemon could not take the image now (${out.error ?? 'unknown reason'}); try again later`,
        );
        (err as Error & { statusCode: number }).statusCode = 503;
        throw err;
      }
      return { id: out.resultId, sha256: out.sha256, duplicate: out.duplicate };
    },
    status: () => statusView(ctx, live),
    dailyCounts: (days) => dailyCounts(store, info.classes, days),
    events: live.events,
    auth: {
      token: config.http.auth_token,
      users: config.http.users,
      loopback: ctx.auth.loopback,
    },
  };
}
