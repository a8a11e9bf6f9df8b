import type { SpecimenCameraWarning } from '../domain/camera-warning.js';
import type { Result } from '../domain/result.js';
import {
  readCount,
  type OutOfDomainReadings,
  type Specimen,
  type SpecimenReport,
  type SpecimenSignOff,
} from '../domain/specimen.js';
import type { AmendInput, SignOffInput } from '../domain/specimen-change.js';
import type { SpecimenCameraWarnings } from './camera-warnings.js';
import type { ResultsTable } from './results.js';
import { SpecimenError, isLocked, type SpecimensTable, type SpecimenWrite } from './specimens.js';

/**
 * Called synchronously INSIDE the transaction that writes a sign-off or amendment, with what the
 * laboratory information system needs: whatever it writes with the same database handle commits
 * or rolls back together with the sign-off.
 */
export type OnSignOff = (report: SpecimenReport) => void;

/** How many of the most suspicious images a report carries. */
const REPORT_TOP_IMAGES = 12;

const when = (ms: number) => new Date(ms).toISOString();

/**
 * Signing and amending. Each runs in an IMMEDIATE transaction (the write lock is taken before the
 * specimen is read), so of two reviewers signing at once exactly one signs; the other's attempt
 * is itself written to the audit trail and then refused with a 409 that names who signed.
 */
export class SpecimenSignOffs {
  constructor(
    private readonly specimens: SpecimensTable,
    private readonly results: ResultsTable,
    private readonly cameraWarnings: SpecimenCameraWarnings,
  ) {}

  sign(id: number, input: SignOffInput, actor: string, onSignOff?: OnSignOff): SpecimenWrite {
    const refused = { message: '' };
    const write = this.specimens.db
      .transaction((): SpecimenWrite | null => {
        const before = this.mustGet(id);
        if (isLocked(before)) {
          const s = before.signOff as SpecimenSignOff;
          refused.message = `specimen ${before.accession} was already signed by ${s.signer} at ${when(s.signedAt)} (verdict ${s.verdict}): amend it to change the verdict`;
          this.specimens.addAudit(id, actor, 'sign_refused', {
            verdict: input.verdict,
            comment: input.comment,
            signed_by: s.signer,
            signed_version: s.version,
          });
          return null;
        }
        return this.writeSignOff(before, 1, { ...input, reason: null }, actor, onSignOff);
      })
      .immediate();
    if (!write) throw new SpecimenError(409, refused.message);
    return write;
  }

  /**
   * A change after signing: a new version with a required reason. `basedOnVersion`, when given, is
   * the version the reviewer saw; if another amendment landed since, this one is refused (409).
   */
  amend(
    id: number,
    input: AmendInput & { basedOnVersion?: number },
    actor: string,
    onSignOff?: OnSignOff,
  ): SpecimenWrite {
    const reason = input.reason.trim();
    if (!reason) throw new SpecimenError(400, 'an amendment needs a reason');
    const refused = { message: '' };
    const write = this.specimens.db
      .transaction((): SpecimenWrite | null => {
        const before = this.mustGet(id);
        const latest = before.signOff;
        if (!isLocked(before) || !latest)
          throw new SpecimenError(409, `specimen ${before.accession} is not signed yet: sign it instead`);
        if (input.basedOnVersion !== undefined && input.basedOnVersion !== latest.version) {
          refused.message = `specimen ${before.accession} was amended by ${latest.signer} at ${when(latest.signedAt)} (version ${latest.version}) since you looked: reload and amend again`;
          this.specimens.addAudit(id, actor, 'amend_refused', {
            verdict: input.verdict,
            reason,
            based_on_version: input.basedOnVersion,
            latest_version: latest.version,
          });
          return null;
        }
        return this.writeSignOff(before, latest.version + 1, { ...input, reason }, actor, onSignOff);
      })
      .immediate();
    if (!write) throw new SpecimenError(409, refused.message);
    return write;
  }

  private mustGet(id: number): Specimen {
    const s = this.specimens.get(id);
    if (!s) throw new SpecimenError(404, 'no such specimen');
    return s;
  }

  private writeSignOff(
    before: Specimen,
    version: number,
    input: SignOffInput & { reason: string | null },
    actor: string,
    onSignOff: OnSignOff | undefined,
  ): SpecimenWrite {
    const at = Date.now();
    const comment = input.comment?.trim() || null;
    this.specimens.db
      .prepare(
        `INSERT INTO specimen_signoffs (specimen_id, version, verdict, comment, reason, signer, signed_at,
           suggested_verdict, counts) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(
        before.id,
        version,
        input.verdict,
        comment,
        input.reason,
        actor,
        at,
        before.suggestedVerdict,
        JSON.stringify(before.counts),
      );
    this.specimens.closeSessions(before.id, actor, at);
    const amended = version > 1;
    // What the signer had read of the fields the model could not screen: the same figures the
    // report sends (report() asks for them at the signature's time), kept in the audit trail too.
    const readings = this.results.outOfDomainReadings(before.id, at);
    const warnings = this.cameraWarnings.of(before.id);
    const warnedBy = warnings.map((w) => w.watch);
    const write = this.specimens.change(before.id, {
      action: amended ? 'amended' : 'signed',
      actor,
      before,
      patch: {
        status: amended ? 'amended' : 'signed',
        finalVerdict: input.verdict,
        finishedAt: before.finishedAt ?? at,
      },
      details: {
        version,
        verdict: input.verdict,
        suggested_verdict: before.suggestedVerdict,
        comment,
        ...(amended ? { reason: input.reason, previous_verdict: before.finalVerdict } : {}),
        ...(readCount(readings) > 0 ? { out_of_domain_read: readings.byClass } : {}),
        ...(readings.unreadWithheld > 0 ? { withheld_unread: readings.unreadWithheld } : {}),
        // The camera warnings its images arrived under, which the dashboard showed the signer.
        ...(warnedBy.length > 0 ? { camera_warnings: warnedBy } : {}),
      },
      at,
      readings,
      cameraWarned: warnedBy,
    });
    onSignOff?.(this.report(write.specimen, readings, warnings));
    return write;
  }

  /** What the laboratory system gets for a signed specimen, frozen at signing. */
  report(
    specimen: Specimen,
    readingsAtSignature?: OutOfDomainReadings,
    warningsAtSignature?: SpecimenCameraWarning[],
  ): SpecimenReport {
    const signOff = specimen.signOff as SpecimenSignOff;
    const images = this.results.list({ specimen: specimen.id, order: 'p_ball', limit: 1000 });
    const top = images.filter((r) => r.status === 'done').slice(0, REPORT_TOP_IMAGES);
    const modelOf: Result | undefined = top[0] ?? images[0];
    const { options } = this.specimens;
    return {
      specimen,
      signOff,
      amended: signOff.version > 1,
      model: {
        name: modelOf?.modelName ?? 'unknown',
        version: modelOf?.modelVersion ?? 'unknown',
        threshold: modelOf?.threshold ?? 0,
      },
      topImages: top.map((r) => ({ resultId: r.id, file: r.file, className: r.className, pBall: r.pBall })),
      readings: readingsAtSignature ?? this.results.outOfDomainReadings(specimen.id, signOff.signedAt),
      cameraWarnings: warningsAtSignature ?? this.cameraWarnings.of(specimen.id),
      deviceId: options.deviceId,
      rule: options.rule,
    };
  }
}
