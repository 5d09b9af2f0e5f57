import { createServer, type Server } from 'node:http';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Architecture, Tensor, WeightSet } from '../../src/engine/types.ts';
import {
  CheckpointError,
  countParameters,
  exportCheckpoint,
  filesSource,
  fromFloat32,
  loadCheckpoint,
  configFromSpec,
  memorySource,
  parseSafetensors,
  specFromConfig,
  urlSource,
  writeSafetensors,
} from '../../src/engine/format/index.ts';
import { dirSource } from '../../src/cli/fsSource.ts';
import { loadTokenizer } from '../../src/engine/tokenizer.ts';

// ---------------------------------------------------------------------------------------------
// Tiny synthetic checkpoints, written by hand with HF tensor names (the test's own table of truth).

const d = 8;
const V = 16;
const heads = 2;
const kv = 1;
const hd = 4;
const f = 12; // dense / mixtral / olmoe expert width
const fe = 6; // qwen expert width
const fs = 10; // qwen2 shared expert width
const E = 4;

// Llama 3.1's rope_scaling block, as its config.json writes it.
const LLAMA3 = {
  rope_type: 'llama3',
  factor: 8.0,
  low_freq_factor: 1.0,
  high_freq_factor: 4.0,
  original_max_position_embeddings: 8192,
};

const BASE = {
  hidden_size: d,
  num_hidden_layers: 2,
  num_attention_heads: heads,
  num_key_value_heads: kv,
  vocab_size: V,
  rms_norm_eps: 1e-5,
  rope_theta: 10000,
  max_position_embeddings: 64,
  hidden_act: 'silu',
};

function configFor(arch: Architecture): Record<string, unknown> {
  switch (arch) {
    case 'llama':
      return { ...BASE, model_type: 'llama', intermediate_size: f, tie_word_embeddings: true };
    case 'mistral':
      return { ...BASE, model_type: 'mistral', intermediate_size: f };
    case 'mixtral':
      return { ...BASE, model_type: 'mixtral', intermediate_size: f, num_local_experts: E, num_experts_per_tok: 2 };
    case 'qwen2_moe':
      return {
        ...BASE,
        model_type: 'qwen2_moe',
        intermediate_size: f,
        moe_intermediate_size: fe,
        shared_expert_intermediate_size: fs,
        num_experts: E,
        num_experts_per_tok: 2,
        mlp_only_layers: [0],
      };
    case 'qwen3_moe':
      return {
        ...BASE,
        model_type: 'qwen3_moe',
        intermediate_size: f,
        moe_intermediate_size: fe,
        num_experts: E,
        num_experts_per_tok: 2,
        head_dim: hd,
        norm_topk_prob: true,
      };
    case 'olmoe':
      return {
        ...BASE,
        model_type: 'olmoe',
        intermediate_size: f,
        num_experts: E,
        num_experts_per_tok: 2,
        clip_qkv: null,
      };
    case 'granitemoe':
      return {
        ...BASE,
        model_type: 'granitemoe',
        intermediate_size: f,
        num_local_experts: E,
        num_experts_per_tok: 2,
        embedding_multiplier: 12,
        attention_multiplier: 0.25,
        residual_multiplier: 0.22,
        logits_scaling: 6,
        tie_word_embeddings: true,
      };
  }
}

type Getter = (w: WeightSet) => Tensor | undefined;
interface Entry {
  name: string;
  shape: number[];
  get: Getter;
  expert?: boolean;
}

/** Every tensor an HF checkpoint of `arch` holds, its shape, and where the loader must put it. */
function hfTable(arch: Architecture): Entry[] {
  const t: Entry[] = [];
  const add = (name: string, shape: number[], get: Getter, expert = false) => t.push({ name, shape, get, expert });
  const ffn = (
    prefix: string,
    names: string[],
    width: number,
    get: (w: WeightSet) => { gate: Tensor; up: Tensor; down: Tensor } | undefined,
    expert = false,
  ) => {
    add(`${prefix}.${names[0]}.weight`, [width, d], (w) => get(w)?.gate, expert);
    add(`${prefix}.${names[1]}.weight`, [width, d], (w) => get(w)?.up, expert);
    add(`${prefix}.${names[2]}.weight`, [d, width], (w) => get(w)?.down, expert);
  };
  add('model.embed_tokens.weight', [V, d], (w) => w.embed);
  for (let L = 0; L < 2; L++) {
    const p = `model.layers.${L}`;
    add(`${p}.input_layernorm.weight`, [d], (w) => w.layers[L].attnNorm);
    add(`${p}.self_attn.q_proj.weight`, [heads * hd, d], (w) => w.layers[L].q);
    add(`${p}.self_attn.k_proj.weight`, [kv * hd, d], (w) => w.layers[L].k);
    add(`${p}.self_attn.v_proj.weight`, [kv * hd, d], (w) => w.layers[L].v);
    add(`${p}.self_attn.o_proj.weight`, [d, heads * hd], (w) => w.layers[L].o);
    add(`${p}.post_attention_layernorm.weight`, [d], (w) => w.layers[L].ffnNorm);
    if (arch === 'qwen2_moe') {
      add(`${p}.self_attn.q_proj.bias`, [heads * hd], (w) => w.layers[L].qBias);
      add(`${p}.self_attn.k_proj.bias`, [kv * hd], (w) => w.layers[L].kBias);
      add(`${p}.self_attn.v_proj.bias`, [kv * hd], (w) => w.layers[L].vBias);
    }
    if (arch === 'qwen3_moe') {
      add(`${p}.self_attn.q_norm.weight`, [hd], (w) => w.layers[L].qNorm);
      add(`${p}.self_attn.k_norm.weight`, [hd], (w) => w.layers[L].kNorm);
    }
    if (arch === 'olmoe') {
      add(`${p}.self_attn.q_norm.weight`, [heads * hd], (w) => w.layers[L].qNorm);
      add(`${p}.self_attn.k_norm.weight`, [kv * hd], (w) => w.layers[L].kNorm);
    }
    const dense = arch === 'llama' || arch === 'mistral' || (arch === 'qwen2_moe' && L === 0);
    if (dense) {
      ffn(`${p}.mlp`, ['gate_proj', 'up_proj', 'down_proj'], f, (w) => w.layers[L].mlp);
    } else if (arch === 'mixtral') {
      add(`${p}.block_sparse_moe.gate.weight`, [E, d], (w) => w.layers[L].moe?.router);
      for (let e = 0; e < E; e++)
        ffn(`${p}.block_sparse_moe.experts.${e}`, ['w1', 'w3', 'w2'], f, (w) => w.layers[L].moe?.experts[e], true);
    } else {
      const width = arch === 'olmoe' ? f : fe;
      add(`${p}.mlp.gate.weight`, [E, d], (w) => w.layers[L].moe?.router);
      for (let e = 0; e < E; e++)
        ffn(
          `${p}.mlp.experts.${e}`,
          ['gate_proj', 'up_proj', 'down_proj'],
          width,
          (w) => w.layers[L].moe?.experts[e],
          true,
        );
      if (arch === 'qwen2_moe') {
        ffn(`${p}.mlp.shared_expert`, ['gate_proj', 'up_proj', 'down_proj'], fs, (w) => w.layers[L].moe?.sharedExpert);
        add(`${p}.mlp.shared_expert_gate.weight`, [1, d], (w) => w.layers[L].moe?.sharedExpertGate);
      }
    }
  }
  add('model.norm.weight', [d], (w) => w.finalNorm);
  if (arch !== 'llama') add('lm_head.weight', [V, d], (w) => w.lmHead);
  return t;
}

/** Distinct values per tensor, so a swapped mapping cannot go unnoticed. Embeddings in BF16 (mixed dtypes). */
function makeTensors(table: Entry[]): Map<string, Tensor> {
  const out = new Map<string, Tensor>();
  table.forEach((entry, k) => {
    const n = entry.shape.reduce((a, b) => a * b, 1);
    const values = Float32Array.from({ length: n }, (_, i) => k + i / 256);
    out.set(entry.name, fromFloat32(values, entry.shape, entry.name.includes('embed') ? 'BF16' : 'F32'));
  });
  return out;
}

const TOKENIZER = { version: '1.0', model: { type: 'BPE', vocab: {}, merges: [] } };

function folder(
  config: unknown,
  tensors: Map<string, Tensor> | null,
  extra: Record<string, unknown> = {},
): Map<string, Uint8Array> {
  const files = new Map<string, Uint8Array>();
  const enc = new TextEncoder();
  files.set('config.json', enc.encode(JSON.stringify(config)));
  files.set('tokenizer.json', enc.encode(JSON.stringify(TOKENIZER)));
  if (tensors) files.set('model.safetensors', writeSafetensors(tensors));
  for (const [name, value] of Object.entries(extra)) {
    files.set(name, value instanceof Uint8Array ? value : enc.encode(JSON.stringify(value)));
  }
  return files;
}

async function expectLoadError(
  files: Map<string, Uint8Array>,
  file: string,
  pattern: RegExp,
): Promise<CheckpointError> {
  const err = await loadCheckpoint(memorySource(files, 'test-folder')).then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(CheckpointError);
  const e = err as CheckpointError;
  expect(e.message).toMatch(pattern);
  expect(e.file).toBe(file);
  expect(e.hint.length).toBeGreaterThan(10);
  return e;
}

const ARCHS: Architecture[] = ['llama', 'mistral', 'mixtral', 'qwen2_moe', 'qwen3_moe', 'olmoe'];

// ---------------------------------------------------------------------------------------------

describe('loadCheckpoint maps every architecture', () => {
  for (const arch of ARCHS) {
    it(`${arch}: every HF tensor lands in its canonical slot, as a view of the file`, async () => {
      const table = hfTable(arch);
      const files = folder(configFor(arch), makeTensors(table));
      const ckpt = await loadCheckpoint(memorySource(files));
      const fileBuffer = files.get('model.safetensors')!.buffer;
      const written = makeTensors(table);
      for (const entry of table) {
        const got = entry.get(ckpt.weights);
        expect(got, entry.name).toBeDefined();
        expect(got!.shape, entry.name).toEqual(entry.shape);
        expect(got!.bytes.buffer, entry.name).toBe(fileBuffer);
        expect(Buffer.from(got!.bytes).equals(Buffer.from(written.get(entry.name)!.bytes)), entry.name).toBe(true);
      }
      if (arch === 'llama') expect(ckpt.weights.lmHead).toBe(ckpt.weights.embed);
      expect(ckpt.spec.architecture).toBe(arch);
      expect(ckpt.spec.dtype).toBe('F32'); // most elements are F32, the embedding is BF16
      expect(ckpt.tokenizerJson).toEqual(TOKENIZER);
      expect(ckpt.bytesOnDisk).toBe([...files.values()].reduce((s, b) => s + b.byteLength, 0));

      // Parameter counts against the plain sum of tensor sizes in the file.
      const numel = (e: Entry) => e.shape.reduce((a, b) => a * b, 1);
      const total = table.reduce((s, e) => s + numel(e), 0);
      const expertTotal = table.filter((e) => e.expert).reduce((s, e) => s + numel(e), 0);
      const counts = countParameters(ckpt.spec);
      expect(counts.total).toBe(total);
      expect(counts.nonExpert).toBe(total - expertTotal);
      expect(counts.bytes).toBe(total * 4);
      if (ckpt.spec.moe) {
        const moeLayers = ckpt.spec.moe.moeLayers.filter(Boolean).length;
        expect(counts.perExpert * E * moeLayers).toBe(expertTotal);
        expect(counts.activeFor({ kind: 'dense' })).toBe(total);
        expect(counts.activeFor({ kind: 'native' })).toBe(total - expertTotal + (expertTotal / E) * 2);
        expect(counts.activeFor({ kind: 'topk', k: 1 })).toBe(total - expertTotal + expertTotal / E);
        expect(counts.activeFor({ kind: 'threshold', t: 1 })).toBe(total); // no measurement: the upper bound
        expect(counts.activeFor({ kind: 'threshold', t: 1 }, 1.5)).toBe(total - expertTotal + (expertTotal / E) * 1.5);
      } else {
        expect(counts.activeFor({ kind: 'native' })).toBe(total);
      }
    });
  }

  it('reads the spec the way transformers does', async () => {
    const qwen2 = specFromConfig(configFor('qwen2_moe'));
    expect(qwen2.moe).toEqual({
      numExperts: E,
      topK: 2,
      expertIntermediateSize: fe,
      normTopkProb: false,
      sharedExpertIntermediateSize: fs,
      moeLayers: [false, true],
    });
    expect(qwen2.attentionBias).toBe(true);
    expect(qwen2.headDim).toBe(d / heads);
    const qwen3 = specFromConfig({
      ...configFor('qwen3_moe'),
      num_hidden_layers: 4,
      decoder_sparse_step: 2,
      mlp_only_layers: [3],
    });
    expect(qwen3.moe!.moeLayers).toEqual([false, true, false, false]);
    expect(qwen3.qkNorm).toBe('per_head');
    expect(specFromConfig({ ...configFor('qwen3_moe'), norm_topk_prob: undefined }).moe!.normTopkProb).toBe(false);
    const mixtral = specFromConfig(configFor('mixtral'));
    expect(mixtral.moe!.normTopkProb).toBe(true);
    expect(specFromConfig({ ...configFor('mixtral'), norm_topk_prob: false }).moe!.normTopkProb).toBe(false);
    expect(mixtral.numKvHeads).toBe(kv);
    expect(specFromConfig({ ...configFor('mistral'), num_key_value_heads: undefined }).numKvHeads).toBe(heads);
    const olmoe = specFromConfig(configFor('olmoe'));
    expect(olmoe.qkNorm).toBe('full');
    expect(olmoe.moe!.expertIntermediateSize).toBe(f);
    expect(specFromConfig({ ...configFor('llama'), torch_dtype: 'bfloat16' }).dtype).toBe('BF16');
    // transformers v5 keeps rope_theta inside rope_parameters.
    expect(
      specFromConfig({
        ...configFor('llama'),
        rope_theta: undefined,
        rope_parameters: { rope_type: 'default', rope_theta: 5e5 },
      }).ropeTheta,
    ).toBe(5e5);
  });

  it('slices fused expert tensors (gate_up_proj [E,2f,d], down_proj [E,d,f]) into per-expert views', async () => {
    const table = hfTable('qwen3_moe');
    const tensors = makeTensors(table);
    for (let L = 0; L < 2; L++) {
      const p = `model.layers.${L}.mlp.experts`;
      const gateUp = new Uint8Array(E * 2 * fe * d * 4);
      const down = new Uint8Array(E * d * fe * 4);
      for (let e = 0; e < E; e++) {
        gateUp.set(tensors.get(`${p}.${e}.gate_proj.weight`)!.bytes, e * 2 * fe * d * 4);
        gateUp.set(tensors.get(`${p}.${e}.up_proj.weight`)!.bytes, (e * 2 + 1) * fe * d * 4);
        down.set(tensors.get(`${p}.${e}.down_proj.weight`)!.bytes, e * d * fe * 4);
      }
      for (const name of [...tensors.keys()]) if (name.startsWith(`${p}.`)) tensors.delete(name);
      tensors.set(`${p}.gate_up_proj`, { dtype: 'F32', shape: [E, 2 * fe, d], bytes: gateUp });
      tensors.set(`${p}.down_proj`, { dtype: 'F32', shape: [E, d, fe], bytes: down });
    }
    const ckpt = await loadCheckpoint(memorySource(folder(configFor('qwen3_moe'), tensors)));
    const reference = makeTensors(table);
    for (const entry of table) {
      expect(
        Buffer.from(entry.get(ckpt.weights)!.bytes).equals(Buffer.from(reference.get(entry.name)!.bytes)),
        entry.name,
      ).toBe(true);
      expect(entry.get(ckpt.weights)!.shape).toEqual(entry.shape);
    }
  });

  it('accepts Mixtral under transformers v5 names (mlp.gate, fused mlp.experts.*)', async () => {
    const table = hfTable('mixtral');
    const tensors = makeTensors(table);
    for (let L = 0; L < 2; L++) {
      const p = `model.layers.${L}.block_sparse_moe`;
      const parts = (e: number, w: string) => tensors.get(`${p}.experts.${e}.${w}.weight`)!.bytes;
      const gateUp = new Uint8Array(E * 2 * f * d * 4);
      const down = new Uint8Array(E * d * f * 4);
      for (let e = 0; e < E; e++) {
        gateUp.set(parts(e, 'w1'), e * 2 * f * d * 4);
        gateUp.set(parts(e, 'w3'), (e * 2 + 1) * f * d * 4);
        down.set(parts(e, 'w2'), e * d * f * 4);
      }
      const router = tensors.get(`${p}.gate.weight`)!;
      for (const name of [...tensors.keys()]) if (name.startsWith(`${p}.`)) tensors.delete(name);
      tensors.set(`model.layers.${L}.mlp.gate.weight`, router);
      tensors.set(`model.layers.${L}.mlp.experts.gate_up_proj`, { dtype: 'F32', shape: [E, 2 * f, d], bytes: gateUp });
      tensors.set(`model.layers.${L}.mlp.experts.down_proj`, { dtype: 'F32', shape: [E, d, f], bytes: down });
    }
    const ckpt = await loadCheckpoint(memorySource(folder(configFor('mixtral'), tensors)));
    const reference = makeTensors(table);
    for (const entry of table) {
      expect(
        Buffer.from(entry.get(ckpt.weights)!.bytes).equals(Buffer.from(reference.get(entry.name)!.bytes)),
        entry.name,
      ).toBe(true);
    }
  });

  it('loads sharded checkpoints through model.safetensors.index.json', async () => {
    const table = hfTable('mixtral');
    const tensors = makeTensors(table);
    const names = [...tensors.keys()];
    const shardOf = (i: number) =>
      i < names.length / 2 ? 'model-00001-of-00002.safetensors' : 'model-00002-of-00002.safetensors';
    const shards = new Map<string, Map<string, Tensor>>();
    names.forEach((name, i) => {
      if (!shards.has(shardOf(i))) shards.set(shardOf(i), new Map());
      shards.get(shardOf(i))!.set(name, tensors.get(name)!);
    });
    const weightMap = Object.fromEntries(names.map((n, i) => [n, shardOf(i)]));
    const files = folder(configFor('mixtral'), null, {
      'model.safetensors.index.json': { metadata: {}, weight_map: weightMap },
    });
    for (const [shard, content] of shards) files.set(shard, writeSafetensors(content));
    const ckpt = await loadCheckpoint(memorySource(files));
    for (const entry of table) {
      expect(Buffer.from(entry.get(ckpt.weights)!.bytes).equals(Buffer.from(tensors.get(entry.name)!.bytes))).toBe(
        true,
      );
    }

    files.delete('model-00002-of-00002.safetensors');
    await expectLoadError(
      files,
      'model-00002-of-00002.safetensors',
      /shard model-00002-of-00002.safetensors .* is missing from test-folder/,
    );
    files.set(
      'model.safetensors.index.json',
      new TextEncoder().encode(JSON.stringify({ weight_map: { a: '../../secret' } })),
    );
    await expectLoadError(files, 'model.safetensors.index.json', /not a file name in this folder/);
  });
});

describe('loadCheckpoint reports broken checkpoints', () => {
  const good = () => folder(configFor('mixtral'), makeTensors(hfTable('mixtral')));

  it('a safetensors file whose binary header length reads as " <" is still a safetensors file', async () => {
    // Seen with a real shard: header length 0x3c20 = 15392 bytes starts with the bytes 0x20 0x3c (" <"),
    // which a text sniffer takes for an HTML page.
    const files = good();
    const original = files.get('model.safetensors')!;
    const view = new DataView(original.buffer, original.byteOffset, original.byteLength);
    const headerLength = view.getUint32(0, true);
    const target = 0x3c20;
    expect(headerLength).toBeLessThan(target);
    const padded = new Uint8Array(original.byteLength + (target - headerLength));
    new DataView(padded.buffer).setUint32(0, target, true);
    padded.set(original.subarray(8, 8 + headerLength), 8);
    padded.fill(0x20, 8 + headerLength, 8 + target);
    padded.set(original.subarray(8 + headerLength), 8 + target);
    expect([padded[0], padded[1]]).toEqual([0x20, 0x3c]);
    files.set('model.safetensors', padded);
    const ckpt = await loadCheckpoint(memorySource(files, 'test-folder'));
    const plain = await loadCheckpoint(memorySource(good(), 'test-folder'));
    expect(ckpt.spec).toEqual(plain.spec);
    expect(ckpt.weights.embed.bytes).toEqual(plain.weights.embed.bytes);
  });

  it('a checkpoint without tokenizer.json loads (token ids work); the tokenizer says why text cannot', async () => {
    const noTokenizer = good();
    noTokenizer.delete('tokenizer.json');
    const ckpt = await loadCheckpoint(memorySource(noTokenizer, 'test-folder'));
    expect(ckpt.tokenizerJson).toBeUndefined();
    expect(() => loadTokenizer(ckpt.tokenizerJson)).toThrow(/has no tokenizer.json/);
    expect([...exportCheckpoint(ckpt.spec, ckpt.weights, ckpt.tokenizerJson).keys()].sort()).toEqual([
      'config.json',
      'model.safetensors',
    ]);
  });

  it('config.json missing', async () => {
    const noConfig = good();
    noConfig.delete('config.json');
    await expectLoadError(noConfig, 'config.json', /config.json is missing from test-folder/);
    const noWeights = good();
    noWeights.delete('model.safetensors');
    await expectLoadError(noWeights, 'model.safetensors', /neither model.safetensors nor model.safetensors.index.json/);
    const notJson = good();
    notJson.set('config.json', new TextEncoder().encode('{"model_type": '));
    await expectLoadError(notJson, 'config.json', /not valid JSON/);
  });

  it('a missing tensor is named', async () => {
    const tensors = makeTensors(hfTable('mixtral'));
    tensors.delete('model.layers.1.block_sparse_moe.experts.3.w2.weight');
    await expectLoadError(
      folder(configFor('mixtral'), tensors),
      'model.safetensors',
      /tensor model.layers.1.block_sparse_moe.experts.3.w2.weight is missing/,
    );
  });

  it('a tensor shape that does not match config.json', async () => {
    const tensors = makeTensors(hfTable('mixtral'));
    tensors.set('model.layers.0.self_attn.q_proj.weight', fromFloat32(new Float32Array(8 * 4), [4, 8], 'F32'));
    const e = await expectLoadError(
      folder(configFor('mixtral'), tensors),
      'model.safetensors',
      /tensor model.layers.0.self_attn.q_proj.weight has shape \[4,8\] but config.json implies \[8,8\]/,
    );
    expect(e.hint).toMatch(/same checkpoint/);
  });

  it('a broken safetensors file inside a folder', async () => {
    const files = good();
    files.set('model.safetensors', files.get('model.safetensors')!.subarray(0, 100));
    await expectLoadError(files, 'model.safetensors', /beyond/);
  });
});

describe('specFromConfig rejects bad configs', () => {
  const expectConfigError = (config: unknown, pattern: RegExp, hint?: RegExp) => {
    try {
      specFromConfig(config, 'config.json');
    } catch (err) {
      expect(err).toBeInstanceOf(CheckpointError);
      expect((err as CheckpointError).file).toBe('config.json');
      expect((err as CheckpointError).message).toMatch(pattern);
      if (hint) expect((err as CheckpointError).hint).toMatch(hint);
      return;
    }
    throw new Error(`expected a CheckpointError matching ${pattern}`);
  };

  it('unknown model_type, listing the supported ones', () => {
    expectConfigError(
      { ...configFor('llama'), model_type: 'gpt2' },
      /model_type "gpt2" is not supported/,
      /llama, mistral, mixtral, qwen2_moe, qwen3_moe, olmoe/,
    );
    expectConfigError({ hidden_size: 8 }, /"model_type" is missing/);
    expectConfigError([1, 2], /not a JSON object/);
  });

  it('a missing required key', () => {
    for (const key of ['hidden_size', 'num_hidden_layers', 'num_attention_heads', 'vocab_size', 'intermediate_size']) {
      expectConfigError({ ...configFor('llama'), [key]: undefined }, new RegExp(`required key "${key}" is missing`));
    }
    expectConfigError(
      { ...configFor('mixtral'), num_local_experts: undefined },
      /required key "num_experts" is missing/,
    );
    expectConfigError(
      { ...configFor('qwen3_moe'), moe_intermediate_size: undefined },
      /"moe_intermediate_size" is missing/,
    );
    expectConfigError({ ...configFor('qwen2_moe'), intermediate_size: undefined }, /"intermediate_size" is missing/); // layer 0 is dense
  });

  it('absurd values', () => {
    const llama = configFor('llama');
    expectConfigError({ ...llama, hidden_size: 0 }, /"hidden_size" is 0; it must be between 1 and 65536/);
    expectConfigError({ ...llama, hidden_size: 8.5 }, /must be an integer/);
    expectConfigError({ ...llama, hidden_size: '8' }, /must be an integer/);
    expectConfigError({ ...llama, vocab_size: 20_000_000 }, /"vocab_size" is 20000000/);
    expectConfigError({ ...llama, num_hidden_layers: 5000 }, /"num_hidden_layers" is 5000/);
    expectConfigError({ ...llama, num_attention_heads: 3 }, /not divisible by num_attention_heads/);
    expectConfigError(
      { ...llama, num_key_value_heads: 3, num_attention_heads: 4 },
      /not a multiple of num_key_value_heads/,
    );
    expectConfigError({ ...llama, rms_norm_eps: -1 }, /"rms_norm_eps" is -1/);
    expectConfigError({ ...llama, hidden_act: 'gelu' }, /hidden_act "gelu" is not supported/);
    expectConfigError(
      { ...llama, rope_scaling: { rope_type: 'llama3', factor: 8 } },
      /rope_scaling\.low_freq_factor is undefined; llama3 RoPE scaling needs a positive number/,
    );
    expectConfigError(
      { ...llama, rope_scaling: { ...LLAMA3, high_freq_factor: 1 } },
      /rope_scaling\.high_freq_factor \(1\) must be larger than low_freq_factor \(1\)/,
    );
    expectConfigError(
      { ...llama, rope_scaling: { ...LLAMA3, original_max_position_embeddings: 8.5 } },
      /original_max_position_embeddings is 8\.5.*positive integer/,
    );
    expectConfigError({ ...llama, rope_scaling: 'llama3' }, /"rope_scaling" is "llama3"; it must be an object or null/);
    expectConfigError({ ...configFor('mistral'), sliding_window: 0 }, /"sliding_window" is 0/);
    expectConfigError(
      { ...configFor('granitemoe'), residual_multiplier: -0.2 },
      /"residual_multiplier" is -0\.2; it must be a positive number/,
    );
    expectConfigError({ ...configFor('granitemoe'), attention_multiplier: 'x' }, /"attention_multiplier" is "x"/);
    expectConfigError({ ...llama, tie_word_embeddings: 'yes' }, /must be true or false/);
    expectConfigError(
      { ...configFor('mixtral'), num_experts_per_tok: 5 },
      /num_experts_per_tok \(5\) is larger than the number of experts \(4\)/,
    );
    expectConfigError({ ...configFor('qwen3_moe'), mlp_only_layers: [7] }, /mlp_only_layers/);
  });
});

describe('exportCheckpoint', () => {
  for (const arch of ARCHS) {
    it(`${arch}: export → load gives the same spec and identical tensor bytes`, async () => {
      const first = await loadCheckpoint(memorySource(folder(configFor(arch), makeTensors(hfTable(arch)))));
      const files = exportCheckpoint(first.spec, first.weights, first.tokenizerJson);
      expect([...files.keys()].sort()).toEqual(['config.json', 'model.safetensors', 'tokenizer.json']);
      const second = await loadCheckpoint(memorySource(files));
      const { config: _c1, ...spec1 } = first.spec;
      const { config: _c2, ...spec2 } = second.spec;
      expect(spec2).toEqual(spec1);
      expect(second.tokenizerJson).toEqual(first.tokenizerJson);
      for (const entry of hfTable(arch)) {
        expect(
          Buffer.from(entry.get(second.weights)!.bytes).equals(Buffer.from(entry.get(first.weights)!.bytes)),
          entry.name,
        ).toBe(true);
        expect(entry.get(second.weights)!.dtype).toBe(entry.get(first.weights)!.dtype);
      }
      // Exporting again is byte-identical (deterministic).
      const again = exportCheckpoint(second.spec, second.weights, second.tokenizerJson);
      for (const [name, bytes] of files)
        expect(Buffer.from(again.get(name)!).equals(Buffer.from(bytes)), name).toBe(true);
    });
  }

  it('keeps a non-renormalising (DS-MoE) Mixtral-named model non-renormalising', async () => {
    const config = { ...configFor('mixtral'), norm_topk_prob: false };
    const first = await loadCheckpoint(memorySource(folder(config, makeTensors(hfTable('mixtral')))));
    const files = exportCheckpoint(first.spec, first.weights, TOKENIZER);
    const written = JSON.parse(new TextDecoder().decode(files.get('config.json')));
    expect(written.norm_topk_prob).toBe(false);
    expect(written.architectures).toEqual(['MixtralForCausalLM']);
    expect((await loadCheckpoint(memorySource(files))).spec.moe!.normTopkProb).toBe(false);
  });
});

describe('checkpoint sources', () => {
  let server: Server;
  let base = '';
  const files = folder(configFor('olmoe'), makeTensors(hfTable('olmoe')));
  beforeAll(async () => {
    server = createServer((req, res) => {
      const name = decodeURIComponent((req.url ?? '').replace(/^\/model\//, ''));
      if (name === 'forbidden.json') {
        res.writeHead(403, 'Forbidden');
        res.end();
        return;
      }
      const body = files.get(name);
      if (!body) {
        res.writeHead(404);
        res.end();
        return;
      }
      res.writeHead(200, { 'content-length': body.byteLength });
      res.end(Buffer.from(body));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    base = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}/model`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('urlSource loads over HTTP; 404 is "absent", other statuses and network errors are CheckpointErrors', async () => {
    const source = urlSource(base);
    const ckpt = await loadCheckpoint(source);
    expect(ckpt.spec.architecture).toBe('olmoe');
    expect(await source.readFile('nope.json')).toBeNull();
    await expect(source.readFile('forbidden.json')).rejects.toThrow(/answered HTTP 403 Forbidden/);
    const offline = urlSource('http://127.0.0.1:1/x/');
    const err = await offline.readFile('config.json').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CheckpointError);
    expect((err as CheckpointError).message).toMatch(/could not download http:\/\/127.0.0.1:1\/x\/config.json/);
  });

  it('filesSource reads dropped files, matching a folder’s files by their relative path', async () => {
    const dropped = [...files].map(([name, bytes]) => {
      const file = new File([new Uint8Array(bytes)], name); // a copy typed over a plain ArrayBuffer
      Object.defineProperty(file, 'webkitRelativePath', { value: `olmoe-tiny/${name}` });
      return file;
    });
    const ckpt = await loadCheckpoint(filesSource(dropped));
    expect(ckpt.spec.architecture).toBe('olmoe');
    expect(await filesSource(dropped).readFile('absent.json')).toBeNull();
  });

  it('dirSource reads a folder on disk and names a missing one', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'moe-format-'));
    try {
      for (const [name, bytes] of files) writeFileSync(join(dir, name), bytes);
      const ckpt = await loadCheckpoint(dirSource(dir));
      expect(ckpt.spec.moe!.numExperts).toBe(E);
      expect(await dirSource(dir).readFile('absent.json')).toBeNull();
      mkdirSync(join(dir, 'sub'));
      expect(() => dirSource(join(dir, 'config.json'))).toThrow(/is a file, not a folder/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    const err = (() => {
      try {
        dirSource('/no/such/folder');
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(CheckpointError);
    expect((err as CheckpointError).message).toMatch(/folder \/no\/such\/folder does not exist/);
  });
});

// ---------------------------------------------------------------------------------------------
// The real small MoEs' architecture features: granitemoe, llama3 RoPE scaling, sliding windows.

/** A granitemoe checkpoint made from the mixtral table: router renamed, experts fused the GraniteMoe way, no lm_head. */
function graniteTensors(): { tensors: Map<string, Tensor>; mixtral: Map<string, Tensor> } {
  const mixtral = makeTensors(hfTable('mixtral'));
  const tensors = new Map(mixtral);
  tensors.delete('lm_head.weight');
  for (let L = 0; L < 2; L++) {
    const p = `model.layers.${L}.block_sparse_moe`;
    const bytes = (e: number, w: string) => mixtral.get(`${p}.experts.${e}.${w}.weight`)!.bytes;
    const input = new Uint8Array(E * 2 * f * d * 4);
    const output = new Uint8Array(E * d * f * 4);
    for (let e = 0; e < E; e++) {
      input.set(bytes(e, 'w1'), e * 2 * f * d * 4); // gate rows first
      input.set(bytes(e, 'w3'), (e * 2 + 1) * f * d * 4); // then up rows
      output.set(bytes(e, 'w2'), e * d * f * 4);
    }
    for (const name of [...tensors.keys()]) if (name.startsWith(`${p}.`)) tensors.delete(name);
    tensors.set(`${p}.router.layer.weight`, mixtral.get(`${p}.gate.weight`)!);
    tensors.set(`${p}.input_linear.weight`, { dtype: 'F32', shape: [E, 2 * f, d], bytes: input });
    tensors.set(`${p}.output_linear.weight`, { dtype: 'F32', shape: [E, d, f], bytes: output });
  }
  return { tensors, mixtral };
}

describe('granitemoe, llama3 RoPE scaling and sliding windows', () => {
  it('granitemoe: router.layer and the fused input_linear/output_linear become per-expert views', async () => {
    const { tensors, mixtral } = graniteTensors();
    const files = folder(configFor('granitemoe'), tensors);
    const ckpt = await loadCheckpoint(memorySource(files));
    const fileBuffer = files.get('model.safetensors')!.buffer;
    for (const entry of hfTable('mixtral').filter((e) => e.name !== 'lm_head.weight')) {
      const got = entry.get(ckpt.weights)!;
      expect(got.shape, entry.name).toEqual(entry.shape);
      expect(got.bytes.buffer, entry.name).toBe(fileBuffer); // a view, not a copy
      expect(Buffer.from(got.bytes).equals(Buffer.from(mixtral.get(entry.name)!.bytes)), entry.name).toBe(true);
    }
    expect(ckpt.weights.lmHead).toBe(ckpt.weights.embed);
    const { spec } = ckpt;
    expect(spec.moe).toEqual({
      numExperts: E,
      topK: 2,
      expertIntermediateSize: f,
      normTopkProb: true,
      sharedExpertIntermediateSize: 0,
      moeLayers: [true, true],
    });
    expect([spec.embeddingMultiplier, spec.attentionScale, spec.residualMultiplier, spec.logitsScaling]).toEqual([
      12, 0.25, 0.22, 6,
    ]);
    // Parameters: the same count as the mixtral it was made from, less the untied head.
    expect(countParameters(spec).total).toBe(countParameters(specFromConfig(configFor('mixtral'))).total - V * d);

    // Export writes the GraniteMoe names back, byte for byte, and the config transformers reads.
    const out = exportCheckpoint(spec, ckpt.weights, ckpt.tokenizerJson);
    const written = parseSafetensors(out.get('model.safetensors')!, 'model.safetensors').tensors;
    expect([...written.keys()].sort()).toEqual([...tensors.keys()].sort());
    for (const [name, t] of tensors)
      expect(Buffer.from(written.get(name)!.bytes).equals(Buffer.from(t.bytes)), name).toBe(true);
    const config = JSON.parse(new TextDecoder().decode(out.get('config.json')!));
    expect(config).toMatchObject({
      architectures: ['GraniteMoeForCausalLM'],
      model_type: 'granitemoe',
      num_local_experts: E,
      intermediate_size: f,
      embedding_multiplier: 12,
      attention_multiplier: 0.25,
      residual_multiplier: 0.22,
      logits_scaling: 6,
    });
    expect(config.head_dim).toBeUndefined();
    const again = await loadCheckpoint(memorySource(out));
    const { config: _a, ...specA } = spec;
    const { config: _b, ...specB } = again.spec;
    expect(specB).toEqual(specA);
  });

  it('granitemoe reads its config the way transformers does', () => {
    const plain = specFromConfig({
      ...configFor('granitemoe'),
      embedding_multiplier: undefined,
      attention_multiplier: undefined,
      residual_multiplier: undefined,
      logits_scaling: undefined,
    });
    // GraniteMoeConfig's defaults are 1.0 each, attention included (not 1/√headDim).
    expect([plain.embeddingMultiplier, plain.attentionScale, plain.residualMultiplier, plain.logitsScaling]).toEqual([
      1, 1, 1, 1,
    ]);
    // head_dim is always hidden_size / num_attention_heads; a head_dim key is ignored, as in transformers.
    expect(specFromConfig({ ...configFor('granitemoe'), head_dim: 64 }).headDim).toBe(d / heads);
    // Other architectures: 1/√headDim and no multipliers, whatever granite keys a config carries.
    const llama = specFromConfig({
      ...configFor('llama'),
      head_dim: 16,
      attention_multiplier: 0.5,
      embedding_multiplier: 3,
    });
    expect([llama.embeddingMultiplier, llama.attentionScale, llama.residualMultiplier, llama.logitsScaling]).toEqual([
      1, 0.25, 1, 1,
    ]);
  });

  it('reads llama3 rope scaling from rope_scaling (v4) and rope_parameters (v5); plain RoPE is null', () => {
    const want = { type: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 8192 };
    for (const arch of ['llama', 'mistral', 'mixtral', 'qwen3_moe', 'olmoe', 'granitemoe'] as const) {
      expect(specFromConfig({ ...configFor(arch), rope_scaling: LLAMA3 }).ropeScaling, arch).toEqual(want);
    }
    const { rope_type: _t, ...legacy } = LLAMA3;
    expect(specFromConfig({ ...configFor('llama'), rope_scaling: { ...legacy, type: 'llama3' } }).ropeScaling).toEqual(
      want,
    );
    const v5 = specFromConfig({
      ...configFor('llama'),
      rope_theta: undefined,
      rope_parameters: { ...LLAMA3, rope_theta: 5e5 },
    });
    expect([v5.ropeTheta, v5.ropeScaling]).toEqual([5e5, want]);
    expect(specFromConfig({ ...configFor('llama'), rope_scaling: null }).ropeScaling).toBeNull();
    expect(specFromConfig({ ...configFor('llama'), rope_scaling: { rope_type: 'default' } }).ropeScaling).toBeNull();

    // Export keeps the dialect: rope_scaling for a v4 config, rope_parameters for a v5 one; both load back equal.
    const v4Config = configFromSpec(specFromConfig({ ...configFor('llama'), rope_scaling: LLAMA3 }));
    expect(v4Config.rope_scaling).toEqual(LLAMA3);
    expect(specFromConfig(v4Config).ropeScaling).toEqual(want);
    const v5Config = configFromSpec(v5);
    expect(v5Config.rope_scaling).toBeUndefined();
    expect(v5Config.rope_parameters).toEqual({ ...LLAMA3, rope_theta: 5e5 });
    expect(specFromConfig(v5Config).ropeScaling).toEqual(want);
  });

  it('reads sliding_window as transformers does: mistral defaults to 4096, mixtral to none, null is full attention', () => {
    expect(specFromConfig(configFor('mistral')).slidingWindow).toBe(4096);
    expect(specFromConfig({ ...configFor('mistral'), sliding_window: null }).slidingWindow).toBeNull();
    expect(specFromConfig({ ...configFor('mistral'), sliding_window: 5 }).slidingWindow).toBe(5);
    expect(specFromConfig(configFor('mixtral')).slidingWindow).toBeNull();
    expect(specFromConfig({ ...configFor('mixtral'), sliding_window: 4096 }).slidingWindow).toBe(4096);
    // llama has no sliding window in transformers; a stray key changes nothing.
    expect(specFromConfig({ ...configFor('llama'), sliding_window: 5 }).slidingWindow).toBeNull();
    // Explicit head_dim on mistral and mixtral (Mistral-Nemo style: heads × head_dim ≠ hidden).
    expect(specFromConfig({ ...configFor('mistral'), head_dim: 16 }).headDim).toBe(16);
    expect(specFromConfig({ ...configFor('mixtral'), head_dim: 16 }).headDim).toBe(16);
    // Round trip, including a mistral whose window came from the default.
    for (const config of [
      configFor('mistral'),
      { ...configFor('mixtral'), sliding_window: 7 },
      { ...configFor('mistral'), sliding_window: null },
    ]) {
      const spec = specFromConfig(config);
      expect(specFromConfig(configFromSpec(spec)).slidingWindow).toBe(spec.slidingWindow);
    }
  });

  it('refuses what it cannot compute, naming the config field, before any weights are read', async () => {
    const refused: Array<[Record<string, unknown>, RegExp]> = [
      [
        { ...configFor('llama'), rope_scaling: { rope_type: 'linear', factor: 2 } },
        /rope_scaling\.rope_type "linear" is not supported/,
      ],
      [
        { ...configFor('mixtral'), rope_scaling: { type: 'dynamic', factor: 2 } },
        /rope_scaling\.type "dynamic" is not supported/,
      ],
      [
        { ...configFor('qwen3_moe'), rope_scaling: { rope_type: 'yarn', factor: 4 } },
        /rope_scaling\.rope_type "yarn" is not supported/,
      ],
      [
        { ...configFor('llama'), rope_parameters: { rope_type: 'longrope', rope_theta: 1e4 } },
        /rope_parameters\.rope_type "longrope" is not supported/,
      ],
      [
        {
          ...configFor('llama'),
          rope_parameters: { rope_type: 'default', rope_theta: 1e4, partial_rotary_factor: 0.5 },
        },
        /rope_parameters\.partial_rotary_factor is 0\.5/,
      ],
      [{ ...configFor('granitemoe'), hidden_act: 'gelu' }, /hidden_act "gelu" is not supported/],
      [{ ...configFor('granitemoe'), attention_bias: true }, /attention_bias = true/],
      [
        { ...configFor('granitemoe'), position_embedding_type: 'nope' },
        /position_embedding_type "nope" is not supported/,
      ],
      [{ ...configFor('llama'), mlp_bias: true }, /mlp_bias is true/],
      [{ ...configFor('qwen2_moe'), use_sliding_window: true }, /use_sliding_window is true/],
    ];
    for (const [config, pattern] of refused) {
      // No weights in the folder at all: the refusal must come from config.json alone.
      const files = folder(config, null);
      const err = await loadCheckpoint(memorySource(files, 'test-folder')).then(
        () => null,
        (e: unknown) => e,
      );
      expect(err, String(pattern)).toBeInstanceOf(CheckpointError);
      expect((err as CheckpointError).file).toBe('config.json');
      expect((err as CheckpointError).message).toMatch(pattern);
      expect((err as CheckpointError).hint.length).toBeGreaterThan(10);
    }
  });
});
