/**
 * TEST FIXTURE ONLY: an in-memory DashboardDeps for the plugin's unit tests. The daemon wires the
 * real implementation over the SQLite store and pipeline (src/serve/dashboard/deps-store.ts).
 */
import { EventEmitter } from 'node:events';
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import sharp from 'sharp';
import {
  ReviewError,
  type DashboardAuthConfig,
  type DashboardDeps,
  type ImageKind,
  type ResultDetail,
  type ResultQuery,
  type ResultView,
  type ReviewView,
} from '../../src/serve/dashboard/deps.js';
import { readImageFile } from '../../src/serve/dashboard/image-file.js';

/** Real smear images committed with the repository (3 per class; see test/fixtures/samples/README.md). */
export const SAMPLES = fileURLToPath(new URL('../fixtures/samples', import.meta.url));

/** The i-th sample image (sorted by name) of a class folder: Benign, Early, Pre or Pro. */
export function sample(cls: string, i: number): string {
  const names = readdirSync(join(SAMPLES, cls))
    .filter((n) => n.endsWith('.jpg'))
    .sort();
  const name = names[i];
  if (!name) throw new Error(`no sample ${i} in ${cls}`);
  return join(SAMPLES, cls, name);
}
export const CLASSES = ['Benign', 'Early', 'Pre', 'Pro'];

export interface MemoryDeps extends DashboardDeps {
  /** Adds a classified result as the pipeline would, and emits it on the live feed. */
  addResult(r: {
    file: string;
    className: string;
    pBall: number;
    imagePath: string;
    source?: 'capture' | 'upload';
  }): ResultView;
  addFailure(file: string, error: string): ResultView;
  uploads: { fileName: string; bytes: number }[];
  /** Stops the fake pipeline's timers. */
  dispose(): void;
  /** Resolves when every result's media files are written. */
  settled(): Promise<void>;
  /** Emits a result on the live feed (after its media exist), as the pipeline's event bus would. */
  publish(r: ResultView): Promise<void>;
}

export async function createMemoryDeps(opts: {
  auth: DashboardAuthConfig;
  workDir: string;
}): Promise<MemoryDeps> {
  const emitter = new EventEmitter();
  const results: ResultDetail[] = [];
  const paths = new Map<number, Record<ImageKind, string>>();
  const reviews: ReviewView[] = [];
  const uploads: { fileName: string; bytes: number }[] = [];
  const pending: Promise<void>[] = [];
  const timers = new Set<NodeJS.Timeout>();
  let nextReviewId = 1;
  mkdirSync(opts.workDir, { recursive: true });

  async function makeMedia(id: number, imagePath: string): Promise<Record<ImageKind, string>> {
    const dir = join(opts.workDir, String(id));
    mkdirSync(dir, { recursive: true });
    const thumb = join(dir, 'thumb.jpg');
    const mask = join(dir, 'mask.png');
    const seg = join(dir, 'segmented.png');
    await sharp(imagePath).resize(160, 160).jpeg().toFile(thumb);
    await sharp(imagePath).greyscale().threshold(150).negate().png().toFile(mask);
    await sharp(imagePath).modulate({ saturation: 2 }).png().toFile(seg);
    return { original: imagePath, thumbnail: thumb, mask, segmented: seg };
  }

  const view = (r: ResultDetail): ResultView => {
    const {
      model: _m,
      threshold: _t,
      provider: _p,
      width: _w,
      height: _h,
      maskStats: _s,
      delivery: _d,
      reviews: _r,
      ...v
    } = r;
    return v;
  };

  function insert(r: Omit<ResultDetail, 'id'>): ResultDetail {
    const full = { ...r, id: results.length + 1 };
    results.push(full);
    return full;
  }

  const deps: MemoryDeps = {
    uploads,
    meta: () => ({
      deviceId: 'test-scope',
      classes: [
        { name: 'Benign', label: 'Benign (hematogones)' },
        { name: 'Early', label: 'Early Pre-B' },
        { name: 'Pre', label: 'Pre-B' },
        { name: 'Pro', label: 'Pro-B' },
      ],
      benignClass: 'Benign',
    }),
    addResult({ file, className, pBall, imagePath, source }) {
      const probs: Record<string, number> = {};
      const others = CLASSES.filter((c) => c !== className);
      const pClass = className === 'Benign' ? 1 - pBall : Math.max(pBall - 0.02, 0);
      probs[className] = pClass;
      for (const c of others)
        probs[c] = c === 'Benign' ? 1 - pBall : (1 - pClass - (className === 'Benign' ? 0 : 1 - pBall)) / 2;
      const flag = pBall >= 0.6 ? 'b-all' : pBall >= 0.4 ? 'uncertain' : 'benign';
      const now = new Date().toISOString();
      const r = insert({
        file,
        sha256: createHash('sha256')
          .update(file + results.length)
          .digest('hex'),
        status: 'done',
        source: source ?? 'capture',
        class: className,
        probabilities: probs,
        pBall,
        flag,
        needsReview: flag !== 'benign',
        review: null,
        error: null,
        timings: { decodeMs: 4.2, segmentMs: 3.1, inferMs: 21.5, totalMs: 30.2 },
        capturedAt: now,
        processedAt: now,
        images: { original: true, thumbnail: true, mask: true, segmented: true },
        model: { name: 'tiny', version: '0.0.1' },
        threshold: 0.6,
        provider: 'cpu',
        width: 224,
        height: 224,
        maskStats: { foregroundFraction: 0.31, componentCount: 2, aStarThreshold: 141 },
        delivery: { state: 'off', queued: 0, sent: 0 },
        reviews: [],
      });
      pending.push(makeMedia(r.id, imagePath).then((p) => void paths.set(r.id, p)));
      return view(r);
    },
    addFailure(file, error) {
      const now = new Date().toISOString();
      const r = insert({
        file,
        sha256: createHash('sha256').update(file).digest('hex'),
        status: 'failed',
        source: 'capture',
        class: null,
        probabilities: null,
        pBall: null,
        flag: null,
        needsReview: false,
        review: null,
        error,
        timings: {},
        capturedAt: now,
        processedAt: now,
        images: { original: false, thumbnail: false, mask: false, segmented: false },
        model: null,
        threshold: null,
        provider: null,
        width: null,
        height: null,
        maskStats: null,
        delivery: { state: 'off', queued: 0, sent: 0 },
        reviews: [],
      });
      return view(r);
    },
    listResults(q: ResultQuery) {
      return results
        .filter((r) => (q.before ? r.id < q.before : true))
        .filter((r) => (q.flaggedOnly ? r.flag === 'b-all' : true))
        .filter((r) => (q.needsReview ? r.needsReview : true))
        .filter((r) => (q.class ? r.class === q.class : true))
        .filter((r) => (q.search ? r.file.toLowerCase().includes(q.search.toLowerCase()) : true))
        .filter((r) => (q.from ? (r.processedAt ?? '') >= q.from : true))
        .filter((r) => (q.to ? (r.processedAt ?? '') < q.to : true))
        .reverse()
        .slice(0, q.limit)
        .map(view);
    },
    getResult: (id) => results.find((r) => r.id === id),
    imagePath: (id, kind) => paths.get(id)?.[kind],
    async readImage(id, kind) {
      const path = paths.get(id)?.[kind];
      return path ? readImageFile(path, { roots: [], sha256: null, maxBytes: 64 * 1024 * 1024 }) : undefined;
    },
    addReview(id, { reviewer, class: cls, note }) {
      const r = results.find((x) => x.id === id);
      if (!r) throw new ReviewError('no such result', 404);
      if (!CLASSES.includes(cls)) throw new ReviewError('unknown class');
      const review: ReviewView = {
        id: nextReviewId++,
        resultId: id,
        reviewer,
        class: cls,
        modelClass: r.class,
        note,
        at: new Date().toISOString(),
        modelVersion: r.model?.version ?? null,
        threshold: r.threshold,
      };
      reviews.push(review);
      r.reviews.push(review);
      r.review = review;
      r.needsReview = false;
      return review;
    },
    reviewQueue: (limit) =>
      results
        .filter((r) => r.needsReview)
        .reverse()
        .slice(0, limit)
        .map(view),
    exportReviews: async () =>
      results
        .filter((r) => r.review)
        .map((r) => ({
          resultId: r.id,
          file: r.file,
          sha256: r.sha256,
          imagePath: paths.get(r.id)?.original ?? null,
          original: 'verified' as const,
          modelClass: r.class,
          pBall: r.pBall,
          reviewedClass: r.review!.class,
          reviewer: r.review!.reviewer,
          note: r.review!.note,
          reviewedAt: r.review!.at,
          reviewCount: r.reviews.length,
          modelVersion: r.review!.modelVersion,
          threshold: r.review!.threshold,
        })),
    async ingestUpload(fileName, bytes) {
      uploads.push({ fileName, bytes: bytes.length });
      const sha256 = createHash('sha256').update(bytes).digest('hex');
      const path = join(
        opts.workDir,
        `upload-${sha256.slice(0, 12)}${fileName.slice(fileName.lastIndexOf('.'))}`,
      );
      writeFileSync(path, bytes);
      // The "pipeline" classifies a moment later and the result arrives on the live feed.
      const timer = setTimeout(() => {
        timers.delete(timer);
        const r = deps.addResult({
          file: fileName,
          className: 'Pre',
          pBall: 0.93,
          imagePath: path,
          source: 'upload',
        });
        const full = results.find((x) => x.id === r.id)!;
        full.sha256 = sha256;
        void deps.publish(view(full));
      }, 50);
      timers.add(timer);
      return { sha256, duplicate: false };
    },
    status: () => ({
      deviceId: 'test-scope',
      model: { name: 'tiny', version: '0.0.1' },
      provider: 'cpu',
      threshold: 0.5,
      uncertainBand: [0.4, 0.6],
      queueDepth: 0,
      processed: results.filter((r) => r.status === 'done').length,
      outOfDomain: results.filter((r) => r.status === 'out_of_domain').length,
      outOfDomainByReason: [],
      failed: results.filter((r) => r.status === 'failed').length,
      throughputPerMin: 12,
      latencyMs: { p50: 31, p95: 48 },
      broker: { enabled: false, connected: false, url: null },
      outboxBacklog: 0,
      diskFreeBytes: 12 * 1024 ** 3,
      lastImageAt: results.at(-1)?.processedAt ?? null,
      startedAt: new Date().toISOString(),
      problems: [],
    }),
    dailyCounts(days) {
      const out = [];
      for (let i = days - 1; i >= 0; i--) {
        const day = new Date(Date.now() - i * 86400_000).toISOString().slice(0, 10);
        const counts: Record<string, number> = {};
        for (const c of CLASSES)
          counts[c] = results.filter((r) => r.class === c && r.processedAt?.startsWith(day)).length;
        out.push({
          day,
          counts,
          failed: results.filter((r) => r.status === 'failed' && r.processedAt?.startsWith(day)).length,
        });
      }
      return out;
    },
    events: {
      on: (e, l) => emitter.on(e, l),
      off: (e, l) => emitter.off(e, l),
    },
    auth: opts.auth,
    dispose() {
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
    },
    async settled() {
      await Promise.all(pending);
    },
    async publish(r) {
      await Promise.all(pending);
      emitter.emit('result', r);
    },
  };
  return deps;
}
