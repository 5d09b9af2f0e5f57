// A random dense llama checkpoint, deterministic per seed: the parent for bench models and upcycling tests.
import type { DType, ModelSpec, Tensor, WeightSet } from '../engine/types.ts';
import { fromFloat32, specFromConfig } from '../engine/format/index.ts';
import { gaussian } from '../engine/upcycle/random.ts';

export interface RandomLlamaOptions {
  vocabSize: number;
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  intermediateSize: number;
  dtype: DType;
  seed: number;
  maxPositions?: number;
  tieWordEmbeddings?: boolean;
}

const TORCH_DTYPE: Record<DType, string> = { F32: 'float32', F16: 'float16', BF16: 'bfloat16' };

export function randomDenseLlama(o: RandomLlamaOptions): { spec: ModelSpec; weights: WeightSet } {
  const config = {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    vocab_size: o.vocabSize,
    hidden_size: o.hiddenSize,
    intermediate_size: o.intermediateSize,
    num_hidden_layers: o.numLayers,
    num_attention_heads: o.numHeads,
    num_key_value_heads: o.numKvHeads,
    head_dim: o.hiddenSize / o.numHeads,
    hidden_act: 'silu',
    max_position_embeddings: o.maxPositions ?? 512,
    rms_norm_eps: 1e-5,
    rope_theta: 10000,
    tie_word_embeddings: o.tieWordEmbeddings ?? false,
    attention_bias: false,
    torch_dtype: TORCH_DTYPE[o.dtype],
  };
  const spec = specFromConfig(config, 'config.json');
  const normal = gaussian(o.seed, 2);
  // Scaled like a trained model's activations (std 1/sqrt(fan_in)), so logits are O(1) and differences show.
  const matrix = (rows: number, cols: number, std = 1 / Math.sqrt(cols)): Tensor => {
    const v = new Float32Array(rows * cols);
    for (let i = 0; i < v.length; i++) v[i] = std * normal();
    return fromFloat32(v, [rows, cols], o.dtype);
  };
  const norm = (n: number): Tensor => {
    const v = new Float32Array(n);
    for (let i = 0; i < n; i++) v[i] = 1 + 0.1 * normal();
    return fromFloat32(v, [n], o.dtype);
  };
  const d = spec.hiddenSize;
  const qDim = spec.numHeads * spec.headDim;
  const kvDim = spec.numKvHeads * spec.headDim;
  const embed = matrix(spec.vocabSize, d, 1);
  const layers = Array.from({ length: spec.numLayers }, () => ({
    attnNorm: norm(d),
    q: matrix(qDim, d),
    k: matrix(kvDim, d),
    v: matrix(kvDim, d),
    o: matrix(d, qDim),
    ffnNorm: norm(d),
    mlp: {
      gate: matrix(spec.intermediateSize, d),
      up: matrix(spec.intermediateSize, d),
      down: matrix(d, spec.intermediateSize),
    },
  }));
  return {
    spec,
    weights: { embed, layers, finalNorm: norm(d), lmHead: spec.tieWordEmbeddings ? embed : matrix(spec.vocabSize, d) },
  };
}
