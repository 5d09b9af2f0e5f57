// Loads every PyTorch-made fixture folder (tests/fixtures/models/*, written by make_fixtures.py with its
// own safetensors writer) and checks the spec against config.json and the tensors against the file.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  countParameters,
  exportCheckpoint,
  loadCheckpoint,
  memorySource,
  numelOf,
  parseSafetensors,
} from '../../src/engine/format/index.ts';
import { dirSource } from '../../src/cli/fsSource.ts';
import type { Tensor, WeightSet } from '../../src/engine/types.ts';

const MODELS = join(import.meta.dirname, '..', 'fixtures', 'models');
const folders = existsSync(MODELS)
  ? readdirSync(MODELS)
      .filter((name) => existsSync(join(MODELS, name, 'config.json')))
      .sort()
  : [];

function allTensors(w: WeightSet): Tensor[] {
  const out = new Set<Tensor>([w.embed, w.finalNorm, w.lmHead]);
  for (const layer of w.layers) {
    for (const t of [
      layer.attnNorm,
      layer.q,
      layer.k,
      layer.v,
      layer.o,
      layer.qBias,
      layer.kBias,
      layer.vBias,
      layer.qNorm,
      layer.kNorm,
      layer.ffnNorm,
    ]) {
      if (t) out.add(t);
    }
    const ffns = [layer.mlp, ...(layer.moe?.experts ?? []), layer.moe?.sharedExpert];
    for (const ffn of ffns) if (ffn) [ffn.gate, ffn.up, ffn.down].forEach((t) => out.add(t));
    if (layer.moe) out.add(layer.moe.router);
    if (layer.moe?.sharedExpertGate) out.add(layer.moe.sharedExpertGate);
  }
  return [...out];
}

describe.skipIf(folders.length === 0)('PyTorch fixture checkpoints', () => {
  for (const name of folders) {
    it(`${name}: spec matches config.json, every stored tensor is used, export round-trips`, async () => {
      const dir = join(MODELS, name);
      const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
      const { spec, weights } = await loadCheckpoint(dirSource(dir));

      expect(spec.architecture).toBe(config.model_type);
      expect(spec.hiddenSize).toBe(config.hidden_size);
      expect(spec.numLayers).toBe(config.num_hidden_layers);
      expect(spec.numHeads).toBe(config.num_attention_heads);
      expect(spec.numKvHeads).toBe(config.num_key_value_heads ?? config.num_attention_heads);
      expect(spec.headDim).toBe(config.head_dim ?? config.hidden_size / config.num_attention_heads);
      expect(spec.vocabSize).toBe(config.vocab_size);
      expect(spec.rmsNormEps).toBe(config.rms_norm_eps);
      expect(spec.ropeTheta).toBe(config.rope_theta);
      expect(spec.tieWordEmbeddings).toBe(config.tie_word_embeddings ?? false);
      expect(spec.slidingWindow).toBe(config.sliding_window ?? null);
      const rope = config.rope_scaling;
      expect(spec.ropeScaling).toEqual(
        rope
          ? {
              type: rope.rope_type,
              factor: rope.factor,
              lowFreqFactor: rope.low_freq_factor,
              highFreqFactor: rope.high_freq_factor,
              originalMaxPositions: rope.original_max_position_embeddings,
            }
          : null,
      );
      expect(spec.embeddingMultiplier).toBe(config.embedding_multiplier ?? 1);
      expect(spec.attentionScale).toBe(config.attention_multiplier ?? 1 / Math.sqrt(spec.headDim));
      expect(spec.residualMultiplier).toBe(config.residual_multiplier ?? 1);
      expect(spec.logitsScaling).toBe(config.logits_scaling ?? 1);
      expect(spec.dtype).toBe({ float32: 'F32', float16: 'F16', bfloat16: 'BF16' }[config.torch_dtype as string]);
      expect(weights.layers.length).toBe(config.num_hidden_layers);
      if (spec.moe) {
        expect(spec.moe.numExperts).toBe(config.num_local_experts ?? config.num_experts);
        expect(spec.moe.topK).toBe(config.num_experts_per_tok);
        expect(spec.moe.normTopkProb).toBe(
          config.norm_topk_prob ?? ['mixtral', 'granitemoe'].includes(config.model_type),
        );
        const mlpOnly: number[] = config.mlp_only_layers ?? [];
        expect(spec.moe.moeLayers).toEqual(weights.layers.map((_, i) => !mlpOnly.includes(i)));
        weights.layers.forEach((layer, i) => {
          expect(Boolean(layer.moe)).toBe(spec.moe!.moeLayers[i]);
          expect(layer.moe?.experts.length ?? spec.moe!.numExperts).toBe(spec.moe!.numExperts);
        });
      } else {
        expect(config.num_experts ?? config.num_local_experts).toBeUndefined();
      }

      // Every element stored in the files is reachable from the WeightSet, and counted by countParameters.
      const shardNames = readdirSync(dir).filter((f) => f.endsWith('.safetensors'));
      let stored = 0;
      for (const shard of shardNames) {
        for (const t of parseSafetensors(new Uint8Array(readFileSync(join(dir, shard))), shard).tensors.values())
          stored += numelOf(t.shape);
      }
      const used = allTensors(weights).reduce((s, t) => s + numelOf(t.shape), 0);
      expect(used).toBe(stored);
      expect(countParameters(spec).total).toBe(stored);

      const files = exportCheckpoint(spec, weights, {});
      const again = await loadCheckpoint(memorySource(files));
      const { config: _a, ...specA } = spec;
      const { config: _b, ...specB } = again.spec;
      expect(specB).toEqual(specA);
      const before = allTensors(weights);
      const after = allTensors(again.weights);
      expect(after.length).toBe(before.length);
      before.forEach((t, i) => expect(Buffer.from(after[i].bytes).equals(Buffer.from(t.bytes))).toBe(true));
    });
  }
});
