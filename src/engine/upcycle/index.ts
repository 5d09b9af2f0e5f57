// Upcycling (docs/upcycling.md): a dense llama/mistral model becomes a Mixtral-layout MoE, in memory.
//
// Every expert starts as (a shard of) the dense FFN and a new router is added. With renormalised
// top-k over whole copies the MoE computes exactly the parent's function at initialisation.
//
// Granular upcycling with G shards per copy: the FFN intermediate dimension f is cut into G shards
// of f/G; E = N/G copies give N experts and expert j·G+g holds shard g (gate/up rows, down columns).
// Since down(silu(gate x)·up x) is a sum over intermediate units, the G shards of one copy add up
// to the dense FFN.
//
// Drop-Upcycling (Nakamura et al., ICLR 2025) with ratio r: after copying, each expert re-initialises
// round(r·I) of its I intermediate units, drawn independently per expert: those rows of gate and up
// and the same columns of down are replaced by samples from a normal with the mean and standard
// deviation of the matrix they replace. The experts then differ from the start (which is what lets
// them specialise), and the child no longer equals its parent at initialisation when r > 0.

import type { DType, FfnWeights, LayerWeights, ModelSpec, MoeSpec, Tensor, WeightSet } from '../types.ts';
import { fromFloat32, toFloat32 } from '../format/index.ts';
import { plainTensor } from '../format/quant.ts';
import { gaussian, sampleIndices, uniformStream } from './random.ts';
import { MoeError } from '../errors.ts';

export type RouterInit = { kind: 'random'; seed?: number; scale?: number } | { kind: 'zero' };
export type ExpertScaling = 'exact' | 'megatron-cuberoot';

export interface UpcycleOptions {
  /** N: total routed experts per layer. */
  experts: number;
  /** G: shards per dense FFN (fine-grained experts). N must be a multiple of G. Default 1. */
  granularity?: number;
  /** num_experts_per_tok of the child. Default G·min(2, N/G): two whole copies when there are two. */
  topK?: number;
  /** Default: random with scale 0.02 (HF initializer_range). */
  router?: RouterInit;
  /** Seed for the router and the noise. Default 0. */
  seed?: number;
  /** Std of relative Gaussian noise on every expert weight: w·(1 + noise·n). Default 0 (exact copies). */
  noise?: number;
  /** Default 'exact'. */
  scaling?: ExpertScaling;
  /** Drop-Upcycling ratio r in [0, 1]: share of each expert's intermediate units re-initialised. Default 0. */
  drop?: number;
  /** Where the parent came from (folder, URL, model id), recorded in the metadata. */
  from?: string;
}

/** What gets written into config.json under "upcycling", so a child says where it came from. */
export interface UpcyclingMetadata {
  from: string;
  experts: number;
  granularity: number;
  topK: number;
  router: 'random' | 'zero';
  routerScale: number;
  seed: number;
  noise: number;
  scaling: ExpertScaling;
  /** Drop-Upcycling ratio (0: plain copies). */
  drop: number;
  parentIntermediateSize: number;
}

/** Upcycling options that cannot work for this parent. */
export class UpcycleError extends MoeError {
  constructor(message: string, hint: string) {
    super(message, hint);
    this.name = 'UpcycleError';
  }
}

export const DEFAULT_ROUTER_SCALE = 0.02;

function bytesPerElement(dtype: DType): number {
  return dtype === 'F32' ? 4 : 2;
}

/** Rows [start, start+count) of a 2-D tensor: a view, no copy (rows are contiguous). */
function sliceRows(weight: Tensor, start: number, count: number): Tensor {
  const t = plainTensor(weight, 'upcycling');
  const rowBytes = t.shape[1] * bytesPerElement(t.dtype);
  return {
    dtype: t.dtype,
    shape: [count, t.shape[1]],
    bytes: t.bytes.subarray(start * rowBytes, (start + count) * rowBytes),
  };
}

/** Columns [start, start+count) of a 2-D tensor: a copy (columns are strided). */
function sliceCols(weight: Tensor, start: number, count: number): Tensor {
  const t = plainTensor(weight, 'upcycling');
  const bpe = bytesPerElement(t.dtype);
  const [rows, cols] = t.shape;
  const out = new Uint8Array(rows * count * bpe);
  for (let r = 0; r < rows; r++) {
    const from = (r * cols + start) * bpe;
    out.set(t.bytes.subarray(from, from + count * bpe), r * count * bpe);
  }
  return { dtype: t.dtype, shape: [rows, count], bytes: out };
}

/** Multiplies every element by `factor` (and by 1 + noise·n per element when noise > 0), keeping the dtype. */
function transform(weight: Tensor, factor: number, noise: number, nextGaussian: () => number): Tensor {
  const t = plainTensor(weight, 'upcycling');
  if (factor === 1 && noise === 0) return t;
  const values = toFloat32(t);
  const out = new Float32Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const jitter = noise === 0 ? 1 : 1 + noise * nextGaussian();
    out[i] = values[i] * factor * jitter;
  }
  return fromFloat32(out, t.shape, t.dtype);
}

function defaultTopK(granularity: number, copies: number): number {
  return granularity * Math.min(2, copies);
}

/** Mean and (population) standard deviation of a tensor's values. */
function meanStd(values: Float32Array): { mean: number; std: number } {
  let sum = 0;
  for (const v of values) sum += v;
  const mean = sum / values.length;
  let sq = 0;
  for (const v of values) sq += (v - mean) * (v - mean);
  return { mean, std: Math.sqrt(sq / values.length) };
}

/**
 * Drop-Upcycling of one expert: the intermediate units in `indices` get fresh values from N(mean, std)
 * of the matrix they replace: rows of gate and up ([I, d]), columns of down ([d, I]).
 */
function dropUnits(expert: FfnWeights, indices: number[], nextGaussian: () => number): FfnWeights {
  if (indices.length === 0) return expert;
  const rows = (weight: Tensor): Tensor => {
    const t = plainTensor(weight, 'Drop-Upcycling');
    const values = toFloat32(t).slice();
    const { mean, std } = meanStd(values);
    const d = t.shape[1];
    for (const i of indices) for (let c = 0; c < d; c++) values[i * d + c] = mean + std * nextGaussian();
    return fromFloat32(values, t.shape, t.dtype);
  };
  const cols = (weight: Tensor): Tensor => {
    const t = plainTensor(weight, 'Drop-Upcycling');
    const values = toFloat32(t).slice();
    const { mean, std } = meanStd(values);
    const [d, width] = t.shape;
    for (let r = 0; r < d; r++) for (const i of indices) values[r * width + i] = mean + std * nextGaussian();
    return fromFloat32(values, t.shape, t.dtype);
  };
  return { gate: rows(expert.gate), up: rows(expert.up), down: cols(expert.down) };
}

function validate(spec: ModelSpec, weights: WeightSet, o: Required<Omit<UpcycleOptions, 'router' | 'from'>>): void {
  const fix = 'Pick the options so that N = E·G whole copies and G divides the FFN width.';
  if ((spec.architecture !== 'llama' && spec.architecture !== 'mistral') || spec.moe !== null) {
    throw new UpcycleError(
      `Only dense llama or mistral checkpoints can be upcycled; this one is "${spec.architecture}"${spec.moe ? ' and already has experts' : ''}.`,
      'Start from a dense parent (model_type llama or mistral in config.json).',
    );
  }
  if (spec.attentionBias || spec.qkNorm !== 'none') {
    throw new UpcycleError(
      'This parent uses attention biases or q/k norms, which the Mixtral layout cannot hold.',
      'Upcycle a plain llama/mistral model (attention_bias false, no q/k norm).',
    );
  }
  if (weights.layers.some((l) => !l.mlp)) {
    throw new UpcycleError(
      'The parent has a layer without a dense FFN (mlp), so there is nothing to copy into experts.',
      'Use an unmodified dense checkpoint.',
    );
  }
  const { experts: n, granularity: g, topK: k, noise } = o;
  if (!Number.isInteger(g) || g < 1) throw new UpcycleError(`Granularity must be a whole number ≥ 1, got ${g}.`, fix);
  if (!Number.isInteger(n) || n < 1)
    throw new UpcycleError(`The number of experts must be a whole number ≥ 1, got ${n}.`, fix);
  if (n % g !== 0) {
    throw new UpcycleError(
      `${n} experts cannot be made from shards of granularity ${g}: ${n} is not a multiple of ${g}.`,
      fix,
    );
  }
  if (spec.intermediateSize % g !== 0) {
    throw new UpcycleError(
      `The FFN width ${spec.intermediateSize} cannot be cut into ${g} equal shards.`,
      `Choose a granularity that divides ${spec.intermediateSize}.`,
    );
  }
  if (!Number.isInteger(k) || k < 1 || k > n) {
    throw new UpcycleError(
      `top-k must be a whole number between 1 and the number of experts (${n}), got ${k}.`,
      `With granularity ${g}, a multiple of ${g} keeps the child exactly equal to its parent.`,
    );
  }
  if (!Number.isFinite(noise) || noise < 0)
    throw new UpcycleError(
      `Noise must be a number ≥ 0, got ${noise}.`,
      'Use 0 for exact copies or a small value such as 0.01.',
    );
  if (!Number.isFinite(o.drop) || o.drop < 0 || o.drop > 1) {
    throw new UpcycleError(
      `The drop ratio must be a number between 0 and 1, got ${o.drop}.`,
      'Use 0 for plain copies; Drop-Upcycling works well with 0.5.',
    );
  }
}

/**
 * Dense llama/mistral → Mixtral layout. Attention, norms and embeddings are the parent's Tensor
 * objects (shared, not copied); experts share byte views of the parent where no arithmetic is needed.
 */
export function upcycle(
  spec: ModelSpec,
  weights: WeightSet,
  options: UpcycleOptions,
): { spec: ModelSpec; weights: WeightSet } {
  const granularity = options.granularity ?? 1;
  const copies = Math.floor(options.experts / granularity);
  const o = {
    experts: options.experts,
    granularity,
    topK: options.topK ?? defaultTopK(granularity, Math.max(1, copies)),
    seed: options.seed ?? 0,
    noise: options.noise ?? 0,
    scaling: options.scaling ?? 'exact',
    drop: options.drop ?? 0,
  };
  validate(spec, weights, o);
  const router = options.router ?? { kind: 'random' };
  const routerSeed = router.kind === 'random' ? (router.seed ?? o.seed) : o.seed;
  const routerScale = router.kind === 'random' ? (router.scale ?? DEFAULT_ROUTER_SCALE) : 0;
  if (!Number.isFinite(routerScale) || routerScale < 0) {
    throw new UpcycleError(
      `The router scale must be a number ≥ 0, got ${routerScale}.`,
      `The default is ${DEFAULT_ROUTER_SCALE}.`,
    );
  }

  const g = granularity;
  const shardSize = spec.intermediateSize / g;
  const d = spec.hiddenSize;

  // Scaling. The G shards of one copy sit in G experts whose router rows are identical, so they have
  // equal probability; with renormalised top-k over whole copies (or dense), each shard's gate weight
  // is 1/G of its copy's share. Multiplying DOWN (a linear map after the nonlinearity) by G undoes
  // that exactly: Σ_g (w/G)·G·down_g(silu(gate_g x)·up_g x) = w·FFN(x). Scaling gate would not work
  // (silu(s·x) ≠ s·silu(x)), which is why Megatron's G^(1/3) on all three matrices is only an
  // approximation for SwiGLU; we offer it to compare. In f16/bf16 a power-of-two G scales exactly.
  const downFactor = o.scaling === 'exact' ? g : Math.cbrt(g);
  const gateUpFactor = o.scaling === 'exact' ? 1 : Math.cbrt(g);
  const noiseRandom = gaussian(o.seed, 1);
  const routerRandom = gaussian(routerSeed, 0);
  const dropIndexRandom = uniformStream(o.seed, 2);
  const dropValueRandom = gaussian(o.seed, 3);
  const dropCount = Math.round(o.drop * shardSize);

  const layers: LayerWeights[] = weights.layers.map((layer) => {
    const mlp = layer.mlp as FfnWeights;
    // The G noise-free shards, shared by every copy when there is no noise.
    const shards: FfnWeights[] = [];
    for (let s = 0; s < g; s++) {
      shards.push({
        gate: sliceRows(mlp.gate, s * shardSize, shardSize),
        up: sliceRows(mlp.up, s * shardSize, shardSize),
        down: g === 1 ? mlp.down : sliceCols(mlp.down, s * shardSize, shardSize),
      });
    }
    const scaledShards = shards.map((sh) => ({
      gate: transform(sh.gate, gateUpFactor, 0, noiseRandom),
      up: transform(sh.up, gateUpFactor, 0, noiseRandom),
      down: transform(sh.down, downFactor, 0, noiseRandom),
    }));
    const experts: FfnWeights[] = [];
    for (let e = 0; e < o.experts; e++) {
      const sh = shards[e % g];
      const copy =
        o.noise === 0
          ? scaledShards[e % g]
          : {
              gate: transform(sh.gate, gateUpFactor, o.noise, noiseRandom),
              up: transform(sh.up, gateUpFactor, o.noise, noiseRandom),
              down: transform(sh.down, downFactor, o.noise, noiseRandom),
            };
      experts.push(
        dropCount === 0 ? copy : dropUnits(copy, sampleIndices(shardSize, dropCount, dropIndexRandom), dropValueRandom),
      );
    }
    // Router "virtual groups": one random row per copy, repeated for its G shards, so the shards of a
    // copy always tie and top-k (ties → lower index) takes whole copies when k is a multiple of G.
    const routerValues = new Float32Array(o.experts * d);
    if (router.kind === 'random') {
      for (let c = 0; c < copies; c++) {
        const row = new Float32Array(d);
        for (let i = 0; i < d; i++) row[i] = routerScale * routerRandom();
        for (let s = 0; s < g; s++) routerValues.set(row, (c * g + s) * d);
      }
    }
    const { mlp: _dense, ...shared } = layer;
    return {
      ...shared,
      moe: { router: fromFloat32(routerValues, [o.experts, d], plainTensor(mlp.gate, 'upcycling').dtype), experts },
    };
  });

  const metadata: UpcyclingMetadata = {
    from: options.from ?? String(spec.config._name_or_path ?? spec.architecture),
    experts: o.experts,
    granularity: g,
    topK: o.topK,
    router: router.kind,
    routerScale,
    seed: o.seed,
    noise: o.noise,
    scaling: o.scaling,
    drop: o.drop,
    parentIntermediateSize: spec.intermediateSize,
  };
  const moe: MoeSpec = {
    numExperts: o.experts,
    topK: o.topK,
    expertIntermediateSize: shardSize,
    normTopkProb: true, // Mixtral always renormalises
    sharedExpertIntermediateSize: 0,
    moeLayers: new Array(spec.numLayers).fill(true),
  };
  const config: Record<string, unknown> = {
    ...spec.config,
    model_type: 'mixtral',
    architectures: ['MixtralForCausalLM'],
    num_local_experts: o.experts,
    num_experts_per_tok: o.topK,
    // In Mixtral's config, intermediate_size is the width of one expert.
    intermediate_size: shardSize,
    head_dim: spec.headDim,
    // Mixtral's defaults for these differ from llama's (rope_theta 1e6, eps 1e-5): write the parent's values out.
    rope_theta: spec.ropeTheta,
    rms_norm_eps: spec.rmsNormEps,
    max_position_embeddings: spec.maxPositions,
    // A mistral parent's window may come from MistralConfig's default (4096), which Mixtral's config does not share.
    sliding_window: spec.slidingWindow,
    tie_word_embeddings: spec.tieWordEmbeddings,
    output_router_logits: false,
    router_aux_loss_coef: spec.config.router_aux_loss_coef ?? 0.02,
    upcycling: metadata,
  };
  delete config.mlp_bias;
  return {
    // intermediateSize follows config.json (the expert width), so the spec equals what loading the written checkpoint gives.
    spec: { ...spec, architecture: 'mixtral', intermediateSize: shardSize, moe, config },
    weights: { embed: weights.embed, layers, finalNorm: weights.finalNorm, lmHead: weights.lmHead },
  };
}
