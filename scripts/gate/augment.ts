/**
 * The changes training itself applied to its images, at the ends of their ranges
 * (training/blastwatch_train/augment.py and the stain variants of scripts/perturb-images.ts):
 * the gate's fitting counts images changed this way as in domain, because the model learnt them.
 */
import sharp from 'sharp';
import { fnv1a, mulberry32 } from '../../src/runtime/seeded-random.js';

export interface TrainingChange {
  name: string;
  apply(bytes: Buffer, relPath: string): Promise<Buffer>;
}

const png = (img: sharp.Sharp): Promise<Buffer> => img.png({ compressionLevel: 1 }).toBuffer();

export const TRAINING_CHANGES: readonly TrainingChange[] = [
  // augment.py: Gaussian defocus blur, sigma up to 2 px at 224 px.
  { name: 'blur2', apply: (b) => png(sharp(b).removeAlpha().blur(2)) },
  // stain variants: exposure x0.85..1.15.
  { name: 'exposure0.85', apply: (b) => png(sharp(b).removeAlpha().linear(0.85, 0)) },
  { name: 'exposure1.15', apply: (b) => png(sharp(b).removeAlpha().linear(1.15, 0)) },
  // augment.py: JPEG re-encoding down to quality 60.
  { name: 'jpeg60', apply: (b) => sharp(b).removeAlpha().jpeg({ quality: 60 }).toBuffer() },
  // stain variants: exposure, saturation x0.75..1.25 and hue -20..20 degrees drawn per image.
  {
    name: 'stain',
    apply: (b, rel) => {
      const rand = mulberry32(fnv1a(`gate:${rel}`));
      const u = (lo: number, hi: number): number => lo + (hi - lo) * rand();
      const exposure = u(0.85, 1.15);
      const saturation = u(0.75, 1.25);
      const hue = Math.round(u(-20, 20));
      return png(sharp(b).removeAlpha().linear(exposure, 0).modulate({ saturation, hue }));
    },
  },
];
