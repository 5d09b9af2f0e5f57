// The WebAssembly SIMD products (src/engine/backends/cpu/wasm/kernels.wat) against the TypeScript ones
// (matrix.ts) and a plain f64 product of the dequantized values, for every weight format, decode (1 token)
// and prefill (several tokens), with and without bias; and the committed module is the compiled .wat.

import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { hostMatrix } from '../../src/engine/backends/cpu/matrix.ts';
import { loadKernels, WasmHeap, wasmSupports } from '../../src/engine/backends/cpu/wasm/heap.ts';
import { fromFloat32, toFloat32 } from '../../src/engine/format/index.ts';
import { quantizeValues } from '../../src/engine/format/quant.ts';
import { createRng } from '../../src/engine/run/index.ts';
import type { Tensor } from '../../src/engine/types.ts';

function normal(n: number, seed: number, std = 1): Float32Array {
  const rng = createRng(seed);
  const v = new Float32Array(n);
  for (let i = 0; i < n; i++) v[i] = std * Math.sqrt(-2 * Math.log(1 - rng())) * Math.cos(2 * Math.PI * rng());
  return v;
}

/** y[t, o] in f64 from the tensor's exact values. */
function reference(t: Tensor, x: Float32Array, tokens: number, bias?: Float32Array): Float64Array {
  const [rows, cols] = t.shape;
  const w = toFloat32(t);
  const y = new Float64Array(tokens * rows);
  for (let k = 0; k < tokens; k++)
    for (let o = 0; o < rows; o++) {
      let s = bias ? bias[o] : 0;
      for (let i = 0; i < cols; i++) s += w[o * cols + i] * x[k * cols + i];
      y[k * rows + o] = s;
    }
  return y;
}

describe('WebAssembly SIMD products', async () => {
  const module = await loadKernels();
  it('compile on this platform (Node has WebAssembly SIMD)', () => {
    expect(module).not.toBeNull();
  });
  const heap = new WasmHeap(module!);
  const rows = 37;
  const cols = 192; // 6 groups of 32, 3 of 64; 12 steps of 16 f16 values
  const w = normal(rows * cols, 1, 0.05);
  w[5] = 3e-6; // an f16 subnormal
  w[7] = -6e-7;
  const tensors: [string, Tensor][] = [
    ['F32', fromFloat32(w, [rows, cols], 'F32')],
    ['F16', fromFloat32(w, [rows, cols], 'F16')],
    ['BF16', fromFloat32(w, [rows, cols], 'BF16')],
    ['F32, 8-value rows', fromFloat32(w.subarray(0, rows * 8), [rows, 8], 'F32')],
    ['F16, 24-value rows', fromFloat32(w.subarray(0, rows * 24), [rows, 24], 'F16')],
    ['Q8 group 32', quantizeValues(w, rows, cols, { dtype: 'Q8', groupSize: 32 })],
    ['Q8 group 16', quantizeValues(w, rows, cols, { dtype: 'Q8', groupSize: 16 })],
    ['Q8 per row', quantizeValues(w, rows, cols, { dtype: 'Q8', groupSize: 192 })],
    ['Q4 group 32', quantizeValues(w, rows, cols, { dtype: 'Q4', groupSize: 32 })],
    ['Q4 group 64', quantizeValues(w, rows, cols, { dtype: 'Q4', groupSize: 64 })],
    ['Q4 group 64 with offsets', quantizeValues(w, rows, cols, { dtype: 'Q4', groupSize: 64, offsets: true })],
  ];
  for (const [name, t] of tensors) {
    for (const tokens of [1, 5]) {
      it(`${name}, ${tokens} token(s): equal to the f64 product of the same values within f32 rounding`, () => {
        expect(wasmSupports(t)).toBe(true);
        const c = t.shape[1];
        const x = normal(tokens * c, 2 + tokens);
        const bias = tokens > 1 ? normal(rows, 9) : undefined;
        const simd = heap.matrix(t).matmul(x, tokens, bias);
        const ts = hostMatrix(t).matmul(x, tokens, bias);
        const ref = reference(t, x, tokens, bias);
        // Scale of the error: Σ |w·x| · 2^-22 (f32 sums of a few hundred terms).
        const wv = toFloat32(t);
        for (let k = 0; k < tokens; k++)
          for (let o = 0; o < rows; o++) {
            let mag = bias ? Math.abs(bias[o]) : 0;
            for (let i = 0; i < c; i++) mag += Math.abs(wv[o * c + i] * x[k * c + i]);
            const j = k * rows + o;
            expect(Math.abs(simd[j] - ref[j])).toBeLessThanOrEqual(mag * 2 ** -20 + 1e-30);
            expect(Math.abs(ts[j] - ref[j])).toBeLessThanOrEqual(mag * 2 ** -20 + 1e-30);
          }
      });
    }
    it(`${name}: a one-hot input reads single weights back exactly (subnormal halves included)`, () => {
      const c = t.shape[1];
      const m = heap.matrix(t);
      const values = toFloat32(t);
      for (const i of [0, 5, 7, c - 1, Math.floor(c / 2) + 1]) {
        const x = new Float32Array(c);
        x[i] = 1;
        const y = m.matmul(x, 1);
        for (let o = 0; o < rows; o++) expect(y[o] + 0).toBe(values[o * c + i] + 0); // +0: a zero code may read −0 in one path
      }
      // Several tokens go through the decoded-row path: the same exact reads.
      const i0 = 3;
      const i1 = c - 2;
      const x2 = new Float32Array(2 * c);
      x2[i0] = 1;
      x2[c + i1] = 1;
      const y2 = m.matmul(x2, 2);
      for (let o = 0; o < rows; o++) {
        expect(y2[o] + 0).toBe(values[o * c + i0] + 0);
        expect(y2[rows + o] + 0).toBe(values[o * c + i1] + 0);
      }
    });
    it(`${name}: decodeRow returns the stored values`, () => {
      const m = heap.matrix(t);
      const out = new Float32Array(t.shape[1]);
      m.decodeRow(3, out);
      expect(Array.from(out)).toEqual(Array.from(toFloat32(t).subarray(3 * t.shape[1], 4 * t.shape[1])));
    });
  }
  it('shapes the SIMD kernels do not take fall back to TypeScript', () => {
    expect(wasmSupports(fromFloat32(new Float32Array(12), [2, 6], 'F16'))).toBe(false);
    expect(wasmSupports(quantizeValues(new Float32Array(48), 2, 24, { dtype: 'Q4', groupSize: 24 }))).toBe(false);
  });
  it('the committed kernelsWasm.ts is kernels.wat compiled by wabt', () => {
    const r = spawnSync(process.execPath, ['scripts/build-wasm.mjs', '--check'], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });
});
