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
 * own work per image, and it runs on the event loop, so it is kept off the path to a verdict: a
 * field is measured after its result has been stored and published, once the pipeline has had
 * nothing queued or in flight for `QUIET_MS`, one field per turn of the event loop. A capture
 * that arrives meanwhile waits for one measure at most. At a microscope's pace (a field every few
 * seconds) every capture is measured; during a burst the fields wait, and beyond `MAX_PENDING`
 * the oldest waiting ones are left out. The window lives in memory: after a restart it fills
 * again.
 */
import type { Result } from '../domain/result.js';
import { countsForColourWatch } from './colour-drift.js';
import { magnificationFigures, type MagnificationFigures, type RedCellReference } from './red-cell-size.js';
import { fieldRedCellRadius } from './sensor-noise.js';

/** The picture the model saw (colour-normalised, at the model's size), HWC RGB bytes. */
export interface WatchedPicture {
  rgb: Uint8Array;
  width: number;
  height: number;
}

/** Fields waiting for a quiet moment: 8 pictures of 224 × 224 hold 1.2 MB. */
export const MAX_PENDING = 8;

/**
 * How long the pipeline must have been idle before a field is measured: captures that follow
 * each other closely (a burst, a folder copied in) then rarely meet a measure, which would hold
 * the next one back by its 10–14 ms.
 */
export const QUIET_MS = 250;

export interface MagnificationWatchOptions {
  reference: RedCellReference;
  /** Whether the pipeline has nothing queued or in flight: fields are measured only then. */
  idle(): boolean;
  /** How long each measure took, in ms (the stage histogram). */
  observe?(ms: number): void;
  /** QUIET_MS unless given (tests: 0). */
  quietMs?: number;
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
  /**
   * Copies of the waiting pictures live in buffers reused from one field to the next, so the
   * pipeline's own arrays are never held past their result (holding them made the daemon's
   * steady memory grow).
   */
  private readonly spare: Uint8Array[] = [];
  private timer: NodeJS.Timeout | null = null;
  private lastActivity = 0;
  private left = 0;

  constructor(private readonly o: MagnificationWatchOptions) {}

  /**
   * A stored result and the picture it was judged on. Counted: captures (a phone's upload says
   * nothing about the microscope) that were screened or refused only for reasons that leave them
   * this camera's smears (countsForColourWatch); a blank frame or another laboratory's smear is not.
   */
  offer(result: Pick<Result, 'origin' | 'domain'>, picture: WatchedPicture): void {
    if (result.origin !== 'capture' || !result.domain || !countsForColourWatch(result.domain)) return;
    if (this.pending.length >= MAX_PENDING) {
      this.release(this.pending.shift()!);
      this.left++;
    }
    const spare = this.spare.pop();
    const rgb = spare?.length === picture.rgb.length ? spare : new Uint8Array(picture.rgb.length);
    rgb.set(picture.rgb);
    this.pending.push({ rgb, width: picture.width, height: picture.height });
    this.wake();
  }

  private release(p: WatchedPicture): void {
    if (this.spare.length < MAX_PENDING) this.spare.push(p.rgb);
  }

  /** The pipeline has gone idle: measure what waits once it stays so for the quiet time. */
  wake(): void {
    this.lastActivity = performance.now();
    this.schedule(this.o.quietMs ?? QUIET_MS);
  }

  private schedule(delayMs: number): void {
    if (this.timer !== null || this.pending.length === 0) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.measureOne();
    }, delayMs);
    // A waiting measure never keeps the process alive (tests, shutdown).
    this.timer.unref();
  }

  /** One field per turn, so a capture arriving meanwhile waits for one measure at most. */
  private measureOne(): void {
    if (!this.o.idle()) return; // the next pipeline:idle wakes it again
    const quiet = this.o.quietMs ?? QUIET_MS;
    const since = performance.now() - this.lastActivity;
    if (since < quiet) return this.schedule(quiet - since);
    const picture = this.pending.shift();
    if (!picture) return;
    const t0 = performance.now();
    const radius = fieldRedCellRadius(
      picture.rgb,
      picture.width,
      picture.height,
      this.o.reference.noise_high,
    );
    this.release(picture);
    this.o.observe?.(performance.now() - t0);
    this.radii.push(radius);
    if (this.radii.length > this.o.reference.window) this.radii.shift();
    this.schedule(0);
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
