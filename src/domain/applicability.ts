/**
 * Whether the model applies to an image at all. An image unlike the training images gets no
 * verdict (status `out_of_domain`): never flagged, never called benign.
 */

/** Why an image is out of domain. Stable codes: they are MQTT payload values and metric labels. */
export type DomainReason =
  | 'geometry'
  | 'focus'
  | 'underexposed'
  | 'overexposed'
  | 'clipping'
  | 'cell_coverage'
  | 'cell_count'
  | 'segmentation_cutoff'
  | 'appearance'
  | 'green_balance'
  | 'features'
  | 'features_disagree';

export const DOMAIN_REASON_TEXT: Readonly<Record<DomainReason, string>> = {
  geometry: 'the picture has an unusual shape or size for this camera',
  focus: 'the picture is out of focus',
  underexposed: 'the picture is too dark',
  overexposed: 'the picture is too bright',
  clipping: 'too many pixels are clipped to black or white',
  cell_coverage: 'cells cover an unusual share of the picture',
  cell_count: 'an unusual number of cells was found',
  segmentation_cutoff: 'the colours do not separate cells from background as in the training images',
  appearance: 'its brightness, colour, sharpness and cells together are unlike any training image',
  green_balance: "green is brighter than in any training image: check the camera's white balance",
  features: 'the model sees a picture unlike any it was trained on',
  features_disagree:
    'the model calls it benign, yet its view of the cells lies nearer a B-ALL class: look at this field yourself',
};

export interface DomainCheck {
  in: boolean;
  /** Empty when in domain. */
  reasons: DomainReason[];
  /** The figures the decision was made on (e.g. laplacianVar, meanLuma, mahalanobis). */
  scores: Record<string, number>;
}

export const IN_DOMAIN_UNCHECKED: DomainCheck = Object.freeze({
  in: true,
  reasons: [],
  scores: {},
}) as DomainCheck;
