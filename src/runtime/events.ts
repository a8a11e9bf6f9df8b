import type { Result } from '../domain/result.js';
import type { OutboxRow } from '../store/outbox.js';

/**
 * Typed event bus: the stages and the extensions (MQTT, HTTP, dashboard live feed) talk through
 * it instead of holding references to each other, in the spirit of Zigbee2MQTT's controller +
 * extensions. Every topic has exactly one payload type; a typo in a topic name is a compile error.
 */
export interface BusEvents {
  /** A hint was dropped because the queue is full (the periodic scan picks the file up later). */
  'file:dropped': { path: string; reason: 'queue-full' | 'disk-low' };
  /** A stored result (done, failed or quarantined). `created` is false when the bytes were known. */
  'result:stored': { result: Result; created: boolean };
  /** Outbox rows were committed: a result's (with its specimen's), or a specimen change's alone (wakes the publisher). */
  'outbox:added': {
    /** The result they came with; null for a specimen change of its own (start, finish, sign-off). */
    resultId: number | null;
    count: number;
    /** The rows as committed, when the emitter has them (the publisher then needs no query). */
    rows?: readonly OutboxRow[];
  };
  /** A specimen changed (image added, session, sign-off...): the dashboard's pages refresh it. */
  'specimen:changed': { specimenId: number };
  /** Outbox messages the broker acknowledged. */
  'outbox:sent': { ids: number[] };
  /** Disk free in data.dir crossed the configured minimum. */
  'disk:state': { freeBytes: number; low: boolean };
  /**
   * A new capture's or upload's result with the picture it was judged on, as the model saw it
   * (colour-normalised, at the model's size, HWC RGB bytes): for watches that measure pictures
   * after their verdict (src/gate/magnification-watch.ts). Only for results created, not duplicates.
   */
  'picture:judged': { result: Result; picture: { rgb: Uint8Array; width: number; height: number } };
  /** Queue empty and nothing in flight. */
  'pipeline:idle': Record<string, never>;
}

type Listener<T> = (payload: T) => void;

export class EventBus<E extends object = BusEvents> {
  private readonly listeners = new Map<keyof E, Set<Listener<never>>>();

  on<K extends keyof E>(topic: K, fn: Listener<E[K]>): () => void {
    let set = this.listeners.get(topic);
    if (!set) this.listeners.set(topic, (set = new Set()));
    set.add(fn as Listener<never>);
    return () => this.off(topic, fn);
  }

  once<K extends keyof E>(topic: K, fn: Listener<E[K]>): () => void {
    const off = this.on(topic, (p) => {
      off();
      fn(p);
    });
    return off;
  }

  off<K extends keyof E>(topic: K, fn: Listener<E[K]>): void {
    this.listeners.get(topic)?.delete(fn as Listener<never>);
  }

  /**
   * Calls listeners synchronously. A throwing listener is reported through `onListenerError` and
   * never breaks the emitting stage or the other listeners (a dashboard bug must not stop
   * results from being stored).
   */
  emit<K extends keyof E>(topic: K, payload: E[K]): void {
    const set = this.listeners.get(topic);
    if (!set) return;
    for (const fn of [...set]) {
      try {
        (fn as Listener<E[K]>)(payload);
      } catch (err) {
        this.onListenerError(err, String(topic));
      }
    }
  }

  /** Waits for the next event on a topic (tests, shutdown). */
  next<K extends keyof E>(topic: K, filter: (p: E[K]) => boolean = () => true): Promise<E[K]> {
    return new Promise((resolve) => {
      const off = this.on(topic, (p) => {
        if (!filter(p)) return;
        off();
        resolve(p);
      });
    });
  }

  listenerCount(topic: keyof E): number {
    return this.listeners.get(topic)?.size ?? 0;
  }

  onListenerError: (err: unknown, topic: string) => void = (err, topic) => {
    process.emitWarning(`blastwatch event listener for ${topic} threw: ${String(err)}`);
  };
}
