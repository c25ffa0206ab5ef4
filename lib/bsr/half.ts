// float16 and bfloat16 as uint16 bit patterns: rounding (to nearest, ties to even)
// from float32 and exact widening back.
import { typeError } from '../errors';
import { isFloat32Array, isUint16Array } from '../util/typedArrays';

export type BsrDtype = 'float32' | 'float16' | 'bfloat16';
export type HalfDtype = 'float16' | 'bfloat16';

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** The bfloat16 nearest to x (ties to even); NaN stays a quiet NaN. */
export function toBfloat16(x: number): number {
  f32[0] = x;
  const b = u32[0];
  if ((b & 0x7f800000) === 0x7f800000 && (b & 0x7fffff) !== 0) return (b >>> 16) | 0x40;
  return (b + 0x7fff + ((b >>> 16) & 1)) >>> 16;
}

/** The float16 nearest to x (ties to even); beyond 65520 in magnitude it is ±Infinity. */
export function toFloat16(x: number): number {
  f32[0] = x;
  const b = u32[0];
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  let mant = b & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant !== 0 ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let h = mant >>> shift;
    const rem = mant & ((1 << shift) - 1), half = 1 << (shift - 1);
    if (rem > half || (rem === half && (h & 1) !== 0)) h++;
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1) !== 0)) h++; // a carry into the exponent is right (up to Infinity)
  return sign | h;
}

export function fromFloat16(h: number): number {
  const e = (h >>> 10) & 0x1f, m = h & 0x3ff, s = h & 0x8000 ? -1 : 1;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m !== 0 ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

export function fromBfloat16(h: number): number {
  u32[0] = (h & 0xffff) << 16;
  return f32[0];
}

export function halfDtype(dtype: unknown, name = 'dtype'): HalfDtype {
  if (dtype !== 'float16' && dtype !== 'bfloat16') throw typeError('ERR_SPARTAN_OPTION', `${name} must be 'float16' or 'bfloat16'`);
  return dtype;
}

/** Rounds every entry of a Float32Array to float16 or bfloat16 bits. */
export function encodeHalf(x: Float32Array, dtype: HalfDtype): Uint16Array {
  if (!isFloat32Array(x)) throw typeError('ERR_SPARTAN_TYPE', 'x must be a Float32Array');
  const to = halfDtype(dtype) === 'float16' ? toFloat16 : toBfloat16;
  const out = new Uint16Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = to(x[i]);
  return out;
}

/** Widens float16 or bfloat16 bits to float32 (exact). */
export function decodeHalf(h: Uint16Array, dtype: HalfDtype): Float32Array {
  if (!isUint16Array(h)) throw typeError('ERR_SPARTAN_TYPE', 'h must be a Uint16Array');
  const from = halfDtype(dtype) === 'float16' ? fromFloat16 : fromBfloat16;
  const out = new Float32Array(h.length);
  for (let i = 0; i < h.length; i++) out[i] = from(h[i]);
  return out;
}
