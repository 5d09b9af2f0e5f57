// A model resident on the GPU: weights uploaded once, a forward pass recorded as one command buffer,
// routing decided on the GPU, and one readback per forward carrying logits and every layer's routing.

import { checkForwardInput } from '../../run/errors.ts';
import { validateRoutingPlan } from '../../routing/index.ts';
import { toFloat32 } from '../../format/index.ts';
import { isQuantized, tensorBytes, tensorRows } from '../../format/quant.ts';
import { ropeInverseFrequencies } from '../cpu/kernels.ts';
import type {
  FfnWeights,
  ForwardOptions,
  ForwardResult,
  KvCache,
  LoadedModel,
  ModelSpec,
  QuantTensor,
  RoutingPlan,
  Tensor,
  TokenRouting,
  WeightSet,
} from '../../types.ts';
import { Recorder, USAGE, type GpuContext } from './context.ts';
import { WebGpuTooLargeError, WebGpuUnsupportedError } from './errors.ts';
import * as K from './kernels.ts';
import type { GpuWeight } from './kernels.ts';

const STORAGE = USAGE.STORAGE | USAGE.COPY_SRC | USAGE.COPY_DST;
/** Tokens processed per pass through the layers; bounds the scratch buffers of a long prefill. */
const MAX_CHUNK = 128;
/** The router kernel keeps its chosen set in 8 × 32 bits. */
const MAX_EXPERTS = 256;

/** Experts [e0, e0 + count) of a stack, in buffers of their own (a stack larger than one buffer is split). */
interface ExpertPart {
  gate: GpuWeight;
  up: GpuWeight;
  down: GpuWeight;
  e0: number;
  count: number;
}

/** Rows [row0, row0 + rows) of a matrix too large for one buffer (embedding tables and LM heads of large vocabularies). */
interface RowPart {
  weight: GpuWeight;
  row0: number;
  rows: number;
}

/** An FFN block as stacked expert matrices: gate/up [n, f, d], down [n, d, f], in one or more parts. */
interface GpuFfn {
  parts: ExpertPart[];
  f: number;
  count: number;
  /** Bytes of one expert's three matrices. */
  bytesPerExpert: number;
}

interface GpuLayer {
  attnNorm: GPUBuffer;
  ffnNorm: GPUBuffer;
  q: GpuWeight;
  k: GpuWeight;
  v: GpuWeight;
  o: GpuWeight;
  qBias?: GPUBuffer;
  kBias?: GPUBuffer;
  vBias?: GPUBuffer;
  qNorm?: GPUBuffer;
  kNorm?: GPUBuffer;
  mlp?: GpuFfn;
  router?: GpuWeight;
  experts?: GpuFfn;
  shared?: GpuFfn;
  sharedGate?: GpuWeight;
}

/** Work done by the last forward call, for benchmarks (bytes of weights read, by kind). */
export interface WebGpuForwardStats {
  tokens: number;
  /** Bytes of routed-expert weights read, summed over tokens, MoE layers and chosen experts. */
  expertBytesRead: number;
  /** The same if every token had run all experts (dense). */
  denseExpertBytes: number;
  /** Everything else one token reads: attention, norms, routers, dense FFNs, shared experts, one embedding row, LM head. */
  nonExpertBytesPerToken: number;
  /** nonExpertBytesPerToken + expertBytesRead / tokens: the weight traffic of one decode step. */
  weightBytesPerToken: number;
  /** Compute dispatches the forward call recorded (one command buffer). */
  dispatches: number;
}

class WebGpuKvCache implements KvCache {
  length = 0;
  disposed = false;
  constructor(
    readonly owner: WebGpuModel,
    readonly capacity: number,
    readonly keys: GPUBuffer[],
    readonly values: GPUBuffer[],
  ) {}
  truncate(length: number): void {
    if (!Number.isInteger(length) || length < 0 || length > this.length) {
      throw new RangeError(`KV cache holds ${this.length} positions; cannot truncate to ${length}`);
    }
    this.length = length;
  }
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const b of [...this.keys, ...this.values]) this.owner.ctx.destroyBuffer(b);
    this.owner.caches.delete(this);
    this.length = 0;
  }
}

function bytesOf(t: Tensor): number {
  return tensorBytes(t);
}

/** Bytes a tensor takes on the GPU: 1-D vectors (norms, biases) are uploaded as f32, matrices as stored or quantized. */
function heldBytes(t: Tensor): number {
  return t.shape.length === 1 ? 4 * t.shape[0] : tensorBytes(t);
}

/**
 * The aux words weights.wgsl reads for quantized matrices (concatenated in order when experts are stacked):
 * without minimums the f16 scales as they are (two per word); with minimums one (scale, min) pair per word.
 */
function auxWords(parts: QuantTensor[]): Uint16Array {
  const groups = parts.reduce((n, t) => n + t.scales.length, 0);
  const withMins = parts[0].mins !== undefined;
  const out = new Uint16Array(Math.max(2, withMins ? 2 * groups : groups + (groups & 1)));
  let at = 0;
  for (const t of parts) {
    if (withMins) {
      for (let g = 0; g < t.scales.length; g++) {
        out[2 * (at + g)] = t.scales[g];
        out[2 * (at + g) + 1] = t.mins![g];
      }
    } else {
      out.set(t.scales, at);
    }
    at += t.scales.length;
  }
  return out;
}

function formatBytes(n: number): string {
  if (n >= 2 ** 30) return `${(n / 2 ** 30).toFixed(2)} GiB`;
  if (n >= 2 ** 20) return `${(n / 2 ** 20).toFixed(1)} MiB`;
  return n >= 2 ** 10 ? `${(n / 2 ** 10).toFixed(1)} KiB` : `${n} B`;
}

export class WebGpuModel implements LoadedModel {
  readonly backend = 'webgpu' as const;
  readonly caches = new Set<WebGpuKvCache>();
  private owned: GPUBuffer[] = [];
  private scratch = new Map<string, GPUBuffer>();
  private layers: GpuLayer[] = [];
  private embed!: RowPart[];
  private lmHead!: RowPart[];
  private finalNorm!: GPUBuffer;
  private invFreq!: Float32Array;
  private dummy!: GPUBuffer;
  private moeLayerIndex: number[] = [];
  private nonExpertBytesPerToken = 0;
  private maxFfnWidth = 0;
  private disposed = false;
  lastStats: WebGpuForwardStats | null = null;

  constructor(
    readonly ctx: GpuContext,
    readonly spec: ModelSpec,
    weights: WeightSet,
    private onDispose: (m: WebGpuModel) => void,
  ) {
    this.checkFits(weights);
    try {
      this.upload(weights);
    } catch (e) {
      this.releaseAll();
      throw e;
    }
  }

  // -------------------------------------------------------------------------------------------
  // Loading

  /** Refuses, before allocating anything, a model whose buffers exceed the device's limits. */
  private checkFits(w: WeightSet): void {
    const spec = this.spec;
    const limit = this.ctx.maxWeightBufferBytes;
    const check = (what: string, bytes: number) => {
      if (bytes > limit) {
        throw new WebGpuTooLargeError(
          `The model's ${what} take ${formatBytes(bytes)}, more than this GPU's largest buffer (${formatBytes(limit)}).`,
        );
      }
    };
    if (spec.moe && spec.moe.numExperts > MAX_EXPERTS) {
      throw new WebGpuUnsupportedError(
        `The model has ${spec.moe.numExperts} experts per layer; the WebGPU backend handles at most ${MAX_EXPERTS}.`,
      );
    }
    this.checkShapes(w);
    // Embedding tables, LM heads and expert stacks larger than one buffer are split (by rows, by experts):
    // only a single row or a single expert's matrix must fit.
    check('token embeddings (one row)', bytesOf(w.embed) / w.embed.shape[0]);
    check('LM head (one row)', bytesOf(w.lmHead) / w.lmHead.shape[0]);
    w.layers.forEach((layer, l) => {
      for (const [name, t] of [
        ['query', layer.q],
        ['key', layer.k],
        ['value', layer.v],
        ['output', layer.o],
      ] as const) {
        check(`layer ${l} ${name} projection weights`, bytesOf(t));
      }
      for (const [what, ffn] of [
        ['MLP', layer.mlp],
        ['shared expert', layer.moe?.sharedExpert],
        ['experts (one expert)', layer.moe?.experts[0]],
      ] as const) {
        if (!ffn) continue;
        for (const part of ['gate', 'up', 'down'] as const)
          check(`layer ${l} ${what} ${part} weights`, bytesOf(ffn[part]));
      }
    });
  }

  /** Rows per part so that each part's codes (and scales) fit one buffer; a multiple of 4 rows keeps parts word-aligned. */
  private rowsPerPart(t: Tensor): number {
    const rows = t.shape[0];
    const fit = Math.floor(this.ctx.maxWeightBufferBytes / (t.bytes.byteLength / rows));
    return fit >= rows ? rows : Math.max(1, fit >= 4 ? fit - (fit % 4) : fit);
  }

  /** A matrix in as many row parts as the buffer limit needs (usually one). */
  private rowParts(t: Tensor, label: string): RowPart[] {
    const rows = t.shape[0];
    const per = this.rowsPerPart(t);
    if (per >= rows) return [{ weight: this.matrix(t, label), row0: 0, rows }];
    const parts: RowPart[] = [];
    for (let row0 = 0; row0 < rows; row0 += per) {
      const n = Math.min(per, rows - row0);
      parts.push({ weight: this.matrix(tensorRows(t, row0, n), `${label}[${row0}..${row0 + n})`), row0, rows: n });
    }
    return parts;
  }

  /** Shapes the kernels rely on; a mismatch would otherwise read the wrong elements silently. */
  private checkShapes(w: WeightSet): void {
    const s = this.spec;
    const d = s.hiddenSize;
    const expect = (name: string, t: Tensor | undefined, shape: number[]) => {
      if (!t) throw new Error(`${name} is missing`);
      if (t.shape.length !== shape.length || t.shape.some((n, i) => n !== shape[i])) {
        throw new Error(`${name} has shape [${t.shape}] but the model spec needs [${shape}]`);
      }
    };
    if (w.layers.length !== s.numLayers)
      throw new Error(`weights have ${w.layers.length} layers but the model spec says ${s.numLayers}`);
    if (s.numHeads % s.numKvHeads !== 0 || s.headDim % 2 !== 0)
      throw new Error(`unsupported head layout: ${s.numHeads} heads, ${s.numKvHeads} kv heads, head_dim ${s.headDim}`);
    expect('embed', w.embed, [s.vocabSize, d]);
    expect('lm_head', w.lmHead, [s.vocabSize, d]);
    expect('final norm', w.finalNorm, [d]);
    const qW = s.numHeads * s.headDim;
    const kvW = s.numKvHeads * s.headDim;
    const ffn = (name: string, x: FfnWeights) => {
      const f = x.gate.shape[0];
      expect(`${name}.gate`, x.gate, [f, d]);
      expect(`${name}.up`, x.up, [f, d]);
      expect(`${name}.down`, x.down, [d, f]);
    };
    w.layers.forEach((layer, l) => {
      const p = `layer ${l}`;
      expect(`${p} attention norm`, layer.attnNorm, [d]);
      expect(`${p} ffn norm`, layer.ffnNorm, [d]);
      expect(`${p} q`, layer.q, [qW, d]);
      expect(`${p} k`, layer.k, [kvW, d]);
      expect(`${p} v`, layer.v, [kvW, d]);
      expect(`${p} o`, layer.o, [d, qW]);
      if (layer.qBias) expect(`${p} q bias`, layer.qBias, [qW]);
      if (layer.kBias) expect(`${p} k bias`, layer.kBias, [kvW]);
      if (layer.vBias) expect(`${p} v bias`, layer.vBias, [kvW]);
      if (s.qkNorm !== 'none') {
        const [qn, kn] = s.qkNorm === 'per_head' ? [s.headDim, s.headDim] : [qW, kvW];
        expect(`${p} q norm`, layer.qNorm, [qn]);
        expect(`${p} k norm`, layer.kNorm, [kn]);
      }
      if (layer.mlp) ffn(`${p} mlp`, layer.mlp);
      if (layer.moe) {
        const E = s.moe?.numExperts ?? 0;
        if (layer.moe.experts.length !== E)
          throw new Error(`${p} has ${layer.moe.experts.length} experts but the model spec says ${E}`);
        expect(`${p} router`, layer.moe.router, [E, d]);
        layer.moe.experts.forEach((x, e) => ffn(`${p} expert ${e}`, x));
        const f0 = layer.moe.experts[0].gate.shape[0];
        if (layer.moe.experts.some((x) => x.gate.shape[0] !== f0)) throw new Error(`${p} experts differ in width`);
        if (layer.moe.sharedExpert) ffn(`${p} shared expert`, layer.moe.sharedExpert);
        if (layer.moe.sharedExpert) expect(`${p} shared expert gate`, layer.moe.sharedExpertGate, [1, d]);
      }
    });
  }

  private track(b: GPUBuffer): GPUBuffer {
    this.owned.push(b);
    return b;
  }

  private vector(t: Tensor, label: string): GPUBuffer {
    return this.track(this.ctx.uploadBuffer(toFloat32(t), label));
  }

  private matrix(t: Tensor, label: string): GpuWeight {
    const buffer = this.track(this.ctx.uploadBuffer(t.bytes, label));
    if (!isQuantized(t)) return { buffer, dtype: t.dtype };
    const aux = this.track(this.ctx.uploadBuffer(auxWords([t]), `${label}.scales`));
    return { buffer, dtype: t.dtype, aux, group: t.groupSize, mins: t.mins !== undefined };
  }

  /** Stacks the experts' matrices into three buffers per part; as many experts per part as one buffer holds. */
  private stack(experts: FfnWeights[], label: string): GpuFfn {
    const largest = Math.max(...(['gate', 'up', 'down'] as const).map((n) => experts[0][n].bytes.byteLength));
    const perPart = Math.max(1, Math.min(experts.length, Math.floor(this.ctx.maxWeightBufferBytes / largest)));
    const parts: ExpertPart[] = [];
    for (let e0 = 0; e0 < experts.length; e0 += perPart) {
      const group = experts.slice(e0, e0 + perPart);
      const name = perPart < experts.length ? `${label}[${e0}..${e0 + group.length})` : label;
      parts.push({ ...this.stackPart(group, name), e0, count: group.length });
    }
    const f = experts[0].gate.shape[0];
    const bytesPerExpert = bytesOf(experts[0].gate) + bytesOf(experts[0].up) + bytesOf(experts[0].down);
    return { parts, f, count: experts.length, bytesPerExpert };
  }

  private stackPart(experts: FfnWeights[], label: string): { gate: GpuWeight; up: GpuWeight; down: GpuWeight } {
    const part = (name: 'gate' | 'up' | 'down'): GpuWeight => {
      const first = experts[0][name];
      const dtype = first.dtype;
      const sameFormat = (t: Tensor) =>
        t.dtype === dtype &&
        (!isQuantized(t) ||
          (isQuantized(first) &&
            t.groupSize === first.groupSize &&
            (t.mins === undefined) === (first.mins === undefined)));
      if (!experts.every((e) => sameFormat(e[name]))) {
        throw new WebGpuUnsupportedError(
          `${label}: experts store their ${name} weights in different formats, which the WebGPU backend cannot stack.`,
          'Convert the checkpoint to one dtype, or use the CPU backend.',
        );
      }
      const each = experts[0][name].bytes.byteLength;
      const total = each * experts.length;
      const buffer = this.track(this.ctx.createBuffer(total, STORAGE, `${label}.${name}`));
      if (each % 4 === 0) {
        experts.forEach((e, i) => this.ctx.write(buffer, i * each, e[name].bytes));
      } else {
        // An odd number of 16-bit elements per expert: join on the CPU so writes stay 4-byte aligned.
        const joined = new Uint8Array(total);
        experts.forEach((e, i) => joined.set(e[name].bytes, i * each));
        this.ctx.write(buffer, 0, joined);
      }
      if (!isQuantized(first)) return { buffer, dtype };
      const aux = this.track(
        this.ctx.uploadBuffer(auxWords(experts.map((e) => e[name] as QuantTensor)), `${label}.${name}.scales`),
      );
      return { buffer, dtype, aux, group: first.groupSize, mins: first.mins !== undefined };
    };
    return { gate: part('gate'), up: part('up'), down: part('down') };
  }

  private upload(w: WeightSet): void {
    const spec = this.spec;
    const ctx = this.ctx;
    this.dummy = this.track(ctx.createBuffer(16, STORAGE, 'dummy'));
    this.embed = this.rowParts(w.embed, 'embed');
    this.lmHead = w.lmHead === w.embed ? this.embed : this.rowParts(w.lmHead, 'lm_head');
    this.finalNorm = this.vector(w.finalNorm, 'final_norm');
    this.invFreq = ropeInverseFrequencies(spec.headDim, spec.ropeTheta, spec.ropeScaling);
    let nonExpert = bytesOf(w.lmHead) + heldBytes(w.finalNorm) + bytesOf(w.embed) / spec.vocabSize;
    w.layers.forEach((layer, l) => {
      const p = `layer${l}`;
      const g: GpuLayer = {
        attnNorm: this.vector(layer.attnNorm, `${p}.attn_norm`),
        ffnNorm: this.vector(layer.ffnNorm, `${p}.ffn_norm`),
        q: this.matrix(layer.q, `${p}.q`),
        k: this.matrix(layer.k, `${p}.k`),
        v: this.matrix(layer.v, `${p}.v`),
        o: this.matrix(layer.o, `${p}.o`),
      };
      nonExpert += [layer.attnNorm, layer.ffnNorm, layer.q, layer.k, layer.v, layer.o].reduce(
        (s, t) => s + heldBytes(t),
        0,
      );
      for (const name of ['qBias', 'kBias', 'vBias', 'qNorm', 'kNorm'] as const) {
        const t = layer[name];
        if (t) {
          g[name] = this.vector(t, `${p}.${name}`);
          nonExpert += heldBytes(t);
        }
      }
      if (layer.mlp) {
        g.mlp = this.stack([layer.mlp], `${p}.mlp`);
        nonExpert += g.mlp.bytesPerExpert;
        this.maxFfnWidth = Math.max(this.maxFfnWidth, g.mlp.f);
      } else if (layer.moe) {
        this.moeLayerIndex.push(l);
        g.router = this.matrix(layer.moe.router, `${p}.router`);
        nonExpert += bytesOf(layer.moe.router);
        g.experts = this.stack(layer.moe.experts, `${p}.experts`);
        this.maxFfnWidth = Math.max(this.maxFfnWidth, g.experts.f);
        if (layer.moe.sharedExpert && layer.moe.sharedExpertGate) {
          g.shared = this.stack([layer.moe.sharedExpert], `${p}.shared_expert`);
          g.sharedGate = this.matrix(layer.moe.sharedExpertGate, `${p}.shared_expert_gate`);
          nonExpert += g.shared.bytesPerExpert + bytesOf(layer.moe.sharedExpertGate);
          this.maxFfnWidth = Math.max(this.maxFfnWidth, g.shared.f);
        }
      } else {
        throw new Error(`layer ${l} has neither an MLP nor MoE weights`);
      }
      this.layers.push(g);
    });
    this.nonExpertBytesPerToken = nonExpert;
  }

  // -------------------------------------------------------------------------------------------
  // Cache and scratch

  newCache(capacity: number): KvCache {
    this.assertLive();
    if (!Number.isInteger(capacity) || capacity < 1)
      throw new RangeError(`KV cache capacity must be a positive integer, got ${capacity}`);
    const bytes = capacity * this.spec.numKvHeads * this.spec.headDim * 4;
    if (bytes > this.ctx.maxBufferBytes) {
      throw new WebGpuTooLargeError(
        `A KV cache of ${capacity} positions needs ${formatBytes(bytes)} per layer, more than this GPU's largest buffer (${formatBytes(this.ctx.maxBufferBytes)}).`,
        'Use a shorter context.',
      );
    }
    const make = (kind: string) =>
      Array.from({ length: this.spec.numLayers }, (_, l) => this.ctx.createBuffer(bytes, STORAGE, `kv.${kind}${l}`));
    const cache = new WebGpuKvCache(this, capacity, make('k'), make('v'));
    this.caches.add(cache);
    return cache;
  }

  /** A grow-only scratch buffer of at least `bytes`. */
  private buffer(name: string, bytes: number, usage: GPUBufferUsageFlags = STORAGE): GPUBuffer {
    let b = this.scratch.get(name);
    if (!b || b.size < bytes) {
      if (b) this.ctx.destroyBuffer(b);
      if (bytes > this.ctx.maxBufferBytes) {
        throw new WebGpuTooLargeError(
          `This step needs a ${name} buffer of ${formatBytes(bytes)}, more than this GPU's largest buffer.`,
          "Run fewer tokens at once, or ask for the last position's logits only.",
        );
      }
      b = this.ctx.createBuffer(bytes, usage, name);
      this.scratch.set(name, b);
    }
    return b;
  }

  // -------------------------------------------------------------------------------------------
  // Forward

  async forward(tokens: number[], cacheArg: KvCache, options: ForwardOptions): Promise<ForwardResult> {
    this.assertLive();
    this.ctx.assertUsable();
    const spec = this.spec;
    if (!(cacheArg instanceof WebGpuKvCache) || cacheArg.owner !== this || cacheArg.disposed) {
      throw new Error('forward: the KV cache was not made by this model (use model.newCache)');
    }
    const cache = cacheArg;
    const T = tokens.length;
    const pos0 = cache.length;
    const V = spec.vocabSize;
    checkForwardInput(tokens, pos0, cache.capacity, V);
    validateRoutingPlan(options.routing, spec);

    const { hiddenSize: d, numHeads: nH, numKvHeads: nKv, headDim: hd, rmsNormEps: eps } = spec;
    const moe = spec.moe;
    const E = moe?.numExperts ?? 1;
    const R = K.routeRecordWords(E);
    const numMoe = this.moeLayerIndex.length;
    const plan = this.resolvePlan(options.routing);
    const C = Math.min(T, MAX_CHUNK);
    const kvLen = pos0 + T;
    const qW = nH * hd;
    const kvW = nKv * hd;
    const logitRows = options.logits === 'all' ? T : 1;

    // Scratch for one chunk of C tokens (grow-only, kept between calls).
    const h = this.buffer('hidden', C * d * 4);
    const xn = this.buffer('normed', C * d * 4);
    const q = this.buffer('q', C * qW * 4);
    const kb = this.buffer('k', C * kvW * 4);
    const vb = this.buffer('v', C * kvW * 4);
    const qRaw = spec.qkNorm !== 'none' ? this.buffer('q_raw', C * qW * 4) : q;
    const kRaw = spec.qkNorm !== 'none' ? this.buffer('k_raw', C * kvW * 4) : kb;
    const attnOut = this.buffer('attn_out', C * qW * 4);
    const scores = this.buffer('scores', C * nH * kvLen * 4);
    const act = this.buffer('ffn_act', C * E * this.maxFfnWidth * 4);
    const routerLogits = this.buffer('router_logits', C * E * 4);
    const sharedLogits = this.buffer('shared_gate_logits', C * 4);
    const fixedRoute = this.buffer('fixed_route', C * 4 * 4);
    const routeBuf = this.buffer('routing', Math.max(1, numMoe * T * R) * 4);
    const logits = this.buffer('logits', logitRows * V * 4);
    const ids = this.buffer('token_ids', T * 4);
    const flags = this.buffer('routing_flags', spec.numLayers * E * 4);
    const dispatchArgs = this.buffer('dispatch_args', 16, STORAGE | USAGE.INDIRECT);
    this.ctx.write(ids, 0, new Uint32Array(tokens));
    this.ctx.write(flags, 0, plan.flags);
    const tables = K.ropeTables(this.invFreq, pos0, T);
    const ropeCos = this.buffer('rope_cos', tables.cos.byteLength);
    const ropeSin = this.buffer('rope_sin', tables.sin.byteLength);
    this.ctx.write(ropeCos, 0, tables.cos);
    this.ctx.write(ropeSin, 0, tables.sin);

    const rec = new Recorder(this.ctx);
    for (let t0 = 0; t0 < T; t0 += C) {
      const tc = Math.min(C, T - t0);
      const pos = pos0 + t0;
      for (const part of this.embed)
        K.embed(rec, part.weight, ids, t0, tc, d, h, spec.embeddingMultiplier, part.row0, part.rows);
      let m = 0;
      this.layers.forEach((L, l) => {
        // Attention
        K.rmsNorm(rec, { x: h, weight: L.attnNorm, out: xn, rows: tc, len: d, eps });
        K.project(rec, { weight: L.q, rows: qW, K: d, tokens: tc, x: xn, y: qRaw, bias: L.qBias }, this.dummy);
        K.project(rec, { weight: L.k, rows: kvW, K: d, tokens: tc, x: xn, y: kRaw, bias: L.kBias }, this.dummy);
        K.project(rec, { weight: L.v, rows: kvW, K: d, tokens: tc, x: xn, y: vb, bias: L.vBias }, this.dummy);
        if (spec.qkNorm === 'per_head') {
          K.rmsNorm(rec, { x: qRaw, weight: L.qNorm!, out: q, rows: tc * nH, len: hd, eps });
          K.rmsNorm(rec, { x: kRaw, weight: L.kNorm!, out: kb, rows: tc * nKv, len: hd, eps });
        } else if (spec.qkNorm === 'full') {
          K.rmsNorm(rec, { x: qRaw, weight: L.qNorm!, out: q, rows: tc, len: qW, eps });
          K.rmsNorm(rec, { x: kRaw, weight: L.kNorm!, out: kb, rows: tc, len: kvW, eps });
        }
        K.rope(rec, q, ropeCos, ropeSin, tc, nH, hd, t0);
        K.rope(rec, kb, ropeCos, ropeSin, tc, nKv, hd, t0);
        rec.copy(kb, 0, cache.keys[l], pos * kvW * 4, tc * kvW * 4);
        rec.copy(vb, 0, cache.values[l], pos * kvW * 4, tc * kvW * 4);
        K.attention(rec, {
          q,
          kCache: cache.keys[l],
          vCache: cache.values[l],
          scores,
          out: attnOut,
          tokens: tc,
          heads: nH,
          kvHeads: nKv,
          headDim: hd,
          pos0: pos,
          scoreStride: kvLen,
          scale: spec.attentionScale,
          window: spec.slidingWindow,
          outScale: spec.residualMultiplier,
        });
        K.project(rec, { weight: L.o, rows: d, K: qW, tokens: tc, x: attnOut, y: h, accumulate: true }, this.dummy);

        // Feed-forward
        K.rmsNorm(rec, { x: h, weight: L.ffnNorm, out: xn, rows: tc, len: d, eps });
        const ffn = (
          w: GpuFfn,
          route: GPUBuffer,
          recBase: number,
          recExperts: number,
          slots: number,
          indirectArgs?: GPUBuffer,
        ) => {
          for (const p of w.parts) {
            K.experts(rec, {
              gate: p.gate,
              up: p.up,
              down: p.down,
              f: w.f,
              d,
              tokens: tc,
              slots,
              route,
              recBase,
              recExperts,
              x: xn,
              act,
              h,
              indirectArgs,
              outScale: spec.residualMultiplier,
              ...(w.parts.length > 1 ? { eBase: p.e0, eCount: p.count } : {}),
            });
          }
        };
        if (L.mlp) {
          K.fixedRoute(rec, fixedRoute, tc, null, this.dummy);
          ffn(L.mlp, fixedRoute, 0, 1, 1);
        } else {
          const recBase = (m * T + t0) * R;
          K.project(rec, { weight: L.router!, rows: E, K: d, tokens: tc, x: xn, y: routerLogits }, this.dummy);
          K.route(rec, {
            logits: routerLogits,
            flags,
            route: routeBuf,
            recBase,
            tokens: tc,
            experts: E,
            layer: l,
            mode: plan.mode,
            k: plan.k,
            threshold: plan.threshold,
            renorm: moe!.normTopkProb,
            ablation: plan.ablation,
          });
          // Threshold sets vary in size: size the gate/up dispatch on the GPU from the routing just decided.
          ffn(L.experts!, routeBuf, recBase, E, plan.slots[l], plan.mode === 'threshold' ? dispatchArgs : undefined);
          if (L.shared) {
            K.project(rec, { weight: L.sharedGate!, rows: 1, K: d, tokens: tc, x: xn, y: sharedLogits }, this.dummy);
            K.fixedRoute(rec, fixedRoute, tc, sharedLogits, this.dummy);
            ffn(L.shared, fixedRoute, 0, 1, 1);
          }
          m++;
        }
      });

      // Final norm and LM head, only for the rows asked for.
      if (options.logits === 'all') {
        K.rmsNorm(rec, { x: h, weight: this.finalNorm, out: xn, rows: tc, len: d, eps });
        for (const p of this.lmHead) {
          K.project(
            rec,
            {
              weight: p.weight,
              rows: p.rows,
              K: d,
              tokens: tc,
              x: xn,
              y: logits,
              yOffset: t0 * V + p.row0,
              yStride: V,
            },
            this.dummy,
          );
        }
      } else if (t0 + tc === T) {
        K.rmsNorm(rec, { x: h, weight: this.finalNorm, out: xn, rows: 1, len: d, eps, inOffset: (tc - 1) * d });
        for (const p of this.lmHead) {
          K.project(
            rec,
            { weight: p.weight, rows: p.rows, K: d, tokens: 1, x: xn, y: logits, yOffset: p.row0, yStride: V },
            this.dummy,
          );
        }
      }
    }

    const routeWords = numMoe * T * R;
    const dispatches = rec.dispatchCount;
    const [logitBytes, routeBytes] = await rec.run([
      { buffer: logits, offset: 0, size: logitRows * V * 4 },
      { buffer: routeBuf, offset: 0, size: routeWords * 4 },
    ]);
    cache.length = pos0 + T;

    const allLogits = new Float32Array(logitBytes);
    if (spec.logitsScaling !== 1) {
      for (let i = 0; i < allLogits.length; i++) allLogits[i] /= spec.logitsScaling; // granitemoe, once per readback
    }
    const logitRowsOut = Array.from({ length: logitRows }, (_, r) => allLogits.slice(r * V, (r + 1) * V));
    const words = new Uint32Array(routeBytes ?? new ArrayBuffer(0));
    const floats = new Float32Array(words.buffer);
    const layersOut: TokenRouting[][] = [];
    let expertBytes = 0;
    for (let mi = 0; mi < numMoe; mi++) {
      const perToken: TokenRouting[] = [];
      const bytesPerExpert = this.layers[this.moeLayerIndex[mi]].experts!.bytesPerExpert;
      for (let t = 0; t < T; t++) {
        const rb = (mi * T + t) * R;
        const count = words[rb];
        const experts = Array.from(words.subarray(rb + 1, rb + 1 + count));
        const weights = Array.from(floats.subarray(rb + 1 + E, rb + 1 + E + count));
        const probs = floats.slice(rb + 1 + 2 * E, rb + 1 + 3 * E);
        perToken.push({ experts, weights, probs });
        expertBytes += count * bytesPerExpert;
      }
      layersOut.push(perToken);
    }
    this.lastStats = {
      tokens: T,
      expertBytesRead: expertBytes,
      denseExpertBytes: this.denseExpertBytes(T),
      nonExpertBytesPerToken: this.nonExpertBytesPerToken,
      weightBytesPerToken: this.nonExpertBytesPerToken + expertBytes / T,
      dispatches,
    };
    return {
      logits: logitRowsOut,
      routing: { moeLayers: [...this.moeLayerIndex], positions: tokens.map((_, t) => pos0 + t), layers: layersOut },
    };
  }

  private denseExpertBytes(T: number): number {
    let total = 0;
    for (const l of this.moeLayerIndex) {
      const x = this.layers[l].experts!;
      total += x.bytesPerExpert * x.count;
    }
    return total * T;
  }

  /** The plan as kernel parameters: mode, k, threshold, per-layer flags and slot bounds. */
  private resolvePlan(plan: RoutingPlan) {
    const spec = this.spec;
    const moe = spec.moe;
    const E = moe?.numExperts ?? 1;
    const flags = new Uint32Array(spec.numLayers * E);
    const forced = new Array<number>(spec.numLayers).fill(0);
    for (const iv of plan.interventions) {
      const i = iv.layer * E + iv.expert;
      if (iv.action === 'ablate') flags[i] |= 1;
      else if (!(flags[i] & 2)) {
        flags[i] |= 2;
        forced[iv.layer]++;
      }
    }
    const m = plan.mode;
    const mode: keyof typeof K.ROUTE_MODE =
      m.kind === 'dense' ? 'dense' : m.kind === 'threshold' ? 'threshold' : 'topk';
    const k = m.kind === 'topk' ? m.k : m.kind === 'native' ? (moe?.topK ?? 1) : E;
    // Slots dispatched per token: the most experts any token can get in this layer.
    const slots = forced.map((f) => (mode === 'topk' ? Math.min(E, Math.max(k, f)) : E));
    return { flags, mode, k, threshold: m.kind === 'threshold' ? m.t : 0, slots, ablation: plan.ablation };
  }

  // -------------------------------------------------------------------------------------------

  private assertLive(): void {
    if (this.disposed) throw new Error('This model was unloaded from the GPU; load it again.');
  }

  private releaseAll(): void {
    for (const c of [...this.caches]) c.dispose();
    for (const b of this.owned) this.ctx.destroyBuffer(b);
    for (const b of this.scratch.values()) this.ctx.destroyBuffer(b);
    this.owned = [];
    this.scratch.clear();
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.releaseAll();
    this.onDispose(this);
  }
}
