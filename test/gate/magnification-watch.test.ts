/**
 * The daemon's magnification watch (src/gate/magnification-watch.ts) on real smears: it measures
 * only while the pipeline is idle, one field per turn; it counts captures the gate screened or
 * refused only for this camera's reasons, never uploads or blank frames; it keeps a bounded
 * backlog; and over the bundled model's training range it calls the committed samples as
 * recorded unchanged and the same samples shrunk to ×0.75 smaller, in words health can send.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { parseCameraShift } from '../../scripts/camera-shifts.js';
import type { DomainCheck } from '../../src/domain/applicability.js';
import {
  MAX_PENDING,
  MagnificationWatch,
  magnificationProblem,
  watchMagnification,
  type WatchedPicture,
} from '../../src/gate/magnification-watch.js';
import { redCellRadiusOf, type RedCellReference } from '../../src/gate/red-cell-size.js';
import { loadModelManifest } from '../../src/infer/manifest.js';
import { prepareImage } from '../../src/preprocess/index.js';
import { EventBus } from '../../src/runtime/events.js';
import { repoRoot, sampleImages } from '../daemon/helpers.js';

const manifest = await loadModelManifest(join(repoRoot, 'models'));
const bundled = manifest.acquisition?.red_cell_radius;
if (!bundled) throw new Error('the bundled model.json has no acquisition.red_cell_radius');
/** The bundled range, judged over the 12 committed samples instead of 50 fields. */
const reference: RedCellReference = { ...bundled, window: 12 };

const screened: Pick<DomainCheck, 'in' | 'reasons' | 'scores'> = { in: true, reasons: [], scores: {} };
const capture = { origin: 'capture' as const, domain: screened as DomainCheck };

/** The committed samples as the model sees them (decoded, colour-normalised), optionally shifted. */
async function pictures(shift?: string): Promise<WatchedPicture[]> {
  const out: WatchedPicture[] = [];
  for (const path of sampleImages()) {
    let bytes: Buffer = readFileSync(path);
    if (shift) bytes = (await parseCameraShift(shift).apply(bytes, path)).bytes;
    const p = await prepareImage(bytes, {
      size: 224,
      limitInputPixels: 5e7,
      colour: manifest.preprocessing?.colour ?? null,
    });
    out.push({ rgb: p.modelRgb, width: p.decoded.width, height: p.decoded.height });
  }
  return out;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits until `done`, or fails after 20 s. */
async function settle(done: () => boolean): Promise<void> {
  for (let i = 0; i < 2000 && !done(); i++) await sleep(10);
  if (!done()) throw new Error('the watch did not settle');
}

/** A sample whose red cells can be measured (some fields hold too few). */
async function measurable(): Promise<WatchedPicture> {
  const found = (await pictures()).find((p) => redCellRadiusOf(p.rgb, p.width, p.height) !== null);
  if (!found) throw new Error('no committed sample with a red-cell size');
  return found;
}

t.test('measures only while the pipeline is idle, and keeps a bounded backlog', async (t) => {
  const picture = await measurable();
  let idle = false;
  const measures: number[] = [];
  const watch = new MagnificationWatch({
    reference,
    idle: () => idle,
    observe: (ms) => measures.push(ms),
    quietMs: 0,
  });
  for (let i = 0; i < 3; i++) watch.offer(capture, picture!);
  await sleep(50);
  t.equal(watch.drift().measured, 0, 'nothing measured while images are processed');
  t.same(watch.backlog, { pending: 3, leftOut: 0 });
  idle = true;
  watch.wake();
  await settle(() => watch.backlog.pending === 0);
  t.equal(watch.drift().measured, 3, 'all three once idle');
  t.equal(measures.length, 3, 'each measure timed');

  idle = false;
  for (let i = 0; i < MAX_PENDING + 4; i++) watch.offer(capture, picture!);
  t.same(watch.backlog, { pending: MAX_PENDING, leftOut: 4 }, 'the oldest left out beyond the limit');
});

t.test('waits until the pipeline has been quiet for the quiet time', async (t) => {
  const picture = await measurable();
  const watch = new MagnificationWatch({ reference, idle: () => true, quietMs: 1000 });
  watch.offer(capture, picture);
  await sleep(20);
  t.equal(watch.drift().measured, 0, 'not measured right after the activity');
  await settle(() => watch.backlog.pending === 0);
  t.equal(watch.drift().measured, 1, 'measured once quiet');
});

t.test('counts captures screened or refused for this camera only', async (t) => {
  const [picture] = await pictures();
  const watch = new MagnificationWatch({ reference, idle: () => false });
  const refused = (reasons: DomainCheck['reasons']) => ({
    origin: 'capture' as const,
    domain: { in: false, reasons, scores: {} } as DomainCheck,
  });
  watch.offer({ origin: 'upload', domain: screened as DomainCheck }, picture!);
  watch.offer(refused(['overexposed']), picture!);
  watch.offer(refused(['green_balance', 'cell_count']), picture!);
  watch.offer({ origin: 'capture', domain: null }, picture!);
  t.equal(
    watch.backlog.pending,
    0,
    'an upload, a frame refused for its exposure or cells, an unjudged one: none',
  );
  watch.offer(refused(['green_balance']), picture!);
  watch.offer(refused(['features_disagree']), picture!);
  watch.offer(capture, picture!);
  t.equal(
    watch.backlog.pending,
    3,
    "refused only for its green or its features, and screened: this camera's smears",
  );
});

t.test(
  'the samples as recorded are within the training range; shrunk to ×0.75 they are smaller',
  async (t) => {
    const run = async (shift?: string) => {
      const watch = new MagnificationWatch({ reference, idle: () => true, quietMs: 0 });
      for (const p of await pictures(shift)) watch.offer(capture, p);
      await settle(() => watch.backlog.pending === 0);
      return watch.drift();
    };
    const recorded = await run();
    t.ok(recorded.measured >= recorded.needed, `${recorded.measured} of 12 measured`);
    t.equal(recorded.differs, null, `median ${recorded.median} within ${reference.low}–${reference.high}`);
    t.equal(magnificationProblem(recorded), null, 'no problem');

    const shrunk = await run('magnification:0.75');
    t.equal(shrunk.differs, 'smaller', `median ${shrunk.median} below ${reference.low}`);
    t.ok(shrunk.median! < recorded.median!, 'smaller than as recorded');
    t.match(
      magnificationProblem(shrunk),
      /^magnification changed\? The red cells measure \d+\.\d\d px in radius, the median of the last \d+ captures measured, smaller than/,
    );
  },
);

t.test('wired to the bus: pictures judged are measured when the pipeline goes idle', async (t) => {
  const bus = new EventBus();
  const pipeline = { queueDepth: 0, inFlight: 1 };
  const observed: { ms: number; stage: string }[] = [];
  const metrics = {
    stageSeconds: { observe: (ms: number, l: { stage: string }) => observed.push({ ms, stage: l.stage }) },
  };
  t.equal(watchMagnification(null, { bus, pipeline, metrics }), null, 'no reference, or switched off');
  const watch = watchMagnification(reference, { bus, pipeline, metrics })!;
  const picture = await measurable();
  bus.emit('picture:judged', { result: capture as never, picture });
  await sleep(50);
  t.equal(watch.drift().measured, 0, 'still in flight');
  pipeline.inFlight = 0;
  bus.emit('pipeline:idle', {});
  await settle(() => watch.backlog.pending === 0);
  t.equal(watch.drift().measured, 1);
  t.match(observed, [{ stage: 'magnification' }], 'timed as a stage');
});
