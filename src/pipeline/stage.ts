import { createHash } from 'node:crypto';
import type { Stats } from 'node:fs';
import { open, stat, type FileHandle } from 'node:fs/promises';
import type { Config } from '../config/schema.js';
import type { NewResult, StageTimings } from '../domain/result.js';
import type { WorkItem } from '../domain/work-item.js';
import { decide } from '../infer/decision.js';
import type { Metrics } from '../runtime/metrics.js';
import type { FileRow, FileUpdate, Store } from '../store/index.js';
import { fileColumns, identityToAdopt, sameFile } from './identity.js';
import {
  gateInputOf,
  isDecodeError,
  type ClassifierLike,
  type DomainGateLike,
  type PrepareImage,
  type PreparedImageLike,
} from '../domain/ports.js';
import type { DomainCheck } from '../domain/applicability.js';
import type { PictureInspection } from '../gate/index.js';
import type { Prediction } from '../infer/index.js';
import { readAll } from './read-all.js';
import { retryDelayMs } from './retry.js';

type FileState = Omit<FileUpdate, 'resultId'>;

/**
 * An out-of-domain image gets no verdict: no class, no P(B-ALL), no flag, and none of the model's
 * probabilities either, since any of them stored would be read as one (never flagged, never
 * called benign). The gate's judgement (`domain`) says why.
 */
const NO_VERDICT = {
  className: null,
  classIndex: null,
  pBall: null,
  flag: null,
  needsReview: null,
  probabilities: null,
} as const;

/** What processing one work item came to; the Pipeline applies it (store, metrics, log, move). */
export type Outcome =
  /** The file vanished before it could be read. */
  | { kind: 'gone' }
  /**
   * Bytes that already have an outcome: unchanged since last time (`adopt` an identity for a row
   * from before schema 2), the same bytes under a changed identity (`record`), or the bytes of
   * another result (`record`, counted as a duplicate).
   */
  | {
      kind: 'duplicate';
      resultId: number | null;
      record: FileUpdate | null;
      adopt: { size: number; mtimeMs: number; ino: number; ctimeMs: number } | null;
      counted: boolean;
      move: boolean;
    }
  /**
   * Classified: the result to commit (status `done`, or `out_of_domain` when the gate refused the
   * image), with the prepared image for the media files.
   */
  | { kind: 'done'; result: NewResult; file: FileState; prepared: PreparedImageLike; timings: StageTimings }
  /** Failed for good (empty, unsupported, too large), or quarantined after max_attempts. */
  | { kind: 'failed' | 'quarantined'; result: NewResult; file: FileState }
  /** Not possible now (truncated, unreadable, inference down): try again after `delayMs`. */
  | { kind: 'retry'; file: FileUpdate & { nextAttemptAt: number }; delayMs: number };

export interface StageDeps {
  store: Store;
  prepareImage: PrepareImage;
  classifier: ClassifierLike;
  /** Judges every classified image before it gets a verdict. */
  gate: DomainGateLike;
  metrics: Metrics;
  capture: Pick<Config['capture'], 'max_attempts' | 'retry_backoff_ms'>;
  image: Config['image'];
  segment: Config['segment'];
}

/** The gate's picture checks, made while the model ran (`value` undefined: the gate has none apart). */
type Inspected =
  { ok: true; value: PictureInspection | undefined; ms: number } | { ok: false; error: unknown };

/** The file to process: open with its identity, or (not openable) only stat'ed. */
type Opened = { handle: FileHandle; st: Stats } | { handle: null; st: Stats; openError: Error };

/** What one attempt knows about its file once stat'ed. */
interface Attempt {
  known: FileRow | undefined;
  previousAttempts: number;
  columns: ReturnType<typeof fileColumns>;
  base: Pick<NewResult, 'path' | 'file' | 'origin' | 'size' | 'capturedAt'>;
}

/**
 * The processing stages for one file, in order: stat → known? → read + hash → same bytes known?
 * → decode/segment (prepareImage) → infer (worker thread) → domain gate → decision. Reads the
 * store, writes nothing: the outcome says what to record. Identity is the content hash.
 */
export class Stage {
  private readonly maxFileBytes: number;
  private readonly prepareOptions: Parameters<PrepareImage>[1];

  constructor(private readonly d: StageDeps) {
    this.maxFileBytes = Math.round(d.image.max_file_mb * 1024 * 1024);
    this.prepareOptions = {
      size: d.classifier.info.imageSize.width,
      limitInputPixels: d.image.max_input_pixels,
      segment: {
        k: d.segment.k,
        threshold: d.segment.threshold,
        minObjectArea: d.segment.min_object_area,
        minHoleArea: d.segment.min_hole_area,
      },
      // Whether and how to normalise colour is a property of the model, not of the config.
      colour: d.classifier.info.colour ?? null,
    };
  }

  async run(item: WorkItem, queueMs: number): Promise<Outcome> {
    // The file is opened once and its identity taken from that descriptor (fstat): the size, mtime,
    // inode and ctime recorded are those of the very bytes read, and no separate stat of the path
    // is needed (one statx and one thread-pool round trip less per image).
    let handle: FileHandle | null = null;
    let opened: Opened;
    try {
      handle = await open(item.path, 'r');
      opened = { handle, st: await handle.stat() };
    } catch (err) {
      await handle?.close().catch(() => undefined);
      handle = null;
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { kind: 'gone' };
      // There but not openable (permissions, a share going away): stat tells gone from unreadable.
      try {
        opened = { handle: null, st: await stat(item.path), openError: err as Error };
      } catch {
        return { kind: 'gone' }; // moved or deleted by someone else since the hint
      }
    }
    try {
      return await this.runOpened(item, queueMs, opened);
    } finally {
      await handle?.close().catch(() => undefined);
    }
  }

  private async runOpened(item: WorkItem, queueMs: number, opened: Opened): Promise<Outcome> {
    const { st } = opened;
    const ident = { size: st.size, mtimeMs: st.mtimeMs, ino: st.ino, ctimeMs: st.ctimeMs };
    const known = this.d.store.files.get(item.path);
    const unchanged = known !== undefined && sameFile(known, ident);
    if (unchanged && known.status !== 'pending') {
      const id = identityToAdopt(known, ident);
      const adopt = id && { size: st.size, mtimeMs: st.mtimeMs, ...id };
      return {
        kind: 'duplicate',
        resultId: known.result_id,
        record: null,
        adopt,
        counted: false,
        move: false,
      };
    }
    const a: Attempt = {
      known,
      // A changed file starts over: a truncated file that was completed gets a fresh count.
      previousAttempts: unchanged ? known.attempts : 0,
      columns: fileColumns(item.path, ident),
      base: {
        path: item.path,
        file: item.relPath,
        origin: item.origin ?? 'capture',
        size: st.size,
        capturedAt: st.mtimeMs,
      },
    };
    if (st.size > this.maxFileBytes)
      return this.final(
        a,
        'failed',
        null,
        'too-large',
        `file is ${st.size} bytes, above image.max_file_mb`,
        1,
      );

    const timings: StageTimings = { queueMs };
    let bytes: Buffer;
    let sha256: string;
    const t0 = performance.now();
    try {
      if (!opened.handle) throw opened.openError;
      bytes = await readAll(opened.handle, st.size);
      sha256 = createHash('sha256').update(bytes).digest('hex');
    } catch (err) {
      return this.attemptFailed(a, null, 'unreadable', `cannot read: ${(err as Error).message}`);
    }
    timings.readMs = performance.now() - t0;
    return this.knownBytes(a, sha256) ?? this.classify(a, bytes, sha256, timings);
  }

  /** Same bytes as before, or as another result: no second classification. */
  private knownBytes(a: Attempt, sha256: string): Outcome | null {
    const { known } = a;
    // Only the inode or ctime changed (chmod, a copy of the same bytes over it): the bytes already
    // have their outcome. Record the new identity and keep that outcome, so a failed file does not
    // get a second failure row.
    if (known && known.status !== 'pending' && known.sha256 === sha256) {
      const record: FileUpdate = {
        ...a.columns,
        sha256,
        status: known.status,
        attempts: known.attempts,
        errorKind: known.error_kind,
        error: known.error,
        resultId: known.result_id,
      };
      const move = known.status === 'done' && known.result_id !== null;
      return { kind: 'duplicate', resultId: known.result_id, record, adopt: null, counted: false, move };
    }
    // Same bytes as a stored result (a copy, a re-save under a new name): link, do not classify twice.
    const existing = this.d.store.results.doneIdBySha(sha256);
    if (existing === undefined) return null;
    const attempts = a.previousAttempts + 1;
    const record: FileUpdate = { ...a.columns, sha256, status: 'done', attempts, resultId: existing };
    return { kind: 'duplicate', resultId: existing, record, adopt: null, counted: true, move: true };
  }

  private async classify(a: Attempt, bytes: Buffer, sha256: string, timings: StageTimings): Promise<Outcome> {
    const observe = (ms: number, stage: string) => this.d.metrics.stageSeconds.observe(ms, { stage });
    let prepared;
    try {
      prepared = await this.d.prepareImage(bytes, this.prepareOptions);
    } catch (err) {
      if (!isDecodeError(err))
        return this.attemptFailed(a, sha256, 'internal', `preprocessing failed: ${String(err)}`);
      // A capture caught mid-write is tried again later; an upload was stored whole before it
      // was offered, so its bytes will never be more complete.
      if (err.retryable && a.base.origin !== 'upload')
        return this.attemptFailed(a, sha256, err.kind, err.message);
      return this.final(a, 'failed', sha256, err.kind, err.message, a.previousAttempts + 1);
    }
    timings.decodeMs = prepared.timings.decodeMs;
    timings.segmentMs = prepared.timings.segmentMs;
    timings.tensorMs = prepared.timings.tensorMs;
    observe(timings.readMs ?? 0, 'read');
    observe(timings.decodeMs, 'decode');
    observe(timings.segmentMs, 'segment');
    observe(timings.tensorMs, 'tensor');

    const t1 = performance.now();
    // Transfer the float tensors to the worker (no copy); media files and the gate use the 8-bit buffers.
    const pair = { original: prepared.original, segmented: prepared.segmented };
    const inference = this.d.classifier
      .classify([pair], { transfer: true })
      .then(([p]) => p ?? Promise.reject(new Error('classifier returned no prediction')));
    // The gate's picture checks need no model output: this thread makes them while the worker infers.
    const inspection = this.inspectPicture(prepared);
    let prediction;
    try {
      prediction = await inference;
    } catch (err) {
      return this.attemptFailed(a, sha256, 'inference', `inference failed: ${(err as Error).message}`);
    }
    timings.inferMs = performance.now() - t1;
    if (prediction.modelMs !== undefined) timings.modelMs = prediction.modelMs;
    observe(timings.inferMs, 'infer');
    return this.judge(a, sha256, prepared, prediction, inspection, timings);
  }

  /** The gate's picture checks, kept with their time or their failure for judge(). */
  private inspectPicture(prepared: PreparedImageLike): Inspected {
    const t = performance.now();
    try {
      const value = this.d.gate.inspect?.(gateInputOf(prepared, null));
      return { ok: true, value, ms: performance.now() - t };
    } catch (err) {
      return { ok: false, error: err };
    }
  }

  /**
   * The gate's judgement, then the result: a verdict when the image is in domain, none when not.
   * The judgement ends after inference because it may read the model's own features; until the
   * gate has spoken, the prediction is not a verdict.
   */
  private judge(
    a: Attempt,
    sha256: string,
    prepared: PreparedImageLike,
    prediction: Prediction,
    inspection: Inspected,
    timings: StageTimings,
  ): Outcome {
    const info = this.d.classifier.info;
    let domain: DomainCheck;
    const t2 = performance.now();
    try {
      if (!inspection.ok) throw inspection.error;
      domain = this.d.gate.judge({ ...gateInputOf(prepared, prediction), inspection: inspection.value });
      timings.gateMs = performance.now() - t2 + inspection.ms;
    } catch (err) {
      // Never a verdict on an unjudged image: retried, and quarantined if it keeps failing.
      return this.attemptFailed(a, sha256, 'internal', `domain check failed: ${String(err)}`);
    }
    this.d.metrics.stageSeconds.observe(timings.gateMs, { stage: 'gate' });

    const attempts = a.previousAttempts + 1;
    const result: NewResult = {
      status: domain.in ? 'done' : 'out_of_domain',
      sha256,
      ...a.base,
      ...(domain.in ? this.verdict(prediction) : NO_VERDICT),
      domain,
      modelName: info.name,
      modelVersion: info.version,
      threshold: info.threshold,
      attempts,
      processedAt: Date.now(),
      timings,
      image: {
        ...prepared.decoded.source,
        executionProvider: info.executionProvider,
        precision: info.precision,
      },
      maskStats: prepared.segmentation.stats as Record<string, unknown>,
    };
    return {
      kind: 'done',
      result,
      // The file is processed either way (moved with move_processed_to, never classified again);
      // its result says whether it was screened.
      file: { ...a.columns, sha256, status: 'done', attempts },
      prepared,
      timings,
    };
  }

  /** The model's answer as a verdict: class, P(B-ALL), flag and needs-review. */
  private verdict(
    prediction: Prediction,
  ): Pick<NewResult, 'className' | 'classIndex' | 'pBall' | 'flag' | 'needsReview' | 'probabilities'> {
    const { threshold, uncertainBand } = this.d.classifier.info;
    const decision = decide(prediction.pBall, threshold, uncertainBand);
    return {
      className: prediction.className,
      classIndex: prediction.classIndex,
      pBall: prediction.pBall,
      flag: decision.flag,
      needsReview: decision.needsReview,
      probabilities: prediction.byClass,
    };
  }

  /** A final failure: recorded, not retried unless the file changes. */
  private final(
    a: Attempt,
    status: 'failed' | 'quarantined',
    sha256: string | null,
    kind: string,
    message: string,
    attempts: number,
  ): Outcome {
    return {
      kind: status,
      result: {
        status,
        sha256,
        ...a.base,
        errorKind: kind,
        error: message,
        attempts,
        processedAt: Date.now(),
      },
      file: { ...a.columns, sha256, status, attempts, errorKind: kind, error: message },
    };
  }

  /** A retryable failure: backoff, or quarantine once max_attempts is reached. */
  private attemptFailed(a: Attempt, sha256: string | null, kind: string, message: string): Outcome {
    // Inference failures (worker down) are not the file's fault: they never count toward
    // quarantine, or a broken model would quarantine every good image.
    const counts = kind !== 'inference';
    const attempts = counts ? a.previousAttempts + 1 : a.previousAttempts;
    if (counts && attempts >= this.d.capture.max_attempts)
      return this.final(a, 'quarantined', sha256, kind, `${message} (after ${attempts} attempts)`, attempts);
    const delayMs = retryDelayMs(attempts, counts, this.d.capture.retry_backoff_ms);
    const nextAttemptAt = Date.now() + delayMs;
    const file = {
      ...a.columns,
      sha256,
      status: 'pending' as const,
      attempts,
      nextAttemptAt,
      errorKind: kind,
      error: message,
    };
    return { kind: 'retry', file, delayMs };
  }
}
