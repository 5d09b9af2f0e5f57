// Typed wrappers around the WGSL kernels: one function per kernel that records a dispatch with its
// parameters and bindings. The model's forward pass and the kernel tests both go through these.

import type { TensorDType } from '../../types.ts';
import { splitGroups, uniforms, weightFormat, ROW_SPLIT, type Recorder, type WeightFormat } from './context.ts';

/** A weight matrix on the GPU: `buffer` holds u32 words, elements stored per `dtype` (see weights.wgsl). */
export interface GpuWeight {
  buffer: GPUBuffer;
  dtype: TensorDType;
  /** Quantized: the f16 scales (and minimums) per group, laid out as weights.wgsl reads them. */
  aux?: GPUBuffer;
  /** Quantized: values per group, and whether the aux words carry minimums (Q4 with offsets). */
  group?: number;
  mins?: boolean;
}

// Plain weights bind their own buffer in the (unread) aux slot: every binding needs a buffer.
function formatOf(w: GpuWeight): WeightFormat {
  return weightFormat(w.dtype, w.group, w.mins);
}

export interface ProjectionArgs {
  weight: GpuWeight;
  rows: number;
  K: number;
  tokens: number;
  x: GPUBuffer;
  y: GPUBuffer;
  bias?: GPUBuffer;
  /** Element offsets (into W, X, Y) and row strides (X, Y); strides default to K and rows. */
  wOffset?: number;
  xOffset?: number;
  xStride?: number;
  yOffset?: number;
  yStride?: number;
  /** Add into Y instead of overwriting it (residual connections). */
  accumulate?: boolean;
}

/** Y = W·X (+bias) for `tokens` rows of X. `kernel` picks matvec (decode) or the tiled matmul (prefill). */
export function project(rec: Recorder, a: ProjectionArgs, dummy: GPUBuffer, kernel?: 'matvec' | 'matmul'): void {
  const which = kernel ?? (a.tokens === 1 ? 'matvec' : 'matmul');
  const p = uniforms(which, {
    rows: a.rows,
    K: a.K,
    tokens: a.tokens,
    wOffset: a.wOffset ?? 0,
    xOffset: a.xOffset ?? 0,
    xStride: a.xStride ?? a.K,
    yOffset: a.yOffset ?? 0,
    yStride: a.yStride ?? a.rows,
    hasBias: a.bias ? 1 : 0,
    accumulate: a.accumulate ? 1 : 0,
  });
  const buffers = [a.weight.buffer, a.x, a.bias ?? dummy, a.y, a.weight.aux ?? a.weight.buffer];
  if (which === 'matvec') {
    const [gx, gy] = splitGroups(a.rows);
    rec.dispatch('matvec', formatOf(a.weight), p, buffers, [gx, gy, a.tokens]);
  } else {
    rec.dispatch('matmul', formatOf(a.weight), p, buffers, [Math.ceil(a.rows / 16), Math.ceil(a.tokens / 16)]);
  }
}

/**
 * out = table[ids] · scale (scale: granitemoe's embedding_multiplier). A table split by rows passes each part
 * with its first row and row count; the part writes only the tokens whose row it holds.
 */
export function embed(
  rec: Recorder,
  table: GpuWeight,
  ids: GPUBuffer,
  idOffset: number,
  tokens: number,
  dim: number,
  out: GPUBuffer,
  scale = 1,
  row0 = 0,
  rowCount = 0xffffffff,
): void {
  const [gx, gy] = splitGroups(Math.ceil((tokens * dim) / 64));
  rec.dispatch(
    'embed',
    formatOf(table),
    uniforms('embed', { tokens, dim, idOffset, scale, row0, rowCount }),
    [table.buffer, ids, out, table.aux ?? table.buffer],
    [gx, gy],
  );
}

export interface RmsNormArgs {
  x: GPUBuffer;
  weight: GPUBuffer; // f32 [len]
  out: GPUBuffer;
  rows: number;
  len: number;
  eps: number;
  inOffset?: number;
  outOffset?: number;
}

export function rmsNorm(rec: Recorder, a: RmsNormArgs): void {
  const p = uniforms('rmsnorm', {
    rows: a.rows,
    len: a.len,
    inOffset: a.inOffset ?? 0,
    outOffset: a.outOffset ?? 0,
    eps: a.eps,
  });
  rec.dispatch('rmsnorm', 'F32', p, [a.x, a.weight, a.out], [a.rows]);
}

/**
 * cos and sin of the rotary angles for positions pos0 .. pos0+tokens-1, [tokens, headDim/2] each.
 * The angle is rounded to f32 as the reference computes it (inv_freq · position in f32).
 */
export function ropeTables(
  invFreq: Float32Array,
  pos0: number,
  tokens: number,
): { cos: Float32Array; sin: Float32Array } {
  const half = invFreq.length;
  const cos = new Float32Array(tokens * half);
  const sin = new Float32Array(tokens * half);
  for (let t = 0; t < tokens; t++) {
    for (let i = 0; i < half; i++) {
      const angle = Math.fround((pos0 + t) * invFreq[i]);
      cos[t * half + i] = Math.cos(angle);
      sin[t * half + i] = Math.sin(angle);
    }
  }
  return { cos, sin };
}

/** Rotates x [tokens, heads, headDim] in place; cos/sin rows start at `tableRow` (see ropeTables). */
export function rope(
  rec: Recorder,
  x: GPUBuffer,
  cos: GPUBuffer,
  sin: GPUBuffer,
  tokens: number,
  heads: number,
  headDim: number,
  tableRow = 0,
): void {
  const [gx, gy] = splitGroups(Math.ceil((tokens * heads * (headDim / 2)) / 64));
  rec.dispatch('rope', 'F32', uniforms('rope', { tokens, heads, headDim, tableRow }), [cos, sin, x], [gx, gy]);
}

export interface AttentionArgs {
  q: GPUBuffer; // [tokens, heads, headDim]
  kCache: GPUBuffer; // [capacity, kvHeads, headDim]
  vCache: GPUBuffer;
  scores: GPUBuffer; // [tokens, heads, scoreStride] scratch
  out: GPUBuffer; // [tokens, heads, headDim]
  tokens: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  pos0: number;
  scoreStride: number; // ≥ pos0 + tokens
  /** Multiplies q·k; default 1/√headDim. */
  scale?: number;
  /** Sliding window: a query sees only the last `window` positions, itself included. Default: all. */
  window?: number | null;
  /** Multiplies the output (granitemoe's residual_multiplier); default 1. */
  outScale?: number;
}

export function attention(rec: Recorder, a: AttentionArgs): void {
  const p = uniforms('attention', {
    tokens: a.tokens,
    heads: a.heads,
    kvHeads: a.kvHeads,
    headDim: a.headDim,
    pos0: a.pos0,
    scoreStride: a.scoreStride,
    scale: a.scale ?? 1 / Math.sqrt(a.headDim),
    window: a.window ?? 0,
    outScale: a.outScale ?? 1,
  });
  rec.dispatch('attention', 'F32', p, [a.q, a.kCache, a.vCache, a.scores, a.out], [a.heads, a.tokens]);
}

/** Routing record layout written by router.wgsl: [count, ids[E], weights[E], probs[E]]. */
export function routeRecordWords(experts: number): number {
  return 1 + 3 * experts;
}

export const ROUTE_MODE = { topk: 0, threshold: 1, dense: 2 } as const;

export interface RouterArgs {
  logits: GPUBuffer; // [tokens, E]
  logitsOffset?: number;
  flags: GPUBuffer; // [layers, E] u32: bit 0 ablate, bit 1 force
  route: GPUBuffer;
  recBase: number; // word offset of token 0's record
  tokens: number;
  experts: number;
  layer: number;
  mode: keyof typeof ROUTE_MODE;
  k: number;
  threshold: number;
  renorm: boolean;
  /** RoutingPlan.ablation: 'zero-weight' lets ablated experts fill leftover top-k slots and stay in dense (weight 0). */
  ablation?: 'excluded' | 'zero-weight';
}

export function route(rec: Recorder, a: RouterArgs): void {
  const p = uniforms('router', {
    tokens: a.tokens,
    experts: a.experts,
    mode: ROUTE_MODE[a.mode],
    k: a.k,
    threshold: a.threshold,
    renorm: a.renorm ? 1 : 0,
    layer: a.layer,
    logitsOffset: a.logitsOffset ?? 0,
    recBase: a.recBase,
    literalAblation: a.ablation === 'zero-weight' ? 1 : 0,
  });
  rec.dispatch('router', 'F32', p, [a.logits, a.flags, a.route], [Math.ceil(a.tokens / 64)]);
}

/** Records [1, 0, w, w] per token for un-routed FFNs: w = 1, or sigmoid(gate logit) when `gateLogits` is given. */
export function fixedRoute(
  rec: Recorder,
  route: GPUBuffer,
  tokens: number,
  gateLogits: GPUBuffer | null,
  dummy: GPUBuffer,
  gateOffset = 0,
): void {
  const p = uniforms('fixedRoute', { tokens, useGate: gateLogits ? 1 : 0, gateOffset });
  rec.dispatch('fixedRoute', 'F32', p, [gateLogits ?? dummy, route], [Math.ceil(tokens / 64)]);
}

export interface ExpertArgs {
  gate: GpuWeight; // [E, f, d]
  up: GpuWeight; // [E, f, d]
  down: GpuWeight; // [E, d, f]
  f: number;
  d: number;
  tokens: number;
  /** Slots dispatched per token: an upper bound on any token's chosen count. */
  slots: number;
  route: GPUBuffer;
  recBase: number;
  recExperts: number;
  x: GPUBuffer; // [tokens, d]
  act: GPUBuffer; // [tokens, slots, f] scratch
  h: GPUBuffer; // [tokens, d] residual, accumulated into
  xOffset?: number;
  hOffset?: number;
  /** Multiplies what is added into h (granitemoe's residual_multiplier); default 1. */
  outScale?: number;
  /**
   * A 16-byte STORAGE | INDIRECT buffer: when given, the gate/up kernel is dispatched for the most slots any
   * token actually uses (read from the routing records on the GPU) rather than for `slots`.
   */
  indirectArgs?: GPUBuffer;
  /** The experts these stacked weights hold (a stack larger than one buffer is split): default all. */
  eBase?: number;
  eCount?: number;
}

/** H += Σ_chosen w_e · down_e(silu(gate_e·x) · up_e·x), reading only the chosen experts' weights. */
export function experts(rec: Recorder, a: ExpertArgs): void {
  const gateFormat = formatOf(a.gate);
  const upFormat = formatOf(a.up);
  if (gateFormat.code !== upFormat.code || gateFormat.group !== upFormat.group)
    throw new Error('gate and up weights of one block must share a storage format');
  const eBase = a.eBase ?? 0;
  const eCount = a.eCount ?? 0xffffffff;
  const gu = uniforms('expertGateUp', {
    f: a.f,
    d: a.d,
    tokens: a.tokens,
    slots: a.slots,
    recBase: a.recBase,
    recExperts: a.recExperts,
    xOffset: a.xOffset ?? 0,
    eBase,
    eCount,
  });
  const [fx, fz] = splitGroups(a.f);
  const guBuffers = [
    a.gate.buffer,
    a.up.buffer,
    a.x,
    a.route,
    a.act,
    a.gate.aux ?? a.gate.buffer,
    a.up.aux ?? a.up.buffer,
  ];
  if (a.indirectArgs) {
    rec.dispatch(
      'expertArgs',
      'F32',
      uniforms('expertArgs', {
        tokens: a.tokens,
        recBase: a.recBase,
        recExperts: a.recExperts,
        slots: a.slots,
        groupsX: fx,
        groupsZ: fz,
        argsOffset: 0,
      }),
      [a.route, a.indirectArgs],
      [1],
    );
    rec.dispatchIndirect('expertGateUp', gateFormat, gu, guBuffers, a.indirectArgs, 0);
  } else {
    rec.dispatch('expertGateUp', gateFormat, gu, guBuffers, [fx, a.slots * a.tokens, fz]);
  }
  const dn = uniforms('expertDown', {
    f: a.f,
    d: a.d,
    tokens: a.tokens,
    slots: a.slots,
    recBase: a.recBase,
    recExperts: a.recExperts,
    hOffset: a.hOffset ?? 0,
    outScale: a.outScale ?? 1,
    eBase,
    eCount,
  });
  const [dx, dz] = splitGroups(a.d);
  rec.dispatch(
    'expertDown',
    formatOf(a.down),
    dn,
    [a.down.buffer, a.act, a.route, a.h, a.down.aux ?? a.down.buffer],
    [dx, a.tokens, dz],
  );
}

export { ROW_SPLIT };
