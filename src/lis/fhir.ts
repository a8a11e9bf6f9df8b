import type {
  Bundle,
  BundleEntry,
  CodeableConcept,
  Device,
  DiagnosticReport,
  Identifier,
  Observation,
  Practitioner,
  Reference,
  Specimen as FhirSpecimen,
} from '@medplum/fhirtypes';
import { CAMERA_WATCH_LABEL } from '../domain/camera-warning.js';
import { readCount, type SpecimenReport } from '../domain/specimen.js';
import { bundleIdentifier, messageControlId, specimenKey, stableUuid } from './ids.js';
import {
  cameraWarningsText,
  FHIR_LOCAL_CODE_SYSTEM,
  OBSERVATION_CODES,
  readingsText,
  SCREEN_CODE,
  VERDICT_TEXT,
} from './vocabulary.js';

export interface FhirOptions {
  /** System URI of the lab's accession numbers (config lis.accession_system); null = none sent. */
  accessionSystem: string | null;
}

/** Identifier systems of what blastwatch itself names (the specimen key, its observations). */
export const SPECIMEN_KEY_SYSTEM = 'urn:blastwatch:specimen';
export const OBSERVATION_KEY_SYSTEM = 'urn:blastwatch:observation';
const UCUM = 'http://unitsofmeasure.org';

const local = (c: { code: string; text: string }): CodeableConcept => ({
  coding: [{ system: FHIR_LOCAL_CODE_SYSTEM, code: c.code, display: c.text }],
  text: c.text,
});

const iso = (ms: number) => new Date(ms).toISOString();

/** A count of images as an Observation's or a component's value (UCUM `{images}`). */
const images = (n: number) => ({
  valueQuantity: { value: n, unit: 'images', system: UCUM, code: '{images}' },
});

/** A conditional update keyed on our identifier: a redelivery or an amendment updates, never duplicates. */
function upsert(type: string, system: string, value: string) {
  return { method: 'PUT' as const, url: `${type}?identifier=${encodeURIComponent(`${system}|${value}`)}` };
}

function entry<T extends DiagnosticReport | Observation | FhirSpecimen>(
  fullUrl: string,
  resource: T,
  key: Identifier,
): BundleEntry {
  return { fullUrl, resource, request: upsert(resource.resourceType, key.system!, key.value!) };
}

interface ObservationDraft {
  key: string;
  code: CodeableConcept;
  value: Pick<Observation, 'valueCodeableConcept' | 'valueQuantity' | 'valueString' | 'component' | 'note'>;
  signer?: boolean;
}

function observationDrafts(report: SpecimenReport): ObservationDraft[] {
  const { specimen, signOff } = report;
  const c = specimen.counts;
  const codes = OBSERVATION_CODES;
  const verdict = (v: keyof typeof VERDICT_TEXT): CodeableConcept => ({
    coding: [{ system: FHIR_LOCAL_CODE_SYSTEM, code: v, display: VERDICT_TEXT[v] }],
    text: VERDICT_TEXT[v],
  });
  const drafts: ObservationDraft[] = [
    {
      key: codes.verdict.code,
      code: local(codes.verdict),
      value: { valueCodeableConcept: verdict(signOff.verdict) },
      signer: true,
    },
    {
      key: codes.suggestedVerdict.code,
      code: local(codes.suggestedVerdict),
      value: { valueCodeableConcept: verdict(signOff.suggestedVerdict) },
    },
    { key: codes.imagesScreened.code, code: local(codes.imagesScreened), value: images(c.screened) },
    { key: codes.imagesOutOfDomain.code, code: local(codes.imagesOutOfDomain), value: images(c.outOfDomain) },
    { key: codes.imagesFailed.code, code: local(codes.imagesFailed), value: images(c.failed) },
    { key: codes.imagesFlagged.code, code: local(codes.imagesFlagged), value: images(c.flagged) },
  ];
  if (specimen.flaggedShare)
    drafts.push({
      key: codes.flaggedShare.code,
      code: local(codes.flaggedShare),
      value: {
        valueQuantity: {
          value: Math.round(specimen.flaggedShare.value * 10000) / 100,
          unit: '%',
          system: UCUM,
          code: '%',
        },
      },
    });
  for (const [name, n] of Object.entries(c.byClass))
    drafts.push({
      key: `${codes.classCount.code}-${name}`,
      code: { ...local(codes.classCount), text: `Screened images classified ${name}` },
      value: images(n),
    });
  const readings = report.readings;
  drafts.push(
    {
      key: codes.imagesRead.code,
      code: local(codes.imagesRead),
      // One Observation with a component per class: an amendment replaces it whole, so a class
      // read at the first signature and re-read since leaves no stale count behind.
      value: {
        ...images(readCount(readings)),
        component: Object.entries(readings.byClass).map(([name, n]) => ({
          code: { ...local(codes.readClassCount), text: `Images out of the model domain read as ${name}` },
          ...images(n),
        })),
      },
    },
    {
      key: codes.withheldUnread.code,
      code: local(codes.withheldUnread),
      value: images(readings.unreadWithheld),
    },
  );
  const warned = cameraWarningDraft(report);
  if (warned) drafts.push(warned);
  drafts.push({
    key: codes.model.code,
    code: local(codes.model),
    value: { valueString: `${report.model.name} ${report.model.version}` },
  });
  return drafts;
}

/**
 * The camera warnings its images arrived under, when any was raised: one Observation with a
 * component per watch (the watch coded, the images that arrived under it as the value) and the
 * warnings' own words, with their figures, as notes.
 */
function cameraWarningDraft(report: SpecimenReport): ObservationDraft | null {
  const warnings = report.cameraWarnings ?? [];
  if (warnings.length === 0) return null;
  const code = OBSERVATION_CODES.cameraWarning;
  return {
    key: code.code,
    code: local(code),
    value: {
      component: warnings.map((w) => ({
        code: local({ code: w.watch, text: CAMERA_WATCH_LABEL[w.watch] }),
        ...images(w.images),
      })),
      note: warnings.map((w) => ({ text: w.text })),
    },
  };
}

/** What every resource of one signature shares. */
interface Context {
  report: SpecimenReport;
  status: 'final' | 'amended';
  key: string;
  uuid(what: string): string;
  effectivePeriod: { start: string; end: string };
  signer: Reference<Practitioner>;
  accession: Identifier;
  specimenRef: Reference<FhirSpecimen>;
}

function accessionIdentifier(report: SpecimenReport, opts: FhirOptions): Identifier {
  return {
    type: {
      coding: [
        { system: 'http://terminology.hl7.org/CodeSystem/v2-0203', code: 'ACSN', display: 'Accession ID' },
      ],
    },
    ...(opts.accessionSystem ? { system: opts.accessionSystem } : {}),
    value: report.specimen.accession,
  };
}

function observationEntries(c: Context): { url: string; observation: Observation; id: Identifier }[] {
  const device: Reference<Device> = { display: `blastwatch ${c.report.deviceId}` };
  return observationDrafts(c.report).map((d) => {
    const id: Identifier = { system: OBSERVATION_KEY_SYSTEM, value: `${c.key}-${d.key}` };
    const observation: Observation = {
      resourceType: 'Observation',
      identifier: [id],
      status: c.status,
      category: [
        {
          coding: [
            {
              system: 'http://terminology.hl7.org/CodeSystem/observation-category',
              code: 'laboratory',
              display: 'Laboratory',
            },
          ],
        },
      ],
      code: d.code,
      effectivePeriod: c.effectivePeriod,
      issued: iso(c.report.signOff.signedAt),
      specimen: c.specimenRef,
      device,
      ...(d.signer ? { performer: [c.signer] } : {}),
      ...d.value,
    };
    return { url: c.uuid(`observation ${d.key}`), observation, id };
  });
}

function diagnosticReport(c: Context, key: Identifier, results: string[], pdf: Buffer): DiagnosticReport {
  const { specimen, signOff } = c.report;
  const readings = readingsText(c.report);
  const warnings = cameraWarningsText(c.report);
  const conclusion =
    `${VERDICT_TEXT[signOff.verdict]}. Signed by ${signOff.signer}.` +
    (signOff.comment ? ` Comment: ${signOff.comment}` : '') +
    (c.report.amended && signOff.reason ? ` Amended: ${signOff.reason}` : '') +
    (readings ? ` ${readings}` : '') +
    (warnings ? ` ${warnings}` : '') +
    ' Screening aid, not a diagnosis.';
  return {
    resourceType: 'DiagnosticReport',
    identifier: [c.accession, key],
    status: c.status,
    category: [
      {
        coding: [
          { system: 'http://terminology.hl7.org/CodeSystem/v2-0074', code: 'HM', display: 'Hematology' },
        ],
      },
    ],
    code: local(SCREEN_CODE),
    effectivePeriod: c.effectivePeriod,
    issued: iso(signOff.signedAt),
    resultsInterpreter: [c.signer],
    specimen: [c.specimenRef],
    result: results.map((reference) => ({ reference })),
    conclusion,
    conclusionCode: [
      {
        coding: [
          { system: FHIR_LOCAL_CODE_SYSTEM, code: signOff.verdict, display: VERDICT_TEXT[signOff.verdict] },
        ],
      },
    ],
    presentedForm: [
      {
        contentType: 'application/pdf',
        language: 'en',
        data: pdf.toString('base64'),
        title: `B-ALL screening report ${specimen.accession}`,
        creation: iso(signOff.signedAt),
      },
    ],
  };
}

/**
 * The FHIR R4 transaction Bundle of one signature: a DiagnosticReport (category HM, the accession
 * as identifier, the verdict as conclusion, the PDF as presentedForm), its Observations and the
 * Specimen. No Patient: blastwatch knows the accession only. Every entry is a conditional update
 * on a blastwatch identifier and the Bundle carries a stable identifier, so a redelivery changes
 * nothing and an amendment updates the same resources (status `amended`).
 */
export function buildFhirBundle(report: SpecimenReport, pdf: Buffer, opts: FhirOptions): Bundle {
  const { specimen, signOff, deviceId } = report;
  const key = specimenKey(report);
  const uuid = (what: string) => `urn:uuid:${stableUuid(`${deviceId} ${messageControlId(report)} ${what}`)}`;
  const specimenUrl = uuid('specimen');
  const c: Context = {
    report,
    status: report.amended ? 'amended' : 'final',
    key,
    uuid,
    effectivePeriod: { start: iso(specimen.createdAt), end: iso(specimen.finishedAt ?? signOff.signedAt) },
    signer: { display: signOff.signer },
    accession: accessionIdentifier(report, opts),
    specimenRef: { reference: specimenUrl },
  };
  const specimenKeyId: Identifier = { system: SPECIMEN_KEY_SYSTEM, value: key };
  const fhirSpecimen: FhirSpecimen = {
    resourceType: 'Specimen',
    identifier: [specimenKeyId],
    accessionIdentifier: c.accession,
    type: { text: 'Peripheral blood smear' },
    receivedTime: iso(specimen.createdAt),
  };
  const observations = observationEntries(c);
  const reportKey: Identifier = { system: SPECIMEN_KEY_SYSTEM, value: key };
  const dr = diagnosticReport(
    c,
    reportKey,
    observations.map((o) => o.url),
    pdf,
  );
  return {
    resourceType: 'Bundle',
    type: 'transaction',
    identifier: { system: 'urn:ietf:rfc:3986', value: bundleIdentifier(report) },
    timestamp: iso(signOff.signedAt),
    entry: [
      entry(specimenUrl, fhirSpecimen, specimenKeyId),
      ...observations.map((o) => entry(o.url, o.observation, o.id)),
      entry(uuid('report'), dr, reportKey),
    ],
  };
}
