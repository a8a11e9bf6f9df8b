/**
 * The magnification between microscope checks. Red cells are nearly the same size in any smear,
 * so their size in the picture measures the magnification (objective, camera adapter, crop), and
 * at ×0.75 the model lets more blasts through unflagged than at any other camera shift it was
 * held to (models/MODEL_CARD.md, "How the pictures were taken"). One field's red cells say
 * little (their size varies with the smear and the field); the median of many says what the
 * microscope does. So the daemon measures each screened capture's red cells
 * (red-cell-size.ts) and health judges the median of the latest window against the training
 * images' range (model.json `acquisition.red_cell_radius`), as `blastwatch evaluate` does for a
 * check set.
 *
 * The measure costs 10–14 ms per field on a 2-core machine, more than the rest of the daemon's
 * own work per image, so it is kept off the path to a verdict: a field is measured only when the
 * pipeline has nothing queued or in flight, one per turn of the event loop, after its result has
 * been stored and published. At a microscope's pace (a field every few seconds) every capture is
 * measured; during a burst the fields wait, and beyond `MAX_PENDING` the oldest waiting ones are
 * left out. The window lives in memory: after a restart it fills again.
 */
import type { Result } from '../domain/result.js';
import { countsForColourWatch } from './colour-drift.js';
import {
  createRedCellScratch,
  magnificationFigures,
  redCellRadius,
  type MagnificationFigures,
  type RedCellReference,
  type RedCellScratch,
} from './red-cell-size.js';

/** The picture the model saw (colour-normalised, at the model's size), HWC RGB bytes. */
export interface WatchedPicture {
  rgb: Uint8Array;
  width: number;
  height: number;
}

/** Fields waiting for an idle moment: 16 pictures of 224 × 224 hold 2.4 MB. */
export const MAX_PENDING = 16;

export interface MagnificationWatchOptions {
  reference: RedCellReference;
  /** Whether the pipeline has nothing queued or in flight: fields are measured only then. */
  idle(): boolean;
  /** How long each measure took, in ms (the stage histogram). */
  observe?(ms: number): void;
  /** Runs `fn` on a later turn of the event loop (tests may run it at once). */
  defer?(fn: () => void): void;
}

/** The latest window against the training images' range: MagnificationFigures and its size. */
export interface MagnificationDrift extends MagnificationFigures {
  /** The reference's window: how many of the latest counted captures are judged. */
  window: number;
}

export class MagnificationWatch {
  /** The latest counted captures' radii, oldest first (null: no red-cell size in that field). */
  private readonly radii: (number | null)[] = [];
  private readonly pending: WatchedPicture[] = [];
  private scratch: RedCellScratch | null = null;
  private scheduled = false;
  private left = 0;

  constructor(private readonly o: MagnificationWatchOptions) {}

  /**
   * A stored result and the picture it was judged on. Counted: captures (a phone's upload says
   * nothing about the microscope) that were screened or refused only for reasons that leave them
   * this camera's smears (countsForColourWatch); a blank frame or another laboratory's smear is not.
   */
  offer(result: Pick<Result, 'origin' | 'domain'>, picture: WatchedPicture): void {
    if (result.origin !== 'capture' || !result.domain || !countsForColourWatch(result.domain)) return;
    this.pending.push(picture);
    if (this.pending.length > MAX_PENDING) {
      this.pending.shift();
      this.left++;
    }
    this.wake();
  }

  /** The pipeline has gone idle: measure what waits. */
  wake(): void {
    if (this.scheduled || this.pending.length === 0) return;
    this.scheduled = true;
    (this.o.defer ?? setImmediate)(() => {
      this.scheduled = false;
      this.measureOne();
    });
  }

  /** One field per turn, so a capture arriving meanwhile waits for one measure at most. */
  private measureOne(): void {
    if (!this.o.idle()) return; // the next pipeline:idle wakes it again
    const picture = this.pending.shift();
    if (!picture) return;
    const t0 = performance.now();
    const s = this.scratchFor(picture);
    const radius = redCellRadius(picture.rgb, s);
    this.o.observe?.(performance.now() - t0);
    this.radii.push(radius);
    if (this.radii.length > this.o.reference.window) this.radii.shift();
    this.wake();
  }

  private scratchFor(p: WatchedPicture): RedCellScratch {
    if (!this.scratch || this.scratch.width !== p.width || this.scratch.height !== p.height)
      this.scratch = createRedCellScratch(p.width, p.height);
    return this.scratch;
  }

  /** Fields waiting to be measured, and those left out because too many waited. */
  get backlog(): { pending: number; leftOut: number } {
    return { pending: this.pending.length, leftOut: this.left };
  }

  /** The latest window's median against the training images' range. */
  drift(): MagnificationDrift {
    return { window: this.o.reference.window, ...magnificationFigures(this.radii, this.o.reference) };
  }
}

/** The magnification problem in words, with its figures; null while the window is within range. */
export function magnificationProblem(d: MagnificationDrift): string | null {
  if (!d.differs || d.median === null) return null;
  const way = d.differs === 'smaller' ? 'lower' : 'higher';
  return (
    `magnification changed? The red cells measure ${d.median.toFixed(2)} px in radius, the median ` +
    `of the last ${d.measured} captures measured, ${d.differs} than in any ${d.window} consecutive ` +
    `training images (${d.low.toFixed(2)}–${d.high.toFixed(2)} px): the magnification is ${way} ` +
    "than the training camera's, where the model's figures do not hold" +
    (d.differs === 'smaller' ? ' and it misses more blasts' : '') +
    ": use the training data's objective and camera adapter, and check the microscope again (docs/new-microscope.md)"
  );
}

/** What the watch needs from the running daemon (structural: src/runtime's bus and metrics, the pipeline). */
export interface MagnificationWatchWiring {
  bus: {
    on(topic: 'picture:judged', fn: (e: { result: Result; picture: WatchedPicture }) => void): unknown;
    on(topic: 'pipeline:idle', fn: () => void): unknown;
  };
  pipeline: { readonly queueDepth: number; readonly inFlight: number };
  /** The stage histogram: each measure's time is observed as stage `magnification`. */
  metrics: { stageSeconds: { observe(ms: number, labels: { stage: string }): void } };
}

/**
 * The watch, listening on the bus; null without a reference (the model has none, or config
 * `gate.magnification_watch` is false).
 */
export function watchMagnification(
  reference: RedCellReference | null | undefined,
  w: MagnificationWatchWiring,
): MagnificationWatch | null {
  if (!reference) return null;
  const watch = new MagnificationWatch({
    reference,
    idle: () => w.pipeline.queueDepth === 0 && w.pipeline.inFlight === 0,
    observe: (ms) => w.metrics.stageSeconds.observe(ms, { stage: 'magnification' }),
  });
  w.bus.on('picture:judged', ({ result, picture }) => watch.offer(result, picture));
  w.bus.on('pipeline:idle', () => watch.wake());
  return watch;
}
