import type Database from 'better-sqlite3';
import type { ResolvedConfig } from '../config/load.js';
import type { SpecimenReport } from '../domain/specimen.js';
import type { Logger } from '../log.js';
import { LisDelivery, type LisRoute } from './delivery.js';
import { buildFhirBundle } from './fhir.js';
import { bundleIdentifier } from './ids.js';
import { LisOutbox, type LisDestination } from './outbox.js';
import { FhirSender, FolderSender, type Sender } from './senders.js';
import type { ThumbnailSource } from './thumbnails.js';

export { LisDelivery, type LisDestinationStatus } from './delivery.js';
export { LisOutbox, type LisDestination, type LisMessage, type LisMessageSummary } from './outbox.js';
export { mediaThumbnails, type ThumbnailSource } from './thumbnails.js';
export { specimenImagesCsv, specimensCsv, type SpecimenImageRow } from './csv.js';

export type LisConfig = ResolvedConfig['lis'];

/** The destinations a config turns on, in their fixed order. */
export function configuredDestinations(config: LisConfig): LisDestination[] {
  const on: LisDestination[] = [];
  if (config.mllp) on.push('mllp');
  if (config.file_dir) on.push('file');
  if (config.fhir) on.push('fhir');
  if (config.fhir_dir) on.push('fhir_file');
  return on;
}

/**
 * The three renderings of a signed report, from the config's lab details. The HL7 library and
 * pdfkit are loaded on first use: together they hold over 100 MB of a daemon's memory, which a
 * daemon with no LIS destination and no report downloaded never needs.
 */
export function createRenderers(config: LisConfig, thumbnails: ThumbnailSource) {
  const pdf = async (report: SpecimenReport) =>
    (await import('./pdf.js')).renderReportPdf(report, { labName: config.lab_name, thumbnails });
  return {
    pdf,
    hl7: async (report: SpecimenReport) =>
      (await import('./hl7.js')).buildOruR01(report, {
        labName: config.lab_name,
        receivingApplication: config.receiving_application,
        receivingFacility: config.receiving_facility,
      }),
    fhir: async (report: SpecimenReport) =>
      JSON.stringify(
        buildFhirBundle(report, await pdf(report), { accessionSystem: config.accession_system }),
      ),
  };
}

/** A sender whose module (and the HL7 library behind it) loads on its first message. */
function lazySender(target: string, load: () => Promise<Sender>): Sender {
  let sender: Sender | null = null;
  let loading: Promise<Sender> | null = null;
  return {
    target,
    get connected() {
      return sender?.connected ?? null;
    },
    async send(message, payload) {
      sender ??= await (loading ??= load());
      return sender.send(message, payload);
    },
    close() {
      sender?.close();
    },
  };
}

export interface Lis {
  outbox: LisOutbox;
  /** Null when no destination is configured (nothing to deliver, nothing enqueued). */
  delivery: LisDelivery | null;
  /**
   * The sign-off hook: writes the report's outbox rows with the caller's connection. Call it
   * inside the transaction that stores the signature; delivery looks once that has committed.
   */
  onSignOff(report: SpecimenReport): void;
  renderPdf(report: SpecimenReport): Promise<Buffer>;
}

export interface LisOptions {
  /** The store's connection: the sign-off transaction runs on it. */
  db: Database.Database;
  config: LisConfig;
  log: Logger;
  thumbnails: ThumbnailSource;
  /** Test hooks: poll period of the delivery loops, clock. */
  pollMs?: number;
  now?: () => number;
}

/** Builds the LIS outbox, its delivery extension and the sign-off hook from config `lis`. */
export function createLis(o: LisOptions): Lis {
  const { config } = o;
  const destinations = configuredDestinations(config);
  const outbox = new LisOutbox(o.db, destinations, o.now);
  const render = createRenderers(config, o.thumbnails);
  const routes: LisRoute[] = [];
  const mllp = config.mllp;
  if (mllp)
    routes.push({
      destination: 'mllp',
      render: render.hl7,
      sender: lazySender(`mllp://${mllp.host}:${mllp.port}`, async () => {
        const { MllpSender } = await import('./mllp-sender.js');
        return new MllpSender({
          host: mllp.host,
          port: mllp.port,
          ackTimeoutMs: mllp.ack_timeout_ms,
          connectTimeoutMs: mllp.connect_timeout_ms,
        });
      }),
    });
  if (config.file_dir)
    routes.push({
      destination: 'file',
      render: render.hl7,
      sender: new FolderSender(config.file_dir, (m) => `${m.controlId}.hl7`),
    });
  if (config.fhir)
    routes.push({
      destination: 'fhir',
      render: render.fhir,
      sender: new FhirSender({
        baseUrl: config.fhir.base_url,
        token: config.fhir.token,
        timeoutMs: config.fhir.timeout_ms,
      }),
    });
  if (config.fhir_dir)
    routes.push({
      destination: 'fhir_file',
      render: render.fhir,
      sender: new FolderSender(
        config.fhir_dir,
        (m) => `${bundleIdentifier(m.report).replace(/^urn:uuid:/, '')}.json`,
      ),
    });
  const delivery =
    routes.length === 0
      ? null
      : new LisDelivery({
          outbox,
          routes,
          log: o.log.child({ component: 'lis' }),
          retryMinMs: config.retry_min_ms,
          retryMaxMs: config.retry_max_ms,
          ...(o.pollMs !== undefined ? { pollMs: o.pollMs } : {}),
          ...(o.now ? { now: o.now } : {}),
        });
  return {
    outbox,
    delivery,
    onSignOff(report) {
      if (!delivery) return;
      outbox.enqueue(report);
      // better-sqlite3 transactions are synchronous: by the time this runs the sign-off has
      // committed (delivery finds the rows) or rolled back (it finds none).
      setImmediate(() => delivery.notify());
    },
    renderPdf: render.pdf,
  };
}
