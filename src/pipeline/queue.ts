/**
 * A bounded work queue with a fixed number of workers. Items are keyed (the file path) so a file
 * already waiting or in flight is not queued twice; `offer` refuses when full instead of growing
 * (backpressure: the caller drops the hint and the periodic scan offers the file again later).
 * No timers and no polling: an idle queue costs nothing.
 */
export class WorkQueue<T> {
  private readonly waiting = new Map<string, { item: T; enqueuedAt: number }>();
  private readonly inFlight = new Set<string>();
  private closed = false;
  private idleWaiters: (() => void)[] = [];

  constructor(
    private readonly opts: {
      concurrency: number;
      max: number;
      key: (item: T) => string;
      work: (item: T, waitedMs: number) => Promise<void>;
      onError: (err: unknown, item: T) => void;
      onIdle?: () => void;
    },
  ) {}

  /** Queues an item; false when full, closed, or the same key is already waiting/in flight. */
  offer(item: T): 'queued' | 'duplicate' | 'full' | 'closed' {
    if (this.closed) return 'closed';
    const key = this.opts.key(item);
    if (this.waiting.has(key) || this.inFlight.has(key)) return 'duplicate';
    if (this.waiting.size >= this.opts.max) return 'full';
    this.waiting.set(key, { item, enqueuedAt: Date.now() });
    this.pump();
    return 'queued';
  }

  has(key: string): boolean {
    return this.waiting.has(key) || this.inFlight.has(key);
  }

  get depth(): number {
    return this.waiting.size;
  }

  get active(): number {
    return this.inFlight.size;
  }

  get idle(): boolean {
    return this.waiting.size === 0 && this.inFlight.size === 0;
  }

  private pump(): void {
    while (this.inFlight.size < this.opts.concurrency && this.waiting.size > 0) {
      // Map iteration order is insertion order: FIFO.
      const [key, entry] = this.waiting.entries().next().value as [string, { item: T; enqueuedAt: number }];
      this.waiting.delete(key);
      this.inFlight.add(key);
      const waited = Date.now() - entry.enqueuedAt;
      void this.opts
        .work(entry.item, waited)
        .catch((err: unknown) => this.opts.onError(err, entry.item))
        .finally(() => {
          this.inFlight.delete(key);
          if (!this.closed) this.pump();
          if (this.idle) {
            this.opts.onIdle?.();
            const waiters = this.idleWaiters;
            this.idleWaiters = [];
            for (const w of waiters) w();
          }
        });
    }
  }

  /** Resolves when nothing is waiting or in flight. */
  onIdle(): Promise<void> {
    if (this.idle) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /**
   * Stops intake. Waiting items are dropped (they are still files in the capture folder: the
   * next start's scan finds them); resolves when the in-flight ones have finished.
   */
  async close(): Promise<number> {
    this.closed = true;
    const dropped = this.waiting.size;
    this.waiting.clear();
    if (this.inFlight.size > 0) await this.onIdle();
    return dropped;
  }
}
