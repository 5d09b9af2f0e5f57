// The CPU reference forward pass: a whole llama / mixtral / qwen-moe / olmoe / granitemoe decoder in one file,
// read top to bottom. Every backend must agree with this one.

import { checkForwardInput } from '../../run/errors.ts';
import { interventionsForLayer, routeToken, validateRoutingPlan } from '../../routing/index.ts';
import type {
  FfnWeights,
  ForwardOptions,
  ForwardResult,
  KvCache,
  LayerWeights,
  LoadedModel,
  ModelSpec,
  Tensor,
  TokenRouting,
  WeightSet,
} from '../../types.ts';
import { addInPlace, applyRope, rmsNorm, ropeInverseFrequencies, sigmoid, silu } from './kernels.ts';
import { hostMatrix, type HostMatrix } from './matrix.ts';
import { toFloat32 } from '../../format/index.ts';

// ---------------------------------------------------------------------------------------------
// Weights: matrices stay in their stored (or quantized) format and are decoded row by row inside
// the products (matrix.ts, wasm.ts); only the 1-D vectors (norms, biases: a few KiB) are held as f32.

interface Ffn {
  gate: HostMatrix; // [f, d]
  up: HostMatrix; // [f, d]
  down: HostMatrix; // [d, f]
  width: number; // f
}

interface Layer {
  attnNorm: Float32Array;
  q: HostMatrix;
  k: HostMatrix;
  v: HostMatrix;
  o: HostMatrix;
  qBias?: Float32Array;
  kBias?: Float32Array;
  vBias?: Float32Array;
  qNorm?: Float32Array;
  kNorm?: Float32Array;
  ffnNorm: Float32Array;
  mlp?: Ffn;
  moe?: { router: HostMatrix; experts: Ffn[]; sharedExpert?: Ffn; sharedExpertGate?: HostMatrix };
}

/** Bytes held per weight, for memory accounting (tied embeddings appear once). */
export interface CpuWeightMemory {
  /** Total bytes of all weights as held. */
  total: number;
  /** name → bytes held, e.g. "layers.0.q" → 8192. */
  perTensor: Map<string, number>;
}

/** Counters of work done, so tests (and the bench) can see that sparse routing skips experts. */
export interface CpuStats {
  /** Routed-expert evaluations: one per (token, MoE layer, chosen expert). Shared experts are not counted. */
  expertCalls: number;
  /** Multiply-adds spent inside routed experts (3 · d · f per evaluation). */
  expertMacs: number;
  /** Tokens run through the model. */
  tokens: number;
  /** Weight bytes read: each matrix product reads its matrix once per forward call, whatever the token count. */
  weightBytes: number;
}

class CpuKvCache implements KvCache {
  length = 0;
  keys: Float32Array[];
  values: Float32Array[];
  constructor(
    readonly owner: CpuModel,
    readonly capacity: number,
    numLayers: number,
    kvWidth: number,
  ) {
    this.keys = Array.from({ length: numLayers }, () => new Float32Array(capacity * kvWidth));
    this.values = Array.from({ length: numLayers }, () => new Float32Array(capacity * kvWidth));
  }
  truncate(length: number): void {
    if (!Number.isInteger(length) || length < 0 || length > this.length) {
      throw new RangeError(`KV cache holds ${this.length} positions; cannot truncate to ${length}`);
    }
    this.length = length;
  }
  dispose(): void {
    this.keys = [];
    this.values = [];
    this.length = 0;
  }
}

function checkShape(t: Tensor, shape: number[], name: string): void {
  if (t.shape.length !== shape.length || t.shape.some((n, i) => n !== shape[i])) {
    throw new Error(`${name} has shape [${t.shape}] but the model spec needs [${shape}]`);
  }
}

export class CpuModel implements LoadedModel {
  readonly backend = 'cpu' as const;
  readonly stats: CpuStats = { expertCalls: 0, expertMacs: 0, tokens: 0, weightBytes: 0 };
  private readonly embed: HostMatrix;
  private readonly lmHead: HostMatrix;
  private readonly finalNorm: Float32Array;
  private readonly layers: Layer[];
  private readonly invFreq: Float32Array;
  private readonly moeLayerIndex: number[];

  /** Bytes each weight holds in this backend (no tensor is held twice, none as a whole-model f32 copy). */
  readonly memory: CpuWeightMemory = { total: 0, perTensor: new Map() };

  constructor(
    readonly spec: ModelSpec,
    weights: WeightSet,
    makeMatrix: (t: Tensor) => HostMatrix = hostMatrix,
  ) {
    const { hiddenSize: d, vocabSize: V, numHeads, numKvHeads, headDim } = spec;
    if (weights.layers.length !== spec.numLayers) {
      throw new Error(`weights have ${weights.layers.length} layers but the model spec says ${spec.numLayers}`);
    }
    // Tied embeddings share one Tensor object; hold it only once.
    const vectors = new Map<Tensor, Float32Array>();
    const matrices = new Map<Tensor, HostMatrix>();
    const account = (name: string, bytes: number) => {
      this.memory.perTensor.set(name, bytes);
      this.memory.total += bytes;
    };
    const f32 = (t: Tensor, shape: number[], name: string): Float32Array => {
      checkShape(t, shape, name);
      let a = vectors.get(t);
      if (!a) {
        a = toFloat32(t);
        vectors.set(t, a);
        account(name, a.byteLength);
      }
      return a;
    };
    const mat = (t: Tensor, shape: number[], name: string): HostMatrix => {
      checkShape(t, shape, name);
      let m = matrices.get(t);
      if (!m) {
        m = makeMatrix(t);
        matrices.set(t, m);
        account(name, m.bytes);
      }
      return m;
    };
    const ffn = (w: FfnWeights, f: number, name: string): Ffn => ({
      gate: mat(w.gate, [f, d], `${name}.gate`),
      up: mat(w.up, [f, d], `${name}.up`),
      down: mat(w.down, [d, f], `${name}.down`),
      width: f,
    });
    const qWidth = numHeads * headDim;
    const kvWidth = numKvHeads * headDim;
    this.embed = mat(weights.embed, [V, d], 'embed');
    this.lmHead = mat(weights.lmHead, [V, d], 'lmHead');
    this.finalNorm = f32(weights.finalNorm, [d], 'finalNorm');
    this.layers = weights.layers.map((w: LayerWeights, l): Layer => {
      const p = `layers.${l}`;
      const qNormWidth = spec.qkNorm === 'per_head' ? headDim : qWidth;
      const kNormWidth = spec.qkNorm === 'per_head' ? headDim : kvWidth;
      const layer: Layer = {
        attnNorm: f32(w.attnNorm, [d], `${p}.attnNorm`),
        q: mat(w.q, [qWidth, d], `${p}.q`),
        k: mat(w.k, [kvWidth, d], `${p}.k`),
        v: mat(w.v, [kvWidth, d], `${p}.v`),
        o: mat(w.o, [d, qWidth], `${p}.o`),
        qBias: w.qBias && f32(w.qBias, [qWidth], `${p}.qBias`),
        kBias: w.kBias && f32(w.kBias, [kvWidth], `${p}.kBias`),
        vBias: w.vBias && f32(w.vBias, [kvWidth], `${p}.vBias`),
        qNorm: spec.qkNorm !== 'none' && w.qNorm ? f32(w.qNorm, [qNormWidth], `${p}.qNorm`) : undefined,
        kNorm: spec.qkNorm !== 'none' && w.kNorm ? f32(w.kNorm, [kNormWidth], `${p}.kNorm`) : undefined,
        ffnNorm: f32(w.ffnNorm, [d], `${p}.ffnNorm`),
      };
      if (spec.qkNorm !== 'none' && (!layer.qNorm || !layer.kNorm))
        throw new Error(`${p} lacks the q/k norm weights its architecture needs`);
      if (w.moe) {
        const moe = spec.moe;
        if (!moe?.moeLayers[l]) throw new Error(`${p} has router weights but the model spec says it is a dense layer`);
        const E = moe.numExperts;
        if (w.moe.experts.length !== E)
          throw new Error(`${p} has ${w.moe.experts.length} experts but the model spec says ${E}`);
        const fs = moe.sharedExpertIntermediateSize;
        layer.moe = {
          router: mat(w.moe.router, [E, d], `${p}.router`),
          experts: w.moe.experts.map((e, i) => ffn(e, moe.expertIntermediateSize, `${p}.experts.${i}`)),
          sharedExpert: w.moe.sharedExpert && ffn(w.moe.sharedExpert, fs, `${p}.sharedExpert`),
          sharedExpertGate: w.moe.sharedExpertGate && mat(w.moe.sharedExpertGate, [1, d], `${p}.sharedExpertGate`),
        };
      } else if (w.mlp) {
        if (spec.moe?.moeLayers[l]) throw new Error(`${p} has a dense MLP but the model spec says it is an MoE layer`);
        layer.mlp = ffn(w.mlp, spec.intermediateSize, `${p}.mlp`);
      } else {
        throw new Error(`${p} has neither an MLP nor MoE weights`);
      }
      return layer;
    });
    this.invFreq = ropeInverseFrequencies(headDim, spec.ropeTheta, spec.ropeScaling);
    this.moeLayerIndex = this.layers.flatMap((layer, l) => (layer.moe ? [l] : []));
  }

  newCache(capacity: number): KvCache {
    if (!Number.isInteger(capacity) || capacity < 1)
      throw new RangeError(`KV cache capacity must be a positive integer, got ${capacity}`);
    return new CpuKvCache(this, capacity, this.spec.numLayers, this.spec.numKvHeads * this.spec.headDim);
  }

  resetStats(): void {
    this.stats.expertCalls = 0;
    this.stats.expertMacs = 0;
    this.stats.tokens = 0;
    this.stats.weightBytes = 0;
  }

  /** A product, counted: the matrix's bytes (and its bias's) are read once per call. */
  private mm(m: HostMatrix, x: Float32Array, rows: number, bias?: Float32Array): Float32Array {
    this.stats.weightBytes += m.bytes + (bias ? bias.byteLength : 0);
    return m.matmul(x, rows, bias);
  }

  /** RMSNorm, counted (the weight vector is held as f32). */
  private norm(x: Float32Array, width: number, weight: Float32Array, eps: number): Float32Array {
    this.stats.weightBytes += weight.byteLength;
    return rmsNorm(x, width, weight, eps);
  }

  async forward(tokens: number[], cacheArg: KvCache, options: ForwardOptions): Promise<ForwardResult> {
    return this.forwardSync(tokens, cacheArg, options);
  }

  /** The forward pass, synchronously (the async wrapper exists to satisfy LoadedModel). */
  forwardSync(tokens: number[], cacheArg: KvCache, options: ForwardOptions): ForwardResult {
    const spec = this.spec;
    const { hiddenSize: d, vocabSize: V, numHeads, numKvHeads, headDim, rmsNormEps: eps } = spec;
    if (!(cacheArg instanceof CpuKvCache) || cacheArg.owner !== this)
      throw new Error('forward: the KV cache was not made by this model (use model.newCache)');
    const cache = cacheArg;
    const T = tokens.length;
    const start = cache.length;
    checkForwardInput(tokens, start, cache.capacity, V);
    validateRoutingPlan(options.routing, spec);

    const qWidth = numHeads * headDim;
    const kvWidth = numKvHeads * headDim;
    const headsPerKv = numHeads / numKvHeads;
    const scale = spec.attentionScale; // 1/√headDim, or granitemoe's attention_multiplier
    const window = spec.slidingWindow ?? Infinity;
    const residual = spec.residualMultiplier; // granitemoe scales each sublayer's output before the add

    // Token embeddings: x is the residual stream, [T, d].
    const x = new Float32Array(T * d);
    tokens.forEach((id, t) => this.embed.decodeRow(id, x.subarray(t * d, (t + 1) * d)));
    this.stats.weightBytes += (T * this.embed.bytes) / V; // one row per token
    if (spec.embeddingMultiplier !== 1) {
      for (let i = 0; i < x.length; i++) x[i] *= spec.embeddingMultiplier;
    }

    const trace: TokenRouting[][] = [];
    for (let l = 0; l < this.layers.length; l++) {
      const layer = this.layers[l];

      // --- Attention -------------------------------------------------------------------------
      const h = this.norm(x, d, layer.attnNorm, eps);
      let q = this.mm(layer.q, h, T, layer.qBias);
      let k = this.mm(layer.k, h, T, layer.kBias);
      const v = this.mm(layer.v, h, T, layer.vBias);
      if (spec.qkNorm === 'per_head') {
        // qwen3_moe: RMSNorm over each head's headDim values.
        q = this.norm(q, headDim, layer.qNorm!, eps);
        k = this.norm(k, headDim, layer.kNorm!, eps);
      } else if (spec.qkNorm === 'full') {
        // olmoe: RMSNorm over the whole projection of a token.
        q = this.norm(q, qWidth, layer.qNorm!, eps);
        k = this.norm(k, kvWidth, layer.kNorm!, eps);
      }
      applyRope(q, T, numHeads, headDim, start, this.invFreq);
      applyRope(k, T, numKvHeads, headDim, start, this.invFreq);
      const keys = cache.keys[l];
      const values = cache.values[l];
      keys.set(k, start * kvWidth);
      values.set(v, start * kvWidth);

      // Causal grouped-query attention: token t (position start+t) sees positions first..start+t, where
      // first is 0, or with a sliding window only the last `window` positions.
      const attn = new Float32Array(T * qWidth);
      const scores = new Float64Array(start + T);
      for (let t = 0; t < T; t++) {
        const visible = start + t + 1;
        const first = Math.max(0, visible - window);
        for (let hq = 0; hq < numHeads; hq++) {
          const qOff = t * qWidth + hq * headDim;
          const kvOff = Math.floor(hq / headsPerKv) * headDim;
          let max = -Infinity;
          for (let j = first; j < visible; j++) {
            const kOff = j * kvWidth + kvOff;
            let s = 0;
            for (let i = 0; i < headDim; i++) s += q[qOff + i] * keys[kOff + i];
            s = Math.fround(s * scale);
            scores[j] = s;
            if (s > max) max = s;
          }
          let sum = 0;
          for (let j = first; j < visible; j++) sum += scores[j] = Math.exp(scores[j] - max);
          const out = new Float64Array(headDim);
          for (let j = first; j < visible; j++) {
            const wj = Math.fround(scores[j] / sum);
            const vOff = j * kvWidth + kvOff;
            for (let i = 0; i < headDim; i++) out[i] += wj * values[vOff + i];
          }
          attn.set(out, qOff);
        }
      }
      addInPlace(x, this.mm(layer.o, attn, T), residual);

      // --- Feed-forward: dense MLP or mixture of experts ----------------------------------------
      const h2 = this.norm(x, d, layer.ffnNorm, eps);
      if (layer.mlp) {
        addInPlace(x, this.ffn(h2, T, layer.mlp), residual);
      } else {
        const { y, routing } = this.moeBlock(h2, T, l, layer.moe!, options);
        addInPlace(x, y, residual);
        trace.push(routing);
      }
    }
    cache.length = start + T;
    this.stats.tokens += T;

    // --- Final norm and LM head, only for the rows asked for -------------------------------------
    const first = options.logits === 'all' ? 0 : T - 1;
    const rows = T - first;
    const last = this.norm(x.subarray(first * d), d, this.finalNorm, eps);
    const logitsFlat = this.mm(this.lmHead, last, rows);
    if (spec.logitsScaling !== 1) {
      for (let i = 0; i < logitsFlat.length; i++) logitsFlat[i] /= spec.logitsScaling; // granitemoe
    }
    const logits = Array.from({ length: rows }, (_, r) => logitsFlat.slice(r * V, (r + 1) * V));

    return {
      logits,
      routing: { moeLayers: [...this.moeLayerIndex], positions: tokens.map((_, t) => start + t), layers: trace },
    };
  }

  /** SwiGLU: down(silu(gate(x)) · up(x)) for each of `rows` rows of x. */
  private ffn(x: Float32Array, rows: number, w: Ffn): Float32Array {
    const gate = this.mm(w.gate, x, rows);
    const up = this.mm(w.up, x, rows);
    for (let i = 0; i < gate.length; i++) gate[i] = Math.fround(silu(gate[i])) * up[i];
    return this.mm(w.down, gate, rows);
  }

  /**
   * Router → routeToken → only the chosen experts. Tokens are grouped by expert so each chosen
   * expert's weights are read once per forward; unchosen experts are never touched.
   */
  private moeBlock(
    h: Float32Array,
    T: number,
    layerIndex: number,
    moe: NonNullable<Layer['moe']>,
    options: ForwardOptions,
  ) {
    const d = this.spec.hiddenSize;
    const moeSpec = this.spec.moe!;
    const E = moeSpec.numExperts;
    const routerLogits = this.mm(moe.router, h, T);
    const layerIv = interventionsForLayer(options.routing, layerIndex);
    const routing: TokenRouting[] = [];
    const tokensOf: number[][] = Array.from({ length: E }, () => []);
    const weightsOf: number[][] = Array.from({ length: E }, () => []);
    for (let t = 0; t < T; t++) {
      const r = routeToken(routerLogits.subarray(t * E, (t + 1) * E), layerIndex, moeSpec, options.routing, layerIv);
      routing.push(r);
      r.experts.forEach((e, i) => {
        tokensOf[e].push(t);
        weightsOf[e].push(r.weights[i]);
      });
    }

    const y = new Float32Array(T * d);
    // Expert index order, like the Hugging Face loop, so f32 sums round the same way.
    for (let e = 0; e < E; e++) {
      const rows = tokensOf[e];
      if (rows.length === 0) continue;
      const xe = new Float32Array(rows.length * d);
      rows.forEach((t, i) => xe.set(h.subarray(t * d, (t + 1) * d), i * d));
      const ye = this.ffn(xe, rows.length, moe.experts[e]);
      rows.forEach((t, i) => {
        const w = weightsOf[e][i];
        for (let j = 0; j < d; j++) y[t * d + j] += Math.fround(ye[i * d + j] * w);
      });
      this.stats.expertCalls += rows.length;
      this.stats.expertMacs += rows.length * 3 * d * moe.experts[e].width;
    }

    if (moe.sharedExpert) {
      // qwen2_moe: an always-on expert, scaled per token by sigmoid(shared_expert_gate · x).
      const shared = this.ffn(h, T, moe.sharedExpert);
      const gates = moe.sharedExpertGate ? this.mm(moe.sharedExpertGate, h, T) : undefined;
      for (let t = 0; t < T; t++) {
        const g = gates ? sigmoid(gates[t]) : 1;
        for (let j = 0; j < d; j++) y[t * d + j] += Math.fround(shared[t * d + j] * g);
      }
    }
    return { y, routing };
  }

  dispose(): void {
    // Nothing to free beyond letting the arrays go; the GC does that when the model is dropped.
  }
}
