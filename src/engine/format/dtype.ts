// Conversions between stored tensor bytes (F32 / F16 / BF16, little-endian; Q8 / Q4 via quant.ts) and Float32Array.
// Assumes a little-endian host, as every browser and Node platform we target is.

import type { DType, PlainTensor, Tensor } from '../types.ts';
import { dequantize, isQuantized } from './quant.ts';

export const SUPPORTED_DTYPES: readonly DType[] = ['F32', 'F16', 'BF16'];

export function bytesPerElement(dtype: DType): number {
  return dtype === 'F32' ? 4 : 2;
}

export function numelOf(shape: readonly number[]): number {
  let n = 1;
  for (const s of shape) n *= s;
  return n;
}

// Shared scratch to reinterpret float bits without allocating per value.
const scratchF32 = new Float32Array(1);
const scratchU32 = new Uint32Array(scratchF32.buffer);

/** Decode one IEEE half (given as its 16 bits) to a number. */
export function f16BitsToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24; // zero / subnormal
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/** Encode a number as IEEE half bits, rounding to nearest, ties to even. */
export function floatToF16Bits(value: number): number {
  scratchF32[0] = value;
  const f = scratchU32[0];
  const sign = (f >>> 16) & 0x8000;
  const exp = (f >>> 23) & 0xff;
  const mant = f & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0); // Inf / NaN (quiet)
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00; // overflow
  if (e <= 0) {
    // Result is subnormal (or zero): value = m * 2^-24 with m = (1.mant) >> (14 - e).
    if (e < -10) return sign; // below half the smallest subnormal: rounds to zero
    const full = mant | 0x800000;
    const shift = 14 - e;
    let half = full >>> shift;
    const rem = full & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (rem > halfway || (rem === halfway && half & 1)) half++;
    return sign | half;
  }
  let half = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && half & 1)) half++; // a carry into the exponent is correct (may reach Inf)
  return sign | half;
}

/** Encode a number as bfloat16 bits (the top half of its f32), rounding to nearest, ties to even. */
export function floatToBf16Bits(value: number): number {
  scratchF32[0] = value;
  const f = scratchU32[0];
  if ((f & 0x7f800000) === 0x7f800000 && f & 0x7fffff) return ((f >>> 16) & 0x8000) | 0x7fc0; // NaN stays NaN
  return ((f + 0x7fff + ((f >>> 16) & 1)) >>> 16) & 0xffff;
}

let f16Table: Float32Array | null = null;
function halfTable(): Float32Array {
  if (!f16Table) {
    f16Table = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) f16Table[h] = f16BitsToFloat(h);
  }
  return f16Table;
}

/** The tensor's values as a fresh Float32Array (safe to mutate; works for unaligned byte views). */
export function toFloat32(t: Tensor): Float32Array {
  if (isQuantized(t)) return dequantize(t);
  const n = numelOf(t.shape);
  const bpe = bytesPerElement(t.dtype);
  if (t.bytes.byteLength !== n * bpe) {
    throw new Error(`tensor bytes (${t.bytes.byteLength}) do not match shape [${t.shape}] of ${t.dtype}`);
  }
  const out = new Float32Array(n);
  const b = t.bytes;
  if (t.dtype === 'F32') {
    new Uint8Array(out.buffer).set(b); // byte copy: no alignment requirement on the source view
  } else if (t.dtype === 'BF16') {
    const bits = new Uint32Array(out.buffer);
    for (let i = 0, j = 0; i < n; i++, j += 2) bits[i] = ((b[j] | (b[j + 1] << 8)) << 16) >>> 0;
  } else {
    const table = halfTable();
    for (let i = 0, j = 0; i < n; i++, j += 2) out[i] = table[b[j] | (b[j + 1] << 8)];
  }
  return out;
}

/** Store float values as a tensor of the given dtype (F16/BF16 rounded to nearest even). */
export function fromFloat32(data: Float32Array, shape: number[], dtype: DType): PlainTensor {
  const n = numelOf(shape);
  if (data.length !== n) throw new Error(`fromFloat32: ${data.length} values do not fill shape [${shape}]`);
  if (dtype === 'F32') {
    return {
      dtype,
      shape: [...shape],
      bytes: new Uint8Array(data.buffer.slice(data.byteOffset, data.byteOffset + n * 4)),
    };
  }
  const bytes = new Uint8Array(n * 2);
  const encode = dtype === 'F16' ? floatToF16Bits : floatToBf16Bits;
  for (let i = 0; i < n; i++) {
    const h = encode(data[i]);
    bytes[2 * i] = h & 0xff;
    bytes[2 * i + 1] = h >>> 8;
  }
  return { dtype, shape: [...shape], bytes };
}
