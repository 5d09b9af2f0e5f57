// Weight matrices as the CPU backend holds them: in their stored format (F32, F16, BF16) or quantized
// (Q8, Q4), never expanded to a whole f32 copy. A product decodes one weight row at a time into a
// small f32 scratch row (in cache), then multiplies it with every input row: decode-on-the-fly.
// This file is the portable TypeScript path; wasm.ts runs the same products as WebAssembly SIMD.

import { f16BitsToFloat, numelOf } from '../../format/dtype.ts';
import { dequantizeRows, isQuantized, tensorBytes } from '../../format/quant.ts';
import type { Tensor, TensorDType } from '../../types.ts';

/** A weight matrix [rows, cols] in the form the kernels read. */
export interface HostMatrix {
  readonly format: TensorDType;
  readonly rows: number;
  readonly cols: number;
  /** Bytes this matrix holds (codes, scales, minimums): what it costs in memory. */
  readonly bytes: number;
  /** Values of row r, decoded into out[0..cols). */
  decodeRow(r: number, out: Float32Array): void;
  /** y[t, o] = Σ_i x[t, i] · W[o, i] (+ bias[o]) for t < tokens. */
  matmul(x: Float32Array, tokens: number, bias?: Float32Array): Float32Array;
}

let f16Table: Float32Array | null = null;
let bf16Table: Float32Array | null = null;
/** f16 and bf16 bits → f32 value, 65536 entries each (256 KiB), built on first use. */
export function tables(): { f16: Float32Array; bf16: Float32Array } {
  if (!f16Table || !bf16Table) {
    f16Table = new Float32Array(65536);
    bf16Table = new Float32Array(65536);
    const bits = new Uint32Array(bf16Table.buffer);
    for (let h = 0; h < 65536; h++) {
      f16Table[h] = f16BitsToFloat(h);
      bits[h] = h << 16;
    }
  }
  return { f16: f16Table, bf16: bf16Table };
}

/** The bytes as an aligned typed array: a view when the offset allows, else one copy of the stored bytes. */
function aligned<T>(
  bytes: Uint8Array,
  width: number,
  make: (buffer: ArrayBufferLike, offset: number, length: number) => T,
): T {
  const length = bytes.byteLength / width;
  if (bytes.byteOffset % width === 0) return make(bytes.buffer, bytes.byteOffset, length);
  return make(bytes.slice().buffer, 0, length);
}

/** Σ a[i]·b[j+i] over n values, eight independent accumulators (the JIT overlaps them). */
function dot(a: Float32Array, b: Float32Array, bOff: number, n: number): number {
  const tail = n & ~7;
  let s0 = 0,
    s1 = 0,
    s2 = 0,
    s3 = 0,
    s4 = 0,
    s5 = 0,
    s6 = 0,
    s7 = 0;
  let i = 0;
  for (; i < tail; i += 8) {
    s0 += a[i] * b[bOff + i];
    s1 += a[i + 1] * b[bOff + i + 1];
    s2 += a[i + 2] * b[bOff + i + 2];
    s3 += a[i + 3] * b[bOff + i + 3];
    s4 += a[i + 4] * b[bOff + i + 4];
    s5 += a[i + 5] * b[bOff + i + 5];
    s6 += a[i + 6] * b[bOff + i + 6];
    s7 += a[i + 7] * b[bOff + i + 7];
  }
  for (; i < n; i++) s0 += a[i] * b[bOff + i];
  return s0 + s1 + s2 + s3 + s4 + s5 + s6 + s7;
}

/** The TypeScript matrix: keeps the tensor's storage, decodes a row at a time. */
export function hostMatrix(t: Tensor): HostMatrix {
  if (t.shape.length !== 2) throw new Error(`a weight matrix needs a 2-D shape, got [${t.shape}]`);
  const [rows, cols] = t.shape;
  let decodeRow: (r: number, out: Float32Array) => void;
  let bytes = tensorBytes(t);
  if (isQuantized(t)) {
    decodeRow = (r, out) => dequantizeRows(t, r, 1, out);
  } else if (t.dtype === 'F32') {
    const w = aligned(t.bytes, 4, (b, o, n) => new Float32Array(b, o, n));
    decodeRow = (r, out) => out.set(w.subarray(r * cols, (r + 1) * cols));
  } else {
    const w = aligned(t.bytes, 2, (b, o, n) => new Uint16Array(b, o, n));
    const table = t.dtype === 'F16' ? tables().f16 : tables().bf16;
    decodeRow = (r, out) => {
      const base = r * cols;
      for (let i = 0; i < cols; i++) out[i] = table[w[base + i]];
    };
  }
  if (numelOf(t.shape) === 0) bytes = 0;
  const row = new Float32Array(cols);
  return {
    format: t.dtype,
    rows,
    cols,
    bytes,
    decodeRow,
    matmul(x, tokens, bias) {
      const y = new Float32Array(tokens * rows);
      for (let o = 0; o < rows; o++) {
        decodeRow(o, row);
        const b = bias ? bias[o] : 0;
        for (let t = 0; t < tokens; t++) y[t * rows + o] = dot(row, x, t * cols, cols) + b;
      }
      return y;
    },
  };
}
