/**
 * Is this file still being written? The camera (or a copy over SMB) may be caught mid-write, and
 * libvips reports most cut-short files as corrupt ("unsupported image format", "corrupt header"),
 * not as short. Each check below reads the format's own structure to tell "the bytes end before
 * the structure does" (truncated: retry later) from "the bytes are wrong" (a final failure).
 */

/** Leading bytes of the formats decodeImage sniffs; null matches any byte. */
const SIGNATURES: ReadonlyArray<ReadonlyArray<number | null>> = [
  [0xff, 0xd8, 0xff], // JPEG
  [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], // PNG
  [0x49, 0x49, 0x2a, 0x00], // TIFF, little-endian
  [0x4d, 0x4d, 0x00, 0x2a], // TIFF, big-endian
  [0x49, 0x49, 0x2b, 0x00], // BigTIFF, little-endian
  [0x4d, 0x4d, 0x00, 0x2b], // BigTIFF, big-endian
  [0x42, 0x4d], // BMP
  [0x52, 0x49, 0x46, 0x46, null, null, null, null, 0x57, 0x45, 0x42, 0x50], // RIFF <size> WEBP
  [0x47, 0x49, 0x46, 0x38, null, 0x61], // GIF87a / GIF89a
];

/** True when the file is shorter than a signature and is its beginning (only a few bytes written). */
export function isSignaturePrefix(bytes: Buffer): boolean {
  return SIGNATURES.some(
    (sig) =>
      bytes.length > 0 &&
      bytes.length < sig.length &&
      [...bytes].every((byte, i) => sig[i] === null || sig[i] === byte),
  );
}

/** Byte size of each TIFF field type (TIFF 6.0 §2, BigTIFF adds 16–18). */
const TIFF_TYPE_SIZE: Record<number, number> = {
  1: 1,
  2: 1,
  3: 2,
  4: 4,
  5: 8,
  6: 1,
  7: 1,
  8: 2,
  9: 4,
  10: 8,
  11: 4,
  12: 8,
  13: 4,
  16: 8,
  17: 8,
  18: 8,
};
const STRIP_OFFSETS = 273;
const STRIP_BYTE_COUNTS = 279;
const TILE_OFFSETS = 324;
const TILE_BYTE_COUNTS = 325;
/** Tags whose values are offsets of further IFDs: SubIFDs, Exif, GPS, Interoperability. */
const IFD_POINTER_TAGS = new Set([330, 34665, 34853, 40965]);
/** More pages than any microscope writes; bounds the walk on a corrupt chain. */
const MAX_IFDS = 1024;

/**
 * True when a TIFF's structure points past the end of the bytes: the header's IFD offset, an
 * IFD, an out-of-line tag value, a strip or tile (offset + byte count), a sub-IFD or the next
 * IFD in the chain. Writers append strips and IFDs in any order, so every one is checked.
 * Classic TIFF and BigTIFF, either byte order.
 */
export function tiffPointsPastEnd(b: Buffer): boolean {
  if (b.length < 8) return true;
  const le = b[0] === 0x49;
  const u16 = (o: number): number => (le ? b.readUInt16LE(o) : b.readUInt16BE(o));
  const u32 = (o: number): number => (le ? b.readUInt32LE(o) : b.readUInt32BE(o));
  const u64 = (o: number): number => Number(le ? b.readBigUInt64LE(o) : b.readBigUInt64BE(o));
  const big = u16(2) === 43;
  if (big && b.length < 16) return true;
  const word = big ? 8 : 4; // size of an offset and of an inline value field
  const offsetAt = big ? u64 : u32;
  const countSize = big ? 8 : 2;
  const entrySize = big ? 20 : 12;
  const fits = (offset: number, size: number): boolean => offset + size <= b.length;

  const readValues = (at: number, type: number, count: number): number[] => {
    const read = type === 3 ? u16 : type === 4 || type === 13 ? u32 : type === 16 || type === 18 ? u64 : null;
    if (read === null) return [];
    const size = TIFF_TYPE_SIZE[type] as number;
    return Array.from({ length: count }, (_, i) => read(at + i * size));
  };

  let ifd = offsetAt(big ? 8 : 4);
  // libtiff writes the header with a first-IFD offset of 0, appends the strips, writes the IFD
  // at close and only then patches the header: 0 means "no directory yet", a file in progress.
  if (ifd === 0) return true;
  const seen = new Set<number>();
  while (ifd !== 0 && seen.size < MAX_IFDS) {
    if (seen.has(ifd)) return false; // a loop: corrupt, not short
    seen.add(ifd);
    if (!fits(ifd, countSize)) return true;
    const n = big ? u64(ifd) : u16(ifd);
    const next = ifd + countSize + n * entrySize;
    if (!fits(next, word)) return true;
    const arrays = new Map<number, number[]>();
    for (let i = 0; i < n; i++) {
      const e = ifd + countSize + i * entrySize;
      const tag = u16(e);
      const type = u16(e + 2);
      const count = big ? u64(e + 4) : u32(e + 4);
      const size = TIFF_TYPE_SIZE[type];
      if (size === undefined) continue; // unknown type: libtiff skips it too
      const bytes = size * count;
      let at = e + 4 + word;
      if (bytes > word) {
        at = offsetAt(at);
        if (!fits(at, bytes)) return true;
      }
      const wanted =
        tag === STRIP_OFFSETS ||
        tag === STRIP_BYTE_COUNTS ||
        tag === TILE_OFFSETS ||
        tag === TILE_BYTE_COUNTS ||
        IFD_POINTER_TAGS.has(tag);
      if (wanted) arrays.set(tag, readValues(at, type, count));
    }
    for (const [offsetsTag, countsTag] of [
      [STRIP_OFFSETS, STRIP_BYTE_COUNTS],
      [TILE_OFFSETS, TILE_BYTE_COUNTS],
    ] as const) {
      const offsets = arrays.get(offsetsTag) ?? [];
      const counts = arrays.get(countsTag) ?? [];
      for (const [i, offset] of offsets.entries()) if (!fits(offset, counts[i] ?? 0)) return true;
    }
    for (const tag of IFD_POINTER_TAGS)
      for (const offset of arrays.get(tag) ?? []) if (!fits(offset, countSize)) return true;
    ifd = offsetAt(next);
  }
  return false;
}

/** True when a RIFF/WebP file is shorter than its RIFF header says (8 + chunk size). */
export function riffShort(b: Buffer): boolean {
  if (b.length < 12) return true;
  const size = b.readUInt32LE(4);
  // A streaming RIFF writer leaves the size 0 until it closes the file; no WebP is empty.
  return size === 0 || b.length < 8 + size;
}

/**
 * True when a BMP is shorter than its header says: the file size field (bfSize), the pixel data
 * offset plus the image size, and for uncompressed pixels the row stride × height (some writers
 * leave bfSize or biSizeImage 0). Only the 14 + 40-byte headers every Windows BMP has are read.
 */
export function bmpShort(b: Buffer): boolean {
  if (b.length < 14) return true;
  const pixelsAt = b.readUInt32LE(10);
  let declared = Math.max(b.readUInt32LE(2), pixelsAt);
  if (b.length < 38) return true; // BITMAPINFOHEADER not complete yet
  if (b.readUInt32LE(14) < 40) return b.length < declared; // OS/2 core header: other layout
  declared = Math.max(declared, pixelsAt + b.readUInt32LE(34));
  // Uncompressed (BI_RGB): rows of width × bits, padded to 4 bytes, even when biSizeImage is 0.
  if (b.readUInt32LE(30) === 0) {
    const stride = Math.ceil((Math.abs(b.readInt32LE(18)) * b.readUInt16LE(28)) / 32) * 4;
    declared = Math.max(declared, pixelsAt + stride * Math.abs(b.readInt32LE(22)));
  }
  return b.length < declared;
}

/** PNG ends with its IEND chunk: length 0, "IEND", CRC AE 42 60 82. */
const PNG_IEND = Buffer.from([0, 0, 0, 0, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82]);
/** Bytes after IEND that a PNG may carry (padding of some writers) and still count as complete. */
const PNG_TAIL_SLACK = 64;

/**
 * True when a PNG has no complete IEND chunk near its end. libpng decodes a PNG whose last bytes
 * (IEND's CRC) are missing, so this must be checked before decoding, not only after a failure.
 */
export function pngShort(b: Buffer): boolean {
  return b.subarray(Math.max(0, b.length - PNG_IEND.length - PNG_TAIL_SLACK)).indexOf(PNG_IEND) === -1;
}

/**
 * True when a GIF's block structure runs past the end of the bytes before its trailer (0x3B).
 * libvips decodes the first frame of a GIF whose later frames or trailer are missing, and a data
 * byte may equal the trailer, so the blocks are walked: header, screen descriptor and global
 * colour table, then extensions and images (each a chain of length-prefixed sub-blocks).
 */
export function gifShort(b: Buffer): boolean {
  const colourTable = (flags: number): number => (flags & 0x80 ? 3 * 2 ** ((flags & 7) + 1) : 0);
  let at = 13;
  if (b.length < at) return true;
  at += colourTable(b[10] as number);
  const skipSubBlocks = (): boolean => {
    for (;;) {
      if (at >= b.length) return false;
      const size = b[at] as number;
      at += 1 + size;
      if (size === 0) return true;
    }
  };
  for (;;) {
    if (at >= b.length) return true;
    const block = b[at];
    if (block === 0x3b) return false; // trailer: complete
    if (block === 0x21) {
      at += 2; // introducer, label
      if (!skipSubBlocks()) return true;
    } else if (block === 0x2c) {
      if (at + 10 > b.length) return true;
      at += 10 + colourTable(b[at + 9] as number) + 1; // descriptor, local table, LZW code size
      if (!skipSubBlocks()) return true;
    } else return false; // not a GIF block: corrupt, not short
  }
}

/** Formats whose completeness is decided from their structure before decoding. */
export const CHECKED_BEFORE_DECODING: ReadonlySet<string> = new Set(['tiff', 'webp', 'bmp', 'gif', 'png']);

/**
 * Structural checks made before decoding, for formats whose headers or end chunk say exactly
 * where the data end. A TIFF whose later page or trailing IFD is not written yet may still decode
 * page 0, a PNG without its last bytes decodes, and a BMP is refused as unsupported whatever its
 * length: each must first be complete.
 */
export function structurallyIncomplete(bytes: Buffer, sniffed: string | undefined): boolean {
  if (sniffed === 'tiff') return tiffPointsPastEnd(bytes);
  if (sniffed === 'webp') return riffShort(bytes);
  if (sniffed === 'bmp') return bmpShort(bytes);
  if (sniffed === 'png') return pngShort(bytes);
  if (sniffed === 'gif') return gifShort(bytes);
  return false;
}

/**
 * Checked after a decode failure, for formats whose end is a marker: a PNG without its IEND
 * chunk, a JPEG without its EOI marker. A file that decodes is accepted even without one (some
 * writers pad after EOI).
 */
export function lacksEndMarker(bytes: Buffer, sniffed: string | undefined): boolean {
  if (sniffed === 'png') return bytes.toString('latin1', bytes.length - 8, bytes.length - 4) !== 'IEND';
  if (sniffed === 'jpeg') {
    // EOI is FF D9; some writers pad a few bytes after it, so look at the last 16 bytes.
    return bytes.subarray(Math.max(0, bytes.length - 16)).indexOf(Buffer.from([0xff, 0xd9])) === -1;
  }
  return false;
}
