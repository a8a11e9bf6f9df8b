/**
 * What the specimen routes need from the daemon, and its implementation over the store. Each write
 * wakes the MQTT publisher for the change-feed rows it committed and tells the live feed.
 */
import type { SpecimenStatus, SpecimenVerdict } from '../../domain/specimen.js';
import type { OnSignOff, Store } from '../../store/index.js';
import type { EventBus } from '../../runtime/events.js';
import type { SpecimenWrite } from '../../store/specimens.js';
import {
  agreementJson,
  specimenDetailJson,
  specimenJson,
  type SpecimenDetailJson,
  type SpecimenJson,
} from '../specimen-views.js';
import { resultJson } from '../views.js';

export interface SpecimenEvents {
  on(event: 'specimen', listener: (specimenId: number) => void): unknown;
  off(event: 'specimen', listener: (specimenId: number) => void): unknown;
}

export interface SpecimenDeps {
  /** The store's list (src/store/specimens.ts `list`): `accession` searches, `allUnsigned` keeps every unsigned one. */
  list(q: {
    status?: SpecimenStatus;
    accession?: string;
    limit: number;
    allUnsigned?: boolean;
  }): SpecimenJson[];
  get(id: number): SpecimenJson | undefined;
  detail(id: number): SpecimenDetailJson | undefined;
  /** "Start specimen": a session on `accession` (created when new). */
  start(accession: string, actor: string): SpecimenJson;
  finish(id: number, actor: string): SpecimenJson;
  sign(id: number, input: { verdict: SpecimenVerdict; comment: string | null }, actor: string): SpecimenJson;
  amend(
    id: number,
    input: { verdict: SpecimenVerdict; comment: string | null; reason: string; basedOnVersion?: number },
    actor: string,
  ): SpecimenJson;
  unassigned(limit: number): ReturnType<typeof resultJson>[];
  assign(id: number, resultIds: number[], actor: string): SpecimenJson;
  agreement(): ReturnType<typeof agreementJson>;
  /** Specimen ids as they change (the live feed). */
  events: SpecimenEvents;
}

export interface SpecimenDepsOptions {
  store: Store;
  bus: EventBus;
  events: SpecimenEvents;
  /** Runs inside every sign-off's transaction (the laboratory system's outbox). */
  onSignOff?: OnSignOff | undefined;
}

/** SpecimenDeps over the daemon's store. */
export function createSpecimenDeps(o: SpecimenDepsOptions): SpecimenDeps {
  const { store, bus } = o;
  const rule = store.specimens.options.rule;
  // Every specimen the API gives out is read as the list reads it: a reply or a live event that
  // replaces a list row keeps its count of unread withheld fields.
  const json = (w: SpecimenWrite): SpecimenJson => {
    if (w.outbox.length > 0)
      bus.emit('outbox:added', { resultId: null, count: w.outbox.length, rows: w.outbox });
    bus.emit('specimen:changed', { specimenId: w.specimen.id });
    return specimenJson(store.specimens.listed(w.specimen.id) ?? w.specimen, rule);
  };
  return {
    list: (q) => store.specimens.list(q).map((s) => specimenJson(s, rule)),
    get(id) {
      const s = store.specimens.listed(id);
      return s && specimenJson(s, rule);
    },
    detail(id) {
      const s = store.specimens.listed(id);
      if (!s) return undefined;
      return specimenDetailJson(s, rule, {
        images: store.results.list({ specimen: id, order: 'p_ball', limit: 1000 }),
        signOffs: store.specimens.signOffs(id),
        audit: store.specimens.audit(id),
        capturesBeforeStart: store.captureClock.beforeSessionOf(id),
        cameraWarnings: store.cameraWarnings.of(id),
      });
    },
    start: (accession, actor) => json(store.specimens.start(accession, actor)),
    finish: (id, actor) => json(store.specimens.finish(id, actor)),
    sign: (id, input, actor) => json(store.signOffs.sign(id, input, actor, o.onSignOff)),
    amend: (id, input, actor) => json(store.signOffs.amend(id, input, actor, o.onSignOff)),
    unassigned: (limit) => store.results.list({ specimen: 'none', limit }).map(resultJson),
    assign: (id, resultIds, actor) => json(store.specimens.assignImages(id, resultIds, actor)),
    agreement: () => agreementJson(store.specimens.agreement()),
    events: o.events,
  };
}
