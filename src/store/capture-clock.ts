import type Database from 'better-sqlite3';

/**
 * A capture's time is its file's modification time, stamped by the clock of whoever wrote the
 * file (the camera PC, or a network share's file server); a specimen session's start and finish
 * are stamped by this station's clock. When the two clocks disagree, captures join the wrong
 * session or none. Two signs of it can be read from what is stored, with no state of its own:
 *
 * - **stamped ahead**: a file modified later than this station's clock when it was processed.
 *   No file is written in the future, so the writer's clock runs ahead (a capture taken just
 *   before "Start" can then join the new session).
 * - **stamped before its session**: a capture processed while a session was open, stamped
 *   shortly before that session started, and left out of every specimen. Either the writer's
 *   clock runs behind, or the picture was taken just before "Start" was pressed: either way a
 *   person must decide where it belongs, and it waits unassigned until she does. Health reports
 *   those of the open session; a specimen's page lists those of all its sessions.
 * - **stamped long before its session**: the same, but stamped more than BEFORE_SESSION_WINDOW_MS
 *   before the start. One such file is a late copy of an old picture; several mean a writer's
 *   clock far behind, under which every capture of a session misses it and the specimen stays
 *   empty with no near miss to show why. They are counted, not listed: a late copy of a whole
 *   folder would fill any list.
 */

/** Clock steps and file-system time stamp granularity (FAT: 2 s) are not a clock that runs ahead. */
export const AHEAD_TOLERANCE_MS = 5_000;
/** How long before a session's start a capture still counts as one of its near misses. */
export const BEFORE_SESSION_WINDOW_MS = 10 * 60_000;
/**
 * Captures stamped long before the open session (and in no specimen) from which health calls a
 * clock far behind: one is an old picture copied late, this many in one session are a pattern.
 */
export const LONG_BEFORE_SESSION_CALLED = 3;

/** A capture left out of the session it arrived in. */
export interface CaptureBeforeSession {
  resultId: number;
  file: string;
  /** How long before the session's start the file was stamped. */
  beforeMs: number;
  specimenId: number;
  accession: string;
}

export interface CaptureClockCheck {
  /** Captures looked at (the latest `window`, fewer until that many were processed). */
  captures: number;
  /** Of them, stamped later than this station's clock when processed (by more than the tolerance). */
  ahead: number;
  /** The most any of them was ahead; 0 when none. */
  maxAheadMs: number;
  /** Of them, arrived during the open session, stamped before it started, and in no specimen. */
  beforeSession: CaptureBeforeSession[];
  /** The same stamped more than BEFORE_SESSION_WINDOW_MS before it started: counted, not listed. */
  longBeforeSession: LongBeforeSession;
}

export interface LongBeforeSession {
  captures: number;
  /** The least and the most any of them was stamped before the session's start; 0 when none. */
  minBeforeMs: number;
  maxBeforeMs: number;
  /** The open session's accession; null when none is open. */
  accession: string | null;
}

interface BeforeSessionRow {
  id: number;
  file: string;
  before_ms: number;
  specimen_id: number;
  accession: string;
}

const toBeforeSession = (r: BeforeSessionRow): CaptureBeforeSession => ({
  resultId: r.id,
  file: r.file,
  beforeMs: r.before_ms,
  specimenId: r.specimen_id,
  accession: r.accession,
});

export class CaptureClockQueries {
  private readonly stmts;

  constructor(db: Database.Database) {
    // The latest captures (uploads are stamped by this station when they arrive: never skewed).
    const recent = `SELECT id, file, captured_at, processed_at FROM results
      WHERE origin = 'capture' AND captured_at IS NOT NULL ORDER BY id DESC LIMIT @window`;
    this.stmts = {
      ahead: db.prepare<
        { window: number; tolerance: number },
        { captures: number; ahead: number | null; max_ahead: number | null }
      >(
        `SELECT count(*) AS captures,
           sum(captured_at - processed_at > @tolerance) AS ahead,
           max(max(captured_at - processed_at, 0)) AS max_ahead
         FROM (${recent})`,
      ),
      // The open session only: once it is finished its page still lists them (ofSpecimen), but
      // health is about now, and a capture a person chose to leave unassigned stops being a problem.
      beforeSession: db.prepare<{ window: number; within: number }, BeforeSessionRow>(
        `SELECT r.id, r.file, s.started_at - r.captured_at AS before_ms, s.specimen_id, p.accession
         FROM specimen_sessions s
         JOIN specimens p ON p.id = s.specimen_id
         JOIN (${recent}) r
           ON r.captured_at < s.started_at AND s.started_at - r.captured_at <= @within
          AND r.processed_at >= s.started_at
         WHERE s.finished_at IS NULL
           AND NOT EXISTS (SELECT 1 FROM specimen_images m WHERE m.result_id = r.id)
         ORDER BY r.id`,
      ),
      longBeforeSession: db.prepare<
        { window: number; within: number },
        { captures: number; min_before: number | null; max_before: number | null; accession: string }
      >(
        `SELECT count(r.id) AS captures, min(s.started_at - r.captured_at) AS min_before,
           max(s.started_at - r.captured_at) AS max_before, p.accession
         FROM specimen_sessions s
         JOIN specimens p ON p.id = s.specimen_id
         LEFT JOIN (${recent}) r
           ON s.started_at - r.captured_at > @within AND r.processed_at >= s.started_at
          AND NOT EXISTS (SELECT 1 FROM specimen_images m WHERE m.result_id = r.id)
         WHERE s.finished_at IS NULL
         GROUP BY s.id`,
      ),
      // The same for one specimen's sessions, whatever their age: driven by its sessions and the
      // results' processed_at index. SQLite's planner scans every result here unless told (70 ms
      // against 0.3 ms with 100,000 results), hence INDEXED BY.
      ofSpecimen: db.prepare<{ specimen: number; within: number }, BeforeSessionRow>(
        `WITH sessions AS MATERIALIZED (
           SELECT specimen_id, started_at, coalesce(finished_at, 9e15) AS until FROM specimen_sessions
           WHERE specimen_id = @specimen)
         SELECT r.id, r.file, s.started_at - r.captured_at AS before_ms, s.specimen_id, p.accession
         FROM sessions s
         JOIN specimens p ON p.id = s.specimen_id
         JOIN results r INDEXED BY results_processed_at
           ON r.processed_at BETWEEN s.started_at AND s.until
         WHERE r.origin = 'capture'
           AND r.captured_at < s.started_at AND s.started_at - r.captured_at <= @within
           AND NOT EXISTS (SELECT 1 FROM specimen_images m WHERE m.result_id = r.id)
         ORDER BY r.id`,
      ),
    };
  }

  /** Both signs over the latest `window` captures. */
  check(window: number): CaptureClockCheck {
    const ahead = this.stmts.ahead.get({ window, tolerance: AHEAD_TOLERANCE_MS });
    return {
      captures: ahead?.captures ?? 0,
      ahead: ahead?.ahead ?? 0,
      maxAheadMs: ahead?.max_ahead ?? 0,
      beforeSession: this.beforeSession(window),
      longBeforeSession: this.longBeforeSession(window),
    };
  }

  /** Captures among the latest `window` that arrived during the open session, stamped long before it. */
  longBeforeSession(window: number): LongBeforeSession {
    const row = this.stmts.longBeforeSession.get({ window, within: BEFORE_SESSION_WINDOW_MS });
    return {
      captures: row?.captures ?? 0,
      minBeforeMs: row?.min_before ?? 0,
      maxBeforeMs: row?.max_before ?? 0,
      accession: row?.accession ?? null,
    };
  }

  /** Captures among the latest `window` that arrived during the open session but are stamped before it started. */
  beforeSession(window: number): CaptureBeforeSession[] {
    return this.stmts.beforeSession.all({ window, within: BEFORE_SESSION_WINDOW_MS }).map(toBeforeSession);
  }

  /** The same for every session of one specimen (its page lists them). */
  beforeSessionOf(specimenId: number): CaptureBeforeSession[] {
    return this.stmts.ofSpecimen
      .all({ specimen: specimenId, within: BEFORE_SESSION_WINDOW_MS })
      .map(toBeforeSession);
  }
}
