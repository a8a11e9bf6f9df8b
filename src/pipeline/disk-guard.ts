import { statfsSync } from 'node:fs';
import type { Logger } from '../log.js';
import type { EventBus } from '../runtime/events.js';
import type { Metrics } from '../runtime/metrics.js';

/**
 * Free space on the data.dir file system, checked at most once a second. Below the minimum new
 * images wait (the result, its media and the WAL need room); a crossing either way is announced
 * on the bus (`disk:state`) so the watcher can rescan once space is back.
 */
export class DiskGuard {
  private checkedAt = 0;
  private free: number | null = null;

  constructor(
    private readonly o: {
      dir: string;
      minFreeBytes: number;
      bus: EventBus;
      metrics: Metrics;
      log: Logger;
    },
  ) {}

  /** Free bytes (null when statfs fails). */
  freeBytes(): number | null {
    const now = Date.now();
    if (now - this.checkedAt < 1000) return this.free;
    this.checkedAt = now;
    try {
      const s = statfsSync(this.o.dir);
      const free = s.bavail * s.bsize;
      const wasLow = this.free !== null && this.free < this.o.minFreeBytes;
      this.free = free;
      const low = free < this.o.minFreeBytes;
      if (low !== wasLow) {
        this.o.bus.emit('disk:state', { freeBytes: free, low });
        if (low)
          this.o.log.warn({ freeBytes: free }, 'data disk nearly full: new images wait until space is freed');
      }
      this.o.metrics.diskFree.set(free);
    } catch {
      this.free = null;
    }
    return this.free;
  }

  low(): boolean {
    const free = this.freeBytes();
    return free !== null && free < this.o.minFreeBytes;
  }
}
