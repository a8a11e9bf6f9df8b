import type { SpecimenCameraWarning } from '../domain/camera-warning.js';
import { readCount, type SpecimenReport, type SpecimenVerdict } from '../domain/specimen.js';

/**
 * The words and codes every outgoing format shares (HL7, FHIR, PDF, CSV), so the LIS, the PDF and
 * the dashboard say the same thing. The codes are local: no LOINC code describes an AI screen of a
 * smear for B-ALL, and an invented LOINC code would be worse than an honest local one.
 */

/** HL7 v2 coding system name of the local codes ("99zzz" is HL7's pattern for local tables). */
export const HL7_LOCAL_CODING_SYSTEM = '99BLW';
/** FHIR CodeSystem URI of the same local codes. */
export const FHIR_LOCAL_CODE_SYSTEM = 'urn:blastwatch:codes';

export const SCREEN_CODE = { code: 'BALL-SCREEN', text: 'B-ALL morphology screen (blastwatch)' } as const;

/** One observation sent per report, with its local code and the words for people. */
export const OBSERVATION_CODES = {
  verdict: { code: 'VERDICT', text: 'Signed verdict' },
  suggestedVerdict: { code: 'SUGGESTED-VERDICT', text: 'Verdict suggested by the rule' },
  imagesScreened: { code: 'IMAGES-SCREENED', text: 'Images screened' },
  imagesOutOfDomain: { code: 'IMAGES-OUT-OF-DOMAIN', text: 'Images out of the model domain (not screened)' },
  imagesFailed: { code: 'IMAGES-FAILED', text: 'Images that could not be read' },
  imagesFlagged: { code: 'IMAGES-FLAGGED', text: 'Screened images flagged B-ALL' },
  flaggedShare: { code: 'FLAGGED-SHARE', text: 'Flagged share of screened images' },
  classCount: { code: 'CLASS-COUNT', text: 'Screened images per predicted class' },
  imagesRead: {
    code: 'IMAGES-READ-NOT-SCREENED',
    text: 'Images out of the model domain read by a person',
  },
  readClassCount: {
    code: 'READ-CLASS-COUNT',
    text: 'Images out of the model domain per class read by a person',
  },
  withheldUnread: {
    code: 'WITHHELD-UNREAD',
    text: 'Benign calls withheld for contradicting features, not read by a person',
  },
  cameraWarning: { code: 'CAMERA-WARNING', text: 'Camera warning raised while its images arrived' },
  cameraWarnedImages: {
    code: 'CAMERA-WARNED-IMAGES',
    text: 'Images that arrived while the camera warning was raised',
  },
  model: { code: 'MODEL', text: 'Screening model' },
  signer: { code: 'SIGNED-BY', text: 'Signed by' },
  comment: { code: 'COMMENT', text: 'Reviewer comment' },
  amendmentReason: { code: 'AMENDMENT-REASON', text: 'Reason for the amendment' },
} as const;

export const VERDICT_TEXT: Record<SpecimenVerdict, string> = {
  suspicious: 'Suspicious: cells suggestive of B-ALL, hematologist review of the smear required',
  insufficient: 'Insufficient: too few images screened to report',
  no_suspicious_cells: 'No suspicious cells found (a screen, not a negative result)',
};

/** Short form for tables and the PDF headline. */
export const VERDICT_LABEL: Record<SpecimenVerdict, string> = {
  suspicious: 'Suspicious',
  insufficient: 'Insufficient',
  no_suspicious_cells: 'No suspicious cells found',
};

export const SCREENING_DISCLAIMER =
  "Screening aid, not a diagnosis: blastwatch flags images for a hematologist to look at; the verdict is the signer's, and the diagnosis rests on the full morphological, immunophenotypic and clinical work-up.";

/** The model and its limits in one sentence (printed on the PDF, sent as a note). */
export function modelLimits(report: SpecimenReport): string {
  return (
    `${report.model.name} ${report.model.version} classifies single images of peripheral blood smears ` +
    `(trained on one centre's data without patient-level splits, so its figures are optimistic); ` +
    `it does not see the whole slide and must not be used alone.`
  );
}

/**
 * What people read of the fields the model could not screen, in words ('' when nothing was read
 * and nothing waits): the report's counts leave those fields out, so this is said beside them.
 */
export function readingsText(report: SpecimenReport): string {
  const { byClass, unreadWithheld } = report.readings;
  const read = readCount(report.readings);
  const parts: string[] = [];
  if (read > 0) {
    const classes = Object.entries(byClass).map(([name, n]) => `${name} ${n}`);
    parts.push(
      `${read} image${read === 1 ? '' : 's'} out of the model domain read by a person: ${classes.join(', ')}.`,
    );
  }
  if (unreadWithheld > 0)
    parts.push(
      `${unreadWithheld} benign call${unreadWithheld === 1 ? '' : 's'} withheld because the model's own ` +
        `features contradicted ${unreadWithheld === 1 ? 'it' : 'them'} ${unreadWithheld === 1 ? 'was' : 'were'} ` +
        'not read by a person before signing.',
    );
  return parts.join(' ');
}

/**
 * The camera warnings the specimen's images arrived under, in words with their figures ('' when
 * none): the counts and the suggested verdict came from a camera that may no longer have taken
 * pictures like the training camera's, which whoever reads the result in the LIS must know.
 */
export function cameraWarningsText(report: SpecimenReport): string {
  const warnings = report.cameraWarnings ?? [];
  if (warnings.length === 0) return '';
  return (
    "Camera warnings while this specimen's images arrived (the model's counts may miss blasts): " +
    `${warnings.map(cameraWarningLine).join('; ')}.`
  );
}

/** One camera warning with the count of images it covered: the PDF's line and the LIS note's part. */
export function cameraWarningLine(w: SpecimenCameraWarning): string {
  return `${w.images} image${w.images === 1 ? '' : 's'}: ${w.text}`;
}

/** Flagged / screened as a percentage with one decimal. */
export function percent(value: number): string {
  return `${(Math.round(value * 1000) / 10).toFixed(1)} %`;
}
