import type { CameraWatch } from '../domain/camera-warning.js';
import type Database from 'better-sqlite3';
import type { Result } from '../domain/result.js';
import { REVIEW_QUEUE_REASONS } from '../domain/review.js';
import {
  suggestVerdict,
  type OutOfDomainReadings,
  type Specimen,
  type SpecimenCounts,
  type SpecimenSignOff,
  type SpecimenStatus,
  type VerdictRule,
} from '../domain/specimen.js';
import type {
  AssignmentHint,
  SpecimenAction,
  SpecimenAgreement,
  SpecimenAuditEntry,
  SpecimenChange,
} from '../domain/specimen-change.js';
import type { OutboxDraft, OutboxRow, OutboxTable } from './outbox.js';
import {
  countMembers,
  EMPTY_COUNTS,
  LISTED_SPECIMEN_SELECT,
  SPECIMEN_SELECT,
  toAuditEntry,
  toSignOff,
  toSpecimen,
  type AuditRow,
  type SignOffRow,
  type SpecimenRow,
  withMember,
} from './specimen-rows.js';

export interface SpecimenStoreOptions {
  rule: VerdictRule;
  deviceId: string;
  /** The outbox rows announcing a change (MQTT `<prefix>/specimen`); null when MQTT is off. */
  changeMessages: ((change: SpecimenChange) => OutboxDraft[]) | null;
}

/**
 * The rule of config/default.yaml `specimen.rule`, for stores opened without a config: chosen by
 * simulation (models/MODEL_CARD.md, "Specimen-level screening").
 */
export const DEFAULT_VERDICT_RULE: VerdictRule = { minScreened: 5, minFlagged: 5, minFlaggedShare: 0.45 };

/** What a write did: the specimen after it, and the outbox rows it committed (to wake the publisher). */
export interface SpecimenWrite {
  specimen: Specimen;
  outbox: OutboxRow[];
}

/** A refused specimen operation; `statusCode` is the HTTP status the API answers with. */
export class SpecimenError extends Error {
  override readonly name = 'SpecimenError';
  constructor(
    readonly statusCode: 400 | 404 | 409,
    message: string,
  ) {
    super(message);
  }
}

/** The one action that changes a specimen's row; anything not in `patch` stays. */
export interface ChangeRequest {
  action: SpecimenAction;
  actor: string;
  /** The specimen before (null when this change created it). */
  before: Specimen | null;
  patch?: Partial<{ status: SpecimenStatus; finalVerdict: string | null; finishedAt: number | null }>;
  /** The one result this change added: its counts are added to the stored ones instead of a recount. */
  added?: Result;
  details?: Record<string, unknown>;
  at?: number;
  /** A signature's or an amendment's readings of the out-of-domain fields, for the change feed. */
  readings?: OutOfDomainReadings;
  /** A signature's or an amendment's camera warnings (the watches), for the change feed. */
  cameraWarned?: CameraWatch[];
}

const LOCKED: readonly SpecimenStatus[] = ['signed', 'amended'];
export const isLocked = (s: { status: SpecimenStatus }): boolean => LOCKED.includes(s.status);

/** The most specimens one list reads: the CSV export's limit (src/lis/ports.ts). */
const MAX_LISTED = 100_000;

/**
 * The specimen tables: membership, counts, sessions, sign-offs and the audit trail. Every change
 * goes through `change()`: counts recomputed from the members, revision + 1, one audit row and the
 * change-feed outbox rows, all in the caller's transaction.
 */
export class SpecimensTable {
  private readonly stmts;
  private readonly recount;

  constructor(
    readonly db: Database.Database,
    private readonly outbox: OutboxTable,
    readonly options: SpecimenStoreOptions,
  ) {
    this.recount = countMembers(db, options.rule);
    this.stmts = {
      get: db.prepare<[number], SpecimenRow>(`${SPECIMEN_SELECT} WHERE s.id = ?`),
      byAccession: db.prepare<[string], SpecimenRow>(`${SPECIMEN_SELECT} WHERE s.accession = ?`),
      listed: db.prepare<unknown[], SpecimenRow>(`${LISTED_SPECIMEN_SELECT} WHERE s.id = ?`),
      insert: db.prepare(
        `INSERT INTO specimens (accession, status, suggested_verdict, counts, revision, created_at, updated_at)
         VALUES (?, 'open', ?, ?, 0, ?, ?)`,
      ),
      update: db.prepare(
        `UPDATE specimens SET status = @status, final_verdict = @finalVerdict, finished_at = @finishedAt,
           counts = @counts, suggested_verdict = @suggested, revision = revision + 1, updated_at = @at
         WHERE id = @id`,
      ),
      latestSignOff: db.prepare<[number], SignOffRow>(
        'SELECT * FROM specimen_signoffs WHERE specimen_id = ? ORDER BY version DESC LIMIT 1',
      ),
      signOffs: db.prepare<[number], SignOffRow>(
        'SELECT * FROM specimen_signoffs WHERE specimen_id = ? ORDER BY version',
      ),
      audit: db.prepare<[number], AuditRow>('SELECT * FROM specimen_audit WHERE specimen_id = ? ORDER BY id'),
      addAudit: db.prepare(
        'INSERT INTO specimen_audit (specimen_id, actor, action, at, details) VALUES (?, ?, ?, ?, ?)',
      ),
      member: db.prepare<[number], { specimen_id: number }>(
        'SELECT specimen_id FROM specimen_images WHERE result_id = ?',
      ),
      addMember: db.prepare(
        'INSERT INTO specimen_images (result_id, specimen_id, source, assigned_at) VALUES (?, ?, ?, ?)',
      ),
      sessionAt: db.prepare<[number, number], { specimen_id: number }>(
        `SELECT specimen_id FROM specimen_sessions
         WHERE started_at <= ? AND (finished_at IS NULL OR finished_at > ?) ORDER BY started_at DESC LIMIT 1`,
      ),
      openSession: db.prepare<[], { specimen_id: number; started_by: string; started_at: number }>(
        'SELECT specimen_id, started_by, started_at FROM specimen_sessions WHERE finished_at IS NULL LIMIT 1',
      ),
      addSession: db.prepare(
        'INSERT INTO specimen_sessions (specimen_id, started_by, started_at) VALUES (?, ?, ?)',
      ),
      closeSessions: db.prepare(
        `UPDATE specimen_sessions SET finished_by = ?, finished_at = ?
         WHERE specimen_id = ? AND finished_at IS NULL`,
      ),
      agreement: db.prepare<[], { signed: number; agreed: number | null }>(
        `SELECT count(*) AS signed, sum(o.verdict = o.suggested_verdict) AS agreed
         FROM specimen_signoffs o
         WHERE o.version = (SELECT max(version) FROM specimen_signoffs WHERE specimen_id = o.specimen_id)`,
      ),
    };
  }

  // ---- reads ----------------------------------------------------------------------------------

  get(id: number): Specimen | undefined {
    const row = this.stmts.get.get(id);
    return row ? this.withSignOff(row) : undefined;
  }

  byAccession(accession: string): Specimen | undefined {
    const row = this.stmts.byAccession.get(accession);
    return row ? this.withSignOff(row) : undefined;
  }

  /**
   * Newest change first; `status` filters, `accession` finds those whose accession contains it
   * (any case); at most `limit` (default 200, at most MAX_LISTED: the HTTP list asks for 1000 or
   * fewer, the CSV export for every specimen). `allUnsigned` adds every specimen not signed yet
   * beyond the limit, whatever its age: the list a person works from must not lose a specimen
   * awaiting sign-off behind newer ones. Each carries `unreadWithheld` and `cameraWarned`, read in
   * the same query for the whole list.
   */
  list(
    q: { status?: SpecimenStatus; accession?: string; limit?: number; allUnsigned?: boolean } = {},
  ): Specimen[] {
    const limit = Math.max(1, Math.min(q.limit ?? 200, MAX_LISTED));
    const filters: string[] = [];
    const params: unknown[] = [];
    if (q.status) {
      filters.push('s.status = ?');
      params.push(q.status);
    }
    if (q.accession) {
      filters.push("s.accession LIKE '%' || ? || '%' ESCAPE '\\'");
      params.push(q.accession.replace(/[\\%_]/g, (c) => `\\${c}`));
    }
    const where = filters.length ? `WHERE ${filters.join(' AND ')}` : '';
    const order = 'ORDER BY s.updated_at DESC, s.id DESC';
    if (!q.allUnsigned)
      return this.db
        .prepare<unknown[], SpecimenRow>(`${LISTED_SPECIMEN_SELECT} ${where} ${order} LIMIT ${limit}`)
        .all(...REVIEW_QUEUE_REASONS, ...params)
        .map((r) => this.withSignOff(r));
    const latest = `SELECT s.id FROM specimens s ${where} ${order} LIMIT ${limit}`;
    const unsigned = `s.status IN ('open', 'awaiting_signoff') OR s.id IN (${latest})`;
    return this.db
      .prepare<unknown[], SpecimenRow>(
        `${LISTED_SPECIMEN_SELECT} ${where ? `${where} AND` : 'WHERE'} (${unsigned}) ${order} LIMIT ${MAX_LISTED}`,
      )
      .all(...REVIEW_QUEUE_REASONS, ...params, ...params)
      .map((r) => this.withSignOff(r));
  }

  /** One specimen as `list` gives it (with `unreadWithheld`), e.g. for a live update of the list. */
  listed(id: number): Specimen | undefined {
    const row = this.stmts.listed.get(...REVIEW_QUEUE_REASONS, id);
    return row ? this.withSignOff(row) : undefined;
  }

  /** Every sign-off, first signature first. */
  signOffs(id: number): SpecimenSignOff[] {
    return this.stmts.signOffs.all(id).map(toSignOff);
  }

  audit(id: number): SpecimenAuditEntry[] {
    return this.stmts.audit.all(id).map(toAuditEntry);
  }

  /** The counts recomputed from the member results (what the stored counts must equal). */
  countsFromMembers(id: number): SpecimenCounts {
    return this.recount(id).counts;
  }

  /** The specimen a result belongs to, if any. */
  specimenIdOf(resultId: number): number | undefined {
    return this.stmts.member.get(resultId)?.specimen_id;
  }

  /** The open session, if any (at most one: one camera, one slide at a time). */
  openSession(): { specimenId: number; startedBy: string; startedAt: number } | undefined {
    const row = this.stmts.openSession.get();
    return row && { specimenId: row.specimen_id, startedBy: row.started_by, startedAt: row.started_at };
  }

  /** How often the latest sign-off's verdict equals the suggestion recorded with it. */
  agreement(): SpecimenAgreement {
    const row = this.stmts.agreement.get();
    const signed = row?.signed ?? 0;
    const agreed = row?.agreed ?? 0;
    return { signed, agreed, rate: signed === 0 ? null : agreed / signed };
  }

  private withSignOff(row: SpecimenRow): Specimen {
    const signOff = this.stmts.latestSignOff.get(row.id);
    return toSpecimen(row, signOff ? toSignOff(signOff) : null);
  }

  // ---- the one way a specimen changes ---------------------------------------------------------

  /** Appends an audit row (also for refused attempts, which change nothing else). */
  addAudit(
    specimenId: number,
    actor: string,
    action: SpecimenAction,
    details: object,
    at = Date.now(),
  ): void {
    this.stmts.addAudit.run(specimenId, actor, action, at, JSON.stringify(details));
  }

  /**
   * Applies a change to specimen `id` inside the caller's transaction: counts and suggestion
   * recomputed from the members, the patch, revision + 1, the audit row and the change-feed rows.
   */
  change(id: number, req: ChangeRequest): SpecimenWrite {
    const at = req.at ?? Date.now();
    const row = this.stmts.get.get(id);
    if (!row) throw new SpecimenError(404, 'no such specimen');
    const { counts, suggested } = this.countsAfter(row, req.added);
    const p = req.patch ?? {};
    this.stmts.update.run({
      id,
      at,
      status: p.status ?? row.status,
      finalVerdict: p.finalVerdict !== undefined ? p.finalVerdict : row.final_verdict,
      finishedAt: p.finishedAt !== undefined ? p.finishedAt : row.finished_at,
      counts: JSON.stringify(counts),
      suggested,
    });
    this.addAudit(id, req.actor, req.action, req.details ?? {}, at);
    const specimen = this.get(id) as Specimen;
    const drafts =
      this.options.changeMessages?.({
        action: req.action,
        actor: req.actor,
        at,
        before: req.before,
        after: specimen,
        ...(req.readings ? { readings: req.readings } : {}),
        ...(req.cameraWarned ? { cameraWarned: req.cameraWarned } : {}),
      }) ?? [];
    return { specimen, outbox: this.outbox.add(null, drafts, at) };
  }

  /**
   * The counts after a change: the stored ones plus the one result an image adds (the hot path),
   * else recounted from the members. Both run in the change's transaction and give the same
   * figures, because a result's status, class and flag never change once written.
   */
  private countsAfter(row: SpecimenRow, added: Result | undefined) {
    if (!added) return this.recount(row.id);
    const counts = withMember(JSON.parse(row.counts) as SpecimenCounts, added);
    return { counts, suggested: suggestVerdict(counts, this.options.rule) };
  }

  /** A new specimen row (revision 0: the change that creates it makes it 1). */
  private create(accession: string, at: number): number {
    const suggested = suggestVerdict(EMPTY_COUNTS, this.options.rule);
    return Number(
      this.stmts.insert.run(accession, suggested, JSON.stringify(EMPTY_COUNTS), at, at).lastInsertRowid,
    );
  }

  // ---- assignment -------------------------------------------------------------------------------

  /**
   * Puts a new result into its specimen, inside the result's own transaction: an explicit upload
   * accession first, else the session open at the image's capture time, else the accession its
   * path names (created on first sight). A result matching none stays unassigned; one whose
   * specimen is signed stays unassigned too (a signed specimen is locked) and the refusal is
   * audited. Returns null when nothing changed.
   */
  assignNewResult(result: Result, hint: AssignmentHint): SpecimenWrite | null {
    const at = Date.now();
    const capturedAt = result.capturedAt ?? result.processedAt;
    let target: { id: number | null; accession: string | null; source: string } | null = null;
    if (hint.explicit && hint.accession !== null)
      target = { id: null, accession: hint.accession, source: hint.source };
    else {
      const session = this.stmts.sessionAt.get(capturedAt, capturedAt);
      if (session) target = { id: session.specimen_id, accession: null, source: 'session' };
      else if (hint.accession !== null) target = { id: null, accession: hint.accession, source: hint.source };
    }
    if (!target) return null;
    const existing = target.id !== null ? this.get(target.id) : this.byAccession(target.accession as string);
    if (existing && isLocked(existing)) {
      this.addAudit(existing.id, 'system', 'image_refused', { result_id: result.id, file: result.file }, at);
      return null;
    }
    const id = existing?.id ?? this.create(target.accession as string, at);
    this.stmts.addMember.run(result.id, id, target.source, at);
    return this.change(id, {
      action: existing ? 'image_added' : 'created',
      actor: 'system',
      before: existing ?? null,
      details: { result_id: result.id, file: result.file, source: target.source },
      added: result,
      at,
    });
  }

  /**
   * "Start specimen": opens a session on `accession` (created when new). Refused while another
   * session is open, or when the specimen is signed.
   */
  start(accession: string, actor: string): SpecimenWrite {
    return this.db
      .transaction((): SpecimenWrite => {
        const at = Date.now();
        const open = this.openSession();
        const existing = this.byAccession(accession);
        if (open && open.specimenId !== existing?.id) {
          const other = this.get(open.specimenId);
          throw new SpecimenError(
            409,
            `a session is open for specimen ${other?.accession ?? open.specimenId} (started by ${open.startedBy}): finish it first`,
          );
        }
        if (open) return { specimen: existing as Specimen, outbox: [] };
        if (existing && isLocked(existing))
          throw new SpecimenError(409, `specimen ${accession} is signed and locked: amend it instead`);
        const id = existing?.id ?? this.create(accession, at);
        this.stmts.addSession.run(id, actor, at);
        return this.change(id, {
          action: 'session_started',
          actor,
          before: existing ?? null,
          patch: { status: 'open', finishedAt: null },
          details: { accession },
          at,
        });
      })
      .immediate();
  }

  /** "Finish": closes its session; the specimen now awaits sign-off. */
  finish(id: number, actor: string): SpecimenWrite {
    return this.db
      .transaction((): SpecimenWrite => {
        const before = this.get(id);
        if (!before) throw new SpecimenError(404, 'no such specimen');
        if (isLocked(before)) throw new SpecimenError(409, `specimen ${before.accession} is already signed`);
        if (before.status === 'awaiting_signoff' && !before.sessionOpen)
          return { specimen: before, outbox: [] };
        const at = Date.now();
        this.stmts.closeSessions.run(actor, at, id);
        return this.change(id, {
          action: 'finished',
          actor,
          before,
          patch: { status: 'awaiting_signoff', finishedAt: at },
          at,
        });
      })
      .immediate();
  }

  /** Closes a specimen's open session (on signing: a signed specimen takes no more images). */
  closeSessions(id: number, actor: string, at: number): void {
    this.stmts.closeSessions.run(actor, at, id);
  }

  /** Assigns unassigned results to specimen `id` by hand; one change, audited. */
  assignImages(id: number, resultIds: readonly number[], actor: string): SpecimenWrite {
    return this.db
      .transaction((): SpecimenWrite => {
        const before = this.get(id);
        if (!before) throw new SpecimenError(404, 'no such specimen');
        if (isLocked(before))
          throw new SpecimenError(409, `specimen ${before.accession} is signed and locked`);
        const at = Date.now();
        const exists = this.db.prepare<[number], { id: number }>('SELECT id FROM results WHERE id = ?');
        for (const resultId of new Set(resultIds)) {
          if (!exists.get(resultId)) throw new SpecimenError(404, `no result ${resultId}`);
          const current = this.specimenIdOf(resultId);
          if (current !== undefined) {
            const other = this.get(current);
            throw new SpecimenError(
              409,
              `result ${resultId} already belongs to specimen ${other?.accession ?? current}`,
            );
          }
          this.stmts.addMember.run(resultId, id, 'manual', at);
        }
        return this.change(id, {
          action: 'images_assigned',
          actor,
          before,
          details: { result_ids: [...new Set(resultIds)] },
          at,
        });
      })
      .immediate();
  }
}
