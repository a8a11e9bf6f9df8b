import type { Specimen, SpecimenReport } from '../domain/specimen.js';
import type { SpecimenImageRow } from './csv.js';
import type { LisDestinationStatus } from './delivery.js';

/**
 * What the HTTP side needs for reports, exports and the LIS status: ports the composition root
 * fills from the specimen store and the LIS delivery, so the routes depend on neither.
 */

/** The specimen data these routes read (the specimen store, wired in the composition root). */
export interface SpecimenReports {
  /** Every specimen, newest first. */
  list(): Specimen[];
  get(id: number): Specimen | null;
  /** The report of the specimen's latest signature; null when it is unknown or not signed yet. */
  report(id: number): SpecimenReport | null;
  /** The specimen's images, most suspicious first; null when the specimen is unknown. */
  images(id: number): SpecimenImageRow[] | null;
}

/** The LIS delivery as the status page and the retry button see it. */
export interface LisControl {
  status(): LisDestinationStatus[];
  /** Sends a held message again; false when it is not held. */
  retry(id: number): boolean;
}

export interface LisHttp {
  /** Null until the specimen store is wired: the report and export routes answer 503. */
  specimens: SpecimenReports | null;
  /** Null when no LIS destination is configured. */
  lis: LisControl | null;
  renderPdf(report: SpecimenReport): Promise<Buffer>;
}
