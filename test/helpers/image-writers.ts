/**
 * Minimal writers for layouts sharp does not produce: an uncompressed TIFF with its IFD before or
 * after the pixels, in either byte order, and a 24-bit BMP (libvips reads neither BMP nor
 * writes TIFF with the IFD first).
 */
export interface RawRgb {
  data: Buffer;
  width: number;
  height: number;
}

export function tiffFile(
  img: RawRgb,
  o: { littleEndian: boolean; ifdFirst: boolean; compression?: number; nextIfd?: number },
): Buffer {
  const SHORT = 3;
  const LONG = 4;
  const pixels = img.data.length;
  const entries = 10;
  const ifdSize = 2 + entries * 12 + 4;
  const bpsSize = 6;
  const ifdAt = o.ifdFirst ? 8 : 8 + pixels + bpsSize;
  const bpsAt = o.ifdFirst ? 8 + ifdSize : 8 + pixels;
  const pixelsAt = o.ifdFirst ? 8 + ifdSize + bpsSize : 8;
  const b = Buffer.alloc(8 + ifdSize + bpsSize + pixels);
  const u16 = (v: number, at: number) => (o.littleEndian ? b.writeUInt16LE(v, at) : b.writeUInt16BE(v, at));
  const u32 = (v: number, at: number) => (o.littleEndian ? b.writeUInt32LE(v, at) : b.writeUInt32BE(v, at));
  b.write(o.littleEndian ? 'II' : 'MM', 0, 'latin1');
  u16(42, 2);
  u32(ifdAt, 4);
  const tags: Array<[tag: number, type: number, count: number, value: number]> = [
    [256, LONG, 1, img.width],
    [257, LONG, 1, img.height],
    [258, SHORT, 3, bpsAt],
    [259, SHORT, 1, o.compression ?? 1],
    [262, SHORT, 1, 2], // RGB
    [273, LONG, 1, pixelsAt],
    [277, SHORT, 1, 3],
    [278, LONG, 1, img.height],
    [279, LONG, 1, pixels],
    [284, SHORT, 1, 1], // chunky
  ];
  u16(entries, ifdAt);
  tags.forEach(([tag, type, count, value], i) => {
    const e = ifdAt + 2 + i * 12;
    u16(tag, e);
    u16(type, e + 2);
    u32(count, e + 4);
    // An inline SHORT sits in the first two bytes of the value field.
    if (type === SHORT && count === 1) u16(value, e + 8);
    else u32(value, e + 8);
  });
  u32(o.nextIfd ?? 0, ifdAt + 2 + entries * 12);
  for (let i = 0; i < 3; i++) u16(8, bpsAt + 2 * i);
  img.data.copy(b, pixelsAt);
  return b;
}

/** A bottom-up 24-bit BI_RGB BMP (rows padded to 4 bytes, BGR order). */
export function bmpFile(img: RawRgb): Buffer {
  const stride = Math.ceil((img.width * 3) / 4) * 4;
  const size = 54 + stride * img.height;
  const b = Buffer.alloc(size);
  b.write('BM', 0, 'latin1');
  b.writeUInt32LE(size, 2);
  b.writeUInt32LE(54, 10);
  b.writeUInt32LE(40, 14);
  b.writeInt32LE(img.width, 18);
  b.writeInt32LE(img.height, 22);
  b.writeUInt16LE(1, 26);
  b.writeUInt16LE(24, 28);
  b.writeUInt32LE(stride * img.height, 34);
  for (let y = 0; y < img.height; y++) {
    const row = 54 + (img.height - 1 - y) * stride;
    for (let x = 0; x < img.width; x++) {
      const s = (y * img.width + x) * 3;
      b[row + x * 3] = img.data[s + 2] as number;
      b[row + x * 3 + 1] = img.data[s + 1] as number;
      b[row + x * 3 + 2] = img.data[s] as number;
    }
  }
  return b;
}
