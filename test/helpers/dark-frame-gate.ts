/**
 * A small deterministic out-of-domain gate for tests, and the frames it refuses: a port like the
 * fault-injecting classifiers, so the plumbing (status, payloads, metrics, drift, evaluate) is
 * tested without depending on the real gate's fitted thresholds.
 */
import sharp from 'sharp';
import type { DomainCheck } from '../../src/domain/applicability.js';
import type { DomainGateLike } from '../../src/domain/ports.js';
import { jpegVariant } from '../daemon/helpers.js';

/** Below this mean luma (0–255) a frame is refused as underexposed; a smear field is far above. */
export const DARK_MEAN_LUMA = 40;

/** Refuses frames whose mean luma is below DARK_MEAN_LUMA, and counts its calls. */
export function darkFrameGate(): DomainGateLike & { calls: number } {
  const gate = {
    calls: 0,
    judge({ rgb }: { rgb: Uint8Array }): DomainCheck {
      gate.calls += 1;
      let sum = 0;
      for (let i = 0; i < rgb.length; i += 3)
        sum += 0.299 * rgb[i]! + 0.587 * rgb[i + 1]! + 0.114 * rgb[i + 2]!;
      const meanLuma = sum / (rgb.length / 3);
      const dark = meanLuma < DARK_MEAN_LUMA;
      return { in: !dark, reasons: dark ? ['underexposed'] : [], scores: { meanLuma } };
    },
  };
  return gate;
}

/** A nearly black 224×224 JPEG (the camera with its shutter closed); `n` makes the bytes differ. */
export async function darkFrame(n: number): Promise<Buffer> {
  const black = await sharp({
    create: { width: 224, height: 224, channels: 3, background: { r: 4, g: 4, b: 6 } },
  })
    .jpeg({ quality: 90 })
    .toBuffer();
  return jpegVariant(black, `dark-${n}`);
}
