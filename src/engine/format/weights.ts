// Hugging Face tensor names <-> the canonical WeightSet, with every shape checked against the spec.

import type { FfnWeights, LayerWeights, ModelSpec, MoeWeights, PlainTensor, Tensor, WeightSet } from '../types.ts';
import { bytesPerElement } from './dtype.ts';
import { plainTensor } from './quant.ts';
import { CheckpointError, HINT_MISMATCH } from './errors.ts';

/** Where each tensor came from, for error messages (shard file name). */
export type FileOfTensor = (name: string) => string;

function shapeText(shape: readonly number[]): string {
  return `[${shape.join(',')}]`;
}

/**
 * Build the canonical WeightSet from a checkpoint's tensors. Missing tensors and wrong shapes throw
 * CheckpointError naming the tensor; tensors the spec does not use are ignored.
 */
export function weightsFromTensors(
  spec: ModelSpec,
  tensors: ReadonlyMap<string, PlainTensor>,
  fileOf: FileOfTensor = () => 'model.safetensors',
): WeightSet {
  const d = spec.hiddenSize;
  const qDim = spec.numHeads * spec.headDim;
  const kvDim = spec.numKvHeads * spec.headDim;

  function check(name: string, t: PlainTensor, shape: number[]): PlainTensor {
    if (t.shape.length !== shape.length || t.shape.some((s, i) => s !== shape[i])) {
      throw new CheckpointError(
        fileOf(name),
        `tensor ${name} has shape ${shapeText(t.shape)} but config.json implies ${shapeText(shape)}.`,
        HINT_MISMATCH,
      );
    }
    return t;
  }
  function take(name: string, shape: number[]): PlainTensor {
    const t = tensors.get(name);
    if (!t) {
      throw new CheckpointError(
        fileOf(name),
        `tensor ${name} is missing, but config.json (${spec.architecture}) needs it.`,
        HINT_MISMATCH,
      );
    }
    return check(name, t, shape);
  }
  function ffn(prefix: string, names: [string, string, string], f: number): FfnWeights {
    return {
      gate: take(`${prefix}.${names[0]}.weight`, [f, d]),
      up: take(`${prefix}.${names[1]}.weight`, [f, d]),
      down: take(`${prefix}.${names[2]}.weight`, [d, f]),
    };
  }
  // Zero-copy view of rows [row0, row0+rows) of matrix `index` inside a stacked [E, R, C] tensor.
  function slice(
    t: PlainTensor,
    index: number,
    rowsPerMatrix: number,
    cols: number,
    row0: number,
    rows: number,
  ): PlainTensor {
    const bpe = bytesPerElement(t.dtype);
    const start = (index * rowsPerMatrix + row0) * cols * bpe;
    return { dtype: t.dtype, shape: [rows, cols], bytes: t.bytes.subarray(start, start + rows * cols * bpe) };
  }

  function moeBlock(layer: number): MoeWeights {
    const moe = spec.moe!;
    const E = moe.numExperts;
    const f = moe.expertIntermediateSize;
    if (spec.architecture === 'granitemoe') {
      // GraniteMoe: router.layer, and experts fused as input_linear [E, 2f, d] (gate rows, then up rows)
      // and output_linear [E, d, f].
      const block = `model.layers.${layer}.block_sparse_moe`;
      const router = take(`${block}.router.layer.weight`, [E, d]);
      const input = take(`${block}.input_linear.weight`, [E, 2 * f, d]);
      const output = take(`${block}.output_linear.weight`, [E, d, f]);
      const experts = Array.from({ length: E }, (_, e) => ({
        gate: slice(input, e, 2 * f, d, 0, f),
        up: slice(input, e, 2 * f, d, f, f),
        down: slice(output, e, d, f, 0, d),
      }));
      return { router, experts };
    }
    // Mixtral checkpoints use block_sparse_moe; newer transformers (and qwen/olmoe) use mlp.
    const candidates = spec.architecture === 'mixtral' ? ['block_sparse_moe', 'mlp'] : ['mlp', 'block_sparse_moe'];
    const block =
      candidates.map((c) => `model.layers.${layer}.${c}`).find((p) => tensors.has(`${p}.gate.weight`)) ??
      `model.layers.${layer}.${candidates[0]}`;
    const router = take(`${block}.gate.weight`, [E, d]);

    let experts: FfnWeights[];
    const fusedGateUp = `${block}.experts.gate_up_proj`;
    if (tensors.has(fusedGateUp)) {
      const gateUp = take(fusedGateUp, [E, 2 * f, d]);
      const down = take(`${block}.experts.down_proj`, [E, d, f]);
      experts = Array.from({ length: E }, (_, e) => ({
        gate: slice(gateUp, e, 2 * f, d, 0, f),
        up: slice(gateUp, e, 2 * f, d, f, f),
        down: slice(down, e, d, f, 0, d),
      }));
    } else {
      const names: [string, string, string] = tensors.has(`${block}.experts.0.w1.weight`)
        ? ['w1', 'w3', 'w2']
        : tensors.has(`${block}.experts.0.gate_proj.weight`) || spec.architecture !== 'mixtral'
          ? ['gate_proj', 'up_proj', 'down_proj']
          : ['w1', 'w3', 'w2'];
      experts = Array.from({ length: E }, (_, e) => ffn(`${block}.experts.${e}`, names, f));
    }

    const result: MoeWeights = { router, experts };
    if (moe.sharedExpertIntermediateSize > 0) {
      result.sharedExpert = ffn(
        `${block}.shared_expert`,
        ['gate_proj', 'up_proj', 'down_proj'],
        moe.sharedExpertIntermediateSize,
      );
      result.sharedExpertGate = take(`${block}.shared_expert_gate.weight`, [1, d]);
    }
    return result;
  }

  const embed = take('model.embed_tokens.weight', [spec.vocabSize, d]);
  const layers: LayerWeights[] = [];
  for (let L = 0; L < spec.numLayers; L++) {
    const p = `model.layers.${L}`;
    const attn = `${p}.self_attn`;
    const layer: LayerWeights = {
      attnNorm: take(`${p}.input_layernorm.weight`, [d]),
      q: take(`${attn}.q_proj.weight`, [qDim, d]),
      k: take(`${attn}.k_proj.weight`, [kvDim, d]),
      v: take(`${attn}.v_proj.weight`, [kvDim, d]),
      o: take(`${attn}.o_proj.weight`, [d, qDim]),
      ffnNorm: take(`${p}.post_attention_layernorm.weight`, [d]),
    };
    if (spec.attentionBias) {
      layer.qBias = take(`${attn}.q_proj.bias`, [qDim]);
      layer.kBias = take(`${attn}.k_proj.bias`, [kvDim]);
      layer.vBias = take(`${attn}.v_proj.bias`, [kvDim]);
    }
    if (spec.qkNorm === 'per_head') {
      layer.qNorm = take(`${attn}.q_norm.weight`, [spec.headDim]);
      layer.kNorm = take(`${attn}.k_norm.weight`, [spec.headDim]);
    } else if (spec.qkNorm === 'full') {
      layer.qNorm = take(`${attn}.q_norm.weight`, [qDim]);
      layer.kNorm = take(`${attn}.k_norm.weight`, [kvDim]);
    }
    if (spec.moe?.moeLayers[L]) layer.moe = moeBlock(L);
    else layer.mlp = ffn(`${p}.mlp`, ['gate_proj', 'up_proj', 'down_proj'], spec.intermediateSize);
    layers.push(layer);
  }
  const finalNorm = take('model.norm.weight', [d]);
  // Tied checkpoints usually omit lm_head; when one is present anyway, the embedding still wins (as in transformers).
  const lmHead = spec.tieWordEmbeddings ? embed : take('lm_head.weight', [spec.vocabSize, d]);
  return { embed, layers, finalNorm, lmHead };
}

/** One [count, ...shape] tensor from `count` tensors of one dtype and shape (a copy). */
function stack(tensors: Tensor[]): PlainTensor {
  const parts = tensors.map((t) => plainTensor(t, 'writing a fused expert tensor'));
  const each = parts[0].bytes.byteLength;
  if (parts.some((t) => t.dtype !== parts[0].dtype || t.bytes.byteLength !== each)) {
    throw new CheckpointError(
      'model.safetensors',
      'experts of one layer differ in dtype or size, so they cannot be written as one fused tensor.',
      HINT_MISMATCH,
    );
  }
  const bytes = new Uint8Array(each * parts.length);
  parts.forEach((t, i) => bytes.set(t.bytes, i * each));
  return { dtype: parts[0].dtype, shape: [parts.length, ...parts[0].shape], bytes };
}

/** GraniteMoe's input_linear for one expert: gate rows then up rows, [2f, d]. */
function gateUp(ffn: FfnWeights): PlainTensor {
  const gate = plainTensor(ffn.gate, 'writing a fused expert tensor');
  const up = plainTensor(ffn.up, 'writing a fused expert tensor');
  const { dtype } = gate;
  if (up.dtype !== dtype) {
    throw new CheckpointError(
      'model.safetensors',
      'an expert stores gate and up weights in different dtypes, so they cannot be fused.',
      HINT_MISMATCH,
    );
  }
  const bytes = new Uint8Array(gate.bytes.byteLength + up.bytes.byteLength);
  bytes.set(gate.bytes, 0);
  bytes.set(up.bytes, gate.bytes.byteLength);
  return { dtype, shape: [gate.shape[0] + up.shape[0], gate.shape[1]], bytes };
}

/**
 * HF tensor names for a WeightSet, in a stable order (embedding, layers, norm, head). MoE blocks use
 * per-expert tensors: Mixtral `block_sparse_moe.experts.E.w1/w3/w2`, others `mlp.experts.E.*_proj`;
 * GraniteMoe its fused `block_sparse_moe.input_linear` / `output_linear` (copied together).
 */
export function tensorsFromWeights(spec: ModelSpec, weights: WeightSet): Map<string, Tensor> {
  const out = new Map<string, Tensor>();
  const put = (name: string, t: Tensor | undefined): void => {
    if (t) out.set(name, t);
  };
  const putFfn = (prefix: string, ffn: FfnWeights, names: [string, string, string]): void => {
    put(`${prefix}.${names[0]}.weight`, ffn.gate);
    put(`${prefix}.${names[1]}.weight`, ffn.up);
    put(`${prefix}.${names[2]}.weight`, ffn.down);
  };
  put('model.embed_tokens.weight', weights.embed);
  weights.layers.forEach((layer, L) => {
    const p = `model.layers.${L}`;
    const attn = `${p}.self_attn`;
    put(`${p}.input_layernorm.weight`, layer.attnNorm);
    put(`${attn}.q_proj.weight`, layer.q);
    put(`${attn}.k_proj.weight`, layer.k);
    put(`${attn}.v_proj.weight`, layer.v);
    put(`${attn}.o_proj.weight`, layer.o);
    put(`${attn}.q_proj.bias`, layer.qBias);
    put(`${attn}.k_proj.bias`, layer.kBias);
    put(`${attn}.v_proj.bias`, layer.vBias);
    put(`${attn}.q_norm.weight`, layer.qNorm);
    put(`${attn}.k_norm.weight`, layer.kNorm);
    put(`${p}.post_attention_layernorm.weight`, layer.ffnNorm);
    if (layer.mlp) putFfn(`${p}.mlp`, layer.mlp, ['gate_proj', 'up_proj', 'down_proj']);
    if (layer.moe && spec.architecture === 'granitemoe') {
      const block = `${p}.block_sparse_moe`;
      put(`${block}.router.layer.weight`, layer.moe.router);
      put(`${block}.input_linear.weight`, stack(layer.moe.experts.map(gateUp)));
      put(`${block}.output_linear.weight`, stack(layer.moe.experts.map((e) => e.down)));
    } else if (layer.moe) {
      const mixtral = spec.architecture === 'mixtral';
      const block = `${p}.${mixtral ? 'block_sparse_moe' : 'mlp'}`;
      put(`${block}.gate.weight`, layer.moe.router);
      layer.moe.experts.forEach((expert, e) =>
        putFfn(`${block}.experts.${e}`, expert, mixtral ? ['w1', 'w3', 'w2'] : ['gate_proj', 'up_proj', 'down_proj']),
      );
      if (layer.moe.sharedExpert)
        putFfn(`${block}.shared_expert`, layer.moe.sharedExpert, ['gate_proj', 'up_proj', 'down_proj']);
      put(`${block}.shared_expert_gate.weight`, layer.moe.sharedExpertGate);
    }
  });
  put('model.norm.weight', weights.finalNorm);
  if (!spec.tieWordEmbeddings) put('lm_head.weight', weights.lmHead);
  return out;
}
