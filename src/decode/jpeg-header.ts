/**
 * A JPEG's size and EXIF orientation read from its marker segments, the two things the daemon
 * records about the original besides its format. Reading them here spares a separate libvips
 * `metadata()` call per image (a thread-pool task and about 0.3 ms of CPU). Anything this reader
 * is not certain about (an odd segment, a second EXIF block, a malformed or out-of-range tag)
 * gives null, and the caller asks libvips as before.
 */
export interface JpegHeader {
  /** As stored (before the orientation is applied), like libvips' metadata. */
  width: number;
  height: number;
  /** EXIF orientation 1-8; 1 when the file has none. */
  orientation: number;
}

/** SOF0-SOF15 except DHT (C4), JPG (C8) and DAC (CC): the frame header with the image size. */
function isStartOfFrame(marker: number): boolean {
  return marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
}

export function readJpegHeader(b: Buffer): JpegHeader | null {
  if (b.length < 4 || b[0] !== 0xff || b[1] !== 0xd8) return null;
  let orientation: number | null = null;
  let size: { width: number; height: number } | null = null;
  let i = 2;
  while (i + 4 <= b.length) {
    if (b[i] !== 0xff) return null;
    const marker = b[i + 1]!;
    if (marker === 0xff) {
      i++; // fill byte
      continue;
    }
    // Start of scan: every header segment has been seen.
    if (marker === 0xda) return size && { ...size, orientation: orientation ?? 1 };
    if (marker === 0xd8 || marker === 0xd9 || marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7))
      return null;
    const length = b.readUInt16BE(i + 2);
    const start = i + 4;
    const end = i + 2 + length;
    if (length < 2 || end > b.length) return null;
    if (marker === 0xe1 && length >= 8 && b.toString('latin1', start, start + 6) === 'Exif\0\0') {
      if (orientation !== null) return null; // two EXIF blocks: leave the choice to libvips
      orientation = exifOrientation(b.subarray(start + 6, end));
      if (orientation === null) return null;
    } else if (isStartOfFrame(marker)) {
      if (size || length < 8) return null;
      const height = b.readUInt16BE(start + 1);
      const width = b.readUInt16BE(start + 3);
      if (width === 0 || height === 0) return null;
      size = { width, height };
    }
    i = end;
  }
  return null;
}

/** The orientation tag (0x0112) of IFD0 in an EXIF TIFF block: 1 when absent, null when unsure. */
function exifOrientation(t: Buffer): number | null {
  if (t.length < 8) return null;
  const little = t[0] === 0x49 && t[1] === 0x49;
  if (!little && !(t[0] === 0x4d && t[1] === 0x4d)) return null;
  const u16 = (o: number) => (little ? t.readUInt16LE(o) : t.readUInt16BE(o));
  const u32 = (o: number) => (little ? t.readUInt32LE(o) : t.readUInt32BE(o));
  if (u16(2) !== 42) return null;
  const ifd = u32(4);
  if (ifd < 8 || ifd + 2 > t.length) return null;
  const entries = u16(ifd);
  if (ifd + 2 + entries * 12 > t.length) return null;
  for (let k = 0; k < entries; k++) {
    const e = ifd + 2 + k * 12;
    if (u16(e) !== 0x0112) continue;
    if (u16(e + 2) !== 3 || u32(e + 4) !== 1) return null; // not one SHORT
    const value = u16(e + 8);
    return value >= 1 && value <= 8 ? value : null;
  }
  return 1;
}
