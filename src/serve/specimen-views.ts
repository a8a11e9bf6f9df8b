import { describeRule, type Specimen, type SpecimenSignOff, type VerdictRule } from '../domain/specimen.js';
import type { SpecimenAgreement, SpecimenAuditEntry } from '../domain/specimen-change.js';
import type { Result } from '../domain/result.js';
import type { SpecimenCameraWarning } from '../domain/camera-warning.js';
import type { CaptureBeforeSession } from '../store/capture-clock.js';
import { countsJson } from '../publish/specimen-payload.js';
import { resultJson } from './views.js';

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

export function signOffJson(s: SpecimenSignOff) {
  return {
    version: s.version,
    verdict: s.verdict,
    comment: s.comment,
    reason: s.reason,
    signer: s.signer,
    signed_at: new Date(s.signedAt).toISOString(),
    suggested_verdict: s.suggestedVerdict,
  };
}

/** The public JSON of a specimen on /api/specimens (snake_case, like /api/results). */
export function specimenJson(s: Specimen, rule: VerdictRule) {
  return {
    id: s.id,
    accession: s.accession,
    status: s.status,
    suggested_verdict: s.suggestedVerdict,
    final_verdict: s.finalVerdict,
    counts: countsJson(s.counts),
    flagged_share: s.flaggedShare,
    rule: describeRule(rule),
    session_open: s.sessionOpen === true,
    ...(s.unreadWithheld !== undefined ? { unread_withheld: s.unreadWithheld } : {}),
    ...(s.cameraWarned !== undefined ? { camera_warned: s.cameraWarned } : {}),
    revision: s.revision ?? 0,
    created_at: new Date(s.createdAt).toISOString(),
    updated_at: new Date(s.updatedAt).toISOString(),
    finished_at: iso(s.finishedAt),
    sign_off: s.signOff === null ? null : signOffJson(s.signOff),
  };
}

export function auditJson(a: SpecimenAuditEntry) {
  return { id: a.id, actor: a.actor, action: a.action, at: new Date(a.at).toISOString(), details: a.details };
}

/**
 * One specimen with its images (the /api/results items, most suspicious first), sign-offs, audit
 * trail, the captures that arrived during its sessions but are stamped before they started
 * (in no specimen until a person assigns them: src/store/capture-clock.ts), and the camera
 * warnings its images arrived under (src/store/camera-warnings.ts).
 */
export function specimenDetailJson(
  s: Specimen,
  rule: VerdictRule,
  parts: {
    images: Result[];
    signOffs: SpecimenSignOff[];
    audit: SpecimenAuditEntry[];
    capturesBeforeStart: CaptureBeforeSession[];
    cameraWarnings: SpecimenCameraWarning[];
  },
) {
  return {
    ...specimenJson(s, rule),
    images: parts.images.map(resultJson),
    sign_offs: parts.signOffs.map(signOffJson),
    audit: parts.audit.map(auditJson),
    captures_before_start: parts.capturesBeforeStart.map((c) => ({
      result_id: c.resultId,
      file: c.file,
      before_s: Math.round(c.beforeMs / 100) / 10,
    })),
    camera_warnings: parts.cameraWarnings.map((w) => ({
      watch: w.watch,
      text: w.text,
      images: w.images,
      first_at: new Date(w.firstAt).toISOString(),
      last_at: new Date(w.lastAt).toISOString(),
    })),
  };
}

export function agreementJson(a: SpecimenAgreement) {
  return { signed: a.signed, agreed: a.agreed, rate: a.rate };
}

export type SpecimenJson = ReturnType<typeof specimenJson>;
export type SpecimenDetailJson = ReturnType<typeof specimenDetailJson>;
