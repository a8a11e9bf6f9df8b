/**
 * The hostile inputs of the security review, shared by the reliability tests and scripts/attack
 * (which runs them against a lab's installation): routes that need credentials, traversal
 * encodings, file names that are markup or control characters, a decompression bomb.
 */
import { crc32 } from 'node:zlib';
import sharp from 'sharp';

/** Every route that must answer 401 without credentials on a LAN bind (all but /healthz and /login). */
export const PROTECTED_ROUTES = [
  '/readyz',
  '/metrics',
  '/api/results?limit=5',
  '/api/health',
  '/api/dashboard/results',
  '/api/dashboard/results/1',
  '/api/dashboard/results/1/image/original',
  '/api/dashboard/status',
  '/api/dashboard/events',
  '/api/dashboard/reviews/export?format=csv',
  '/assets/app.js',
];

/** Paths that try to leave the image and asset routes; to be sent byte for byte (no URL normalising). */
export const TRAVERSAL_PROBES = [
  '/api/dashboard/results/..%2f..%2f..%2fetc%2fpasswd/image/original',
  '/api/dashboard/results/1/image/..%2f..%2f..%2f..%2fetc%2fpasswd',
  '/api/dashboard/results/%2e%2e/image/original',
  '/api/dashboard/results/1/image/%252e%252e%252fpasswd',
  '/assets/..%2f..%2f..%2f..%2fetc%2fpasswd',
  '/assets/%2e%2e%2fpackage.json',
  '/assets/..%252f..%252fpackage.json',
  '/..%2f..%2fetc/passwd',
  '/api/dashboard/results/1%00/image/original',
  '/assets/../../../../etc/passwd',
  '/api/dashboard/results/1/image/original%00.jpg',
];

/** Image file names that are markup, quotes, control characters, emoji or long (stored byte for byte). */
export const ODD_NAMES = [
  '<img src=x onerror=alert(1)>.jpg',
  `it's "quoted" & <b>.jpg`,
  'new\nline.jpg',
  'tab\there.jpg',
  'émoji-🩸.jpg',
  `${'long-'.repeat(45)}.jpg`,
];

/** A valid 1×1 PNG whose header (with a valid CRC) claims 100000×100000 pixels. */
export async function pngBomb(): Promise<Buffer> {
  const bomb = Buffer.from(
    await sharp({ create: { width: 1, height: 1, channels: 3, background: '#fff' } })
      .png()
      .toBuffer(),
  );
  bomb.writeUInt32BE(100_000, 16);
  bomb.writeUInt32BE(100_000, 20);
  bomb.writeUInt32BE(crc32(bomb.subarray(12, 29)), 29);
  return bomb;
}
