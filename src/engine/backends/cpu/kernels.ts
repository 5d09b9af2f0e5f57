// The numeric building blocks of the CPU forward pass besides the weight products (matrix.ts, wasm/):
// activations are row-major Float32Array [rows, cols]. Sums run in f64 (JS numbers) and are rounded
// to f32 when stored, which keeps us within float error of PyTorch's f32 kernels.

import type { Llama3RopeScaling } from '../../types.ts';

/** RMSNorm of each `width`-wide group of x: x · rsqrt(mean(x²) + eps) · weight. */
export function rmsNorm(x: Float32Array, width: number, weight: Float32Array, eps: number): Float32Array {
  const y = new Float32Array(x.length);
  for (let base = 0; base < x.length; base += width) {
    let ss = 0;
    for (let i = 0; i < width; i++) ss += x[base + i] * x[base + i];
    // PyTorch rounds the normalised value to f32 before multiplying by the weight.
    const inv = 1 / Math.sqrt(ss / width + eps);
    for (let i = 0; i < width; i++) y[base + i] = weight[i] * Math.fround(x[base + i] * inv);
  }
  return y;
}

/**
 * inv_freq[i] = theta^(-2i/headDim), rounded to f32 like the Hugging Face rotary embedding; with Llama 3.1
 * scaling, each frequency is then slowed, kept or blended by its wavelength (docs/formats.md).
 */
export function ropeInverseFrequencies(
  headDim: number,
  theta: number,
  scaling: Llama3RopeScaling | null = null,
): Float32Array {
  const half = headDim / 2;
  const inv = new Float32Array(half);
  for (let i = 0; i < half; i++) inv[i] = 1 / Math.fround(theta ** Math.fround((2 * i) / headDim));
  if (scaling) {
    const { factor, lowFreqFactor: low, highFreqFactor: high, originalMaxPositions: L0 } = scaling;
    for (let i = 0; i < half; i++) {
      const f = inv[i];
      const wavelength = (2 * Math.PI) / f;
      if (wavelength > L0 / low) inv[i] = f / factor;
      else if (wavelength >= L0 / high) {
        const smooth = (L0 / wavelength - low) / (high - low);
        inv[i] = (1 - smooth) * (f / factor) + smooth * f;
      }
    }
  }
  return inv;
}

/**
 * Rotary embedding, "rotate half" convention, in place on x: [rows, numHeads * headDim];
 * row r sits at sequence position startPos + r.
 * out[j] = x[j]·cos − x[j+h]·sin and out[j+h] = x[j+h]·cos + x[j]·sin for j < h = headDim/2.
 */
export function applyRope(
  x: Float32Array,
  rows: number,
  numHeads: number,
  headDim: number,
  startPos: number,
  invFreq: Float32Array,
): void {
  const half = headDim / 2;
  const cos = new Float32Array(half);
  const sin = new Float32Array(half);
  for (let r = 0; r < rows; r++) {
    const pos = startPos + r;
    for (let i = 0; i < half; i++) {
      const angle = Math.fround(pos * invFreq[i]); // the angle is an f32 product in PyTorch too
      cos[i] = Math.cos(angle);
      sin[i] = Math.sin(angle);
    }
    for (let h = 0; h < numHeads; h++) {
      const base = (r * numHeads + h) * headDim;
      for (let i = 0; i < half; i++) {
        const a = x[base + i];
        const b = x[base + i + half];
        x[base + i] = a * cos[i] - b * sin[i];
        x[base + i + half] = b * cos[i] + a * sin[i];
      }
    }
  }
}

export function silu(v: number): number {
  return v / (1 + Math.exp(-v));
}

export function sigmoid(v: number): number {
  return 1 / (1 + Math.exp(-v));
}

/** In place: a[i] += b[i] · scale (the product rounded to f32 first, as PyTorch does). */
export function addInPlace(a: Float32Array, b: Float32Array, scale = 1): void {
  if (scale === 1) {
    for (let i = 0; i < a.length; i++) a[i] += b[i];
  } else {
    for (let i = 0; i < a.length; i++) a[i] += Math.fround(b[i] * scale);
  }
}
