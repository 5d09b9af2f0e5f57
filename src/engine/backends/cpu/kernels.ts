// The numeric building blocks of the CPU forward pass. Activations are row-major Float32Array
// [rows, cols]; weights are PyTorch Linear layout [out, in]. Sums run in f64 (JS numbers) and
// are rounded to f32 when stored, which keeps us within float error of PyTorch's f32 kernels.

import type { Llama3RopeScaling } from '../../types.ts';

/**
 * y[r, o] = Σ_i x[r, i] · w[o, i] (+ bias[o]).  x: [rows, inDim], w: [outDim, inDim].
 * The weight row is the outer loop so each row of w is read once for all `rows` tokens
 * (prefill reuses it from cache); the inner loop walks contiguous memory of both operands.
 */
export function matmulT(x: Float32Array, rows: number, w: Float32Array, outDim: number, inDim: number, bias?: Float32Array): Float32Array {
  const y = new Float32Array(rows * outDim);
  const tail = inDim & ~7;
  for (let o = 0; o < outDim; o++) {
    const wo = o * inDim;
    const b = bias ? bias[o] : 0;
    for (let r = 0; r < rows; r++) {
      const xr = r * inDim;
      // Independent accumulators let the JIT overlap the multiply-adds.
      let s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0, s6 = 0, s7 = 0;
      let i = 0;
      for (; i < tail; i += 8) {
        s0 += x[xr + i] * w[wo + i];
        s1 += x[xr + i + 1] * w[wo + i + 1];
        s2 += x[xr + i + 2] * w[wo + i + 2];
        s3 += x[xr + i + 3] * w[wo + i + 3];
        s4 += x[xr + i + 4] * w[wo + i + 4];
        s5 += x[xr + i + 5] * w[wo + i + 5];
        s6 += x[xr + i + 6] * w[wo + i + 6];
        s7 += x[xr + i + 7] * w[wo + i + 7];
      }
      for (; i < inDim; i++) s0 += x[xr + i] * w[wo + i];
      y[r * outDim + o] = s0 + s1 + s2 + s3 + s4 + s5 + s6 + s7 + b;
    }
  }
  return y;
}

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
 * scaling, each frequency is then slowed, kept or blended by its wavelength (REFERENCE §7).
 */
export function ropeInverseFrequencies(headDim: number, theta: number, scaling: Llama3RopeScaling | null = null): Float32Array {
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
export function applyRope(x: Float32Array, rows: number, numHeads: number, headDim: number, startPos: number, invFreq: Float32Array): void {
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
