import { requireRole } from '../../roles.js';
import type { FastifyInstance, FastifyRequest, preHandlerHookHandler } from 'fastify';
import type { SpecimenStatus, SpecimenVerdict } from '../../../domain/specimen.js';
import { opsSchemas } from '../../ops-schemas.js';
import { HttpError, type DashboardContext } from '../context.js';
import type { SpecimenDeps } from '../specimen-deps.js';
import { errorReply, idParams } from '../schemas.js';
import {
  actorBody,
  agreementReply,
  amendBody,
  assignBody,
  signBody,
  specimenDetail,
  specimenItem,
  specimenList,
  specimenListQuery,
  startBody,
  unassignedQuery,
} from '../specimen-schemas.js';

/**
 * Extra checks per specimen write, run after the write check (session + CSRF or Bearer) and the
 * body's validation: where a role requirement goes (e.g. `sign: [requireRole('reviewer')]`).
 */
export interface SpecimenGuards {
  start: preHandlerHookHandler[];
  finish: preHandlerHookHandler[];
  assign: preHandlerHookHandler[];
  sign: preHandlerHookHandler[];
  amend: preHandlerHookHandler[];
}

/**
 * The guards the dashboard uses unless told otherwise: every specimen write is a reviewer's act
 * (a viewer watches; signing puts a name on a report that leaves the lab).
 */
export const SPECIMEN_ROLE_GUARDS: SpecimenGuards = {
  start: [requireRole('reviewer')],
  finish: [requireRole('reviewer')],
  assign: [requireRole('reviewer')],
  sign: [requireRole('reviewer')],
  amend: [requireRole('reviewer')],
};

export interface SpecimenRouteOptions extends DashboardContext {
  specimens: SpecimenDeps;
  guards: SpecimenGuards;
}

/**
 * Who writes: a named account acts as itself; the shared token or a loopback session types a
 * name (`reviewer` in the body), as for reviews.
 */
function actorOf(request: FastifyRequest, typed: string | undefined): string {
  const actor = request.actor?.named ? request.actor.name : (typed ?? '').trim();
  if (!actor) throw new HttpError(400, 'reviewer name: 1 to 80 characters');
  return actor;
}

const writeReplies = { 200: specimenItem, '4xx': errorReply } as const;

/** The specimen API: list, detail, sessions (start/finish), sign-off, amendment, unassigned images. */
export async function specimenRoutes(app: FastifyInstance, opts: SpecimenRouteOptions): Promise<void> {
  specimenReadRoutes(app, opts.specimens);
  specimenSessionRoutes(app, opts);
  specimenVerdictRoutes(app, opts);
}

/** The write check and body limit every specimen write shares; its role guard comes with each route. */
const writeOptions = (opts: SpecimenRouteOptions) => ({
  preValidation: opts.requireWrite,
  bodyLimit: 64 * 1024,
});

/** What anyone who may see the dashboard may read: the list, the agreement, unassigned images, one specimen. */
function specimenReadRoutes(app: FastifyInstance, specimens: SpecimenRouteOptions['specimens']): void {
  app.get<{ Querystring: { status?: SpecimenStatus; q?: string; limit: number; all_unsigned: boolean } }>(
    '/api/specimens',
    { schema: { querystring: specimenListQuery, response: { 200: specimenList, '4xx': errorReply } } },
    async (request, reply) => {
      reply.header('cache-control', 'no-store');
      const { status, q, limit, all_unsigned: allUnsigned } = request.query;
      return specimens.list({
        limit,
        allUnsigned,
        ...(status ? { status } : {}),
        ...(q ? { accession: q } : {}),
      });
    },
  );

  app.get(
    '/api/specimens/agreement',
    { schema: { response: { 200: agreementReply, '4xx': errorReply } } },
    async (_request, reply) => {
      reply.header('cache-control', 'no-store');
      return specimens.agreement();
    },
  );

  app.get<{ Querystring: { limit: number } }>(
    '/api/specimens/unassigned',
    { schema: { querystring: unassignedQuery, response: { 200: opsSchemas.results, '4xx': errorReply } } },
    async (request, reply) => {
      reply.header('cache-control', 'no-store');
      return specimens.unassigned(request.query.limit);
    },
  );

  app.get<{ Params: { id: number } }>(
    '/api/specimens/:id',
    { schema: { params: idParams, response: { 200: specimenDetail, '4xx': errorReply } } },
    async (request, reply) => {
      const detail = specimens.detail(request.params.id);
      if (!detail) return reply.code(404).send({ error: 'no such specimen' });
      reply.header('cache-control', 'no-store');
      return detail;
    },
  );
}

/** A specimen's session: start it, finish it, put images in it. */
function specimenSessionRoutes(app: FastifyInstance, opts: SpecimenRouteOptions): void {
  const { specimens, guards } = opts;
  const write = writeOptions(opts);

  app.post<{ Body: { accession: string; reviewer?: string } }>(
    '/api/specimens',
    {
      ...write,
      preHandler: guards.start,
      schema: { body: startBody, response: { 201: specimenItem, '4xx': errorReply } },
    },
    async (request, reply) => {
      const actor = actorOf(request, request.body.reviewer);
      const specimen = specimens.start(request.body.accession, actor);
      request.log.info(
        { specimen: specimen.id, accession: specimen.accession, actor },
        'specimen session started',
      );
      return reply.code(201).send(specimen);
    },
  );

  app.post<{ Params: { id: number }; Body: { reviewer?: string } | null }>(
    '/api/specimens/:id/finish',
    {
      ...write,
      preHandler: guards.finish,
      schema: { params: idParams, body: actorBody, response: writeReplies },
    },
    async (request) => specimens.finish(request.params.id, actorOf(request, request.body?.reviewer)),
  );

  app.post<{ Params: { id: number }; Body: { result_ids: number[]; reviewer?: string } }>(
    '/api/specimens/:id/images',
    {
      ...write,
      preHandler: guards.assign,
      schema: { params: idParams, body: assignBody, response: writeReplies },
    },
    async (request) => {
      const actor = actorOf(request, request.body.reviewer);
      return specimens.assign(request.params.id, request.body.result_ids, actor);
    },
  );
}

/** The hematologist's verdict on a specimen: sign it, amend a signed one. */
function specimenVerdictRoutes(app: FastifyInstance, opts: SpecimenRouteOptions): void {
  const { specimens, guards } = opts;
  const write = writeOptions(opts);

  app.post<{
    Params: { id: number };
    Body: { verdict: SpecimenVerdict; comment?: string | null; reviewer?: string };
  }>(
    '/api/specimens/:id/sign',
    {
      ...write,
      preHandler: guards.sign,
      schema: { params: idParams, body: signBody, response: writeReplies },
    },
    async (request) => {
      const { verdict, comment, reviewer } = request.body;
      const actor = actorOf(request, reviewer);
      const specimen = specimens.sign(request.params.id, { verdict, comment: comment ?? null }, actor);
      request.log.info({ specimen: specimen.id, verdict, actor }, 'specimen signed');
      return specimen;
    },
  );

  app.post<{
    Params: { id: number };
    Body: {
      verdict: SpecimenVerdict;
      comment?: string | null;
      reason: string;
      version?: number;
      reviewer?: string;
    };
  }>(
    '/api/specimens/:id/amend',
    {
      ...write,
      preHandler: guards.amend,
      schema: { params: idParams, body: amendBody, response: writeReplies },
    },
    async (request) => {
      const { verdict, comment, reason, version, reviewer } = request.body;
      const actor = actorOf(request, reviewer);
      const input = {
        verdict,
        comment: comment ?? null,
        reason,
        ...(version !== undefined ? { basedOnVersion: version } : {}),
      };
      const specimen = specimens.amend(request.params.id, input, actor);
      request.log.info({ specimen: specimen.id, verdict, actor }, 'specimen amended');
      return specimen;
    },
  );
}
