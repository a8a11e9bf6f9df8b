/**
 * sRGB → CIELAB exactly as OpenCV's 8-bit `cv2.cvtColor(img, cv2.COLOR_RGB2LAB)` computes it
 * (the seed paper's authors segmented with it, and the threshold 141 only means something on
 * OpenCV's a* byte). OpenCV's 8-bit path is fixed-point, not "float formula then round":
 *  - sRGB gamma through a 256-entry table scaled by 2^3 (gamma_shift),
 *  - RGB→XYZ with 12-bit integer coefficients already divided by the D65 white point,
 *  - f(t) = t^(1/3) (or the linear toe 7.787 t + 16/116) from a table scaled by 2^15,
 *  - L = 116 f(Y) − 16 scaled to 0..255, a = 500 (f(X) − f(Y)) + 128, b = 200 (f(Y) − f(Z)) + 128,
 *    each descaled with round-half-up shifts and saturated to a byte.
 * Only the a* byte is computed here (`rgbToAStar8Counted`, the segmentation's hot path); the full
 * conversion `rgbToLab8` in reference.ts uses the same tables, and the test suite checks it
 * against cv2 on all 2^24 colours when the dump is available and against published CIELAB values
 * always, and this a* path against it.
 */

export const LAB_SHIFT = 12; // xyz_shift
const GAMMA_SHIFT = 3;
export const LAB_SHIFT2 = LAB_SHIFT + GAMMA_SHIFT;
const CBRT_TABLE_SIZE = ((256 * 3) / 2) * (1 << GAMMA_SHIFT);

/** OpenCV's sRGB→XYZ (D65) matrix and white point (double constants in OpenCV 4.x). */
const SRGB_TO_XYZ_D65 = [
  0.412453, 0.35758, 0.180423, 0.212671, 0.71516, 0.072169, 0.019334, 0.119193, 0.950227,
];
const D65_WHITE = [0.950456, 1.0, 1.088754];

const f64 = new DataView(new ArrayBuffer(8));
function f64FromRaw(hex: string): number {
  f64.setBigUint64(0, BigInt(hex));
  return f64.getFloat64(0);
}
const CBRT_A = [
  '0x4046a09e6653ba70',
  '0x406808f46c6116e0',
  '0x405dca97439cae14',
  '0x402add70d2827500',
  '0x3fc4f15f83f55d2d',
  '0x402d9e20660edb21',
  '0x4062ff15c0285815',
  '0x406510d06a8112ce',
  '0x4040fecbc9e2c375',
].map(f64FromRaw) as [number, number, number, number, number, number, number, number, number];

/**
 * OpenCV's softfloat `cbrt` (Ken Turkowski's rational approximation, evaluated in double, then
 * the mantissa TRUNCATED to float32). It is not the correctly rounded cube root, and the
 * difference flips LabCbrtTab_b entries (e.g. index 324), so it is reproduced bit for bit.
 */
function opencvCbrtF32(x: number): number {
  f64.setFloat32(0, x);
  const bits = f64.getUint32(0);
  if ((bits & 0x7fffffff) === 0) return 0;
  const sign = bits >>> 31;
  let ex = ((bits >>> 23) & 0xff) - 127;
  let shx = ex % 3;
  shx -= shx >= 0 ? 3 : 0;
  ex = (ex - shx) / 3 - 1;
  const frac = bits & 0x7fffff;
  let fr = (1 + frac / 0x800000) * Math.pow(2, shx);
  const [a1, a2, a3, a4, a5, a6, a7, a8, a9] = CBRT_A;
  fr = ((((a1 * fr + a2) * fr + a3) * fr + a4) * fr + a5) / ((((a6 * fr + a7) * fr + a8) * fr + a9) * fr + 1);
  f64.setFloat64(0, fr);
  const mantissa = Number((f64.getBigUint64(0) & 0xfffffffffffffn) >> 29n);
  f64.setUint32(0, ((sign << 31) | ((ex + 127) << 23) | mantissa) >>> 0);
  return f64.getFloat32(0);
}

/** C's lrint / cvRound: round half to even. */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

function saturateU16(x: number): number {
  const r = roundHalfEven(x);
  return r < 0 ? 0 : r > 65535 ? 65535 : r;
}

/** OpenCV 4.x applyGamma: evaluated in double, result rounded to float. */
function srgbToLinear(x: number): number {
  return Math.fround(x <= 809 / 20000 ? x / (323 / 25) : Math.pow((x + 11 / 200) / (1 + 11 / 200), 12 / 5));
}

/** 8-bit sRGB → linear light × 255 × 2^3 (OpenCV sRGBGammaTab_b). */
export const SRGB_GAMMA_TABLE: Uint16Array = (() => {
  const table = new Uint16Array(256);
  for (let i = 0; i < 256; i++) {
    const x = Math.fround(i / 255);
    table[i] = saturateU16(Math.fround(255 * (1 << GAMMA_SHIFT) * srgbToLinear(x)));
  }
  return table;
})();

/** f(t) of CIELAB × 2^15 for t = i / (255 × 2^3) (OpenCV LabCbrtTab_b). */
export const LAB_CBRT_TABLE: Uint16Array = (() => {
  const table = new Uint16Array(CBRT_TABLE_SIZE);
  // OpenCV 4.x computes this table in (soft)float32 with exact-ratio constants.
  const step = Math.fround(1 / (255 * (1 << GAMMA_SHIFT)));
  const threshold = Math.fround(216 / 24389); // (6/29)^3
  const slope = Math.fround(841 / 108); // (29/3)^3 / (29*4)
  const bias = Math.fround(16 / 116);
  for (let i = 0; i < CBRT_TABLE_SIZE; i++) {
    const x = Math.fround(i * step);
    const f = x < threshold ? Math.fround(x * slope + bias) : opencvCbrtF32(x);
    table[i] = saturateU16((1 << LAB_SHIFT2) * f);
  }
  return table;
})();

/** XYZ rows (X/Xn, Y, Z/Zn) as 12-bit integer coefficients for R, G, B. */
export const XYZ_COEFFS: Int32Array = (() => {
  const coeffs = new Int32Array(9);
  for (let row = 0; row < 3; row++) {
    for (let col = 0; col < 3; col++) {
      coeffs[row * 3 + col] = roundHalfEven(
        ((1 << LAB_SHIFT) * (SRGB_TO_XYZ_D65[row * 3 + col] ?? 0)) / (D65_WHITE[row] ?? 1),
      );
    }
  }
  return coeffs;
})();

// The a* path needs the X/Xn and Y rows only.
const C0 = XYZ_COEFFS[0] ?? 0;
const C1 = XYZ_COEFFS[1] ?? 0;
const C2 = XYZ_COEFFS[2] ?? 0;
const C3 = XYZ_COEFFS[3] ?? 0;
const C4 = XYZ_COEFFS[4] ?? 0;
const C5 = XYZ_COEFFS[5] ?? 0;
export const ROUND_LAB = 1 << (LAB_SHIFT - 1);
export const ROUND_LAB2 = 1 << (LAB_SHIFT2 - 1);
export const L_SCALE = Math.trunc((116 * 255 + 50) / 100);
export const L_SHIFT = -Math.trunc((16 * 255 * (1 << LAB_SHIFT2) + 50) / 100);
export const AB_OFFSET = 128 * (1 << LAB_SHIFT2);

export function clampByte(v: number): number {
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

/**
 * The a* path folded into tables: X/Xn and Y rows of the fixed-point XYZ sum as per-channel
 * terms (gamma[v] × coefficient, the rounding constant folded into the R terms), and the final
 * descale-and-saturate of 500 (f(X) − f(Y)) as a table over the difference. Integer arithmetic
 * is exact, so the result equals rgbToLab8's a* for every colour (the test suite checks all
 * 2^24); it saves the multiplications and the clamp per pixel.
 */
export const A_TERMS: Int32Array = (() => {
  const t = new Int32Array(6 * 256);
  for (let v = 0; v < 256; v++) {
    const g = SRGB_GAMMA_TABLE[v]!;
    t[v] = g * C0 + ROUND_LAB;
    t[256 + v] = g * C1;
    t[512 + v] = g * C2;
    t[768 + v] = g * C3 + ROUND_LAB;
    t[1024 + v] = g * C4;
    t[1280 + v] = g * C5;
  }
  return t;
})();
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;
export const CBRT_MAX = 1 << 16; // LAB_CBRT_TABLE entries are uint16, so |f(X) − f(Y)| < 2^16
export const A_OF_DIFFERENCE: Uint8Array = (() => {
  const t = new Uint8Array(2 * CBRT_MAX + 1);
  for (let d = -CBRT_MAX; d <= CBRT_MAX; d++) {
    t[d + CBRT_MAX] = clampByte((500 * d + AB_OFFSET + ROUND_LAB2) >> LAB_SHIFT2);
  }
  return t;
})();

/**
 * The a* byte of `rgbToLab8` (reference.ts), one per pixel, counting each a* value per block
 * of 256 pixels into `blockCounts` as it goes: the K-means sampling search needs those counts,
 * and counting here saves a second pass over the pixels. Layout: 512 entries per block (⌈pixelCount / 256⌉ blocks, zeroed by the caller),
 * even pixels counted in the first 256, odd pixels in the second — neighbouring pixels often
 * share an a* value, and two tables keep their increments from waiting on each other (it made
 * the counting about three times cheaper). A value's count in block b is therefore
 * blockCounts[512·b + v] + blockCounts[512·b + 256 + v]. Each table counts at most 128 pixels,
 * so bytes suffice (a quarter of the memory of 32-bit counts: 100 KB at 224×224).
 * Returns the smallest a* | (largest a* << 8), so callers can skip the values that never occur.
 */
export function rgbToAStar8Counted(
  rgb: Uint8Array,
  pixelCount: number,
  out: Uint8Array,
  blockCounts: Uint8Array,
): number {
  const terms = A_TERMS;
  const cbrt = LAB_CBRT_TABLE;
  const aOf = A_OF_DIFFERENCE;
  let lowest = 255;
  let highest = 0;
  let first = 0;
  let row = 0;
  if (LITTLE_ENDIAN && rgb.byteOffset % 4 === 0) {
    const fullBlocks = pixelCount >> 8;
    const range = aStarOfWholeBlocks(rgb, fullBlocks, out, blockCounts);
    lowest = range & 255;
    highest = range >> 8;
    first = fullBlocks * 256;
    row = fullBlocks * 512;
  }
  // The rest (everything when the bytes are not word-aligned): two pixels at a time.
  for (; first < pixelCount; first += 256, row += 512) {
    const last = Math.min(pixelCount, first + 256);
    let p = first;
    let o = first * 3;
    for (; p + 1 < last; p += 2, o += 6) {
      const r = rgb[o]!;
      const g = rgb[o + 1]!;
      const b = rgb[o + 2]!;
      const r2 = rgb[o + 3]!;
      const g2 = rgb[o + 4]!;
      const b2 = rgb[o + 5]!;
      const fX = cbrt[(terms[r]! + terms[256 + g]! + terms[512 + b]!) >> LAB_SHIFT]!;
      const fY = cbrt[(terms[768 + r]! + terms[1024 + g]! + terms[1280 + b]!) >> LAB_SHIFT]!;
      const fX2 = cbrt[(terms[r2]! + terms[256 + g2]! + terms[512 + b2]!) >> LAB_SHIFT]!;
      const fY2 = cbrt[(terms[768 + r2]! + terms[1024 + g2]! + terms[1280 + b2]!) >> LAB_SHIFT]!;
      const a = aOf[fX - fY + CBRT_MAX]!;
      const a2 = aOf[fX2 - fY2 + CBRT_MAX]!;
      out[p] = a;
      out[p + 1] = a2;
      blockCounts[row + a] = blockCounts[row + a]! + 1;
      blockCounts[row + 256 + a2] = blockCounts[row + 256 + a2]! + 1;
      lowest = Math.min(lowest, a, a2);
      highest = Math.max(highest, a, a2);
    }
    if (p < last) {
      const r = rgb[o]!;
      const g = rgb[o + 1]!;
      const b = rgb[o + 2]!;
      const fX = cbrt[(terms[r]! + terms[256 + g]! + terms[512 + b]!) >> LAB_SHIFT]!;
      const fY = cbrt[(terms[768 + r]! + terms[1024 + g]! + terms[1280 + b]!) >> LAB_SHIFT]!;
      const a = aOf[fX - fY + CBRT_MAX]!;
      out[p] = a;
      blockCounts[row + a] = blockCounts[row + a]! + 1;
      if (a < lowest) lowest = a;
      if (a > highest) highest = a;
    }
  }
  return pixelCount > 0 ? lowest | (highest << 8) : 0;
}

/**
 * rgbToAStar8Counted's fast path over the first `fullBlocks` whole blocks of word-aligned,
 * little-endian RGB bytes: four pixels (three 32-bit words) at a time, a third of the loads.
 * Returns the smallest a* | (largest a* << 8) seen (255 when there are no blocks).
 */
function aStarOfWholeBlocks(
  rgb: Uint8Array,
  fullBlocks: number,
  out: Uint8Array,
  blockCounts: Uint8Array,
): number {
  const terms = A_TERMS;
  const cbrt = LAB_CBRT_TABLE;
  const aOf = A_OF_DIFFERENCE;
  let lowest = 255;
  let highest = 0;
  let first = 0;
  let row = 0;
  const words = new Uint32Array(rgb.buffer, rgb.byteOffset, fullBlocks * 192);
  for (; first < fullBlocks * 256; first += 256, row += 512) {
    for (let p = first, q = (first * 3) >> 2; p < first + 256; p += 4, q += 3) {
      const w0 = words[q]!;
      const w1 = words[q + 1]!;
      const w2 = words[q + 2]!;
      const r0 = w0 & 255;
      const g0 = (w0 >>> 8) & 255;
      const b0 = (w0 >>> 16) & 255;
      const r1 = w0 >>> 24;
      const g1 = w1 & 255;
      const b1 = (w1 >>> 8) & 255;
      const r2 = (w1 >>> 16) & 255;
      const g2 = w1 >>> 24;
      const b2 = w2 & 255;
      const r3 = (w2 >>> 8) & 255;
      const g3 = (w2 >>> 16) & 255;
      const b3 = w2 >>> 24;
      const a0 =
        aOf[
          cbrt[(terms[r0]! + terms[256 + g0]! + terms[512 + b0]!) >> LAB_SHIFT]! -
            cbrt[(terms[768 + r0]! + terms[1024 + g0]! + terms[1280 + b0]!) >> LAB_SHIFT]! +
            CBRT_MAX
        ]!;
      const a1 =
        aOf[
          cbrt[(terms[r1]! + terms[256 + g1]! + terms[512 + b1]!) >> LAB_SHIFT]! -
            cbrt[(terms[768 + r1]! + terms[1024 + g1]! + terms[1280 + b1]!) >> LAB_SHIFT]! +
            CBRT_MAX
        ]!;
      const a2 =
        aOf[
          cbrt[(terms[r2]! + terms[256 + g2]! + terms[512 + b2]!) >> LAB_SHIFT]! -
            cbrt[(terms[768 + r2]! + terms[1024 + g2]! + terms[1280 + b2]!) >> LAB_SHIFT]! +
            CBRT_MAX
        ]!;
      const a3 =
        aOf[
          cbrt[(terms[r3]! + terms[256 + g3]! + terms[512 + b3]!) >> LAB_SHIFT]! -
            cbrt[(terms[768 + r3]! + terms[1024 + g3]! + terms[1280 + b3]!) >> LAB_SHIFT]! +
            CBRT_MAX
        ]!;
      out[p] = a0;
      out[p + 1] = a1;
      out[p + 2] = a2;
      out[p + 3] = a3;
      blockCounts[row + a0] = blockCounts[row + a0]! + 1;
      blockCounts[row + 256 + a1] = blockCounts[row + 256 + a1]! + 1;
      blockCounts[row + a2] = blockCounts[row + a2]! + 1;
      blockCounts[row + 256 + a3] = blockCounts[row + 256 + a3]! + 1;
      lowest = Math.min(lowest, a0, a1, a2, a3);
      highest = Math.max(highest, a0, a1, a2, a3);
    }
  }
  return lowest | (highest << 8);
}
