/**
 * Image decoding for every path that feeds the model (daemon, CLI, training cache): sharp/libvips
 * decode → EXIF orientation → alpha flattened on white → sRGB 3 channels, 8 bit → squash-resize
 * to size×size (`fit: 'fill'`, aspect ratio NOT kept: the data set was squashed the same way).
 *
 * Why white for alpha: these are bright-field smear images; a transparent area carries no stain,
 * and white is what empty bright field looks like (a* ≈ 128, i.e. background for segmentation).
 *
 * Errors are typed (DecodeError.kind) so the daemon can decide: `truncated` is retryable (the
 * camera may still be writing the file), everything else is final.
 */
import { readFile } from 'node:fs/promises';
import sharp from 'sharp';
import {
  CHECKED_BEFORE_DECODING,
  isSignaturePrefix,
  lacksEndMarker,
  structurallyIncomplete,
} from './completeness.js';
import { readJpegHeader } from './jpeg-header.js';

// One pass per image: libvips' operation cache only costs memory here.
sharp.cache(false);
// One libvips thread per operation: images are small and the daemon runs them one or two at a
// time, so more threads only add hand-offs and per-thread malloc arenas (docs/benchmark.md).
sharp.concurrency(1);

/** File extensions the offline commands (segment, preprocess-dataset) treat as images. */
export const IMAGE_EXTENSIONS: ReadonlySet<string> = new Set([
  '.jpg',
  '.jpeg',
  '.jpe',
  '.jfif',
  '.png',
  '.tif',
  '.tiff',
  '.bmp',
  '.webp',
]);
/** Default decompression-bomb guard of the offline commands (the daemon reads image.max_input_pixels). */
export const DEFAULT_LIMIT_INPUT_PIXELS = 50_000_000;

export type DecodeErrorKind = 'empty' | 'unsupported' | 'truncated' | 'too-large' | 'unreadable';

export class DecodeError extends Error {
  override readonly name = 'DecodeError';
  readonly retryable: boolean;
  constructor(
    readonly kind: DecodeErrorKind,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.retryable = kind === 'truncated';
  }
}

export interface DecodedImage {
  /** HWC RGB bytes, size*size*3. */
  rgb: Uint8Array;
  width: number;
  height: number;
  source: { format: string; width: number; height: number; bytes: number };
}

export interface DecodeOptions {
  /** Output side in pixels (square). */
  size: number;
  /** Refuse images whose header claims more pixels than this (decompression bombs). */
  limitInputPixels: number;
}

/** Formats this sharp build reads, by leading bytes. BMP is recognised only to refuse it clearly. */
function sniffFormat(bytes: Buffer): string | undefined {
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return 'jpeg';
  if (
    bytes.length >= 8 &&
    bytes.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))
  )
    return 'png';
  if (
    bytes.length >= 4 &&
    ((bytes[0] === 0x49 && bytes[1] === 0x49 && bytes[2] === 0x2a && bytes[3] === 0) ||
      (bytes[0] === 0x4d && bytes[1] === 0x4d && bytes[2] === 0 && bytes[3] === 0x2a) ||
      // BigTIFF (version 43), which libvips reads as well
      (bytes[0] === 0x49 && bytes[1] === 0x49 && bytes[2] === 0x2b && bytes[3] === 0) ||
      (bytes[0] === 0x4d && bytes[1] === 0x4d && bytes[2] === 0 && bytes[3] === 0x2b))
  )
    return 'tiff';
  if (bytes.length >= 2 && bytes[0] === 0x42 && bytes[1] === 0x4d) return 'bmp';
  if (
    bytes.length >= 12 &&
    bytes.toString('latin1', 0, 4) === 'RIFF' &&
    bytes.toString('latin1', 8, 12) === 'WEBP'
  )
    return 'webp';
  if (bytes.length >= 6 && bytes.toString('latin1', 0, 4) === 'GIF8') return 'gif';
  return undefined;
}

/** Maps a libvips/sharp failure message to a kind. Messages checked against real bad files (test/decode). */
export function classifySharpError(message: string, sniffed: string | undefined): DecodeErrorKind {
  const m = message.toLowerCase();
  if (m.includes('exceeds pixel limit')) return 'too-large';
  if (m.includes('buffer is empty')) return 'empty';
  if (
    m.includes('premature end') ||
    m.includes('truncated') ||
    m.includes('unexpected end') ||
    m.includes('not enough data') ||
    m.includes('read error') ||
    m.includes('end of file') ||
    m.includes('out of data')
  ) {
    return 'truncated';
  }
  if (m.includes('unsupported image format'))
    return sniffed === undefined || sniffed === 'bmp' ? 'unsupported' : 'unreadable';
  return 'unreadable';
}

async function readInput(path: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    throw new DecodeError('unreadable', `cannot read ${path}: ${code}`, { cause: err });
  }
}

/**
 * What can be told from the bytes before libvips sees them: empty, still being written, or a
 * format this build cannot decode. Returns the format sniffed from the leading bytes.
 */
function checkBeforeDecoding(bytes: Buffer, label: string): NonNullable<ReturnType<typeof sniffFormat>> {
  if (bytes.length === 0) throw new DecodeError('empty', `${label} is empty (0 bytes)`);
  const sniffed = sniffFormat(bytes);
  // A file still being written: only its first bytes, or a header that says more is to come.
  if ((sniffed === undefined && isSignaturePrefix(bytes)) || structurallyIncomplete(bytes, sniffed)) {
    throw new DecodeError(
      'truncated',
      `${label}: truncated (${bytes.length} bytes, shorter than its ${sniffed ?? 'image'} header says)`,
    );
  }
  if (sniffed === 'bmp') {
    // sharp's prebuilt libvips has no BMP loader (only via ImageMagick, which it does not ship).
    throw new DecodeError(
      'unsupported',
      `${label} is a BMP file; BMP is not supported by this build of sharp/libvips (convert to PNG, TIFF or JPEG)`,
    );
  }
  if (sniffed === undefined) {
    throw new DecodeError(
      'unsupported',
      `${label} is not a supported image (not JPEG, PNG, TIFF, WebP or GIF by its leading bytes)`,
    );
  }
  return sniffed;
}

/** A sharp failure as a typed DecodeError: truncated (retry later), or final. */
function asDecodeError(
  err: unknown,
  bytes: Buffer,
  sniffed: ReturnType<typeof sniffFormat>,
  label: string,
): DecodeError {
  if (err instanceof DecodeError) return err;
  const message = err instanceof Error ? err.message : String(err);
  let kind = classifySharpError(message, sniffed);
  // libvips ends every TIFF failure with "read error", corrupt data included. A TIFF, WebP or
  // GIF has passed the structure check above (all its data are in the file), so a failure
  // here is in the bytes themselves: final, not worth retrying.
  if (kind === 'truncated' && sniffed !== undefined && CHECKED_BEFORE_DECODING.has(sniffed))
    kind = 'unreadable';
  // A file cut short can fail with another message than a read error (e.g. "end of stream", a
  // failOn warning, or — with two decodes failing at once — libvips' shared error text). Without
  // its closing marker (PNG IEND chunk, JPEG EOI, GIF trailer) it is a file still being
  // written: retryable. TIFF, WebP and BMP were checked against their headers before decoding.
  if (kind === 'unreadable' && lacksEndMarker(bytes, sniffed)) kind = 'truncated';
  return new DecodeError(kind, `${label}: ${kind} (${message.trim()})`, { cause: err });
}

/**
 * Decodes `input` (a path or the file's bytes) to size×size RGB. Throws DecodeError.
 */
export async function decodeImage(input: string | Buffer, opts: DecodeOptions): Promise<DecodedImage> {
  const { size, limitInputPixels } = opts;
  if (!Number.isInteger(size) || size <= 0)
    throw new RangeError(`decodeImage: size must be a positive integer, got ${size}`);
  const bytes = typeof input === 'string' ? await readInput(input) : input;
  const label = typeof input === 'string' ? input : 'image buffer';
  const sniffed = checkBeforeDecoding(bytes, label);
  try {
    // failOn 'warning' (the strictest level): a truncated or corrupt file is an error, never a
    // silently grey-padded image that would be classified as if it were real.
    const image = sharp(bytes, { failOn: 'warning', limitInputPixels, page: 0, pages: 1 });
    // A JPEG's size and orientation come from its headers; other formats (and any JPEG header
    // the reader is unsure of) ask libvips in a separate call.
    const header = sniffed === 'jpeg' ? readJpegHeader(bytes) : null;
    const meta = header ? { format: 'jpeg', ...header } : await image.metadata();
    const { data, info } = await image
      .rotate() // apply EXIF orientation
      .flatten({ background: { r: 255, g: 255, b: 255 } })
      .toColourspace('srgb')
      .resize(size, size, { fit: 'fill' })
      .removeAlpha()
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
    if (
      info.channels !== 3 ||
      info.width !== size ||
      info.height !== size ||
      data.length !== size * size * 3
    ) {
      throw new DecodeError(
        'unreadable',
        `${label}: unexpected decoded layout ${info.width}x${info.height}x${info.channels}`,
      );
    }
    const oriented = (meta.orientation ?? 1) >= 5;
    const width = meta.width ?? 0;
    const height = meta.height ?? 0;
    return {
      rgb: new Uint8Array(data.buffer, data.byteOffset, data.length),
      width: size,
      height: size,
      source: {
        format: meta.format ?? sniffed,
        width: oriented ? height : width,
        height: oriented ? width : height,
        bytes: bytes.length,
      },
    };
  } catch (err) {
    throw asDecodeError(err, bytes, sniffed, label);
  }
}
