import type { OutOfDomainReadings, Specimen, SpecimenReport } from '../domain/specimen.js';
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
  /** People's readings of its out-of-domain fields as they stood at its latest signature; null unsigned. */
  signedReadings(specimen: Specimen): OutOfDomainReadings | null;
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

/** The parts of the specimen store the port reads (structural: the store's own classes fit). */
export interface SpecimenStoreLike {
  specimens: {
    get(id: number): Specimen | undefined;
    list(q?: { limit?: number }): Specimen[];
  };
  signOffs: { report(specimen: Specimen): SpecimenReport };
  results: {
    list(q: { specimen?: number; order?: 'p_ball'; limit: number }): readonly {
      id: number;
      file: string;
      status: string;
      className: string | null;
      pBall: number | null;
      flag: boolean | null;
      capturedAt: number | null;
      processedAt: number;
      review: { className: string } | null;
    }[];
    outOfDomainReadings(specimenId: number, asOf: number): OutOfDomainReadings;
  };
}

/** The most specimens one CSV export lists, and images per specimen (newest / most suspicious first). */
const EXPORT_LIMIT = 100_000;
const IMAGES_LIMIT = 10_000;

/** SpecimenReports over the specimen store: the latest signature's report, images by P(B-ALL). */
export function specimenReportsFrom(store: SpecimenStoreLike): SpecimenReports {
  return {
    list: () => store.specimens.list({ limit: EXPORT_LIMIT }),
    get: (id) => store.specimens.get(id) ?? null,
    report(id) {
      const specimen = store.specimens.get(id);
      return specimen?.signOff ? store.signOffs.report(specimen) : null;
    },
    signedReadings: (specimen) =>
      specimen.signOff ? store.results.outOfDomainReadings(specimen.id, specimen.signOff.signedAt) : null,
    images(id) {
      if (!store.specimens.get(id)) return null;
      return store.results.list({ specimen: id, order: 'p_ball', limit: IMAGES_LIMIT }).map((r) => ({
        resultId: r.id,
        file: r.file,
        status: r.status,
        className: r.className,
        pBall: r.pBall,
        flagged: r.flag,
        reviewedClass: r.review?.className ?? null,
        capturedAt: r.capturedAt,
        processedAt: r.processedAt,
      }));
    },
  };
}
