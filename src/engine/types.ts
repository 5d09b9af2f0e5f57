// The engine's shared vocabulary. Plain data only: no DOM, no Node, no React.
// Every part of the engine (format, upcycle, routing, backends, run) speaks these types.

export type Architecture = 'llama' | 'mistral' | 'mixtral' | 'qwen2_moe' | 'qwen3_moe' | 'olmoe' | 'granitemoe';
/** Storage dtypes of checkpoint files (safetensors): one value per element, little-endian. */
export type DType = 'F32' | 'F16' | 'BF16';
/** Quantized storage, made on load by src/engine/format/quant.ts (never read from or written to a file here). */
export type QuantDType = 'Q8' | 'Q4';
export type TensorDType = DType | QuantDType;
/** What `--quantize` and the page ask for: keep the weights as stored, or quantize matrices on load. */
export type QuantScheme = 'none' | 'q8' | 'q4';

/** One tensor as stored on disk: raw little-endian bytes (possibly a view into a larger file buffer). */
export interface PlainTensor {
  dtype: DType;
  shape: number[];
  /** Exactly numel * bytesPerElement bytes. May be unaligned: use toFloat32() to read values. */
  bytes: Uint8Array;
}

/**
 * A 2-D matrix [rows, cols] (PyTorch Linear layout [out, in]) quantized group-wise along each row:
 * every `groupSize` consecutive values of a row share one f16 scale (and, when `mins` is present, one
 * f16 offset). Value j of row r, with n = r·cols + j, group g = ⌊n/G⌋ (G = groupSize) and k = n mod G:
 *   Q8: int8 code c = bytes[n] as two's complement;            value = c · scale[g]
 *   Q4: the G codes of group g fill bytes [g·G/2, (g+1)·G/2): byte g·G/2 + (k mod G/2) holds code k in its
 *       low nibble when k < G/2, in its high nibble otherwise (llama.cpp's Q4_0 order: SIMD unpacks a
 *       group with one mask and one shift, no shuffles);
 *       without mins: value = (c − 8) · scale[g];  with mins: value = c · scale[g] + min[g]
 * The product is computed in f32 from the f16 scale/min. cols % groupSize === 0 and groupSize is even.
 */
export interface QuantTensor {
  dtype: QuantDType;
  shape: [number, number];
  /** Packed codes: rows·cols bytes (Q8) or rows·cols/2 bytes (Q4). */
  bytes: Uint8Array;
  groupSize: number;
  /** f16 bits of each group's scale, [rows, cols/groupSize]. */
  scales: Uint16Array;
  /** Q4 with offsets only: f16 bits of each group's minimum, [rows, cols/groupSize]. */
  mins?: Uint16Array;
}

/** A weight as a backend receives it: as stored in the checkpoint, or quantized on load. */
export type Tensor = PlainTensor | QuantTensor;

/** A SwiGLU feed-forward block: down(silu(gate(x)) * up(x)). Weights are [out, in] (PyTorch Linear layout). */
export interface FfnWeights {
  gate: Tensor; // [f, d]
  up: Tensor; // [f, d]
  down: Tensor; // [d, f]
}

export interface MoeWeights {
  router: Tensor; // [E, d]
  experts: FfnWeights[]; // E entries; fused layouts are sliced into per-expert views by the loader
  /** qwen2_moe only: an always-on expert scaled by sigmoid(sharedExpertGate · x). */
  sharedExpert?: FfnWeights;
  sharedExpertGate?: Tensor; // [1, d]
}

export interface LayerWeights {
  attnNorm: Tensor; // [d]
  q: Tensor; // [nHeads*headDim, d]
  k: Tensor; // [nKv*headDim, d]
  v: Tensor; // [nKv*headDim, d]
  o: Tensor; // [d, nHeads*headDim]
  qBias?: Tensor;
  kBias?: Tensor;
  vBias?: Tensor;
  /** qwen3_moe: [headDim] applied per head. olmoe: [nHeads*headDim] / [nKv*headDim] over the whole projection. */
  qNorm?: Tensor;
  kNorm?: Tensor;
  ffnNorm: Tensor; // [d]  (post_attention_layernorm)
  /** Exactly one of mlp / moe is present. */
  mlp?: FfnWeights;
  moe?: MoeWeights;
}

/** Weights in canonical form, independent of the checkpoint's tensor names. */
export interface WeightSet {
  embed: Tensor; // [V, d]
  layers: LayerWeights[];
  finalNorm: Tensor; // [d]
  /** The LM head; the same Tensor object as `embed` when embeddings are tied. */
  lmHead: Tensor; // [V, d]
}

export interface MoeSpec {
  numExperts: number; // E (total routed experts)
  topK: number; // num_experts_per_tok: what `native` routing uses
  expertIntermediateSize: number;
  /** Renormalise the chosen experts' probabilities to sum to 1 (Mixtral: always; qwen/olmoe: per config). */
  normTopkProb: boolean;
  /** 0 when there is no shared expert. */
  sharedExpertIntermediateSize: number;
  /** For each layer index: true when that layer is an MoE layer (qwen: decoder_sparse_step, mlp_only_layers). */
  moeLayers: boolean[];
}

/**
 * Llama 3.1's RoPE frequency scaling (rope_type "llama3"). For inverse frequency f with wavelength λ = 2π/f:
 * λ > L₀/lowFreqFactor → f/factor; λ < L₀/highFreqFactor → f; in between a linear blend (docs/formats.md).
 */
export interface Llama3RopeScaling {
  type: 'llama3';
  factor: number;
  lowFreqFactor: number;
  highFreqFactor: number;
  /** L₀: the context length the model was pretrained with. */
  originalMaxPositions: number;
}

export interface ModelSpec {
  architecture: Architecture;
  vocabSize: number;
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  /** Dense FFN width (dense layers; also the dense parent of an upcycled model). */
  intermediateSize: number;
  rmsNormEps: number;
  ropeTheta: number;
  /** null: plain RoPE, inv_freq_i = ropeTheta^(-2i/headDim). */
  ropeScaling: Llama3RopeScaling | null;
  maxPositions: number;
  /** mistral/mixtral: query i sees keys j with i − slidingWindow < j ≤ i. null: every earlier position. */
  slidingWindow: number | null;
  // granitemoe's multipliers; every other architecture has 1, 1/√headDim, 1, 1.
  /** The token embeddings are multiplied by this before the first layer. */
  embeddingMultiplier: number;
  /** Attention scores are q·k times this (1/√headDim unless the config says otherwise). */
  attentionScale: number;
  /** Each residual add is x + sublayer(x) · residualMultiplier. */
  residualMultiplier: number;
  /** The logits are divided by this. */
  logitsScaling: number;
  tieWordEmbeddings: boolean;
  attentionBias: boolean;
  qkNorm: 'none' | 'per_head' | 'full';
  /** Storage dtype of the weights (the most common one when mixed). */
  dtype: DType;
  moe: MoeSpec | null;
  /** The raw config.json, kept for writing checkpoints back out. */
  config: Record<string, unknown>;
}

// ---------------------------------------------------------------------------------------------
// Routing (docs/routing.md)

export type RoutingMode =
  | { kind: 'native' }
  | { kind: 'topk'; k: number }
  | { kind: 'threshold'; t: number }
  | { kind: 'dense' };

/** Ablate: expert's logit := -inf before softmax. Force: expert always in the chosen set. */
export interface Intervention {
  layer: number; // absolute layer index
  expert: number;
  action: 'ablate' | 'force';
}

export interface RoutingPlan {
  mode: RoutingMode;
  interventions: Intervention[];
  /**
   * How an ablated expert counts. Default ('excluded', the page's and the CLI's rule): it is never
   * chosen, computed or counted; when fewer live experts than k remain, the remaining ones are
   * chosen, and dense runs only the live experts. 'zero-weight': the PyTorch reference's literal
   * semantics (its p is 0, yet it still fills top-k slots no live expert can take, and dense keeps
   * it, all with weight 0); the fixtures' parity tests may use it.
   */
  ablation?: 'excluded' | 'zero-weight';
}

/** The router's decision for one token at one MoE layer. */
export interface TokenRouting {
  /** Chosen experts, ordered by descending probability. */
  experts: number[];
  /** Gate weights of the chosen experts, same order. */
  weights: number[];
  /** Router probabilities over all E experts (after interventions). */
  probs: Float32Array;
}

/** Routing for a run of positions: layers[m][t] is MoE layer m (absolute index moeLayers[m]), token t. */
export interface RoutingTrace {
  moeLayers: number[];
  /** Absolute positions in the sequence of the tokens covered, in order. */
  positions: number[];
  layers: TokenRouting[][];
}

// ---------------------------------------------------------------------------------------------
// Backends

export type BackendKind = 'cpu' | 'webgpu';

/** A KV cache owned by a backend. Opaque above the backend. */
export interface KvCache {
  /** Number of positions already stored. */
  readonly length: number;
  readonly capacity: number;
  /** Drop everything from position `length` on (for re-scoring or rewinding). */
  truncate(length: number): void;
  dispose(): void;
}

export interface ForwardOptions {
  routing: RoutingPlan;
  /** Which positions' logits to return: every input position, or only the last. */
  logits: 'all' | 'last';
}

export interface ForwardResult {
  /** One full-vocabulary row per requested position. */
  logits: Float32Array[];
  routing: RoutingTrace;
}

/** A model resident on a backend (weights uploaded). */
export interface LoadedModel {
  readonly spec: ModelSpec;
  readonly backend: BackendKind;
  newCache(capacity: number): KvCache;
  /** Append `tokens` at positions cache.length.. and run them through the model. */
  forward(tokens: number[], cache: KvCache, options: ForwardOptions): Promise<ForwardResult>;
  dispose(): void;
}

export interface Backend {
  readonly kind: BackendKind;
  /** Human-readable description (adapter name, fallback reason...). */
  readonly description: string;
  load(spec: ModelSpec, weights: WeightSet): Promise<LoadedModel>;
  dispose(): void;
}

// ---------------------------------------------------------------------------------------------
// Where checkpoint files come from. Implementations: a folder on disk (src/cli, Node only),
// a URL prefix (fetch, browser and Node), dropped File objects (browser).

export interface CheckpointSource {
  /** Shown in error messages: a folder path, a URL, "dropped files". */
  readonly label: string;
  /**
   * The whole file, or null when it does not exist. Other failures throw. `onProgress` (optional)
   * hears the bytes received so far and the total when the source knows it.
   */
  readFile(name: string, onProgress?: (received: number, total: number | null) => void): Promise<Uint8Array | null>;
}
