import type { FastifyInstance, FastifyReply, preValidationHookHandler } from 'fastify';
import type { LisDestinationStatus } from '../../../lis/delivery.js';
import { specimenImagesCsv, specimensCsv } from '../../../lis/csv.js';
import type { LisHttp, SpecimenReports } from '../../../lis/ports.js';
import type { DashboardContext } from '../context.js';
import { errorReply, idParams } from '../schemas.js';

export type LisRoutesOptions = DashboardContext & {
  lisDeps: LisHttp;
  /**
   * preValidation of the retry route. Releasing a message the LIS refused is a reviewer's or an
   * admin's decision: the dashboard passes its write check and the reviewer role; default: the
   * write check alone.
   */
  requireReviewer?: preValidationHookHandler | preValidationHookHandler[];
};

const str = { type: 'string' } as const;
const int = { type: 'integer' } as const;
const nullableStr = { type: ['string', 'null'] } as const;
const nullableInt = { type: ['integer', 'null'] } as const;

const heldMessage = {
  type: 'object',
  properties: {
    id: int,
    controlId: str,
    specimenId: int,
    version: int,
    accession: str,
    attempts: int,
    lastError: nullableStr,
    createdAt: str,
    updatedAt: str,
  },
} as const;

export const lisStatusReply = {
  type: 'object',
  properties: {
    enabled: { type: 'boolean' },
    destinations: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          destination: { type: 'string', enum: ['mllp', 'file', 'fhir', 'fhir_file'] },
          target: str,
          connected: { type: ['boolean', 'null'] },
          queued: int,
          held: { type: 'array', items: heldMessage },
          lastError: nullableStr,
          lastDeliveredAt: nullableStr,
          oldestWaitingAt: nullableStr,
          nextAttemptAt: nullableStr,
        },
      },
    },
  },
} as const;

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

function statusJson(s: LisDestinationStatus) {
  return {
    destination: s.destination,
    target: s.target,
    connected: s.connected,
    queued: s.queued,
    held: s.held.map((m) => ({
      id: m.id,
      controlId: m.controlId,
      specimenId: m.specimenId,
      version: m.version,
      accession: m.accession,
      attempts: m.attempts,
      lastError: m.lastError,
      createdAt: iso(m.createdAt),
      updatedAt: iso(m.updatedAt),
    })),
    lastError: s.lastError,
    lastDeliveredAt: iso(s.lastDeliveredAt),
    oldestWaitingAt: iso(s.oldestWaitingAt),
    nextAttemptAt: iso(s.nextAttemptAt),
  };
}

/** A file name part from an accession: letters, digits, dot, dash and underscore only. */
const fileSafe = (s: string) => s.replace(/[^A-Za-z0-9._-]+/g, '_').slice(0, 80) || 'specimen';

/**
 * The printable report (PDF) and the CSV exports of specimens, and the state of the LIS
 * destinations with the retry of a held message.
 */
export async function lisRoutes(app: FastifyInstance, opts: LisRoutesOptions): Promise<void> {
  reportRoutes(app, opts);
  deliveryRoutes(app, opts);
}

/** The PDF of a signed specimen and the CSV exports. */
function reportRoutes(app: FastifyInstance, opts: LisRoutesOptions): void {
  const { lisDeps, classNames } = opts;
  const specimens = (reply: FastifyReply): SpecimenReports | null => {
    if (lisDeps.specimens) return lisDeps.specimens;
    void reply.code(503).send({ error: 'specimens are not available in this daemon' });
    return null;
  };

  app.get<{ Params: { id: number } }>(
    '/api/specimens/:id/report.pdf',
    { schema: { params: idParams, response: { '4xx': errorReply, '5xx': errorReply } } },
    async (request, reply) => {
      const store = specimens(reply);
      if (!store) return reply;
      const { id } = request.params;
      const report = store.report(id);
      if (!report) {
        const known = store.get(id) !== null;
        return reply
          .code(known ? 409 : 404)
          .send({ error: known ? 'the specimen is not signed yet' : 'no such specimen' });
      }
      const pdf = await lisDeps.renderPdf(report);
      const name = `blastwatch-${fileSafe(report.specimen.accession)}-v${report.signOff.version}.pdf`;
      return reply
        .type('application/pdf')
        .header('cache-control', 'no-store')
        .header('content-disposition', `attachment; filename="${name}"`)
        .send(pdf);
    },
  );

  app.get(
    '/api/specimens.csv',
    { schema: { response: { '4xx': errorReply, '5xx': errorReply } } },
    async (_request, reply) => {
      const store = specimens(reply);
      if (!store) return reply;
      const stamp = new Date().toISOString().slice(0, 10);
      return reply
        .type('text/csv; charset=utf-8')
        .header('cache-control', 'no-store')
        .header('content-disposition', `attachment; filename="blastwatch-specimens-${stamp}.csv"`)
        .send(specimensCsv(store.list(), classNames, (s) => store.signedReadings(s)));
    },
  );

  app.get<{ Params: { id: number } }>(
    '/api/specimens/:id/images.csv',
    { schema: { params: idParams, response: { '4xx': errorReply, '5xx': errorReply } } },
    async (request, reply) => {
      const store = specimens(reply);
      if (!store) return reply;
      const specimen = store.get(request.params.id);
      const images = specimen ? store.images(specimen.id) : null;
      if (!specimen || !images) return reply.code(404).send({ error: 'no such specimen' });
      return reply
        .type('text/csv; charset=utf-8')
        .header('cache-control', 'no-store')
        .header(
          'content-disposition',
          `attachment; filename="blastwatch-${fileSafe(specimen.accession)}-images.csv"`,
        )
        .send(specimenImagesCsv(specimen, images));
    },
  );
}

/** Each destination's state, and the release of a held message. */
function deliveryRoutes(app: FastifyInstance, opts: LisRoutesOptions): void {
  const { lisDeps } = opts;
  app.get(
    '/api/lis',
    { schema: { response: { 200: lisStatusReply, '4xx': errorReply } } },
    async (_request, reply) => {
      reply.header('cache-control', 'no-store');
      const destinations = lisDeps.lis?.status() ?? [];
      return { enabled: destinations.length > 0, destinations: destinations.map(statusJson) };
    },
  );

  app.post<{ Params: { id: number } }>(
    '/api/lis/messages/:id/retry',
    {
      preValidation: opts.requireReviewer ?? opts.requireWrite,
      schema: {
        params: idParams,
        response: {
          200: { type: 'object', properties: { id: int, state: str, retriedAt: nullableInt } },
          '4xx': errorReply,
        },
      },
    },
    async (request, reply) => {
      const { id } = request.params;
      if (!lisDeps.lis) return reply.code(404).send({ error: 'no LIS destination is configured' });
      if (!lisDeps.lis.retry(id)) return reply.code(409).send({ error: 'no held message with this id' });
      request.log.info(
        { lisMessage: id, by: request.dashboardIdentity?.kind },
        'held LIS message released for another try',
      );
      return { id, state: 'pending', retriedAt: Date.now() };
    },
  );
}
