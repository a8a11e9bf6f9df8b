import { join } from 'node:path';
import { DOMAIN_REASON_TEXT } from '../../domain/applicability.js';
import { asksForReview, isReviewable } from '../../domain/review.js';
import type { ModelInfo } from '../../infer/index.js';
import type { ResultQuery, Store } from '../../store/index.js';
import type { Config } from '../../config/schema.js';
import type { MediaKind } from '../../store/media.js';
import type { ServeContext } from '../index.js';
import {
  ReviewError,
  type DailyCount,
  type DashboardDeps,
  type DashboardMeta,
  type ImageKind,
  type ImageRead,
  type ReviewExport,
  type StatusView,
} from './deps.js';
import { readImageFile } from './image-file.js';
import { createSpecimenDeps } from './specimen-deps.js';
import { LiveFeed } from './live-feed.js';
import { ingestUpload, type UploadDeps } from './upload.js';
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
async function exportReviews(store: Store, readOriginal: OriginalReader): Promise<ReviewExport[]> {
  const byResult = new Map<number, { row: ReturnType<Store['reviews']['all']>[number]; count: number }>();
  for (const row of store.reviews.all()) {
    const prev = byResult.get(row.resultId);
    byResult.set(row.resultId, { row, count: (prev?.count ?? 0) + 1 });
  }
  const out: ReviewExport[] = [];
  // One file at a time: the export re-hashes every reviewed original and must not hold them all.
  for (const { row, count } of byResult.values()) {
    const read = row.sha256 ? await readOriginal(row.path, row.sha256) : null;
    const original = read?.ok ? 'verified' : read?.status === 410 ? 'changed' : 'gone';
    out.push({
      resultId: row.resultId,
      file: row.file,
      sha256: row.sha256 ?? '',
      // A retraining script must never pick up other bytes under the recorded name.
      imagePath: original === 'verified' ? row.path : null,
      original,
      modelClass: row.modelClass,
      pBall: row.pBall,
      reviewedClass: row.className,
      reviewer: row.reviewer,
      note: row.note ?? '',
      reviewedAt: new Date(row.createdAt).toISOString(),
      reviewCount: count,
      modelVersion: row.modelVersion,
      threshold: row.threshold,
    });
  }
  return out;
}

type OriginalReader = (path: string, sha256: string) => Promise<ImageRead>;

/**
 * A result's original is read from where the camera (or an upload) put it, and served only while
 * it still hashes to what was classified (see image-file.ts). The daemon keeps no full-size copy
 * of its own: on a Pi that would write every capture a second time to the SD card and double the
 * space per image, and the lab already has the captures (move_processed_to moves them out of the
 * camera's reach, by rename, without a second write). When the original has changed or gone, the
 * dashboard shows the daemon's own thumbnail and segmented image of those bytes instead, and the
 * review export says so rather than pointing at other bytes.
 */
function originalReader(config: Config): OriginalReader {
  const roots = [
    config.capture.dir,
    config.capture.move_processed_to,
    config.capture.move_quarantined_to,
    join(config.data.dir, 'uploads'),
  ].filter((r): r is string => typeof r === 'string');
  const maxBytes = Math.round(config.image.max_file_mb * 1024 * 1024);
  return (path, sha256) => readImageFile(path, { roots, sha256, maxBytes });
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
    outOfDomain: h.processed.out_of_domain ?? 0,
    outOfDomainByReason: ctx.store.results
      .outOfDomainReasons()
      .map(({ reason, count }) => ({ code: reason, text: DOMAIN_REASON_TEXT[reason], count })),
    failed: h.processed.failed + h.processed.quarantined,
    throughputPerMin: feed.throughputPerMin(ctx.startedAt),
    latencyMs: h.latency_ms,
    broker: { enabled: mqtt.enabled, connected: mqtt.connected, url: mqtt.url },
    outboxBacklog: h.outbox_backlog,
    diskFreeBytes: h.disk_free_bytes,
    lastImageAt: h.last_image_at,
    startedAt: new Date(ctx.startedAt).toISOString(),
    problems: h.problems,
    colourBalance: h.colour_drift ?? null,
    magnification: h.magnification ?? null,
    captureClock: h.capture_clock ?? null,
    backup: h.backup ?? null,
  };
}

/** Results per UTC day and class for the last `days` days; out-of-domain images and failures in their own counts. */
function dailyCounts(store: Store, classes: readonly string[], days: number): DailyCount[] {
  const rows = store.results.dailyCounts(days);
  const out: DailyCount[] = [];
  const today = Date.now();
  for (let i = days - 1; i >= 0; i--) {
    const day = new Date(today - i * 86_400_000).toISOString().slice(0, 10);
    const counts: Record<string, number> = {};
    for (const c of classes) counts[c] = 0;
    let failed = 0;
    let outOfDomain = 0;
    for (const row of rows) {
      if (row.day !== day) continue;
      if (row.class in counts) counts[row.class] = (counts[row.class] ?? 0) + row.n;
      else if (row.class === 'out_of_domain') outOfDomain += row.n;
      else failed += row.n;
    }
    out.push({ day, counts, outOfDomain, failed });
  }
  return out;
}

/** The dashboard's result filters as the store's query. */
function storeQuery(q: Parameters<DashboardDeps['listResults']>[0]): ResultQuery {
  return {
    limit: q.limit,
    ...(q.before !== undefined ? { before: q.before } : {}),
    ...(q.flaggedOnly ? { flagged: true } : {}),
    ...(q.needsReview ? { reviewQueue: true } : {}),
    ...(q.outOfDomainOnly ? { status: 'out_of_domain' as const } : {}),
    ...(q.class ? { className: q.class } : {}),
    ...(q.from ? { from: Date.parse(q.from) } : {}),
    ...(q.to ? { to: Date.parse(q.to) } : {}),
    ...(q.search ? { search: q.search } : {}),
  };
}

/** An upload through the pipeline; a 503 when the daemon cannot take it now (queue full, disk low). */
async function uploadOrRefuse(deps: UploadDeps, fileName: string, bytes: Buffer, accession?: string) {
  const out = await ingestUpload(deps, fileName, bytes, accession);
  if (out.resultId === null) {
    const err = new Error(
      `the daemon could not take the image now (${out.error ?? 'unknown reason'}); try again later`,
    );
    (err as Error & { statusCode: number }).statusCode = 503;
    throw err;
  }
  const specimenId = deps.store.specimens.specimenIdOf(out.resultId);
  return {
    id: out.resultId,
    sha256: out.sha256,
    duplicate: out.duplicate,
    ...(specimenId !== undefined ? { specimenId } : {}),
  };
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
  const readOriginal = originalReader(config);

  /**
   * Where an image is recorded: the original's file (with the sha256 its bytes must have), or the
   * daemon's own picture of that kind (store.media).
   */
  function recordedImage(
    id: number,
    kind: ImageKind,
  ): { path: string; sha256: string } | { media: MediaKind } | undefined {
    const r = store.results.get(id);
    if (!r) return undefined;
    if (kind === 'original' && originalViewable(r) && r.sha256) return { path: r.path, sha256: r.sha256 };
    if (!r.media) return undefined;
    // A TIFF/BMP original is shown as its thumbnail (browsers cannot show those formats).
    return { media: kind === 'original' || kind === 'thumbnail' ? 'thumb' : kind };
  }

  return {
    meta: () => meta,
    listResults: (q) => store.results.list(storeQuery(q)).map(toResultView),
    getResult(id) {
      const r = store.results.get(id);
      return r ? toResultDetail(r, store.reviews.forResult(id), ctx.mqtt().enabled) : undefined;
    },
    imagePath(id, kind) {
      const image = recordedImage(id, kind);
      return image && 'path' in image ? image.path : undefined;
    },
    async readImage(id, kind) {
      const image = recordedImage(id, kind);
      if (!image) return undefined;
      if ('path' in image) return readOriginal(image.path, image.sha256);
      const read = await store.media.read(id, image.media);
      if (!read) return { ok: false, status: 404, error: 'image no longer stored' };
      return { ok: true, path: read.path, bytes: read.bytes, type: read.type };
    },
    addReview(id, { reviewer, class: cls, note }) {
      const r = store.results.get(id);
      if (!r) throw new ReviewError('no such result', 404);
      if (!isReviewable(r.status))
        throw new ReviewError('an image that could not be read has no picture to review');
      if (!info.classes.includes(cls)) throw new ReviewError('unknown class');
      const row = store.reviews.add({ resultId: id, reviewer, className: cls, note: note || null });
      // The first reading of a withheld field that asked for one changes its specimen's count of
      // unread withheld fields: the live feed sends the specimen again so the list stays current.
      if (r.status === 'out_of_domain' && asksForReview(r) && r.review === null) {
        const specimenId = store.specimens.specimenIdOf(id);
        if (specimenId !== undefined) ctx.bus.emit('specimen:changed', { specimenId });
      }
      return reviewView(row, r.className);
    },
    reviewQueue: (limit) => store.results.list({ limit, reviewQueue: true }).map(toResultView),
    exportReviews: () => exportReviews(store, readOriginal),
    ingestUpload: (fileName, bytes, accession) =>
      uploadOrRefuse(
        { dataDir: config.data.dir, store, offer: (item) => pipeline.offer(item) },
        fileName,
        bytes,
        accession,
      ),
    status: () => statusView(ctx, live),
    dailyCounts: (days) => dailyCounts(store, info.classes, days),
    events: live.events,
    specimens: createSpecimenDeps({
      store,
      bus: ctx.bus,
      events: live.specimenEvents,
      onSignOff: ctx.onSignOff,
    }),
    auth: {
      token: config.http.auth_token,
      tokenRole: config.http.auth_token_role,
      users: config.http.users,
      loopback: ctx.auth.loopback,
    },
  };
}
