import { createHash } from 'node:crypto';
import type { SpecimenReport } from '../domain/specimen.js';

/**
 * Identifiers a laboratory system uses to recognise a redelivered message. They are derived from
 * the signed report alone (never random, never a row id), so every retry, every restart and every
 * destination sends the same one, and the LIS can drop a duplicate.
 */

/**
 * The specimen across time and devices: its id plus a short hash of the device, the accession
 * and the moment the specimen was created. A second device, or a fresh database on this one that
 * reuses specimen id 1, gets another key, so an LIS never drops a new report as a "duplicate".
 */
export function specimenKey(report: SpecimenReport): string {
  const { specimen, deviceId } = report;
  const hash = createHash('sha256')
    .update(`${deviceId}\0${specimen.accession}\0${specimen.createdAt}`)
    .digest('hex')
    .slice(0, 8);
  return `${specimen.id}-${hash}`;
}

/**
 * HL7 MSH-10 (at most 20 characters in v2.5.1): one per signature of a specimen, so an amendment
 * is a new message and a redelivery of the same signature is the same message. Also names the
 * file written to lis.file_dir.
 */
export function messageControlId(report: SpecimenReport): string {
  return `${specimenKey(report)}-${report.signOff.version}`;
}

/** A name-based UUID (RFC 9562 version 5 layout over SHA-256 instead of SHA-1 bits). */
export function stableUuid(name: string): string {
  const b = createHash('sha256').update(name).digest().subarray(0, 16);
  b[6] = (b[6]! & 0x0f) | 0x50;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** The FHIR Bundle.identifier value of one signature: the same on every redelivery. */
export function bundleIdentifier(report: SpecimenReport): string {
  return `urn:uuid:${stableUuid(`blastwatch bundle ${report.deviceId} ${messageControlId(report)}`)}`;
}
