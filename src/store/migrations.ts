import type Database from 'better-sqlite3';
import { rebuildTable } from './rebuild-table.js';

/**
 * One schema step: SQL, or a function for a step SQL alone cannot say (a table rebuild that must
 * carry over whatever columns the table has by then). Each runs in its own transaction with
 * foreign keys off and checked before the commit (Store.migrate).
 */
export type Migration = string | ((db: Database.Database) => void);

const STATUS_CHECK_BEFORE_OUT_OF_DOMAIN = "CHECK (status IN ('done', 'failed', 'quarantined'))";
const STATUS_CHECK_WITH_OUT_OF_DOMAIN =
  "CHECK (status IN ('done', 'out_of_domain', 'failed', 'quarantined'))";

/**
 * Schema migrations, applied in order by `PRAGMA user_version`. Append only: a deployed device
 * may hold any earlier version, so an existing step is never edited, only a new one added.
 */
export const MIGRATIONS: readonly Migration[] = [
  // 1: results, files, outbox, reviews.
  `
  -- One row per classification outcome. A successful result is keyed by the image's content hash
  -- (same bytes twice = one result); failed/quarantined rows record why a file could not be read.
  CREATE TABLE results (
    id            INTEGER PRIMARY KEY,
    status        TEXT    NOT NULL CHECK (status IN ('done', 'failed', 'quarantined')),
    sha256        TEXT,
    path          TEXT    NOT NULL,   -- absolute path where the image is (or was) stored
    file          TEXT    NOT NULL,   -- path relative to the capture folder (or upload name)
    origin        TEXT    NOT NULL DEFAULT 'capture',  -- capture | upload
    size          INTEGER,
    class         TEXT,
    class_index   INTEGER,
    p_ball        REAL,
    flag          INTEGER,            -- 0/1, null when not classified
    needs_review  INTEGER,
    probabilities TEXT,               -- JSON {class: p}
    model_name    TEXT,
    model_version TEXT,
    threshold     REAL,
    error_kind    TEXT,
    error         TEXT,
    attempts      INTEGER NOT NULL DEFAULT 1,
    captured_at   INTEGER,            -- ms since epoch (file mtime)
    processed_at  INTEGER NOT NULL,   -- ms since epoch
    timings       TEXT,               -- JSON {decodeMs, segmentMs, tensorMs, inferMs, storeMs, totalMs, queueMs}
    image         TEXT,               -- JSON {format, width, height, bytes}
    mask_stats    TEXT,               -- JSON segmentation statistics
    media         INTEGER NOT NULL DEFAULT 0  -- 1 when thumbnail/mask/segmented files exist
  );
  CREATE UNIQUE INDEX results_sha256_done ON results (sha256) WHERE status = 'done';
  CREATE INDEX results_processed_at ON results (processed_at);
  CREATE INDEX results_flag ON results (flag, processed_at) WHERE flag = 1;

  -- What the daemon knows about each path in the capture folder: a known, unchanged file costs
  -- one indexed lookup and no hashing on every reconciliation scan.
  CREATE TABLE files (
    path            TEXT    PRIMARY KEY,
    size            INTEGER NOT NULL,
    mtime_ms        REAL    NOT NULL,
    sha256          TEXT,
    status          TEXT    NOT NULL CHECK (status IN ('pending', 'done', 'failed', 'quarantined')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER,
    error_kind      TEXT,
    error           TEXT,
    result_id       INTEGER REFERENCES results (id) ON DELETE SET NULL,
    updated_at      INTEGER NOT NULL
  ) WITHOUT ROWID;
  CREATE INDEX files_pending ON files (next_attempt_at) WHERE status = 'pending';

  -- Transactional outbox: written in the same transaction as the result, marked sent on PUBACK.
  CREATE TABLE outbox (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id   TEXT    NOT NULL,
    result_id  INTEGER,
    topic      TEXT    NOT NULL,      -- suffix under the prefix: result | alert
    payload    TEXT    NOT NULL,
    qos        INTEGER NOT NULL DEFAULT 1,
    retain     INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    sent_at    INTEGER,
    attempts   INTEGER NOT NULL DEFAULT 0
  );
  CREATE INDEX outbox_pending ON outbox (id) WHERE sent_at IS NULL;
  CREATE INDEX outbox_result ON outbox (result_id);

  -- Hematologist reviews: an audit history, never updated in place. The latest row per result
  -- is the current review.
  CREATE TABLE reviews (
    id         INTEGER PRIMARY KEY,
    result_id  INTEGER NOT NULL REFERENCES results (id) ON DELETE CASCADE,
    reviewer   TEXT    NOT NULL,
    class      TEXT    NOT NULL,
    agrees     INTEGER NOT NULL,      -- 1 when the reviewer confirmed the model's class
    note       TEXT,
    created_at INTEGER NOT NULL
  );
  CREATE INDEX reviews_result ON reviews (result_id, id);
  `,
  // 2: inode and change time complete a file's identity (path + size + mtime missed a replacement
  // with the same size by a tool that keeps the mtime). NULL on rows written before: those are
  // matched on size + mtime once more and adopt the identity then, so an upgrade reprocesses nothing.
  `
  ALTER TABLE files ADD COLUMN ino INTEGER;
  ALTER TABLE files ADD COLUMN ctime_ms REAL;
  `,
  // 3: a review records the model version and flag threshold of the result it signs, so the audit
  // row names the exact weights on its own (in an export, after the result is gone). Reviews
  // stored before are filled from their result: a result's model_version and threshold are
  // written once with it and never changed, so that is what those reviewers saw.
  `
  ALTER TABLE reviews ADD COLUMN model_version TEXT;
  ALTER TABLE reviews ADD COLUMN threshold REAL;
  UPDATE reviews SET
    model_version = (SELECT r.model_version FROM results r WHERE r.id = reviews.result_id),
    threshold     = (SELECT r.threshold FROM results r WHERE r.id = reviews.result_id);
  `,
  // specimens
  // A specimen is one patient's smear (its accession number). Membership maps each result to at
  // most one specimen; counts are recomputed from the members inside the transaction that changes
  // them, so they always equal the members' results. Sign-offs are versioned (version 1 = the
  // signature, higher = amendments) and the audit trail is append-only: triggers refuse any UPDATE,
  // and a DELETE unless the specimen was never signed (retention removes unsigned specimens whole).
  `
  CREATE TABLE specimens (
    id                INTEGER PRIMARY KEY,
    accession         TEXT    NOT NULL UNIQUE,
    status            TEXT    NOT NULL CHECK (status IN ('open', 'awaiting_signoff', 'signed', 'amended')),
    suggested_verdict TEXT    NOT NULL,
    final_verdict     TEXT,
    counts            TEXT    NOT NULL,   -- JSON SpecimenCounts, recomputed from the members
    revision          INTEGER NOT NULL DEFAULT 1,  -- one more per change (the MQTT change feed's sequence)
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL,
    finished_at       INTEGER
  );
  CREATE INDEX specimens_status ON specimens (status, updated_at);

  CREATE TABLE specimen_images (
    result_id   INTEGER PRIMARY KEY REFERENCES results (id) ON DELETE CASCADE,
    specimen_id INTEGER NOT NULL REFERENCES specimens (id),
    source      TEXT    NOT NULL CHECK (source IN ('folder', 'pattern', 'session', 'upload', 'manual')),
    assigned_at INTEGER NOT NULL
  );
  CREATE INDEX specimen_images_specimen ON specimen_images (specimen_id);

  -- A session covers the images captured between its start and its finish.
  CREATE TABLE specimen_sessions (
    id          INTEGER PRIMARY KEY,
    specimen_id INTEGER NOT NULL REFERENCES specimens (id),
    started_by  TEXT    NOT NULL,
    started_at  INTEGER NOT NULL,
    finished_by TEXT,
    finished_at INTEGER
  );
  CREATE INDEX specimen_sessions_open ON specimen_sessions (started_at) WHERE finished_at IS NULL;

  CREATE TABLE specimen_signoffs (
    id                INTEGER PRIMARY KEY,
    specimen_id       INTEGER NOT NULL REFERENCES specimens (id),
    version           INTEGER NOT NULL,
    verdict           TEXT    NOT NULL CHECK (verdict IN ('suspicious', 'insufficient', 'no_suspicious_cells')),
    comment           TEXT,
    reason            TEXT,
    signer            TEXT    NOT NULL,
    signed_at         INTEGER NOT NULL,
    suggested_verdict TEXT    NOT NULL,
    counts            TEXT    NOT NULL,   -- JSON SpecimenCounts the signer saw
    UNIQUE (specimen_id, version),
    CHECK (version = 1 OR reason IS NOT NULL)
  );

  CREATE TABLE specimen_audit (
    id          INTEGER PRIMARY KEY,
    specimen_id INTEGER NOT NULL REFERENCES specimens (id),
    actor       TEXT    NOT NULL,
    action      TEXT    NOT NULL,
    at          INTEGER NOT NULL,
    details     TEXT    NOT NULL DEFAULT '{}'
  );
  CREATE INDEX specimen_audit_specimen ON specimen_audit (specimen_id, id);
  CREATE TRIGGER specimen_audit_append_only BEFORE UPDATE ON specimen_audit
  BEGIN
    SELECT RAISE(ABORT, 'the specimen audit trail is append-only');
  END;
  CREATE TRIGGER specimen_audit_signed_kept BEFORE DELETE ON specimen_audit
  WHEN NOT EXISTS (
    SELECT 1 FROM specimens s WHERE s.id = OLD.specimen_id AND s.status IN ('open', 'awaiting_signoff')
  )
  BEGIN
    SELECT RAISE(ABORT, 'the audit trail of a signed specimen is never deleted');
  END;
  CREATE TRIGGER specimen_signoffs_append_only BEFORE UPDATE ON specimen_signoffs
  BEGIN
    SELECT RAISE(ABORT, 'sign-offs are never changed: amend instead');
  END;
  CREATE TRIGGER specimen_signoffs_kept BEFORE DELETE ON specimen_signoffs
  BEGIN
    SELECT RAISE(ABORT, 'sign-offs are never deleted');
  END;
  `,
  // lis outbox: every report a sign-off (or amendment) sends to the laboratory information system,
  // one row per destination, written in the sign-off's own transaction. No foreign key to the
  // specimen tables: a delivered report stays on record whatever retention does to the images.
  `
  CREATE TABLE lis_outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    destination     TEXT    NOT NULL,   -- mllp | file | fhir | fhir_file
    control_id      TEXT    NOT NULL,   -- HL7 MSH-10; the same on every redelivery
    specimen_id     INTEGER NOT NULL,
    version         INTEGER NOT NULL,   -- sign-off version: 1 = signature, higher = amendment
    report          TEXT    NOT NULL,   -- JSON of the report as signed
    payload         TEXT,               -- the message as sent, kept from its first rendering
    state           TEXT    NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'held')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT,
    next_attempt_at INTEGER,            -- ms since epoch; null = now
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    delivered_at    INTEGER
  );
  CREATE UNIQUE INDEX lis_outbox_message ON lis_outbox (destination, control_id);
  CREATE INDEX lis_outbox_waiting ON lis_outbox (destination, id) WHERE state <> 'delivered';
  CREATE INDEX lis_outbox_specimen ON lis_outbox (specimen_id, version);
  `,
  // out of domain
  // A result may be `out_of_domain`: classified, but unlike the training images, so it has no
  // verdict. SQLite cannot alter a CHECK constraint, so `results` is rebuilt (ids, rows, indexes
  // and any column added since are kept). `domain` holds the gate's judgement as JSON
  // {in, reasons, scores}; NULL for rows from before. The same bytes keep one result whatever
  // the gate said: the content-hash uniqueness covers both statuses.
  (db) => {
    rebuildTable(db, 'results', (sql) => {
      if (!sql.includes(STATUS_CHECK_BEFORE_OUT_OF_DOMAIN))
        throw new Error(`results.status check is not the expected one: ${sql}`);
      return sql.replace(STATUS_CHECK_BEFORE_OUT_OF_DOMAIN, STATUS_CHECK_WITH_OUT_OF_DOMAIN);
    });
    db.exec(`
      ALTER TABLE results ADD COLUMN domain TEXT;
      DROP INDEX results_sha256_done;
      CREATE UNIQUE INDEX results_sha256_classified ON results (sha256) WHERE status IN ('done', 'out_of_domain');
    `);
  },
  // camera warnings of a specimen: which of health's camera watches (src/domain/camera-warning.ts)
  // were raised while its images joined it, so that the person who signs it hears of them even
  // after they cleared. Deleted with the specimen (retention removes unsigned specimens whole).
  `
  CREATE TABLE specimen_camera_warnings (
    specimen_id INTEGER NOT NULL REFERENCES specimens (id) ON DELETE CASCADE,
    watch       TEXT    NOT NULL,
    text        TEXT    NOT NULL,   -- the warning in words, as last raised
    first_at    INTEGER NOT NULL,
    last_at     INTEGER NOT NULL,
    images      INTEGER NOT NULL,   -- images that joined the specimen while it was raised
    PRIMARY KEY (specimen_id, watch)
  ) WITHOUT ROWID;
  `,
  // camera warning episodes: when each camera watch was raised and cleared, with the results
  // at which it was, so that the captures of the window it was first judged on are counted once,
  // across restarts, and never again when it is raised anew.
  `
  CREATE TABLE camera_warning_episodes (
    id                INTEGER PRIMARY KEY,
    watch             TEXT    NOT NULL,
    raised_at         INTEGER NOT NULL,
    raised_result_id  INTEGER NOT NULL,
    cleared_at        INTEGER,
    cleared_result_id INTEGER
  );
  CREATE UNIQUE INDEX camera_warning_episodes_open ON camera_warning_episodes (watch)
    WHERE cleared_at IS NULL;
  `,
];

/** Dangling foreign key references in the whole database. */
const brokenReferences = (db: Database.Database): number =>
  (db.pragma('foreign_key_check') as unknown[]).length;

/**
 * Brings a database from schema `from` to `to` (user_version), one transaction per step.
 *
 * Foreign keys are off while the schema changes, as SQLite's table-rebuild procedure requires: a
 * rebuilt parent table is dropped and renamed, and with them on the drop would run the ON DELETE
 * actions (reviews deleted, file rows unlinked). The pragma is a no-op inside a transaction, so
 * it is set around them, and each step is checked before it commits instead: refused for a
 * reference it broke, never for an old dangling one it found.
 */
export function applyMigrations(
  db: Database.Database,
  from: number,
  to: number,
  onStep?: (version: number) => void,
): void {
  if (from >= to) return;
  const foreignKeys = db.pragma('foreign_keys', { simple: true }) as number;
  db.pragma('foreign_keys = OFF');
  try {
    for (let v = from; v < to; v++) {
      const step = MIGRATIONS[v] as Migration;
      db.transaction(() => {
        const brokenBefore = brokenReferences(db);
        if (typeof step === 'string') db.exec(step);
        else step(db);
        const broken = brokenReferences(db) - brokenBefore;
        if (broken > 0) throw new Error(`migration ${v + 1} broke ${broken} foreign key reference(s)`);
        db.pragma(`user_version = ${v + 1}`);
      })();
      onStep?.(v + 1);
    }
  } finally {
    db.pragma(`foreign_keys = ${foreignKeys ? 'ON' : 'OFF'}`);
  }
}
