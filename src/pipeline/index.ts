import type { Config } from '../config/schema.js';
import { DOMAIN_REASON_TEXT } from '../domain/applicability.js';
import type { NewResult, Result } from '../domain/result.js';
import type { Logger } from '../log.js';
import type { Extension } from '../runtime/extension.js';
import type { EventBus } from '../runtime/events.js';
import type { Metrics } from '../runtime/metrics.js';
import type { OutboxDraft, OutboxRow, Store } from '../store/index.js';
import { encodeMedia } from '../store/media.js';
import { DiskGuard } from './disk-guard.js';
import { identityToAdopt, sameFile } from './identity.js';
import { moveFile } from './move.js';
import type { ClassifierLike, DomainGateLike, PrepareImage, PreparedImageLike } from '../domain/ports.js';
import { WorkQueue } from './queue.js';
import { RetryScheduler } from './retry.js';
import type { WorkItem } from '../domain/work-item.js';
import { Stage, type Outcome } from './stage.js';

export { WorkQueue } from './queue.js';
export type { ClassifierLike, DomainGateLike, PrepareImage, PreparedImageLike } from '../domain/ports.js';
export { Stage, type Outcome } from './stage.js';
export type { WorkItem } from '../domain/work-item.js';

export interface PipelineOptions {
  store: Store;
  bus: EventBus;
  metrics: Metrics;
  log: Logger;
  prepareImage: PrepareImage;
  classifier: ClassifierLike;
  /** The out-of-domain gate (src/gate): no verdict for an image unlike the training images. */
  gate: DomainGateLike;
  /** The MQTT messages for a new result, written in its transaction (none when MQTT is off). */
  outboxMessages: (result: Result) => OutboxDraft[];
  /**
   * Runs inside every new result's transaction (done or failed) with the work item it came from:
   * the specimen assignment and aggregation. Returns the outbox rows it wrote.
   */
  inResultTransaction?: (result: Result, item: WorkItem) => readonly OutboxRow[];
  capture: Config['capture'];
  data: Config['data'];
  image: Config['image'];
  segment: Config['segment'];
  pipeline: Config['pipeline'];
}

type OfferOutcome = 'queued' | 'known' | 'duplicate' | 'full' | 'closed' | 'disk-low' | 'waiting';

/**
 * Queues work items, runs the stage function (src/pipeline/stage.ts) on each and applies its one
 * outcome: store (result + outbox + file row in one transaction), metrics, log, event, media
 * files, move, settle. The `files` table makes a known, unchanged path cost one indexed lookup,
 * which is what the watcher's repeated reconciliation scans rely on.
 */
export class Pipeline implements Extension {
  readonly name = 'pipeline';
  private readonly queue: WorkQueue<WorkItem>;
  private readonly stage: Stage;
  private readonly retries: RetryScheduler;
  private readonly disk: DiskGuard;
  private stopping = false;
  lastImageAt: number | null = null;
  /** Last storage failure (disk full, read-only, locked), cleared by the next successful write. */
  storeError: string | null = null;

  constructor(private readonly o: PipelineOptions) {
    this.stage = new Stage(o);
    this.retries = new RetryScheduler({
      files: o.store.files,
      captureDir: o.capture.dir,
      offer: (item) => this.offer(item),
    });
    this.disk = new DiskGuard({
      dir: o.data.dir,
      minFreeBytes: o.data.min_free_disk_mb * 1024 * 1024,
      bus: o.bus,
      metrics: o.metrics,
      log: o.log,
    });
    this.queue = new WorkQueue<WorkItem>({
      concurrency: o.pipeline.concurrency,
      max: o.pipeline.queue_max,
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

  /** Starts work: re-arms the retry timers recorded before a restart. */
  start(): void {
    this.retries.resume();
  }

  /**
   * The watcher's hint. Cheap and synchronous for a known, unchanged file (one indexed lookup, no
   * I/O), so a reconciliation scan over thousands of processed files costs next to nothing.
   */
  offer(item: WorkItem): OfferOutcome {
    if (this.stopping) return 'closed';
    const known = this.o.store.files.get(item.path);
    if (known && sameFile(known, item)) {
      const adopt = identityToAdopt(known, item);
      if (adopt)
        this.o.store.files.adoptIdentity(item.path, item.size, item.mtimeMs, adopt.ino, adopt.ctimeMs);
      if (known.status !== 'pending') return 'known';
      if ((known.next_attempt_at ?? 0) > Date.now()) {
        if (!this.retries.has(item.path))
          this.retries.schedule({ path: item.path, nextAttemptAt: known.next_attempt_at });
        return 'waiting';
      }
    }
    if (this.disk.low()) {
      this.o.metrics.dropped.inc({ reason: 'disk-low' });
      this.o.bus.emit('file:dropped', { path: item.path, reason: 'disk-low' });
      return 'disk-low';
    }
    const outcome = this.queue.offer(item);
    if (outcome === 'full') {
      this.o.metrics.dropped.inc({ reason: 'queue-full' });
      this.o.bus.emit('file:dropped', { path: item.path, reason: 'queue-full' });
    }
    return outcome;
  }

  /** Stops intake and waits for the images in flight; waiting ones stay in the folder for the next start. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.retries.stop();
    const dropped = await this.queue.close();
    if (dropped > 0) this.o.log.info({ dropped }, 'queued images left for the next start');
  }

  onIdle(): Promise<void> {
    return this.queue.onIdle();
  }

  /** Free bytes on the data.dir file system (checked at most once a second). */
  diskFreeBytes(): number | null {
    return this.disk.freeBytes();
  }

  diskLow(): boolean {
    return this.disk.low();
  }

  private async process(item: WorkItem, queueMs: number): Promise<void> {
    const started = performance.now();
    const outcome = await this.stage.run(item, queueMs);
    switch (outcome.kind) {
      case 'gone':
        this.o.store.files.forget(item.path);
        return item.settle?.({ resultId: null, duplicate: false, error: 'file disappeared' });
      case 'duplicate':
        return this.applyDuplicate(item, outcome);
      case 'done':
        return this.applyDone(item, outcome, started);
      case 'failed':
      case 'quarantined':
        return this.applyFinal(item, outcome);
      case 'retry':
        return this.applyRetry(item, outcome);
    }
  }

  private async applyDuplicate(item: WorkItem, o: Extract<Outcome, { kind: 'duplicate' }>): Promise<void> {
    const files = this.o.store.files;
    if (o.adopt) files.adoptIdentity(item.path, o.adopt.size, o.adopt.mtimeMs, o.adopt.ino, o.adopt.ctimeMs);
    if (o.record) files.put(o.record);
    if (o.counted) this.o.metrics.filesProcessed.inc({ outcome: 'duplicate' });
    if (o.move && o.resultId !== null)
      await this.moveAfter(item, o.resultId, this.o.capture.move_processed_to);
    item.settle?.({ resultId: o.resultId, duplicate: true });
  }

  private async applyDone(
    item: WorkItem,
    o: Extract<Outcome, { kind: 'done' }>,
    started: number,
  ): Promise<void> {
    const { timings, prepared } = o;
    const t2 = performance.now();
    timings.totalMs = t2 - started;
    const committed = this.commit(item, o.result, o.file, this.o.outboxMessages);
    if (!committed) return;
    timings.storeMs = performance.now() - t2;
    this.o.metrics.stageSeconds.observe(timings.storeMs, { stage: 'store' });
    this.o.metrics.stageSeconds.observe(timings.totalMs, { stage: 'total' });
    this.o.metrics.latency.add(timings.totalMs);
    let result: Result | undefined;
    if (committed.created) {
      result = committed.result;
      this.announceOutbox(committed);
      // The publisher has queued the result's message; the MQTT client writes it to the socket on
      // the next tick. Setting up the media encodes first would hold that write back by their
      // synchronous part (about a millisecond): let the message go, then write the media.
      await new Promise<void>((resolve) => setImmediate(resolve));
      await this.writeMedia(result, prepared);
      this.logClassified(item, result);
    } else {
      this.o.metrics.filesProcessed.inc({ outcome: 'duplicate' });
      // Another file with the same bytes won the race: announce the stored result.
      result = this.o.store.results.get(committed.id);
    }
    const { id } = committed;
    this.lastImageAt = o.result.processedAt;
    if (result) this.o.bus.emit('result:stored', { result, created: committed.created });
    if (result && committed.created) {
      const { width, height } = prepared.decoded;
      this.o.bus.emit('picture:judged', {
        result,
        picture: { rgb: prepared.modelRgb ?? prepared.decoded.rgb, width, height },
      });
    }
    await this.moveAfter(item, id, this.o.capture.move_processed_to);
    item.settle?.({ resultId: id, duplicate: !committed.created });
  }

  /** Thumbnail, mask and segmented image for the dashboard; a failure keeps the result. */
  private async writeMedia(result: Result, prepared: PreparedImageLike): Promise<void> {
    try {
      const parts = await encodeMedia({
        rgb: prepared.decoded.rgb,
        width: prepared.decoded.width,
        height: prepared.decoded.height,
        mask: prepared.segmentation.mask,
        segmented: prepared.segmentation.segmented,
        maskSize: Math.round(Math.sqrt(prepared.segmentation.mask.length)),
      });
      this.o.store.media.put(result.id, parts);
      this.o.store.results.setMedia(result.id, true);
      result.media = true;
    } catch (err) {
      this.o.log.warn({ err, id: result.id }, 'could not write thumbnail/mask (result kept)');
    }
  }

  private logClassified(item: WorkItem, r: Result): void {
    if (r.status === 'out_of_domain') return this.logOutOfDomain(item, r);
    this.o.metrics.filesProcessed.inc({ outcome: 'done' });
    if (r.flag) this.o.metrics.flags.inc();
    if (r.needsReview) this.o.metrics.needsReview.inc();
    this.o.log.info(
      {
        file: item.relPath,
        id: r.id,
        class: r.className,
        p_ball: Math.round((r.pBall ?? 0) * 1000) / 1000,
        flag: r.flag,
        needs_review: r.needsReview,
        ms: Math.round(r.timings?.totalMs ?? 0),
      },
      r.flag ? 'FLAG: possible B-ALL, needs a hematologist' : 'classified',
    );
  }

  /** Counted once per reason (an image may have several), and told in words in the log. */
  private logOutOfDomain(item: WorkItem, r: Result): void {
    this.o.metrics.filesProcessed.inc({ outcome: 'out_of_domain' });
    const reasons = r.domain?.reasons ?? [];
    for (const reason of reasons) this.o.metrics.outOfDomain.inc({ reason });
    this.o.log.warn(
      {
        file: item.relPath,
        id: r.id,
        reasons,
        scores: r.domain?.scores,
        ms: Math.round(r.timings?.totalMs ?? 0),
      },
      `cannot screen: unlike the images the model was trained on (${reasons.map((c) => DOMAIN_REASON_TEXT[c]).join('; ')})`,
    );
  }

  private async applyFinal(
    item: WorkItem,
    o: Extract<Outcome, { kind: 'failed' | 'quarantined' }>,
  ): Promise<void> {
    const committed = this.commit(item, o.result, o.file, () => []);
    if (!committed?.created) return;
    const { result } = committed;
    this.announceOutbox(committed);
    const kind = result.errorKind ?? '';
    this.o.metrics.filesProcessed.inc({ outcome: result.status });
    this.o.log.warn(
      { file: item.relPath, id: result.id, reason: kind, error: result.error, attempts: result.attempts },
      `image ${result.status}: ${kind}`,
    );
    this.o.bus.emit('result:stored', { result, created: true });
    if (result.status === 'quarantined')
      await this.moveAfter(item, result.id, this.o.capture.move_quarantined_to);
    item.settle?.({ resultId: result.id, duplicate: false, error: `${kind}: ${result.error ?? ''}` });
  }

  private applyRetry(item: WorkItem, o: Extract<Outcome, { kind: 'retry' }>): void {
    const { file } = o;
    try {
      this.o.store.files.put(file);
    } catch (err) {
      return this.storageFailed(item, err);
    }
    this.o.metrics.filesProcessed.inc({ outcome: 'retry' });
    this.o.log.info(
      { file: item.relPath, reason: file.errorKind, attempts: file.attempts, retryInMs: o.delayMs },
      'image not readable yet, will retry',
    );
    this.retries.schedule({
      path: item.path,
      nextAttemptAt: file.nextAttemptAt,
      relPath: item.relPath,
      origin: item.origin,
    });
    item.settle?.({
      resultId: null,
      duplicate: false,
      error: `${file.errorKind}: ${file.error} (will retry)`,
    });
  }

  /** Wakes the publisher for the rows a commit wrote (the result's and its specimen's). */
  private announceOutbox(committed: { id: number; outbox: OutboxRow[] }): void {
    if (committed.outbox.length > 0)
      this.o.bus.emit('outbox:added', {
        resultId: committed.id,
        count: committed.outbox.length,
        rows: committed.outbox,
      });
  }

  /**
   * Commits result + outbox + file row (and, through `inResultTransaction`, the result's specimen)
   * in one transaction; on a storage failure reports it and returns null.
   */
  private commit(
    item: WorkItem,
    result: NewResult,
    file: Parameters<Store['results']['commit']>[1],
    outbox: (result: Result) => OutboxDraft[],
  ) {
    const hook = this.o.inResultTransaction;
    try {
      const committed = this.o.store.results.commit(
        result,
        file,
        outbox,
        hook && ((stored) => hook(stored, item)),
      );
      this.storeError = null;
      return committed;
    } catch (err) {
      this.storageFailed(item, err);
      return null;
    }
  }

  /** The database refused the write (disk full, read-only, locked): nothing is marked done; the scan retries. */
  private storageFailed(item: WorkItem, err: unknown): void {
    this.storeError = (err as Error).message ?? String(err);
    this.o.store.noteFailure(err);
    this.o.metrics.filesProcessed.inc({ outcome: 'store-error' });
    this.o.log.error({ err, file: item.relPath }, 'could not store the result; the file will be tried again');
    item.settle?.({ resultId: null, duplicate: false, error: `store: ${this.storeError}` });
  }

  /** Moves a processed/quarantined capture file when the config asks for it (never uploads). */
  private async moveAfter(item: WorkItem, resultId: number, targetRoot: string | null): Promise<void> {
    if (!targetRoot || item.origin === 'upload') return;
    try {
      const dest = await moveFile(item.path, item.relPath, targetRoot, resultId);
      this.o.store.results.setPath(resultId, dest);
      this.o.store.files.forget(item.path);
    } catch (err) {
      this.o.log.warn({ err, file: item.relPath, to: targetRoot }, 'could not move the file (left in place)');
    }
  }
}
