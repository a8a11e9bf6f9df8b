/**
 * A warning that the camera may no longer take pictures like the ones the model learnt from. The
 * daemon's health raises it from a trend over the latest captures (src/health.ts), never from
 * one picture: many refused in a row (`domain_drift`), a green brighter than any training
 * image's (`colour_drift`), red cells drawn smaller or larger than in training (`magnification`).
 * Under each the model's figures do not hold, and some of its benign calls may be blasts.
 */
export const CAMERA_WATCHES = ['domain_drift', 'colour_drift', 'magnification'] as const;
export type CameraWatch = (typeof CAMERA_WATCHES)[number];

export const isCameraWatch = (w: string): w is CameraWatch =>
  (CAMERA_WATCHES as readonly string[]).includes(w);

export interface CameraWarning {
  watch: CameraWatch;
  /** The warning in words, with its figures (what health's problems say). */
  text: string;
}

/** A warning as health raises it now, with the window of captures it was judged on. */
export interface RaisedCameraWarning extends CameraWarning {
  /**
   * How many of the latest captures the watch judged: the camera may have changed anywhere among
   * them, so those already in a specimen when it is first raised are counted under it too.
   */
  window: number;
}

/**
 * A camera warning that was raised while images joined a specimen. Kept with the specimen, since
 * the person who signs it may come hours later, when the warning itself has cleared.
 */
export interface SpecimenCameraWarning extends CameraWarning {
  /** When the first and the latest such image joined (ms since epoch). */
  firstAt: number;
  lastAt: number;
  /** How many of its images joined while the warning was raised. */
  images: number;
}

/**
 * Each watch in a few words: the coded value's text in the messages to the laboratory system,
 * where the figures of the warning itself go in a note.
 */
export const CAMERA_WATCH_LABEL: Record<CameraWatch, string> = {
  domain_drift: 'Many fields unlike the training images in a row',
  colour_drift: 'White balance changed (green brighter than the training camera)',
  magnification: 'Magnification changed (red cells drawn smaller or larger than in training)',
};
