import { createHash, randomBytes } from 'node:crypto';
import { copyFile, mkdir, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { statfsSync } from 'node:fs';
import { basename, dirname, extname, join, relative } from 'node:path';
import type { Logger } from '../log.js';
import { decide } from '../infer/decision.js';
import { eventId, resultPayload, type ClassificationPayloadInput } from '../publish/payloads.js';
import type { FileRow, OutboxDraft, StageTimings, Store } from '../store/index.js';
import { writeMedia } from '../store/media.js';
import type { EventBus } from './events.js';
import type { Metrics } from './metrics.js';
import { isDecodeError, type ClassifierLike, type PrepareImage } from './ports.js';
import { WorkQueue } from './queue.js';

export { EventBus, type BusEvents } from './events.js';
export { createMetrics, type Metrics } from './metrics.js';
export { WorkQueue } from './queue.js';
export type { ClassifierLike, PrepareImage, PreparedImageLike } from './ports.js';

/** A file to process: what the watcher reports, plus where it came from. */
export interface WorkItem {
  path: string;
  relPath: string;
  size: number;
  mtimeMs: number;
  /** Inode and change time from the watcher's stat; without them a hint matches on size + mtime. */
  ino?: number;
  ctimeMs?: number;
  origin?: 'capture' | 'upload';
  /** Called once the item is settled (uploads wait for their result). */
  settle?: (outcome: { resultId: number | null; duplicate: boolean; error?: string }) => void;
}

export interface PipelineOptions {
  store: Store;
  bus: EventBus;
  metrics: Metrics;
  log: Logger;
  prepareImage: PrepareImage;
  classifier: ClassifierLike;
  deviceId: string;
  dataDir: string;
  captureDir: string;
  /** Write outbox rows (false when MQTT is off: nothing would ever drain them). */
  publish: boolean;
  concurrency: number;
  queueMax: number;
  maxAttempts: number;
  retryBackoffMs: number;
  maxFileBytes: number;
  limitInputPixels: number;
  segment: { k: number; threshold: number; minObjectArea: number; minHoleArea: number };
  moveProcessedTo: string | null;
  moveQuarantinedTo: string | null;
  minFreeDiskBytes: number;
}

/** What a result and the file row are recorded with. */
type RecordBase = {
  path: string;
  file: string;
  origin: 'capture' | 'upload';
  size: number;
  capturedAt: number;
  ino: number;
  ctimeMs: number;
};

/** The files-table identity of a record (capturedAt is the file's mtime). */
function fileIdentity(base: RecordBase) {
  return {
    path: base.path,
    size: base.size,
    mtimeMs: base.capturedAt,
    ino: base.ino,
    ctimeMs: base.ctimeMs,
  };
}

/**
 * Whether a files row still describes the file on disk. Path + size + mtime is not enough: a copy
 * tool that keeps the timestamp (rsync -t, cp -p) can put new bytes of the same size in place; the
 * inode (new on a rename into place) and the ctime (which utimes cannot set) tell. Rows written
 * before schema 2 have neither and match on size + mtime, so an upgrade reprocesses nothing.
 */
function sameFile(
  row: FileRow,
  f: { size: number; mtimeMs: number; ino?: number | undefined; ctimeMs?: number | undefined },
): boolean {
  if (row.size !== f.size || row.mtime_ms !== f.mtimeMs) return false;
  if (row.ino === null || row.ctime_ms === null || f.ino === undefined || f.ctimeMs === undefined)
    return true;
  return row.ino === f.ino && row.ctime_ms === f.ctimeMs;
}

/** Longest retry delay, whatever the attempt count: a file still being written is checked at least this often. */
const MAX_BACKOFF_MS = 10 * 60_000;

/**
 * The processing stages: read + hash → decode/segment (prepareImage) → infer (worker thread) →
 * store (result + outbox in one transaction) → media files → event for the publisher and the
 * dashboard. Identity is the content hash; the `files` table makes a known, unchanged path cost
 * one indexed lookup, which is what the watcher's repeated reconciliation scans rely on.
 */
export class Pipeline {
  private readonly queue: WorkQueue<WorkItem>;
  private readonly retryTimers = new Map<string, NodeJS.Timeout>();
  private stopping = false;
  private diskCheckedAt = 0;
  private diskFree: number | null = null;
  /** Images completed since start (any outcome). */
  processed = 0;
  lastImageAt: number | null = null;
  /** Last storage failure (disk full, read-only, locked), cleared by the next successful write. */
  storeError: string | null = null;

  constructor(private readonly o: PipelineOptions) {
    this.queue = new WorkQueue<WorkItem>({
      concurrency: o.concurrency,
      max: o.queueMax,
      key: (item) => item.path,
      work: (item, waited) => this.process(item, waited),
      onError: (err, item) => {
        this.o.log.error({ err, file: item.path }, 'unexpected pipeline error');
        item.settle?.({ resultId: null, duplicate: false, error: String(err) });
      },
      onIdle: () => this.o.bus.emit('pipeline:idle', {}),
    });
    o.metrics.queueDepth.set(() => this.queue.depth);
    o.metrics.inFlight.set(() => this.queue.active);
  }

  get queueDepth(): number {
    return this.queue.depth;
  }

  get inFlight(): number {
    return this.queue.active;
  }

  /** Re-arms retry timers recorded before a restart. */
  resumeRetries(): void {
    for (const row of this.o.store.pendingFiles()) this.scheduleRetry(row);
  }

  /**
   * The watcher's hint. Cheap and synchronous for a known, unchanged file (one indexed lookup, no
   * I/O), so a reconciliation scan over thousands of processed files costs next to nothing.
   */
  offer(item: WorkItem): 'queued' | 'known' | 'duplicate' | 'full' | 'closed' | 'disk-low' | 'waiting' {
    if (this.stopping) return 'closed';
    const known = this.o.store.fileState(item.path);
    if (known && sameFile(known, item)) {
      if (known.ino === null && item.ino !== undefined && item.ctimeMs !== undefined)
        this.o.store.adoptFileIdentity(item.path, item.size, item.mtimeMs, item.ino, item.ctimeMs);
      if (known.status !== 'pending') return 'known';
      if ((known.next_attempt_at ?? 0) > Date.now()) {
        if (!this.retryTimers.has(item.path)) this.scheduleRetry(known);
        return 'waiting';
      }
    }
    if (this.diskLow()) {
      this.o.metrics.dropped.inc({ reason: 'disk-low' });
      this.o.bus.emit('file:dropped', { path: item.path, reason: 'disk-low' });
      return 'disk-low';
    }
    const outcome = this.queue.offer(item);
    if (outcome === 'queued') {
      this.o.bus.emit('file:queued', { path: item.path, relPath: item.relPath, depth: this.queue.depth });
    } else if (outcome === 'full') {
      this.o.metrics.dropped.inc({ reason: 'queue-full' });
      this.o.bus.emit('file:dropped', { path: item.path, reason: 'queue-full' });
    }
    return outcome;
  }

  /**
   * An image uploaded from the dashboard: written under data.dir/uploads (never into the capture
   * folder) and sent through the same stages. Resolves when it is stored.
   */
  async ingestUpload(
    fileName: string,
    bytes: Buffer,
  ): Promise<{ resultId: number | null; sha256: string; duplicate: boolean; error?: string }> {
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    const known = this.o.store.doneResultBySha(sha256);
    if (known !== undefined) return { resultId: known, sha256, duplicate: true };
    const dir = join(this.o.dataDir, 'uploads', new Date().toISOString().slice(0, 10));
    await mkdir(dir, { recursive: true });
    // The stored name is ours (hash + a safe extension); the user's name is only a label.
    const ext = (extname(fileName)
      .toLowerCase()
      .match(/^\.[a-z0-9]{1,5}$/) ?? ['.img'])[0];
    const path = join(dir, `${sha256.slice(0, 16)}-${randomBytes(3).toString('hex')}${ext}`);
    await writeFile(path, bytes, { flag: 'wx' });
    const st = await stat(path);
    // eslint-disable-next-line no-control-regex -- control characters are what we strip
    const label = `upload/${basename(fileName).replace(/[\0-\x1f]/g, '_') || 'image'}`;
    return new Promise((resolve) => {
      const outcome = this.offer({
        path,
        relPath: label,
        size: st.size,
        mtimeMs: st.mtimeMs,
        ino: st.ino,
        ctimeMs: st.ctimeMs,
        origin: 'upload',
        settle: (o) => resolve({ ...o, sha256 }),
      });
      if (outcome !== 'queued')
        resolve({ resultId: null, sha256, duplicate: false, error: `not accepted: ${outcome}` });
    });
  }

  /** Stops intake and waits for the images in flight; waiting ones stay in the folder for the next start. */
  async stop(): Promise<void> {
    this.stopping = true;
    for (const t of this.retryTimers.values()) clearTimeout(t);
    this.retryTimers.clear();
    const dropped = await this.queue.close();
    if (dropped > 0) this.o.log.info({ dropped }, 'queued images left for the next start');
  }

  onIdle(): Promise<void> {
    return this.queue.onIdle();
  }

  // ---- disk guard -----------------------------------------------------------------------------

  /** Free bytes on the data.dir file system (checked at most once a second). */
  diskFreeBytes(): number | null {
    const now = Date.now();
    if (now - this.diskCheckedAt >= 1000) {
      this.diskCheckedAt = now;
      try {
        const s = statfsSync(this.o.dataDir);
        const free = s.bavail * s.bsize;
        const wasLow = this.diskFree !== null && this.diskFree < this.o.minFreeDiskBytes;
        this.diskFree = free;
        const low = free < this.o.minFreeDiskBytes;
        if (low !== wasLow) {
          this.o.bus.emit('disk:state', { freeBytes: free, low });
          if (low)
            this.o.log.warn(
              { freeBytes: free },
              'data disk nearly full: new images wait until space is freed',
            );
        }
        this.o.metrics.diskFree.set(free);
      } catch {
        this.diskFree = null;
      }
    }
    return this.diskFree;
  }

  diskLow(): boolean {
    const free = this.diskFreeBytes();
    return free !== null && free < this.o.minFreeDiskBytes;
  }

  // ---- processing -----------------------------------------------------------------------------

  private async process(item: WorkItem, queueMs: number): Promise<void> {
    const started = performance.now();
    const origin = item.origin ?? 'capture';
    let st;
    try {
      st = await stat(item.path);
    } catch {
      // Gone since the hint (moved or deleted by someone else): nothing to record.
      this.o.store.forgetFile(item.path);
      item.settle?.({ resultId: null, duplicate: false, error: 'file disappeared' });
      return;
    }
    const size = st.size;
    const mtimeMs = st.mtimeMs;
    const ident = { size, mtimeMs, ino: st.ino, ctimeMs: st.ctimeMs };
    const known = this.o.store.fileState(item.path);
    const unchanged = known !== undefined && sameFile(known, ident);
    if (unchanged && known.status !== 'pending') {
      if (known.ino === null)
        this.o.store.adoptFileIdentity(item.path, size, mtimeMs, ident.ino, ident.ctimeMs);
      item.settle?.({ resultId: known.result_id, duplicate: true });
      return;
    }
    // A changed file starts over: a truncated file that was completed gets a fresh count.
    const previousAttempts = unchanged ? known.attempts : 0;
    const base: RecordBase = {
      path: item.path,
      file: item.relPath,
      origin,
      size,
      capturedAt: mtimeMs,
      ino: st.ino,
      ctimeMs: st.ctimeMs,
    };
    const timings: StageTimings = { queueMs };

    if (size > this.o.maxFileBytes) {
      this.recordFinal(item, base, null, 'too-large', `file is ${size} bytes, above image.max_file_mb`, 1);
      return;
    }

    let bytes: Buffer;
    let sha256: string;
    const t0 = performance.now();
    try {
      bytes = await readFile(item.path);
      sha256 = createHash('sha256').update(bytes).digest('hex');
    } catch (err) {
      this.recordAttemptFailure(
        item,
        base,
        null,
        previousAttempts,
        'unreadable',
        `cannot read: ${(err as Error).message}`,
        true,
      );
      return;
    }
    timings.readMs = performance.now() - t0;

    // Only the inode or ctime changed (chmod, a copy of the same bytes over it): the bytes already
    // have their outcome. Record the new identity and keep that outcome, so a failed file does not
    // get a second failure row.
    if (known && known.status !== 'pending' && known.sha256 === sha256) {
      this.o.store.putFile({
        ...fileIdentity(base),
        sha256,
        status: known.status,
        attempts: known.attempts,
        errorKind: known.error_kind,
        error: known.error,
        resultId: known.result_id,
      });
      this.o.bus.emit('file:skipped', { path: item.path, reason: 'same bytes as before' });
      if (known.status === 'done' && known.result_id !== null)
        await this.moveAfter(item, known.result_id, this.o.moveProcessedTo);
      item.settle?.({ resultId: known.result_id, duplicate: true });
      return;
    }

    // Same bytes as a stored result (a copy, a re-save under a new name): link, do not classify twice.
    const existing = this.o.store.doneResultBySha(sha256);
    if (existing !== undefined) {
      this.o.store.putFile({
        ...fileIdentity(base),
        sha256,
        status: 'done',
        attempts: previousAttempts + 1,
        resultId: existing,
      });
      this.o.metrics.filesProcessed.inc({ outcome: 'duplicate' });
      this.o.bus.emit('file:skipped', { path: item.path, reason: `same bytes as result ${existing}` });
      await this.moveAfter(item, existing, this.o.moveProcessedTo);
      item.settle?.({ resultId: existing, duplicate: true });
      return;
    }

    let prepared;
    try {
      prepared = await this.o.prepareImage(bytes, {
        size: this.o.classifier.info.imageSize.width,
        limitInputPixels: this.o.limitInputPixels,
        segment: this.o.segment,
      });
    } catch (err) {
      if (isDecodeError(err)) {
        if (err.retryable)
          this.recordAttemptFailure(item, base, sha256, previousAttempts, err.kind, err.message, false);
        else this.recordFinal(item, base, sha256, err.kind, err.message, previousAttempts + 1);
      } else {
        this.recordAttemptFailure(
          item,
          base,
          sha256,
          previousAttempts,
          'internal',
          `preprocessing failed: ${String(err)}`,
          false,
        );
      }
      return;
    }
    timings.decodeMs = prepared.timings.decodeMs;
    timings.segmentMs = prepared.timings.segmentMs;
    timings.tensorMs = prepared.timings.tensorMs;
    this.o.metrics.stageSeconds.observe(timings.readMs, { stage: 'read' });
    this.o.metrics.stageSeconds.observe(timings.decodeMs, { stage: 'decode' });
    this.o.metrics.stageSeconds.observe(timings.segmentMs, { stage: 'segment' });
    this.o.metrics.stageSeconds.observe(timings.tensorMs, { stage: 'tensor' });

    const info = this.o.classifier.info;
    let prediction;
    const t1 = performance.now();
    try {
      // Transfer the float tensors to the worker (no copy); media files use the 8-bit buffers.
      const [p] = await this.o.classifier.classify(
        [{ original: prepared.original, segmented: prepared.segmented }],
        {
          transfer: true,
        },
      );
      if (!p) throw new Error('classifier returned no prediction');
      prediction = p;
    } catch (err) {
      // Not the file's fault (worker crash): retry later; does not count toward quarantine, or a
      // broken model would quarantine every good image.
      this.recordAttemptFailure(
        item,
        base,
        sha256,
        previousAttempts,
        'inference',
        `inference failed: ${(err as Error).message}`,
        false,
      );
      return;
    }
    timings.inferMs = performance.now() - t1;
    this.o.metrics.stageSeconds.observe(timings.inferMs, { stage: 'infer' });

    const decision = decide(prediction.pBall, info.threshold, info.uncertainBand);
    const processedAt = Date.now();
    const t2 = performance.now();
    timings.totalMs = t2 - started;
    const modelRef = {
      name: info.name,
      version: info.version,
      execution_provider: info.executionProvider,
      precision: info.precision,
    };
    let committed;
    try {
      committed = this.o.store.commitResult(
        {
          status: 'done',
          sha256,
          ...base,
          className: prediction.className,
          classIndex: prediction.classIndex,
          pBall: prediction.pBall,
          flag: decision.flag,
          needsReview: decision.needsReview,
          probabilities: prediction.byClass,
          modelName: info.name,
          modelVersion: info.version,
          threshold: info.threshold,
          attempts: previousAttempts + 1,
          processedAt,
          timings,
          image: {
            ...prepared.decoded.source,
            executionProvider: info.executionProvider,
            precision: info.precision,
          },
          maskStats: prepared.segmentation.stats as Record<string, unknown>,
        },
        {
          ...fileIdentity(base),
          sha256,
          status: 'done',
          attempts: previousAttempts + 1,
        },
        (resultId) => {
          if (!this.o.publish) return [];
          const input: ClassificationPayloadInput = {
            deviceId: this.o.deviceId,
            resultId,
            file: item.relPath,
            sha256,
            className: prediction.className,
            probabilities: prediction.byClass,
            pBall: prediction.pBall,
            flag: decision.flag,
            needsReview: decision.needsReview,
            threshold: info.threshold,
            uncertainBand: info.uncertainBand,
            model: modelRef,
            capturedAt: mtimeMs,
            processedAt,
            timings,
          };
          const drafts: OutboxDraft[] = [
            {
              eventId: eventId(sha256, info.version, 'result'),
              topic: 'result',
              payload: JSON.stringify(resultPayload(input, 'result')),
            },
          ];
          if (decision.flag) {
            drafts.push({
              eventId: eventId(sha256, info.version, 'alert'),
              topic: 'alert',
              payload: JSON.stringify(resultPayload(input, 'alert')),
            });
          }
          return drafts;
        },
      );
      this.storeError = null;
    } catch (err) {
      this.storageFailed(item, err);
      return;
    }
    timings.storeMs = performance.now() - t2;
    this.o.metrics.stageSeconds.observe(timings.storeMs, { stage: 'store' });
    this.o.metrics.stageSeconds.observe(timings.totalMs, { stage: 'total' });
    this.o.metrics.latency.add(timings.totalMs);

    if (committed.created) {
      if (this.o.publish)
        this.o.bus.emit('outbox:added', { resultId: committed.id, count: decision.flag ? 2 : 1 });
      try {
        await writeMedia(this.o.dataDir, committed.id, {
          rgb: prepared.decoded.rgb,
          width: prepared.decoded.width,
          height: prepared.decoded.height,
          mask: prepared.segmentation.mask,
          segmented: prepared.segmentation.segmented,
          maskSize: Math.round(Math.sqrt(prepared.segmentation.mask.length)),
        });
        this.o.store.setMedia(committed.id, true);
      } catch (err) {
        this.o.log.warn({ err, id: committed.id }, 'could not write thumbnail/mask (result kept)');
      }
      this.o.metrics.filesProcessed.inc({ outcome: 'done' });
      if (decision.flag) this.o.metrics.flags.inc();
      if (decision.needsReview) this.o.metrics.needsReview.inc();
      this.o.log.info(
        {
          file: item.relPath,
          id: committed.id,
          class: prediction.className,
          p_ball: Math.round(prediction.pBall * 1000) / 1000,
          flag: decision.flag,
          needs_review: decision.needsReview,
          ms: Math.round(timings.totalMs),
        },
        decision.flag ? 'FLAG: possible B-ALL, needs a hematologist' : 'classified',
      );
    } else {
      this.o.metrics.filesProcessed.inc({ outcome: 'duplicate' });
    }
    this.processed += 1;
    this.lastImageAt = processedAt;
    const row = this.o.store.getResult(committed.id);
    if (row) this.o.bus.emit('result:stored', { result: row, created: committed.created });
    await this.moveAfter(item, committed.id, this.o.moveProcessedTo);
    item.settle?.({ resultId: committed.id, duplicate: !committed.created });
  }

  /** A final failure (empty, unsupported, too large, unreadable): recorded, not retried unless the file changes. */
  private recordFinal(
    item: WorkItem,
    base: RecordBase,
    sha256: string | null,
    kind: string,
    message: string,
    attempts: number,
  ): void {
    this.recordOutcome(item, base, sha256, 'failed', kind, message, attempts);
  }

  private recordOutcome(
    item: WorkItem,
    base: RecordBase,
    sha256: string | null,
    status: 'failed' | 'quarantined',
    kind: string,
    message: string,
    attempts: number,
  ): void {
    let id: number;
    try {
      ({ id } = this.o.store.commitResult(
        { status, sha256, ...base, errorKind: kind, error: message, attempts, processedAt: Date.now() },
        {
          ...fileIdentity(base),
          sha256,
          status,
          attempts,
          errorKind: kind,
          error: message,
        },
        () => [],
      ));
      this.storeError = null;
    } catch (err) {
      this.storageFailed(item, err);
      return;
    }
    this.processed += 1;
    this.o.metrics.filesProcessed.inc({ outcome: status });
    this.o.log.warn(
      { file: item.relPath, id, reason: kind, error: message, attempts },
      `image ${status}: ${kind}`,
    );
    const row = this.o.store.getResult(id);
    if (row) this.o.bus.emit('result:stored', { result: row, created: true });
    const settle = () => item.settle?.({ resultId: id, duplicate: false, error: `${kind}: ${message}` });
    if (status === 'quarantined') void this.moveAfter(item, id, this.o.moveQuarantinedTo).then(settle);
    else settle();
  }

  /** A retryable failure: backoff, or quarantine once max_attempts is reached. */
  private recordAttemptFailure(
    item: WorkItem,
    base: RecordBase,
    sha256: string | null,
    previousAttempts: number,
    kind: string,
    message: string,
    _ioError: boolean,
  ): void {
    const counts = kind !== 'inference';
    const attempts = counts ? previousAttempts + 1 : previousAttempts;
    if (counts && attempts >= this.o.maxAttempts) {
      this.recordOutcome(
        item,
        base,
        sha256,
        'quarantined',
        kind,
        `${message} (after ${attempts} attempts)`,
        attempts,
      );
      return;
    }
    // Inference failures (worker down) wait a steady few backoffs; file failures back off exponentially.
    const delay = counts
      ? Math.min(MAX_BACKOFF_MS, this.o.retryBackoffMs * 2 ** Math.max(0, attempts - 1))
      : this.o.retryBackoffMs * 4;
    const nextAttemptAt = Date.now() + delay;
    const update = {
      ...fileIdentity(base),
      sha256,
      status: 'pending' as const,
      attempts,
      nextAttemptAt,
      errorKind: kind,
      error: message,
    };
    try {
      this.o.store.putFile(update);
    } catch (err) {
      this.storageFailed(item, err);
      return;
    }
    this.o.metrics.filesProcessed.inc({ outcome: 'retry' });
    this.o.log.info(
      { file: item.relPath, reason: kind, attempts, retryInMs: delay },
      'image not readable yet, will retry',
    );
    this.o.bus.emit('file:retry', { path: item.path, attempts, nextAttemptAt, error: message });
    this.scheduleRetry({
      ...update,
      next_attempt_at: nextAttemptAt,
      relPath: item.relPath,
      origin: item.origin,
    });
    item.settle?.({ resultId: null, duplicate: false, error: `${kind}: ${message} (will retry)` });
  }

  /** The database refused the write (disk full, read-only, locked): nothing is marked done; the scan retries. */
  private storageFailed(item: WorkItem, err: unknown): void {
    this.storeError = (err as Error).message ?? String(err);
    this.o.metrics.filesProcessed.inc({ outcome: 'store-error' });
    this.o.log.error({ err, file: item.relPath }, 'could not store the result; the file will be tried again');
    item.settle?.({ resultId: null, duplicate: false, error: `store: ${this.storeError}` });
  }

  private scheduleRetry(
    row: Pick<FileRow, 'path'> & {
      next_attempt_at: number | null;
      relPath?: string;
      origin?: 'capture' | 'upload' | undefined;
    },
  ): void {
    if (this.stopping) return;
    const prev = this.retryTimers.get(row.path);
    if (prev) clearTimeout(prev);
    const delay = Math.max(0, (row.next_attempt_at ?? 0) - Date.now());
    const timer = setTimeout(() => {
      this.retryTimers.delete(row.path);
      void stat(row.path).then(
        (st) =>
          this.offer({
            path: row.path,
            relPath: row.relPath ?? relative(this.o.captureDir, row.path),
            size: st.size,
            mtimeMs: st.mtimeMs,
            ino: st.ino,
            ctimeMs: st.ctimeMs,
            origin: row.origin ?? 'capture',
          }),
        () => this.o.store.forgetFile(row.path),
      );
    }, delay);
    this.retryTimers.set(row.path, timer);
  }

  // ---- optional moves ---------------------------------------------------------------------------

  /** Moves a processed/quarantined capture file when the config asks for it (never uploads). */
  private async moveAfter(item: WorkItem, resultId: number, targetRoot: string | null): Promise<void> {
    if (!targetRoot || item.origin === 'upload') return;
    let dest = join(targetRoot, item.relPath);
    try {
      await mkdir(dirname(dest), { recursive: true });
      // Never overwrite: a name reused by the camera keeps both images.
      try {
        await stat(dest);
        dest = join(dirname(dest), `${basename(dest, extname(dest))}.${resultId}${extname(dest)}`);
      } catch {
        /* free */
      }
      try {
        await rename(item.path, dest);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
        await copyFile(item.path, dest);
        await unlink(item.path);
      }
      this.o.store.setResultPath(resultId, dest);
      this.o.store.forgetFile(item.path);
    } catch (err) {
      this.o.log.warn({ err, file: item.relPath, to: dest }, 'could not move the file (left in place)');
    }
  }
}
