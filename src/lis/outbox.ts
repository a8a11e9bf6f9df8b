import type Database from 'better-sqlite3';
import type { SpecimenReport } from '../domain/specimen.js';
import { messageControlId } from './ids.js';

/**
 * Where a report goes: HL7 over MLLP, HL7 files in a folder, a FHIR server, FHIR files in a
 * folder. Listed in the order they are offered to the lab in config and docs.
 */
export type LisDestination = 'mllp' | 'file' | 'fhir' | 'fhir_file';
export const LIS_DESTINATIONS: readonly LisDestination[] = ['mllp', 'file', 'fhir', 'fhir_file'];

/** pending: to send (now or after its backoff); delivered; held: refused by the LIS, waits for a person. */
export type LisMessageState = 'pending' | 'delivered' | 'held';

export interface LisMessage {
  id: number;
  destination: LisDestination;
  controlId: string;
  specimenId: number;
  version: number;
  report: SpecimenReport;
  /** The message exactly as sent; null until first rendered. */
  payload: string | null;
  state: LisMessageState;
  attempts: number;
  lastError: string | null;
  nextAttemptAt: number | null;
  createdAt: number;
  updatedAt: number;
  deliveredAt: number | null;
}

/** A message as the status page lists it (no report, no payload). */
export type LisMessageSummary = Omit<LisMessage, 'report' | 'payload'> & { accession: string };

export interface LisQueueStatus {
  /** Messages not delivered yet, held ones included. */
  queued: number;
  held: LisMessageSummary[];
  /** The newest error of a message still waiting (held or retrying). */
  lastError: string | null;
  lastDeliveredAt: number | null;
  /** When the oldest message still to be sent (not held) was signed. */
  oldestWaitingAt: number | null;
}

interface Row {
  id: number;
  destination: LisDestination;
  control_id: string;
  specimen_id: number;
  version: number;
  report: string;
  payload: string | null;
  state: LisMessageState;
  attempts: number;
  last_error: string | null;
  next_attempt_at: number | null;
  created_at: number;
  updated_at: number;
  delivered_at: number | null;
}

function fromRow(r: Row): LisMessage {
  return {
    id: r.id,
    destination: r.destination,
    controlId: r.control_id,
    specimenId: r.specimen_id,
    version: r.version,
    report: JSON.parse(r.report) as SpecimenReport,
    payload: r.payload,
    state: r.state,
    attempts: r.attempts,
    lastError: r.last_error,
    nextAttemptAt: r.next_attempt_at,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    deliveredAt: r.delivered_at,
  };
}

function summary(m: LisMessage): LisMessageSummary {
  const { report, payload: _payload, ...rest } = m;
  return { ...rest, accession: report.specimen.accession };
}

/**
 * The LIS outbox (table lis_outbox): the source of truth for delivery to the laboratory system.
 * `enqueue` runs inside the sign-off's transaction, on the same connection, so the signature and
 * its outgoing messages commit together or not at all. Delivery (delivery.ts) reads it in id
 * order per destination and records each outcome here.
 */
export class LisOutbox {
  private readonly stmts;

  constructor(
    db: Database.Database,
    /** The destinations configured now: a sign-off writes one row for each. */
    readonly destinations: readonly LisDestination[],
    private readonly now: () => number = Date.now,
  ) {
    this.stmts = {
      insert: db.prepare(
        `INSERT INTO lis_outbox (destination, control_id, specimen_id, version, report, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (destination, control_id) DO NOTHING`,
      ),
      next: db.prepare<[LisDestination], Row>(
        `SELECT * FROM lis_outbox WHERE destination = ? AND state = 'pending' ORDER BY id LIMIT 1`,
      ),
      get: db.prepare<[number], Row>('SELECT * FROM lis_outbox WHERE id = ?'),
      setPayload: db.prepare(
        'UPDATE lis_outbox SET payload = ?, updated_at = ? WHERE id = ? AND payload IS NULL',
      ),
      delivered: db.prepare(
        `UPDATE lis_outbox SET state = 'delivered', attempts = attempts + 1, last_error = NULL,
         next_attempt_at = NULL, delivered_at = ?, updated_at = ? WHERE id = ?`,
      ),
      failed: db.prepare(
        `UPDATE lis_outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at = ?, updated_at = ?
         WHERE id = ? AND state = 'pending'`,
      ),
      held: db.prepare(
        `UPDATE lis_outbox SET state = 'held', attempts = attempts + 1, last_error = ?, next_attempt_at = NULL,
         updated_at = ? WHERE id = ?`,
      ),
      retry: db.prepare(
        `UPDATE lis_outbox SET state = 'pending', next_attempt_at = NULL, updated_at = ? WHERE id = ? AND state = 'held'`,
      ),
      counts: db.prepare<[LisDestination], { queued: number; oldest: number | null }>(
        `SELECT count(*) AS queued, min(CASE WHEN state = 'pending' THEN created_at END) AS oldest
         FROM lis_outbox WHERE destination = ? AND state <> 'delivered'`,
      ),
      heldRows: db.prepare<[LisDestination], Row>(
        `SELECT * FROM lis_outbox WHERE destination = ? AND state = 'held' ORDER BY id LIMIT 100`,
      ),
      lastError: db.prepare<[LisDestination], { last_error: string }>(
        `SELECT last_error FROM lis_outbox WHERE destination = ? AND state <> 'delivered'
         AND last_error IS NOT NULL ORDER BY updated_at DESC, id DESC LIMIT 1`,
      ),
      lastDelivered: db.prepare<[LisDestination], { at: number | null }>(
        `SELECT max(delivered_at) AS at FROM lis_outbox WHERE destination = ?`,
      ),
      forSpecimen: db.prepare<[number], Row>('SELECT * FROM lis_outbox WHERE specimen_id = ? ORDER BY id'),
      dropPayloads: db.prepare(
        `UPDATE lis_outbox SET payload = NULL WHERE state = 'delivered' AND payload IS NOT NULL AND delivered_at < ?`,
      ),
    };
  }

  /**
   * Writes one row per configured destination for a signed report. Call it inside the sign-off's
   * transaction (it opens none itself, so a rollback there leaves no row). A second call for the
   * same signature adds nothing: the control id is the key.
   */
  enqueue(report: SpecimenReport): number {
    if (!report.signOff) throw new TypeError('a report without a sign-off cannot be sent');
    const controlId = messageControlId(report);
    const json = JSON.stringify(report);
    const at = this.now();
    let added = 0;
    for (const destination of this.destinations) {
      const { changes } = this.stmts.insert.run(
        destination,
        controlId,
        report.specimen.id,
        report.signOff.version,
        json,
        at,
        at,
      );
      added += changes;
    }
    return added;
  }

  /** The oldest message of a destination that is still to be sent (held ones are skipped). */
  next(destination: LisDestination): LisMessage | null {
    const row = this.stmts.next.get(destination);
    return row ? fromRow(row) : null;
  }

  get(id: number): LisMessage | null {
    const row = this.stmts.get.get(id);
    return row ? fromRow(row) : null;
  }

  /** Keeps the first rendering: a redelivery sends the very bytes of the first attempt. */
  savePayload(id: number, payload: string): string {
    this.stmts.setPayload.run(payload, this.now(), id);
    return this.stmts.get.get(id)?.payload ?? payload;
  }

  markDelivered(id: number): void {
    const at = this.now();
    this.stmts.delivered.run(at, at, id);
  }

  /** A transient failure: tried again at `nextAttemptAt`. */
  markFailed(id: number, error: string, nextAttemptAt: number): void {
    this.stmts.failed.run(error, nextAttemptAt, this.now(), id);
  }

  /** Refused by the receiver (HL7 AE/AR, FHIR 4xx): kept with the error until a person retries it. */
  markHeld(id: number, error: string): void {
    this.stmts.held.run(error, this.now(), id);
  }

  /** A person asked to send a held message again; false when it is not held. */
  retry(id: number): boolean {
    return this.stmts.retry.run(this.now(), id).changes === 1;
  }

  status(destination: LisDestination): LisQueueStatus {
    const counts = this.stmts.counts.get(destination);
    return {
      queued: counts?.queued ?? 0,
      held: this.stmts.heldRows.all(destination).map((r) => summary(fromRow(r))),
      lastError: this.stmts.lastError.get(destination)?.last_error ?? null,
      lastDeliveredAt: this.stmts.lastDelivered.get(destination)?.at ?? null,
      oldestWaitingAt: counts?.oldest ?? null,
    };
  }

  /**
   * Forgets the bytes of messages delivered before `before` (a FHIR Bundle carries the PDF with its
   * thumbnails: about 100 KB per report, too much to keep forever on an SD card). The row, the
   * report as signed and the outcome stay; only an undelivered message needs its exact bytes.
   */
  dropDeliveredPayloads(before: number): number {
    return this.stmts.dropPayloads.run(before).changes;
  }

  /** Every message sent (or to be sent) for a specimen, for its page. */
  forSpecimen(specimenId: number): LisMessageSummary[] {
    return this.stmts.forSpecimen.all(specimenId).map((r) => summary(fromRow(r)));
  }
}
