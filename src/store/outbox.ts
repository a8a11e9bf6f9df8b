import type Database from 'better-sqlite3';

/** A message to publish, written in the same transaction as its result. */
export interface OutboxDraft {
  eventId: string;
  topic: string;
  payload: string;
  qos?: 0 | 1 | 2;
  retain?: boolean;
}

export interface OutboxRow {
  id: number;
  event_id: string;
  result_id: number | null;
  topic: string;
  payload: string;
  qos: 0 | 1 | 2;
  retain: number;
  created_at: number;
}

/**
 * The transactional outbox: the source of truth for MQTT delivery (at-least-once, in id order).
 * `withoutWaitingForDisk` is the store's commit without an fsync of its own (see Store).
 */
export class OutboxTable {
  private readonly stmts;

  constructor(
    db: Database.Database,
    private readonly withoutWaitingForDisk: (write: () => void) => void,
  ) {
    this.stmts = {
      insert: db.prepare(
        `INSERT INTO outbox (event_id, result_id, topic, payload, qos, retain, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?)`,
      ),
      pending: db.prepare<[number, number], OutboxRow>(
        `SELECT id, event_id, result_id, topic, payload, qos, retain, created_at FROM outbox
         WHERE sent_at IS NULL AND id > ? ORDER BY id LIMIT ?`,
      ),
      markSent: db.prepare('UPDATE outbox SET sent_at = ?, attempts = attempts + 1 WHERE id = ?'),
      backlog: db.prepare<[], { n: number; oldest: number | null; alerts: number | null }>(
        `SELECT count(*) AS n, min(created_at) AS oldest, sum(topic = 'alert') AS alerts
         FROM outbox WHERE sent_at IS NULL`,
      ),
    };
  }

  /**
   * Adds messages inside the caller's transaction: a result's (with its id) or ones that belong to
   * no result (null: specimen changes). Returns the rows as written.
   */
  add(resultId: number | null, drafts: readonly OutboxDraft[], now = Date.now()): OutboxRow[] {
    return drafts.map((m) => {
      const qos = m.qos ?? 1;
      const retain = m.retain ? 1 : 0;
      const { lastInsertRowid } = this.stmts.insert.run(
        m.eventId,
        resultId,
        m.topic,
        m.payload,
        qos,
        retain,
        now,
      );
      return {
        id: Number(lastInsertRowid),
        event_id: m.eventId,
        result_id: resultId,
        topic: m.topic,
        payload: m.payload,
        qos,
        retain,
        created_at: now,
      };
    });
  }

  /** Unsent messages in order, after `afterId`. */
  pending(afterId: number, limit: number): OutboxRow[] {
    return this.stmts.pending.all(afterId, limit);
  }

  /** Marks messages acknowledged by the broker, in one transaction (fewer SD card writes). */
  markSent(ids: readonly number[], at = Date.now()): void {
    if (ids.length === 0) return;
    // A mark lost to a power cut means one more delivery of the same event_id (at-least-once, as
    // after any crash between PUBACK and this write), never a lost message: no fsync of its own.
    this.withoutWaitingForDisk(() => {
      for (const id of ids) this.stmts.markSent.run(at, id);
    });
  }

  /** Unsent messages: how many, since when, and how many of them are alerts (B-ALL flags). */
  backlog(): { count: number; oldestCreatedAt: number | null; alerts: number } {
    const row = this.stmts.backlog.get();
    return { count: row?.n ?? 0, oldestCreatedAt: row?.oldest ?? null, alerts: row?.alerts ?? 0 };
  }
}
