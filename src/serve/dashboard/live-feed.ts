import { EventEmitter } from 'node:events';
import type { Extension } from '../../runtime/extension.js';
import type { EventBus } from '../../runtime/events.js';
import type { ResultEvents } from './deps.js';
import type { SpecimenEvents } from './specimen-deps.js';
import { toResultView } from './views.js';

const THROUGHPUT_WINDOW_MS = 5 * 60_000;

/**
 * The dashboard's live feed and throughput, from the bus's `result:stored` events: every new
 * result goes to the browsers as a ResultView; a known one only while someone listens. Changed
 * specimens (`specimen:changed`) go out by id; the stream sends each one's current JSON.
 */
export class LiveFeed implements Extension {
  readonly name = 'dashboard-live-feed';
  private readonly emitter = new EventEmitter();
  private readonly recent: number[] = [];
  private off: (() => void) | null = null;
  private offSpecimens: (() => void) | null = null;
  readonly events: ResultEvents = {
    on: (event, listener) => this.emitter.on(event, listener),
    off: (event, listener) => this.emitter.off(event, listener),
  };
  readonly specimenEvents: SpecimenEvents = {
    on: (event, listener) => this.emitter.on(event, listener),
    off: (event, listener) => this.emitter.off(event, listener),
  };

  constructor(private readonly bus: EventBus) {
    this.emitter.setMaxListeners(100);
  }

  start(): void {
    this.off ??= this.bus.on('result:stored', ({ result, created }) => {
      const now = Date.now();
      this.recent.push(now);
      while (this.recent.length && (this.recent[0] as number) < now - THROUGHPUT_WINDOW_MS)
        this.recent.shift();
      if (created || this.emitter.listenerCount('result') > 0)
        this.emitter.emit('result', toResultView(result));
    });
    this.offSpecimens ??= this.bus.on('specimen:changed', ({ specimenId }) => {
      if (this.emitter.listenerCount('specimen') > 0) this.emitter.emit('specimen', specimenId);
    });
  }

  stop(): void {
    this.off?.();
    this.off = null;
    this.offSpecimens?.();
    this.offSpecimens = null;
  }

  /** Images per minute over the last few minutes (less right after `startedAt`). */
  throughputPerMin(startedAt: number, now = Date.now()): number {
    const inWindow = this.recent.filter((t) => t >= now - THROUGHPUT_WINDOW_MS).length;
    const windowMs = Math.min(THROUGHPUT_WINDOW_MS, Math.max(60_000, now - startedAt));
    return (inWindow * 60_000) / windowMs;
  }
}
