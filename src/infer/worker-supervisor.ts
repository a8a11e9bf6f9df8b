/**
 * The inference worker thread and its supervision: spawning it (worker.js in dist/, worker.ts
 * through tsx), waiting for its session, numbering the runs in flight, and the crash policy —
 * a crash rejects the runs in flight, is logged and reported to onError listeners, and the next
 * run starts a fresh worker, until MAX_CONSECUTIVE_RESTARTS restarts without a successful run.
 */
import { configureOrtEnvironment } from './ort-environment.js';
import { recycleTensor } from '../preprocess/tensor-pool.js';
import { Worker } from 'node:worker_threads';
import type { Logger } from '../log.js';
import { ModelError } from './errors.js';
import type { FromWorker, ProviderAttempt, SessionCandidate, ToWorker, WorkerInit } from './protocol.js';

/**
 * Worker crash policy: a crash rejects the calls in flight, is logged and reported to onError
 * listeners; the next classify() starts a fresh worker (same provider and file). After
 * MAX_CONSECUTIVE_RESTARTS restarts without one successful classify in between, the classifier
 * is 'failed' and every call rejects: the daemon should report unhealthy and exit so that
 * systemd restarts it.
 */
export const MAX_CONSECUTIVE_RESTARTS = 3;

/** One run's outputs as the worker returns them. */
export interface RawOutput {
  probabilities: Float32Array;
  features?: Float32Array | undefined;
  /** The worker's session run for the whole batch, ms. */
  runMs: number;
}

export interface WorkerHealth {
  /** ready: worker up; crashed: will restart on the next run; failed: gave up; closed. */
  state: 'ready' | 'crashed' | 'failed' | 'closed';
  /** Worker restarts since the first start. */
  restarts: number;
  lastError: string | null;
}

/** Creates the worker thread for `init`; the supervisor calls it for the first start and every restart. */
export type SpawnWorker = (init: WorkerInit) => Worker;

const WORKER_ENTRY = new URL(
  import.meta.url.endsWith('.ts') ? './worker.ts' : './worker.js',
  import.meta.url,
);

/**
 * Creates a worker thread running `entry` (default: the inference worker next to this module,
 * worker.js in dist/ or worker.ts when running the TypeScript sources through tsx: tests,
 * `npx tsx src/cli.ts`). Node 20 does not apply `--import tsx` from a Worker's execArgv to the
 * worker's entry file, so for .ts a small bootstrap registers tsx in the worker first, then
 * imports the entry.
 */
export function spawnWorker(init: WorkerInit, entry: URL = WORKER_ENTRY): Worker {
  configureOrtEnvironment();
  if (!entry.pathname.endsWith('.ts'))
    return new Worker(entry, {
      workerData: init,
      // Workers inherit the parent's flags; --input-type (from `node -e`) is refused for a file,
      // V8's heap sizes (--max-semi-space-size in the systemd unit) are refused in any worker.
      execArgv: process.execArgv.filter((a) => !/^--(input-type|max-(semi|old)-space-size)/.test(a)),
    });
  // Absolute, so the worker finds tsx whatever the current directory is.
  const tsx = import.meta.resolve('tsx/esm/api');
  const bootstrap =
    `import(${JSON.stringify(tsx)}).then((api) => { api.register(); return import(${JSON.stringify(entry.href)}); })` +
    `.catch((err) => { setImmediate(() => { throw err; }); });`;
  return new Worker(bootstrap, { eval: true, workerData: init });
}

export interface StartedWorker {
  worker: Worker;
  candidate: SessionCandidate;
  attempts: ProviderAttempt[];
}

/** Starts a worker and waits until its session exists (or it reports why it cannot). */
export function startWorker(init: WorkerInit, spawn: SpawnWorker): Promise<StartedWorker> {
  return new Promise((resolve, reject) => {
    const worker = spawn(init);
    const onMessage = (msg: FromWorker): void => {
      if (msg.type === 'ready') {
        cleanup();
        resolve({ worker, candidate: msg.candidate, attempts: msg.attempts });
      } else if (msg.type === 'fatal') {
        cleanup();
        void worker.terminate();
        reject(new ModelError(msg.message));
      }
    };
    const onError = (err: Error): void => {
      cleanup();
      reject(new ModelError(`inference worker failed to start: ${err.message}`));
    };
    const onExit = (code: number): void => {
      cleanup();
      reject(new ModelError(`inference worker exited with code ${code} while loading the model`));
    };
    const cleanup = (): void => {
      worker.off('message', onMessage);
      worker.off('error', onError);
      worker.off('exit', onExit);
    };
    worker.on('message', onMessage);
    worker.on('error', onError);
    worker.on('exit', onExit);
  });
}

interface Pending {
  resolve: (out: RawOutput) => void;
  reject: (e: Error) => void;
}

/**
 * One running inference worker (started with startWorker), restarted on demand after a crash
 * with `restartInit` (the provider that worked, so ModelInfo stays true).
 */
export class SupervisedWorker {
  private worker: Worker | null = null;
  private state: WorkerHealth['state'] = 'ready';
  private restarts = 0;
  private consecutiveRestarts = 0;
  private lastError: string | null = null;
  private starting: Promise<Worker> | null = null;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly errorListeners = new Set<(err: ModelError) => void>();

  /**
   * `verifyModel` checks the model file against model.json (size, sha256) at each restart: a
   * file swapped or damaged since the last load fails the restart for good instead of running.
   */
  constructor(
    first: Worker,
    private readonly restartInit: WorkerInit,
    private readonly spawn: SpawnWorker,
    private readonly log: Logger,
    private readonly verifyModel: () => Promise<void> = async () => undefined,
  ) {
    this.attach(first);
  }

  /**
   * Runs one batch; resolves with the model's raw output (N × classes) and, when the model has
   * them, its pooled features (N × featureCount). Rejects with ModelError.
   */
  run(original: Float32Array[], segmented: Float32Array[], transfer: ArrayBuffer[]): Promise<RawOutput> {
    // A running worker gets the message before this returns, so the caller's work after the call
    // (the gate's picture checks) overlaps the inference: awaiting first would post the message
    // only once the caller's synchronous work is done, and the two would run one after the other.
    const send = (w: Worker): Promise<RawOutput> => {
      const id = this.nextId++;
      const raw = new Promise<RawOutput>((resolve, reject) => {
        this.pending.set(id, { resolve, reject });
        const msg: ToWorker = { type: 'run', id, original, segmented };
        w.postMessage(msg, transfer);
      });
      return raw.then((out) => {
        this.consecutiveRestarts = 0;
        return out;
      });
    };
    if (this.worker && this.state === 'ready') return send(this.worker);
    return this.ensureWorker().then(send);
  }

  health(): WorkerHealth {
    return { state: this.state, restarts: this.restarts, lastError: this.lastError };
  }

  onError(listener: (err: ModelError) => void): () => void {
    this.errorListeners.add(listener);
    return () => this.errorListeners.delete(listener);
  }

  /** Releases the session and stops the worker (terminated after 5 s). Pending runs are rejected. */
  async close(): Promise<void> {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.failAll(new ModelError('classifier is closed'));
    const w = this.worker;
    this.worker = null;
    if (!w) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => void w.terminate().then(() => resolve()), 5000);
      w.once('exit', () => {
        clearTimeout(timer);
        resolve();
      });
      w.postMessage({ type: 'close' } satisfies ToWorker);
    });
  }

  private isClosed(): boolean {
    return this.state === 'closed';
  }

  private failAll(err: Error): void {
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
  }

  private attach(w: Worker): void {
    this.worker = w;
    this.state = 'ready';
    w.on('message', (msg: FromWorker) => {
      if (msg.type === 'result' || msg.type === 'error') {
        const p = this.pending.get(msg.id);
        if (!p) return;
        this.pending.delete(msg.id);
        if (msg.type === 'result') {
          for (const a of msg.inputs ?? []) recycleTensor(a);
          p.resolve({ probabilities: msg.probabilities, features: msg.features, runMs: msg.runMs });
        } else p.reject(new ModelError(`inference failed: ${msg.message}`));
      }
    });
    const crashed = (why: string): void => {
      if (this.worker !== w || this.state === 'closed') return;
      this.worker = null;
      this.lastError = why;
      this.state = this.consecutiveRestarts >= MAX_CONSECUTIVE_RESTARTS ? 'failed' : 'crashed';
      const err = new ModelError(`inference worker crashed: ${why}`);
      this.failAll(err);
      this.log.error({ err: why, restarts: this.restarts, state: this.state }, 'inference worker crashed');
      for (const l of this.errorListeners) l(err);
    };
    w.on('error', (err) => crashed(err.message));
    w.on('exit', (code) => crashed(`exited with code ${code}`));
  }

  private async ensureWorker(): Promise<Worker> {
    if (this.state === 'closed') throw new ModelError('classifier is closed');
    if (this.state === 'failed')
      throw new ModelError(
        `inference worker crashed ${this.consecutiveRestarts + 1} times in a row, giving up (last: ${this.lastError})`,
      );
    if (this.worker) return this.worker;
    this.starting ??= this.restart();
    return this.starting;
  }

  private async restart(): Promise<Worker> {
    try {
      this.restarts++;
      this.consecutiveRestarts++;
      this.log.warn({ restarts: this.restarts }, 'restarting the inference worker');
      const s = await startWorker(this.restartInit, this.spawn);
      try {
        // After the load, before the first run: a missing or unloadable file is the worker's
        // error (above); one that loads but is not the file model.json names never runs an image.
        await this.verifyModel();
      } catch (err) {
        await s.worker.terminate();
        throw err;
      }
      if (this.isClosed()) {
        await s.worker.terminate();
        throw new ModelError('classifier is closed');
      }
      this.attach(s.worker);
      return s.worker;
    } catch (err) {
      if (!this.isClosed()) {
        this.state = 'failed';
        this.lastError = (err as Error).message;
        // Final: the daemon hears of it (onError listeners) and exits for its supervisor.
        const failure = err instanceof ModelError ? err : new ModelError(this.lastError);
        this.log.error({ err: this.lastError }, 'inference worker cannot restart: giving up');
        for (const l of this.errorListeners) l(failure);
      }
      throw err;
    } finally {
      this.starting = null;
    }
  }
}
