import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SpecimenCameraWarning } from '../../src/domain/camera-warning.js';
import type { OutOfDomainReadings, SpecimenReport, SpecimenVerdict } from '../../src/domain/specimen.js';
import type { LisConfig } from '../../src/lis/index.js';
import type { Logger } from '../../src/log.js';
import { openStore, type Store } from '../../src/store/index.js';

/** Fixed instants, so the messages built from them are the same on every run. */
export const SIGNED_AT = Date.UTC(2026, 11, 3, 9, 30, 0);
export const CREATED_AT = Date.UTC(2026, 11, 3, 9, 0, 0);

export interface ReportChanges {
  id?: number;
  accession?: string;
  version?: number;
  verdict?: SpecimenVerdict;
  comment?: string | null;
  reason?: string | null;
  signer?: string;
  /** Without `images`, the report has no pictures of the fields read. */
  readings?: Omit<OutOfDomainReadings, 'images'> & Partial<Pick<OutOfDomainReadings, 'images'>>;
  /** Without it, the specimen's images arrived under no camera warning. */
  cameraWarnings?: SpecimenCameraWarning[];
}

/** Two camera warnings, in the words health raises them with, as a specimen keeps them. */
export const CAMERA_WARNINGS: SpecimenCameraWarning[] = [
  {
    watch: 'colour_drift',
    text:
      'white balance changed? The camera records green brighter than the training camera did: the ' +
      'median green balance of the last 20 images screened or refused only for their green or a ' +
      'contradicted benign call is 1.043, above 1.021, the highest of any training image. The gate ' +
      'refuses each field above that; the bright background hides the shift from the colour ' +
      'normalisation, and in the fields it still accepts the model misses more blasts: check the ' +
      "camera's white balance (docs/new-microscope.md)",
    images: 7,
    firstAt: CREATED_AT + 5 * 60_000,
    lastAt: CREATED_AT + 12 * 60_000,
  },
  {
    watch: 'domain_drift',
    text:
      'camera, stain or magnification changed? The model may not apply here: 12 of the last 20 ' +
      'images were unlike the images it was trained on (60 %, above gate.drift_share 30 %)',
    images: 2,
    firstAt: CREATED_AT + 11 * 60_000,
    lastAt: CREATED_AT + 12 * 60_000,
  },
];

/**
 * A signed specimen as a sign-off hands it over: 14 images, 12 screened, 9 flagged; the one out
 * of the model domain read by a person as Pre-B.
 */
export function makeReport(c: ReportChanges = {}): SpecimenReport {
  const version = c.version ?? 1;
  const verdict = c.verdict ?? 'suspicious';
  const signOff = {
    version,
    verdict,
    comment: c.comment === undefined ? 'Blasts in 9 of 12 fields; refer for flow cytometry.' : c.comment,
    reason: c.reason === undefined ? (version > 1 ? 'Second look at field 7' : null) : c.reason,
    signer: c.signer ?? 'dr-lee',
    signedAt: SIGNED_AT + (version - 1) * 3_600_000,
    suggestedVerdict: 'suspicious' as const,
  };
  return {
    specimen: {
      id: c.id ?? 42,
      accession: c.accession ?? 'H26-0042',
      status: version > 1 ? 'amended' : 'signed',
      suggestedVerdict: 'suspicious',
      finalVerdict: verdict,
      counts: {
        images: 14,
        screened: 12,
        outOfDomain: 1,
        failed: 1,
        flagged: 9,
        byClass: { Benign: 3, 'Early Pre-B': 4, 'Pre-B': 2, 'Pro-B': 3 },
      },
      flaggedShare: { value: 0.75, low: 0.4677, high: 0.9111 },
      createdAt: CREATED_AT,
      updatedAt: SIGNED_AT,
      finishedAt: CREATED_AT + 20 * 60_000,
      signOff,
    },
    signOff,
    amended: version > 1,
    model: { name: 'blastwatch-mobilenet_v2-early-fusion', version: '2026.11.27+58f4004b', threshold: 0.457 },
    topImages: [
      { resultId: 7, file: 'H26-0042/field-07.jpg', className: 'Pro-B', pBall: 0.98 },
      { resultId: 3, file: 'H26-0042/field-03.jpg', className: 'Early Pre-B', pBall: 0.91 },
    ],
    readings: c.readings
      ? { images: [], ...c.readings }
      : {
          byClass: { 'Pre-B': 1 },
          unreadWithheld: 0,
          images: [{ resultId: 9, file: 'H26-0042/field-09.jpg', className: 'Pre-B', reviewer: 'dr-lee' }],
        },
    ...(c.cameraWarnings ? { cameraWarnings: c.cameraWarnings } : {}),
    deviceId: 'scope-1',
    rule: { minScreened: 5, minFlagged: 3, minFlaggedShare: 0.2 },
  };
}

/** config.lis with everything off, to switch on what a test needs. */
export function lisConfig(over: Partial<LisConfig> = {}): LisConfig {
  return {
    lab_name: 'City Hospital Haematology',
    receiving_application: 'LIS',
    receiving_facility: 'CITYHOSP',
    accession_system: 'urn:oid:1.2.3.4.5',
    mllp: null,
    file_dir: null,
    fhir: null,
    fhir_dir: null,
    retry_min_ms: 20,
    retry_max_ms: 200,
    ...over,
  };
}

/** What the helpers need of a tap test. */
export type Teardown = { teardown(fn: () => unknown): void };

export function tempDir(t: Teardown, prefix = 'bw-lis-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export function tempStore(t: Teardown, dir = tempDir(t)): Store {
  const store = openStore({ dataDir: dir });
  t.teardown(() => store.close());
  return store;
}

/** A logger that keeps nothing (pino's API, as far as delivery uses it). */
export const silentLog = (() => {
  const log = {
    child: () => log,
    trace: () => undefined,
    debug: () => undefined,
    info: () => undefined,
    warn: () => undefined,
    error: () => undefined,
    fatal: () => undefined,
  };
  return log as unknown as Logger;
})();

export const noThumbnails = async () => null;

/** Waits until `check` holds, polling; fails the wait after `ms`. */
export async function until(check: () => boolean, ms = 10_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
