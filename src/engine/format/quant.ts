// Quantized weight storage (the Q8 / Q4 QuantTensor of types.ts): quantize a matrix on load,
// dequantize it back, count the bytes each choice holds. Plain typed-array code, no platform APIs.
//
// The formats (group-wise along each row, i.e. along the input axis of a PyTorch Linear [out, in]):
//   Q8: symmetric int8, one f16 scale per group of 32:            8 + 16/32 = 8.5 bits per value
//   Q4: 4-bit codes, one f16 scale per group of 32, centred at 8: 4 + 16/32 = 4.5 bits per value
//       (or, with offsets, one f16 scale and one f16 minimum per group of 64: the same 4.5 bits)
// Scales are rounded to f16 first and the codes are computed against the rounded scale, so the
// dequantized value is exactly code · f32(scale) (+ f32(min)), what every kernel computes.

import type {
  FfnWeights,
  LayerWeights,
  MoeWeights,
  PlainTensor,
  QuantDType,
  QuantScheme,
  QuantTensor,
  Tensor,
  WeightSet,
} from '../types.ts';
import { f16BitsToFloat, floatToF16Bits, numelOf, toFloat32 } from './dtype.ts';
import { MoeError } from '../errors.ts';

export const QUANT_SCHEMES: readonly QuantScheme[] = ['none', 'q8', 'q4'];

export interface QuantOptions {
  dtype: QuantDType;
  /** Values per scale along a row; must be even and divide the row (see groupSizeFor). */
  groupSize: number;
  /** Q4 only: store a per-group minimum (asymmetric codes 0..15) instead of centring at 8. */
  offsets?: boolean;
}

/** The default format of each scheme (chosen by measurement: see bench/README.md "What quantization costs"). */
export const SCHEME_FORMAT: Record<Exclude<QuantScheme, 'none'>, QuantOptions> = {
  q8: { dtype: 'Q8', groupSize: 32 },
  q4: { dtype: 'Q4', groupSize: 32 },
};

export function isQuantized(t: Tensor): t is QuantTensor {
  return t.dtype === 'Q8' || t.dtype === 'Q4';
}

/** A checkpoint tensor, or a readable error for code that only handles stored (unquantized) tensors. */
export function plainTensor(t: Tensor, what: string): PlainTensor {
  if (isQuantized(t))
    throw new Error(`${what} needs weights as stored in the checkpoint, but this one is quantized (${t.dtype})`);
  return t;
}

export function parseQuantScheme(value: string): QuantScheme | null {
  return (QUANT_SCHEMES as readonly string[]).includes(value) ? (value as QuantScheme) : null;
}

/** Bytes a tensor holds in memory: packed values plus scales and minimums. */
export function tensorBytes(t: Tensor): number {
  if (!isQuantized(t)) return t.bytes.byteLength;
  return t.bytes.byteLength + t.scales.byteLength + (t.mins?.byteLength ?? 0);
}

/** The group size actually used for a row of `cols` values: the requested one, halved until it divides cols (≥ 2). */
export function groupSizeFor(cols: number, requested: number): number | null {
  let g = Math.min(requested, cols);
  while (g >= 2 && (cols % g !== 0 || g % 2 !== 0)) g--;
  return g >= 2 ? g : null;
}

const F16_MAX = 65504;

function f16(value: number): number {
  if (!(Math.abs(value) <= F16_MAX)) {
    throw new QuantizationError(
      Number.isFinite(value)
        ? `A group of weights reaches ${value.toExponential(2)}, beyond what an f16 scale can express; these weights cannot be quantized.`
        : 'The weights contain Inf or NaN values, which cannot be quantized.',
      'Load the model without quantization (--quantize none).',
    );
  }
  return floatToF16Bits(value);
}

/** Round half away from zero, the same in every implementation (numpy: sign(v)·floor(|v| + 0.5)). */
function roundHalfAway(v: number): number {
  return v < 0 ? -Math.floor(-v + 0.5) : Math.floor(v + 0.5);
}

/** Quantize a [rows, cols] matrix given as f32 values. */
export function quantizeValues(values: Float32Array, rows: number, cols: number, o: QuantOptions): QuantTensor {
  const G = o.groupSize;
  if (values.length !== rows * cols)
    throw new Error(`quantize: ${values.length} values do not fill [${rows}, ${cols}]`);
  if (G < 2 || G % 2 !== 0 || cols % G !== 0)
    throw new Error(`quantize: group size ${G} must be even and divide the row width ${cols}`);
  for (let i = 0; i < values.length; i++) {
    if (!Number.isFinite(values[i]))
      throw new QuantizationError(
        'The weights contain Inf or NaN values, which cannot be quantized.',
        'Load the model without quantization (--quantize none).',
      );
  }
  const groups = (rows * cols) / G;
  const scales = new Uint16Array(groups);
  if (o.dtype === 'Q8') {
    const bytes = new Uint8Array(rows * cols);
    const codes = new Int8Array(bytes.buffer);
    for (let g = 0; g < groups; g++) {
      const base = g * G;
      let amax = 0;
      for (let i = 0; i < G; i++) amax = Math.max(amax, Math.abs(values[base + i]));
      const sBits = f16(amax / 127);
      scales[g] = sBits;
      const s = f16BitsToFloat(sBits);
      if (s === 0) continue; // all (near) zero: codes stay 0
      for (let i = 0; i < G; i++) codes[base + i] = Math.max(-127, Math.min(127, roundHalfAway(values[base + i] / s)));
    }
    return { dtype: 'Q8', shape: [rows, cols], bytes, groupSize: G, scales };
  }
  const bytes = new Uint8Array((rows * cols) / 2);
  const half = G / 2;
  // Code k of group g: byte g·G/2 + (k mod G/2), low nibble for the first half of the group, high for the second.
  const put = (n: number, code: number) => {
    const g = (n / G) | 0;
    const k = n - g * G;
    bytes[g * half + (k % half)] |= code << (k < half ? 0 : 4);
  };
  if (o.offsets) {
    const mins = new Uint16Array(groups);
    for (let g = 0; g < groups; g++) {
      const base = g * G;
      let lo = Infinity;
      let hi = -Infinity;
      for (let i = 0; i < G; i++) {
        lo = Math.min(lo, values[base + i]);
        hi = Math.max(hi, values[base + i]);
      }
      const mBits = f16(lo);
      mins[g] = mBits;
      const m = f16BitsToFloat(mBits);
      const sBits = f16((hi - m) / 15);
      scales[g] = sBits;
      const s = f16BitsToFloat(sBits);
      if (s === 0) continue;
      for (let i = 0; i < G; i++)
        put(base + i, Math.max(0, Math.min(15, Math.floor((values[base + i] - m) / s + 0.5))));
    }
    return { dtype: 'Q4', shape: [rows, cols], bytes, groupSize: G, scales, mins };
  }
  for (let g = 0; g < groups; g++) {
    const base = g * G;
    // The value of largest magnitude maps exactly to code 0 (−8 · scale), its sign kept (as llama.cpp's Q4_0).
    let extreme = 0;
    for (let i = 0; i < G; i++) if (Math.abs(values[base + i]) > Math.abs(extreme)) extreme = values[base + i];
    const sBits = f16(extreme / -8);
    scales[g] = sBits;
    const s = f16BitsToFloat(sBits);
    if (s === 0) {
      for (let i = 0; i < G; i++) put(base + i, 8);
      continue;
    }
    for (let i = 0; i < G; i++) put(base + i, Math.max(0, Math.min(15, Math.floor(values[base + i] / s + 8.5))));
  }
  return { dtype: 'Q4', shape: [rows, cols], bytes, groupSize: G, scales };
}

/** Quantize a stored 2-D tensor. */
export function quantizeTensor(t: PlainTensor, o: QuantOptions): QuantTensor {
  if (t.shape.length !== 2) throw new Error(`quantize: only matrices are quantized, got shape [${t.shape}]`);
  return quantizeValues(toFloat32(t), t.shape[0], t.shape[1], o);
}

/** Values of rows [row0, row0 + count) of a quantized matrix, written into out (f32). */
export function dequantizeRows(t: QuantTensor, row0: number, count: number, out: Float32Array): void {
  const cols = t.shape[1];
  const G = t.groupSize;
  const first = row0 * cols;
  const n = count * cols;
  if (out.length < n) throw new Error('dequantizeRows: output too small');
  if (t.dtype === 'Q8') {
    const codes = new Int8Array(t.bytes.buffer, t.bytes.byteOffset, t.bytes.byteLength);
    for (let i = 0; i < n; i++) out[i] = codes[first + i] * halfToFloat(t.scales[((first + i) / G) | 0]);
    return;
  }
  const b = t.bytes;
  const half = G / 2;
  for (let i = 0; i < n; i++) {
    const g = ((first + i) / G) | 0;
    const k = first + i - g * G;
    const code = (b[g * half + (k % half)] >> (k < half ? 0 : 4)) & 15;
    out[i] = t.mins ? code * halfToFloat(t.scales[g]) + halfToFloat(t.mins[g]) : (code - 8) * halfToFloat(t.scales[g]);
  }
}

/** The whole quantized matrix as f32 values. */
export function dequantize(t: QuantTensor): Float32Array {
  const out = new Float32Array(numelOf(t.shape));
  dequantizeRows(t, 0, t.shape[0], out);
  return out;
}

let halfTable: Float32Array | null = null;
function halfToFloat(h: number): number {
  if (!halfTable) {
    halfTable = new Float32Array(65536);
    for (let i = 0; i < 65536; i++) halfTable[i] = f16BitsToFloat(i);
  }
  return halfTable[h];
}

// ---------------------------------------------------------------------------------------------
// Whole models

/** Which matrices a scheme quantizes: every 2-D weight except the routers (and qwen's shared-expert gate). */
export function quantizeWeights(weights: WeightSet, scheme: QuantScheme): WeightSet {
  if (scheme === 'none') return weights;
  const format = SCHEME_FORMAT[scheme];
  const done = new Map<Tensor, Tensor>(); // tied embeddings: one Tensor, quantized once
  const q = (t: Tensor): Tensor => {
    let r = done.get(t);
    if (r) return r;
    if (isQuantized(t) || t.shape.length !== 2) r = t;
    else {
      const g = groupSizeFor(t.shape[1], format.groupSize);
      r = g === null ? t : quantizeTensor(t, { ...format, groupSize: g });
    }
    done.set(t, r);
    return r;
  };
  const ffn = (f: FfnWeights): FfnWeights => ({ gate: q(f.gate), up: q(f.up), down: q(f.down) });
  const layers = weights.layers.map((l): LayerWeights => {
    const out: LayerWeights = { ...l, q: q(l.q), k: q(l.k), v: q(l.v), o: q(l.o) };
    if (l.mlp) out.mlp = ffn(l.mlp);
    if (l.moe) {
      // Routers stay as stored: their logits decide which experts run, and a tie broken differently by
      // rounding changes the whole computation downstream; they are E·d values, a rounding error of the model's size.
      const moe: MoeWeights = { ...l.moe, experts: l.moe.experts.map(ffn) };
      if (l.moe.sharedExpert) moe.sharedExpert = ffn(l.moe.sharedExpert);
      out.moe = moe;
    }
    return out;
  });
  return { embed: q(weights.embed), layers, finalNorm: weights.finalNorm, lmHead: q(weights.lmHead) };
}

/** Every tensor of a WeightSet once (tied embeddings counted once). */
export function allTensors(weights: WeightSet): Tensor[] {
  const seen = new Set<Tensor>();
  const add = (t: Tensor | undefined) => {
    if (t) seen.add(t);
  };
  const ffn = (f: FfnWeights | undefined) => {
    if (f) [f.gate, f.up, f.down].forEach(add);
  };
  add(weights.embed);
  add(weights.lmHead);
  add(weights.finalNorm);
  for (const l of weights.layers) {
    [l.attnNorm, l.q, l.k, l.v, l.o, l.qBias, l.kBias, l.vBias, l.qNorm, l.kNorm, l.ffnNorm].forEach(add);
    ffn(l.mlp);
    if (l.moe) {
      add(l.moe.router);
      l.moe.experts.forEach(ffn);
      ffn(l.moe.sharedExpert);
      add(l.moe.sharedExpertGate);
    }
  }
  return [...seen];
}

/** Bytes the weights hold in memory as they are. */
export function weightSetBytes(weights: WeightSet): number {
  return allTensors(weights).reduce((s, t) => s + tensorBytes(t), 0);
}

/** Bytes one stored tensor would hold under a scheme, computed from its shape alone (nothing is quantized). */
export function bytesUnderScheme(t: Tensor, scheme: QuantScheme, isRouter = false): number {
  if (scheme === 'none' || isRouter || t.shape.length !== 2 || isQuantized(t)) return tensorBytes(t);
  const [rows, cols] = t.shape;
  const format = SCHEME_FORMAT[scheme];
  const g = groupSizeFor(cols, format.groupSize);
  if (g === null) return tensorBytes(t);
  const groups = (rows * cols) / g;
  const codes = format.dtype === 'Q8' ? rows * cols : (rows * cols) / 2;
  return codes + groups * 2 * (format.offsets ? 2 : 1);
}

/** Memory the weights need under each scheme, without quantizing anything (for a settings menu). */
export function weightBytesBySchemes(weights: WeightSet): Record<QuantScheme, number> {
  const routers = new Set<Tensor>();
  for (const l of weights.layers) {
    if (l.moe) routers.add(l.moe.router);
    if (l.moe?.sharedExpertGate) routers.add(l.moe.sharedExpertGate);
  }
  const all = allTensors(weights);
  const sum = (scheme: QuantScheme) => all.reduce((s, t) => s + bytesUnderScheme(t, scheme, routers.has(t)), 0);
  return { none: sum('none'), q8: sum('q8'), q4: sum('q4') };
}

/** A quantization the chosen backend cannot run, or weights that cannot be quantized: one sentence and a hint. */
export class QuantizationError extends MoeError {
  constructor(message: string, hint = 'Load the model without quantization (--quantize none), or on the CPU backend.') {
    super(message, hint);
    this.name = 'QuantizationError';
  }
}

/** Weights that do not fit where a backend must hold them; refused before anything is allocated. */
export class ModelTooLargeError extends MoeError {
  constructor(message: string, hint: string) {
    super(message, hint);
    this.name = 'ModelTooLargeError';
  }
}

function gib(n: number): string {
  return `${(n / 2 ** 30).toFixed(2)} GiB`;
}

/** A hint naming the schemes under which the weights would take at most `limit` bytes. */
export function fitHint(weights: WeightSet, limit: number, otherwise: string): string {
  const sizes = weightBytesBySchemes(weights);
  const fits = (['q8', 'q4'] as const).filter((s) => sizes[s] <= limit);
  return fits.length > 0
    ? `Quantize on load: ${fits.map((s) => `${s} needs ${gib(sizes[s])}`).join(', ')}.`
    : `Even at q4 the weights need ${gib(sizes.q4)}. ${otherwise}`;
}

export { gib as formatGiB };

/**
 * Rows [row0, row0 + count) of a 2-D tensor as a tensor of its own: views, no copy (quantized rows are whole
 * groups, since a group never crosses a row).
 */
export function tensorRows(t: Tensor, row0: number, count: number): Tensor {
  if (t.shape.length !== 2) throw new Error(`tensorRows: a matrix is needed, got shape [${t.shape}]`);
  const cols = t.shape[1];
  if (!isQuantized(t)) {
    const rowBytes = cols * (t.dtype === 'F32' ? 4 : 2);
    return {
      dtype: t.dtype,
      shape: [count, cols],
      bytes: t.bytes.subarray(row0 * rowBytes, (row0 + count) * rowBytes),
    };
  }
  const rowBytes = t.dtype === 'Q8' ? cols : cols / 2;
  const groupsPerRow = cols / t.groupSize;
  const g0 = row0 * groupsPerRow;
  const g1 = (row0 + count) * groupsPerRow;
  return {
    dtype: t.dtype,
    shape: [count, cols],
    bytes: t.bytes.subarray(row0 * rowBytes, (row0 + count) * rowBytes),
    groupSize: t.groupSize,
    scales: t.scales.subarray(g0, g1),
    ...(t.mins ? { mins: t.mins.subarray(g0, g1) } : {}),
  };
}
