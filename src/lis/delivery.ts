import type { Logger } from '../log.js';
import type { Extension } from '../runtime/extension.js';
import type { SpecimenReport } from '../domain/specimen.js';
import type { LisDestination, LisOutbox, LisQueueStatus } from './outbox.js';
import type { Sender, SendOutcome } from './senders.js';

/** Turns a signed report into the text one destination sends (HL7 for mllp/file, FHIR JSON else). */
export type Render = (report: SpecimenReport) => string | Promise<string>;

export interface LisRoute {
  destination: LisDestination;
  sender: Sender;
  render: Render;
}

export interface LisDeliveryOptions {
  outbox: LisOutbox;
  routes: readonly LisRoute[];
  log: Logger;
  /** Backoff after a failed attempt: doubles from min to max (config lis.retry_min_ms / retry_max_ms). */
  retryMinMs: number;
  retryMaxMs: number;
  /** Look for new rows this often even without a notify() (default 2 s). */
  pollMs?: number;
  /** The bytes of a delivered message are kept this long (default 30 days); the row stays. */
  keepPayloadMs?: number;
  now?: () => number;
}

/** One destination on the status page. */
export interface LisDestinationStatus extends LisQueueStatus {
  destination: LisDestination;
  target: string;
  /** The last attempt reached the receiver; null before the first attempt. */
  connected: boolean | null;
  /** When the message at the head of the queue is tried again (null: now or nothing waiting). */
  nextAttemptAt: number | null;
}

/**
 * Delivers the LIS outbox: one loop per destination, each sending its oldest pending message and
 * waiting for the outcome before the next, so the LIS receives reports in sign-off order. A
 * message that cannot get through is retried with backoff and keeps its place (nothing after it
 * overtakes it); a message the receiver refuses is held with the reason and skipped until a
 * person retries it (retry()). Every outcome is written to the outbox before the next send, so
 * a restart resumes where delivery stopped, sending at worst the last message again with its
 * same control id.
 */
export class LisDelivery implements Extension {
  readonly name = 'lis';
  private stopped = true;
  private readonly loops: Promise<void>[] = [];
  private readonly wakers = new Map<LisDestination, () => void>();
  private readonly pollMs: number;
  private readonly now: () => number;

  constructor(private readonly o: LisDeliveryOptions) {
    this.pollMs = o.pollMs ?? 2000;
    this.now = o.now ?? Date.now;
  }

  private pruneTimer: NodeJS.Timeout | null = null;

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    for (const route of this.o.routes) this.loops.push(this.run(route));
    this.prune();
    this.pruneTimer = setInterval(() => this.prune(), 3_600_000);
    this.pruneTimer.unref();
  }

  private prune(): void {
    try {
      this.o.outbox.dropDeliveredPayloads(this.now() - (this.o.keepPayloadMs ?? 30 * 86_400_000));
    } catch (err) {
      this.o.log.warn({ err }, 'could not prune delivered LIS messages');
    }
  }

  /** New rows were committed (or a held one released): look now instead of at the next poll. */
  notify(): void {
    for (const wake of this.wakers.values()) wake();
  }

  /** A person chose to send a held message again; false when it is not held. */
  retry(id: number): boolean {
    const released = this.o.outbox.retry(id);
    if (released) this.notify();
    return released;
  }

  status(): LisDestinationStatus[] {
    return this.o.routes.map(({ destination, sender }) => ({
      destination,
      target: sender.target,
      connected: sender.connected,
      nextAttemptAt: this.o.outbox.next(destination)?.nextAttemptAt ?? null,
      ...this.o.outbox.status(destination),
    }));
  }

  /**
   * For the daemon's health: a destination with reports refused and held, or with a report
   * waiting longer than `staleMs` (the LIS down, a folder missing). Signed results the lab has not
   * received are worth a "degraded".
   */
  problems(staleMs = 5 * 60_000): string[] {
    const out: string[] = [];
    for (const s of this.status()) {
      const name = `LIS ${s.destination} (${s.target})`;
      if (s.held.length > 0)
        out.push(
          `${name}: ${s.held.length} report${s.held.length === 1 ? '' : 's'} refused and held until retried (${s.held[0]?.lastError ?? ''})`,
        );
      const waiting = s.queued - s.held.length;
      if (waiting > 0 && s.oldestWaitingAt !== null && this.now() - s.oldestWaitingAt >= staleMs)
        out.push(
          `${name}: ${waiting} report${waiting === 1 ? '' : 's'} undelivered since ${new Date(s.oldestWaitingAt).toISOString()}${s.lastError ? ` (${s.lastError})` : ''}`,
        );
    }
    return out;
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.pruneTimer) clearInterval(this.pruneTimer);
    this.notify();
    for (const { sender } of this.o.routes) sender.close();
    await Promise.allSettled(this.loops.splice(0));
  }

  private async run(route: LisRoute): Promise<void> {
    const log = this.o.log.child({ lis: route.destination });
    while (!this.stopped) {
      let waitMs = this.pollMs;
      try {
        const message = this.o.outbox.next(route.destination);
        if (message) {
          const due = (message.nextAttemptAt ?? 0) - this.now();
          if (due <= 0) {
            await this.attempt(route, message.id, log);
            continue;
          }
          waitMs = Math.min(due, this.pollMs);
        }
      } catch (err) {
        // The database is the queue: when it fails, wait and read it again.
        log.error({ err }, 'LIS delivery could not read or update its outbox');
      }
      await this.sleep(route.destination, waitMs);
    }
  }

  private async attempt(route: LisRoute, id: number, log: Logger): Promise<void> {
    const { outbox } = this.o;
    const message = outbox.get(id);
    if (!message || message.state !== 'pending') return;
    let payload = message.payload;
    if (payload === null) {
      try {
        payload = outbox.savePayload(id, await route.render(message.report));
      } catch (err) {
        // The report cannot be expressed in this format (a value the standard cannot carry):
        // sending it again will not help, a person has to look.
        const error = `could not build the message: ${(err as Error).message}`;
        outbox.markHeld(id, error);
        log.error({ id, controlId: message.controlId, error }, 'LIS message held');
        return;
      }
    }
    let outcome: SendOutcome;
    try {
      outcome = await route.sender.send(message, payload);
    } catch (err) {
      outcome = { kind: 'retry', error: (err as Error).message };
    }
    if (outcome.kind === 'delivered') {
      outbox.markDelivered(id);
      log.info(
        { id, controlId: message.controlId, accession: message.report.specimen.accession },
        'LIS message delivered',
      );
    } else if (outcome.kind === 'held') {
      outbox.markHeld(id, outcome.error);
      log.warn(
        { id, controlId: message.controlId, error: outcome.error },
        'LIS refused a message: held until retried',
      );
    } else {
      const delay = Math.min(this.o.retryMaxMs, this.o.retryMinMs * 2 ** Math.min(message.attempts, 30));
      outbox.markFailed(id, outcome.error, this.now() + delay);
      const level = message.attempts === 0 ? 'warn' : 'debug';
      log[level](
        { id, controlId: message.controlId, error: outcome.error, retryInMs: delay },
        'LIS delivery failed: retrying',
      );
    }
  }

  private sleep(destination: LisDestination, ms: number): Promise<void> {
    if (this.stopped) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      this.wakers.set(destination, done);
      function done() {
        clearTimeout(timer);
        resolve();
      }
    });
  }
}
