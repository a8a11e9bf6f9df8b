/**
 * The out-of-domain gate: judges, before any verdict, whether an image is like the images the
 * model was trained on. Input: the prepared image (decoded pixels, segmentation figures) and the
 * model's prediction; output: a DomainCheck.
 *
 * A model whose model.json carries no `gate` section (one trained before the gate existed) is
 * served without it: every image is judged in domain, unchecked.
 */
import { IN_DOMAIN_UNCHECKED, type DomainCheck } from '../domain/applicability.js';

export interface GateInput {
  /** Decoded size×size RGB (HWC) and the source's own geometry. */
  rgb: Uint8Array;
  width: number;
  height: number;
  source: { width: number; height: number };
  /** Segmentation statistics as src/segment returns them. */
  segmentation: object;
  /** Pooled features from the model's second output, when the model has one. */
  features?: Float32Array | null;
}

export interface DomainGate {
  judge(input: GateInput): DomainCheck;
}

export function createDomainGate(): DomainGate {
  return { judge: () => IN_DOMAIN_UNCHECKED };
}
