// config.json (Hugging Face) <-> ModelSpec. Defaults follow the transformers config classes.

import type { Architecture, DType, Llama3RopeScaling, ModelSpec, MoeSpec } from '../types.ts';
import { CheckpointError, HINT_CONFIG } from './errors.ts';

export const SUPPORTED_ARCHITECTURES: readonly Architecture[] = [
  'llama',
  'mistral',
  'mixtral',
  'qwen2_moe',
  'qwen3_moe',
  'olmoe',
  'granitemoe',
];

const HF_CLASS: Record<Architecture, string> = {
  llama: 'LlamaForCausalLM',
  mistral: 'MistralForCausalLM',
  mixtral: 'MixtralForCausalLM',
  qwen2_moe: 'Qwen2MoeForCausalLM',
  qwen3_moe: 'Qwen3MoeForCausalLM',
  olmoe: 'OlmoeForCausalLM',
  granitemoe: 'GraniteMoeForCausalLM',
};

// transformers' defaults for keys a config.json may leave out.
const DEFAULTS: Record<Architecture, { ropeTheta: number; maxPositions: number; rmsNormEps: number }> = {
  llama: { ropeTheta: 10000, maxPositions: 2048, rmsNormEps: 1e-6 },
  mistral: { ropeTheta: 10000, maxPositions: 4096 * 32, rmsNormEps: 1e-6 },
  mixtral: { ropeTheta: 1e6, maxPositions: 4096 * 32, rmsNormEps: 1e-5 },
  qwen2_moe: { ropeTheta: 10000, maxPositions: 32768, rmsNormEps: 1e-6 },
  qwen3_moe: { ropeTheta: 10000, maxPositions: 32768, rmsNormEps: 1e-6 },
  olmoe: { ropeTheta: 10000, maxPositions: 4096, rmsNormEps: 1e-5 },
  granitemoe: { ropeTheta: 10000, maxPositions: 2048, rmsNormEps: 1e-6 },
};

// sliding_window when config.json leaves the key out: MistralConfig defaults to 4096, MixtralConfig to none.
// The other architectures here have no sliding window (qwen's use_sliding_window is refused below).
const DEFAULT_SLIDING_WINDOW: Partial<Record<Architecture, number | null>> = { mistral: 4096, mixtral: null };

const TORCH_DTYPES: Record<string, DType> = { float32: 'F32', float16: 'F16', bfloat16: 'BF16' };
const DTYPE_NAMES: Record<DType, string> = { F32: 'float32', F16: 'float16', BF16: 'bfloat16' };

// Limits that no model a browser could hold comes near; beyond them the config is broken.
const LIMITS = {
  vocab_size: 10_000_000,
  hidden_size: 65536,
  intermediate_size: 1 << 20,
  num_hidden_layers: 1000,
  num_attention_heads: 1024,
  head_dim: 2048,
  num_experts: 4096,
};

function isMoeArchitecture(a: Architecture): boolean {
  return a !== 'llama' && a !== 'mistral';
}

/** Read config.json (already parsed) into a ModelSpec; throws CheckpointError naming `fileName`. */
export function specFromConfig(config: unknown, fileName = 'config.json'): ModelSpec {
  function fail(message: string, hint = HINT_CONFIG): never {
    throw new CheckpointError(fileName, message, hint);
  }
  if (typeof config !== 'object' || config === null || Array.isArray(config)) fail('the file is not a JSON object.');
  const c = config as Record<string, unknown>;

  const modelType = c.model_type;
  if (typeof modelType !== 'string') {
    fail('"model_type" is missing.', `Add "model_type"; supported: ${SUPPORTED_ARCHITECTURES.join(', ')}.`);
  }
  if (!(SUPPORTED_ARCHITECTURES as readonly string[]).includes(modelType)) {
    fail(
      `model_type "${modelType}" is not supported.`,
      `Supported model types: ${SUPPORTED_ARCHITECTURES.join(', ')}.`,
    );
  }
  const arch = modelType as Architecture;

  function has(key: string): boolean {
    return c[key] !== undefined && c[key] !== null;
  }
  function int(key: string, opts: { min?: number; max?: number; fallback?: number } = {}): number {
    const { min = 1, max = Number.MAX_SAFE_INTEGER, fallback } = opts;
    if (!has(key)) {
      if (fallback !== undefined) return fallback;
      fail(`required key "${key}" is missing.`);
    }
    const v = c[key];
    if (typeof v !== 'number' || !Number.isInteger(v)) fail(`"${key}" is ${JSON.stringify(v)}; it must be an integer.`);
    if (v < min || v > max) fail(`"${key}" is ${v}; it must be between ${min} and ${max}.`);
    return v;
  }
  function positive(key: string, fallback: number, max = Infinity): number {
    if (!has(key)) return fallback;
    const v = c[key];
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0 || v >= max) {
      fail(`"${key}" is ${JSON.stringify(v)}; it must be a positive number${max < Infinity ? ` below ${max}` : ''}.`);
    }
    return v;
  }
  function bool(key: string, fallback: boolean): boolean {
    if (!has(key)) return fallback;
    const v = c[key];
    if (typeof v !== 'boolean') fail(`"${key}" is ${JSON.stringify(v)}; it must be true or false.`);
    return v;
  }

  if (has('hidden_act') && c.hidden_act !== 'silu') {
    fail(`hidden_act "${String(c.hidden_act)}" is not supported; only "silu" (SwiGLU) is.`);
  }
  if (has('mlp_bias') && c.mlp_bias !== false) {
    fail(
      `mlp_bias is ${JSON.stringify(c.mlp_bias)}; biases in the feed-forward layers are not supported.`,
      'Use a checkpoint with "mlp_bias": false.',
    );
  }
  if (has('position_embedding_type') && c.position_embedding_type !== 'rope') {
    fail(`position_embedding_type "${String(c.position_embedding_type)}" is not supported; only "rope" is.`);
  }
  if ((arch === 'qwen2_moe' || arch === 'qwen3_moe') && c.use_sliding_window === true) {
    fail(
      'use_sliding_window is true; per-layer sliding-window attention (max_window_layers) is not supported for qwen models.',
      'Use a checkpoint with "use_sliding_window": false.',
    );
  }
  // RoPE scaling: transformers reads rope_scaling (v4) or rope_parameters (v5); "type" is the old name of "rope_type".
  const ropeScalingRaw = c.rope_scaling;
  if (
    ropeScalingRaw !== undefined &&
    ropeScalingRaw !== null &&
    (typeof ropeScalingRaw !== 'object' || Array.isArray(ropeScalingRaw))
  ) {
    fail(`"rope_scaling" is ${JSON.stringify(ropeScalingRaw)}; it must be an object or null.`);
  }
  const ropeParams = (
    typeof c.rope_parameters === 'object' && c.rope_parameters !== null ? c.rope_parameters : {}
  ) as Record<string, unknown>;
  const [ropeKey, rope] = ropeScalingRaw
    ? ['rope_scaling', ropeScalingRaw as Record<string, unknown>]
    : ['rope_parameters', ropeParams];
  const ropeType = rope.rope_type ?? rope.type ?? 'default';
  let ropeScaling: Llama3RopeScaling | null = null;
  if (ropeType === 'llama3') {
    const ropeNumber = (key: string, check: (v: number) => boolean, rule: string): number => {
      const v = rope[key];
      if (typeof v !== 'number' || !Number.isFinite(v) || !check(v)) {
        fail(`${ropeKey}.${key} is ${JSON.stringify(v)}; llama3 RoPE scaling needs ${rule}.`);
      }
      return v;
    };
    ropeScaling = {
      type: 'llama3',
      factor: ropeNumber('factor', (v) => v >= 1, 'a number ≥ 1'),
      lowFreqFactor: ropeNumber('low_freq_factor', (v) => v > 0, 'a positive number'),
      highFreqFactor: ropeNumber('high_freq_factor', (v) => v > 0, 'a positive number'),
      originalMaxPositions: ropeNumber(
        'original_max_position_embeddings',
        (v) => Number.isInteger(v) && v > 0,
        'a positive integer',
      ),
    };
    if (ropeScaling.highFreqFactor <= ropeScaling.lowFreqFactor) {
      fail(
        `${ropeKey}.high_freq_factor (${ropeScaling.highFreqFactor}) must be larger than low_freq_factor (${ropeScaling.lowFreqFactor}).`,
      );
    }
  } else if (ropeType !== 'default') {
    fail(
      `${ropeKey}.${rope.rope_type !== undefined ? 'rope_type' : 'type'} "${String(ropeType)}" is not supported.`,
      'Plain RoPE and Llama 3.1\'s "llama3" scaling are implemented; use a checkpoint with one of those.',
    );
  }
  if (rope.partial_rotary_factor !== undefined && rope.partial_rotary_factor !== 1) {
    fail(
      `${ropeKey}.partial_rotary_factor is ${JSON.stringify(rope.partial_rotary_factor)}; only RoPE over the whole head (1) is supported.`,
    );
  }

  const hiddenSize = int('hidden_size', { max: LIMITS.hidden_size });
  const numLayers = int('num_hidden_layers', { max: LIMITS.num_hidden_layers });
  const numHeads = int('num_attention_heads', { max: LIMITS.num_attention_heads });
  const numKvHeads = int('num_key_value_heads', { max: numHeads, fallback: numHeads });
  if (numHeads % numKvHeads !== 0) {
    fail(`num_attention_heads (${numHeads}) is not a multiple of num_key_value_heads (${numKvHeads}).`);
  }
  // granitemoe derives head_dim from hidden_size and ignores a head_dim key, as transformers does.
  const headDimGiven = arch !== 'granitemoe' && has('head_dim');
  if (!headDimGiven && hiddenSize % numHeads !== 0) {
    fail(
      `hidden_size (${hiddenSize}) is not divisible by num_attention_heads (${numHeads})${arch === 'granitemoe' ? '' : ' and head_dim is not given'}.`,
    );
  }
  const headDim = headDimGiven ? int('head_dim', { max: LIMITS.head_dim }) : hiddenSize / numHeads;
  if (headDim % 2 !== 0) fail(`head_dim is ${headDim}; RoPE needs an even head dimension.`);
  const vocabSize = int('vocab_size', { max: LIMITS.vocab_size });
  const defaults = DEFAULTS[arch];
  const rmsNormEps = positive('rms_norm_eps', defaults.rmsNormEps, 1);
  const ropeTheta = has('rope_theta')
    ? positive('rope_theta', defaults.ropeTheta)
    : typeof ropeParams.rope_theta === 'number' && ropeParams.rope_theta > 0
      ? ropeParams.rope_theta
      : defaults.ropeTheta;
  const maxPositions = int('max_position_embeddings', { max: 1 << 24, fallback: defaults.maxPositions });
  const tieWordEmbeddings = bool('tie_word_embeddings', false);

  let slidingWindow: number | null = null;
  const windowDefault = DEFAULT_SLIDING_WINDOW[arch];
  if (windowDefault !== undefined) {
    // A null sliding_window means full attention; a missing key, the config class's default.
    slidingWindow =
      c.sliding_window === undefined
        ? windowDefault
        : c.sliding_window === null
          ? null
          : int('sliding_window', { max: 1 << 30 });
  }
  // granitemoe's multipliers (GraniteMoeConfig defaults: 1.0 each); plain 1/√headDim attention elsewhere.
  const granite = arch === 'granitemoe';
  const embeddingMultiplier = granite ? positive('embedding_multiplier', 1) : 1;
  const attentionScale = granite ? positive('attention_multiplier', 1) : 1 / Math.sqrt(headDim);
  const residualMultiplier = granite ? positive('residual_multiplier', 1) : 1;
  const logitsScaling = granite ? positive('logits_scaling', 1) : 1;

  let attentionBias: boolean;
  if (arch === 'qwen2_moe') {
    attentionBias = bool('qkv_bias', true); // Qwen1.5-MoE: q/k/v carry a bias, o_proj does not
  } else if (arch === 'mixtral') {
    attentionBias = false;
  } else {
    attentionBias = bool('attention_bias', false);
    if (attentionBias) {
      fail(
        `attention_bias = true (a bias on o_proj as well) is not supported for ${arch}.`,
        'Use a checkpoint trained without attention biases.',
      );
    }
  }
  if (arch === 'olmoe' && has('clip_qkv')) {
    fail('clip_qkv is set; clipping q/k/v activations is not supported.', 'Use a checkpoint with "clip_qkv": null.');
  }
  const qkNorm = arch === 'qwen3_moe' ? 'per_head' : arch === 'olmoe' ? 'full' : 'none';

  // Dense FFN width. qwen models only use it for mlp_only layers, so it may be absent there.
  const qwen = arch === 'qwen2_moe' || arch === 'qwen3_moe';
  let moe: MoeSpec | null = null;
  let intermediateSize: number;
  if (!isMoeArchitecture(arch)) {
    intermediateSize = int('intermediate_size', { max: LIMITS.intermediate_size });
  } else {
    const numExperts =
      arch === 'mixtral'
        ? int(has('num_local_experts') ? 'num_local_experts' : 'num_experts', { max: LIMITS.num_experts })
        : arch === 'granitemoe'
          ? int('num_local_experts', { max: LIMITS.num_experts })
          : int('num_experts', { max: LIMITS.num_experts });
    const topK = int('num_experts_per_tok', { max: LIMITS.num_experts });
    if (topK > numExperts) fail(`num_experts_per_tok (${topK}) is larger than the number of experts (${numExperts}).`);

    let moeLayers: boolean[];
    if (qwen) {
      const step = int('decoder_sparse_step', { max: numLayers, fallback: 1 });
      const mlpOnly = c.mlp_only_layers ?? [];
      if (!Array.isArray(mlpOnly) || !mlpOnly.every((i) => Number.isInteger(i) && i >= 0 && i < numLayers)) {
        fail(`"mlp_only_layers" is ${JSON.stringify(mlpOnly)}; it must list layer indices below ${numLayers}.`);
      }
      moeLayers = Array.from({ length: numLayers }, (_, i) => !mlpOnly.includes(i) && (i + 1) % step === 0);
    } else {
      moeLayers = new Array<boolean>(numLayers).fill(true);
    }

    // Mixtral, OLMoE and GraniteMoe size their experts with intermediate_size; qwen uses moe_intermediate_size.
    const expertIntermediateSize = qwen
      ? int('moe_intermediate_size', { max: LIMITS.intermediate_size })
      : int('intermediate_size', { max: LIMITS.intermediate_size });
    const hasDenseLayer = moeLayers.some((m) => !m);
    intermediateSize = qwen
      ? int('intermediate_size', {
          max: LIMITS.intermediate_size,
          fallback: hasDenseLayer ? undefined : expertIntermediateSize,
        })
      : expertIntermediateSize;

    // Mixtral and GraniteMoe (softmax over the top-k logits) always renormalise in transformers; an explicit
    // false is honoured (DS-MoE exports).
    const normTopkProb = bool('norm_topk_prob', arch === 'mixtral' || arch === 'granitemoe');
    const sharedExpertIntermediateSize =
      arch === 'qwen2_moe' ? int('shared_expert_intermediate_size', { max: LIMITS.intermediate_size }) : 0;
    moe = { numExperts, topK, expertIntermediateSize, normTopkProb, sharedExpertIntermediateSize, moeLayers };
  }

  const torchDtype = c.torch_dtype ?? c.dtype;
  const dtype: DType = (typeof torchDtype === 'string' && TORCH_DTYPES[torchDtype]) || 'F32';

  return {
    architecture: arch,
    vocabSize,
    hiddenSize,
    numLayers,
    numHeads,
    numKvHeads,
    headDim,
    intermediateSize,
    rmsNormEps,
    ropeTheta,
    ropeScaling,
    maxPositions,
    slidingWindow,
    embeddingMultiplier,
    attentionScale,
    residualMultiplier,
    logitsScaling,
    tieWordEmbeddings,
    attentionBias,
    qkNorm,
    dtype,
    moe,
    config: { ...c },
  };
}

/** config.json for a spec: the original config with every value the spec defines written over it. */
export function configFromSpec(spec: ModelSpec): Record<string, unknown> {
  const arch = spec.architecture;
  const owned: Record<string, unknown> = {
    architectures: [HF_CLASS[arch]],
    model_type: arch,
    vocab_size: spec.vocabSize,
    hidden_size: spec.hiddenSize,
    intermediate_size: spec.intermediateSize,
    num_hidden_layers: spec.numLayers,
    num_attention_heads: spec.numHeads,
    num_key_value_heads: spec.numKvHeads,
    head_dim: spec.headDim,
    hidden_act: 'silu',
    rms_norm_eps: spec.rmsNormEps,
    rope_theta: spec.ropeTheta,
    max_position_embeddings: spec.maxPositions,
    tie_word_embeddings: spec.tieWordEmbeddings,
    torch_dtype: DTYPE_NAMES[spec.dtype],
  };
  if (arch === 'qwen2_moe') owned.qkv_bias = spec.attentionBias;
  else if (arch !== 'mixtral') owned.attention_bias = spec.attentionBias;
  if (arch === 'granitemoe') {
    delete owned.head_dim; // derived from hidden_size by transformers
    owned.embedding_multiplier = spec.embeddingMultiplier;
    owned.attention_multiplier = spec.attentionScale;
    owned.residual_multiplier = spec.residualMultiplier;
    owned.logits_scaling = spec.logitsScaling;
  } else if (
    spec.embeddingMultiplier !== 1 ||
    spec.residualMultiplier !== 1 ||
    spec.logitsScaling !== 1 ||
    Math.abs(spec.attentionScale * Math.sqrt(spec.headDim) - 1) > 1e-12
  ) {
    throw new CheckpointError(
      'config.json',
      `a ${arch} config cannot hold embedding, attention, residual or logits multipliers.`,
      'Export it as granitemoe.',
    );
  }
  if (arch === 'mistral' || arch === 'mixtral') owned.sliding_window = spec.slidingWindow;
  else if (spec.slidingWindow !== null) {
    throw new CheckpointError(
      'config.json',
      `a ${arch} config cannot hold a sliding window.`,
      'Export it as mistral or mixtral.',
    );
  }
  const rope = spec.ropeScaling && {
    rope_type: 'llama3',
    factor: spec.ropeScaling.factor,
    low_freq_factor: spec.ropeScaling.lowFreqFactor,
    high_freq_factor: spec.ropeScaling.highFreqFactor,
    original_max_position_embeddings: spec.ropeScaling.originalMaxPositions,
  };
  // transformers v5 configs carry rope_parameters instead of rope_scaling: keep to the dialect of the original.
  const v5Rope = typeof spec.config.rope_parameters === 'object' && spec.config.rope_parameters !== null;
  if (!v5Rope) owned.rope_scaling = rope;

  const moe = spec.moe;
  if (isMoeArchitecture(arch) !== (moe !== null)) {
    throw new CheckpointError(
      'config.json',
      `a ${arch} model ${moe ? 'cannot have' : 'needs'} MoE layers.`,
      HINT_CONFIG,
    );
  }
  if (moe) {
    owned.num_experts_per_tok = moe.topK;
    owned.norm_topk_prob = moe.normTopkProb;
    if (arch === 'qwen2_moe' || arch === 'qwen3_moe') {
      owned.num_experts = moe.numExperts;
      owned.moe_intermediate_size = moe.expertIntermediateSize;
      owned.decoder_sparse_step = 1;
      owned.mlp_only_layers = moe.moeLayers.flatMap((isMoe, i) => (isMoe ? [] : [i]));
      if (arch === 'qwen2_moe') owned.shared_expert_intermediate_size = moe.sharedExpertIntermediateSize;
    } else {
      if (moe.moeLayers.some((m) => !m)) {
        throw new CheckpointError(
          'config.json',
          `${arch} cannot describe a model with dense layers between MoE layers.`,
          'Export it as qwen3_moe, whose config lists dense layers in mlp_only_layers.',
        );
      }
      owned[arch === 'mixtral' || arch === 'granitemoe' ? 'num_local_experts' : 'num_experts'] = moe.numExperts;
      owned.intermediate_size = moe.expertIntermediateSize;
    }
  }

  // The spec's keys first (fixed order, so exporting twice is byte-identical), then whatever else the
  // original config carried, minus keys of other MoE dialects that would contradict the ones above.
  const dropped = new Set([
    'num_local_experts',
    'num_experts',
    'moe_intermediate_size',
    'shared_expert_intermediate_size',
    'decoder_sparse_step',
    'mlp_only_layers',
    'norm_topk_prob',
    'num_experts_per_tok',
    'qkv_bias',
    'attention_bias',
    'dtype',
  ]);
  const rest = Object.fromEntries(Object.entries(spec.config).filter(([key]) => !(key in owned) && !dropped.has(key)));
  if (v5Rope) {
    rest.rope_parameters = {
      ...(spec.config.rope_parameters as object),
      rope_theta: spec.ropeTheta,
      ...(rope ?? { rope_type: 'default' }),
    };
  }
  return { ...owned, ...rest };
}
