// Upcycling identities: a freshly upcycled MoE computes exactly its dense parent's logits.
import { beforeAll, describe, expect, it } from 'vitest';
import type { ModelSpec, RoutingPlan, Tensor, WeightSet } from '../../src/engine/types.ts';
import {
  exportCheckpoint,
  fromFloat32,
  loadCheckpoint,
  memorySource,
  specFromConfig,
  toFloat32,
} from '../../src/engine/format/index.ts';
import { createCpuBackend } from '../../src/engine/backends/cpu/index.ts';
import { scoreTokens } from '../../src/engine/run/index.ts';
import { parseRoutingPlan } from '../../src/engine/routing/index.ts';
import { upcycle, UpcycleError, type UpcycleOptions } from '../../src/engine/upcycle/index.ts';
import { randomDenseLlama } from '../../src/cli/randomModel.ts';
import { buildByteLevelBpe } from '../../src/cli/byteBpe.ts';
import { dirSource } from '../../src/cli/fsSource.ts';

// A random 2-layer llama (d = 32, FFN width f = 64, vocab 300), weights scaled so logits are O(1).
// The CPU forward itself is checked against PyTorch in the backend's own tests.
const TOKENS = [254, 206, 253, 38, 169, 8, 17, 299];

let parent: { spec: ModelSpec; weights: WeightSet; tokenizerJson: unknown };
let parentLogits: Float32Array[];

async function logitsOf(spec: ModelSpec, weights: WeightSet, plan: RoutingPlan = parseRoutingPlan('native')) {
  const backend = createCpuBackend();
  const model = await backend.load(spec, weights);
  try {
    return await scoreTokens(model, TOKENS, plan);
  } finally {
    model.dispose();
    backend.dispose();
  }
}

function maxAbsDiff(a: Float32Array[], b: Float32Array[]): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  a.forEach((row, t) => {
    expect(row.length).toBe(b[t].length);
    for (let i = 0; i < row.length; i++) m = Math.max(m, Math.abs(row[i] - b[t][i]));
  });
  return m;
}

beforeAll(async () => {
  const dense = randomDenseLlama({
    vocabSize: 300,
    hiddenSize: 32,
    numLayers: 2,
    numHeads: 4,
    numKvHeads: 2,
    intermediateSize: 64,
    dtype: 'F32',
    seed: 11,
  });
  parent = { ...dense, tokenizerJson: buildByteLevelBpe('the router picks experts for the tokens', 300) };
  parentLogits = (await logitsOf(parent.spec, parent.weights)).logits;
});

// A large router scale so different tokens really go to different experts (the default 0.02 is near uniform).
const ROUTERS: [string, UpcycleOptions['router']][] = [
  ['random router', { kind: 'random', scale: 2, seed: 7 }],
  ['zero router', { kind: 'zero' }],
];
const CASES: [number, number, number][] = [
  [8, 1, 1],
  [8, 1, 2],
  [8, 2, 2],
  [8, 2, 4],
  [8, 4, 4],
  [16, 4, 8],
  [4, 4, 4],
];

describe('upcycled logits equal the parent (f32, max |Δ| ≤ 1e-5)', () => {
  for (const [routerName, router] of ROUTERS) {
    for (const [n, g, k] of CASES) {
      const modes =
        g === 1
          ? ['native', 'dense', 'topk:1', 'topk:3', `topk:${n}`, 'threshold:1.0']
          : ['native', 'dense', `topk:${g}`, `topk:${n}`];
      it(`N=${n} G=${g} k=${k}, ${routerName}: ${modes.join(', ')}`, async () => {
        const child = upcycle(parent.spec, parent.weights, { experts: n, granularity: g, topK: k, router });
        expect(child.spec.moe?.numExperts).toBe(n);
        expect(child.spec.moe?.topK).toBe(k);
        expect(child.spec.moe?.expertIntermediateSize).toBe(64 / g);
        for (const mode of modes) {
          const { logits, trace } = await logitsOf(child.spec, child.weights, parseRoutingPlan(mode));
          expect(maxAbsDiff(logits, parentLogits), mode).toBeLessThanOrEqual(1e-5);
          expect(trace.moeLayers).toEqual([0, 1]);
        }
      });
    }
  }

  it('the random router really routes tokens differently (the identity is not vacuous)', async () => {
    const child = upcycle(parent.spec, parent.weights, {
      experts: 8,
      granularity: 2,
      topK: 2,
      router: { kind: 'random', scale: 2, seed: 7 },
    });
    const { trace } = await logitsOf(child.spec, child.weights);
    const firstChoices = new Set(trace.layers.flatMap((perToken) => perToken.map((r) => r.experts[0])));
    expect(firstChoices.size).toBeGreaterThan(1);
    // Virtual groups: the two shards of a copy tie, so top-2 always picks one whole copy (2j, 2j+1).
    for (const perToken of trace.layers) {
      for (const r of perToken) {
        const sorted = [...r.experts].sort((a, b) => a - b);
        expect(sorted[0] % 2).toBe(0);
        expect(sorted[1]).toBe(sorted[0] + 1);
      }
    }
  });

  it('a top-k that splits a copy (k not a multiple of G) breaks the identity', async () => {
    const child = upcycle(parent.spec, parent.weights, {
      experts: 8,
      granularity: 2,
      topK: 2,
      router: { kind: 'random', scale: 2, seed: 7 },
    });
    const { logits } = await logitsOf(child.spec, child.weights, parseRoutingPlan('topk:1'));
    expect(maxAbsDiff(logits, parentLogits)).toBeGreaterThan(1e-3);
  });
});

describe('on-disk round trip', () => {
  it('export → load gives a Mixtral checkpoint with the same logits and the upcycling metadata', async () => {
    const child = upcycle(parent.spec, parent.weights, {
      experts: 8,
      granularity: 2,
      topK: 4,
      router: { kind: 'random', scale: 2, seed: 3 },
    });
    const files = exportCheckpoint(child.spec, child.weights, parent.tokenizerJson);
    const loaded = await loadCheckpoint(memorySource(files));
    expect(loaded.spec.architecture).toBe('mixtral');
    expect(loaded.spec.moe).toEqual(child.spec.moe);
    expect(loaded.spec.intermediateSize).toBe(child.spec.intermediateSize);
    expect(loaded.spec.ropeTheta).toBe(parent.spec.ropeTheta);
    expect(loaded.spec.rmsNormEps).toBe(parent.spec.rmsNormEps);
    expect(loaded.spec.config.upcycling).toMatchObject({
      experts: 8,
      granularity: 2,
      topK: 4,
      router: 'random',
      scaling: 'exact',
      noise: 0,
      parentIntermediateSize: 64,
    });
    const { logits } = await logitsOf(loaded.spec, loaded.weights);
    expect(maxAbsDiff(logits, parentLogits)).toBeLessThanOrEqual(1e-5);
  });
});

describe('parents with position features', () => {
  // Llama 3 Meets MoE starts from a Llama 3.x parent (llama3 RoPE scaling); mistral parents may have a
  // sliding window. The child must keep both, through export and load, and still equal its parent.
  for (const name of ['llama3_rope', 'mistral_sliding']) {
    it(`${name}: the Mixtral child keeps the parent's RoPE scaling and window and its logits`, async () => {
      const dir = new URL(`../fixtures/models/${name}/`, import.meta.url).pathname;
      const dense = await loadCheckpoint(dirSource(dir));
      const tokens = Array.from({ length: name === 'llama3_rope' ? 40 : 12 }, (_, i) => (i * 37 + 5) % 300);
      const score = async (spec: ModelSpec, weights: WeightSet) => {
        const model = await createCpuBackend().load(spec, weights);
        return (await scoreTokens(model, tokens, parseRoutingPlan('native'))).logits;
      };
      const child = upcycle(dense.spec, dense.weights, {
        experts: 4,
        topK: 2,
        router: { kind: 'random', scale: 2, seed: 5 },
      });
      const loaded = await loadCheckpoint(
        memorySource(exportCheckpoint(child.spec, child.weights, dense.tokenizerJson)),
      );
      expect(loaded.spec.architecture).toBe('mixtral');
      expect(loaded.spec.ropeScaling).toEqual(dense.spec.ropeScaling);
      expect(loaded.spec.slidingWindow).toBe(dense.spec.slidingWindow);
      expect(
        maxAbsDiff(await score(loaded.spec, loaded.weights), await score(dense.spec, dense.weights)),
      ).toBeLessThanOrEqual(1e-5);
    });
  }

  it("a mistral parent without a sliding_window key (MistralConfig's 4096) gives a child with 4096, not Mixtral's none", async () => {
    const dense = await loadCheckpoint(
      dirSource(new URL('../fixtures/models/mistral_sliding/', import.meta.url).pathname),
    );
    const { sliding_window: _window, ...config } = dense.spec.config;
    const spec = specFromConfig(config);
    expect(spec.slidingWindow).toBe(4096);
    const child = upcycle(spec, dense.weights, { experts: 4, topK: 2 });
    const loaded = await loadCheckpoint(memorySource(exportCheckpoint(child.spec, child.weights, dense.tokenizerJson)));
    expect(loaded.spec.slidingWindow).toBe(4096);
  });
});

describe('approximate variants', () => {
  it('Megatron cube-root scaling is not exact for G > 1 (silu is not homogeneous) but equals exact for G = 1', async () => {
    const cube = upcycle(parent.spec, parent.weights, {
      experts: 8,
      granularity: 2,
      topK: 2,
      scaling: 'megatron-cuberoot',
    });
    expect(maxAbsDiff((await logitsOf(cube.spec, cube.weights)).logits, parentLogits)).toBeGreaterThan(1e-3);
    const cube1 = upcycle(parent.spec, parent.weights, {
      experts: 4,
      granularity: 1,
      topK: 2,
      scaling: 'megatron-cuberoot',
    });
    expect(maxAbsDiff((await logitsOf(cube1.spec, cube1.weights)).logits, parentLogits)).toBeLessThanOrEqual(1e-5);
  });

  it('noise > 0 breaks exactness slightly, not wildly, and is deterministic per seed', async () => {
    const opts: UpcycleOptions = { experts: 8, topK: 2, noise: 0.01, seed: 5, router: { kind: 'random', scale: 2 } };
    const noisy = upcycle(parent.spec, parent.weights, opts);
    const { logits } = await logitsOf(noisy.spec, noisy.weights);
    const diff = maxAbsDiff(logits, parentLogits);
    const range = Math.max(...parentLogits.map((row) => Math.max(...row.map(Math.abs))));
    expect(diff).toBeGreaterThan(1e-5);
    expect(diff).toBeLessThan(0.05 * range);
    // Each expert gets its own noise.
    const e0 = toFloat32(noisy.weights.layers[0].moe!.experts[0].up);
    const e1 = toFloat32(noisy.weights.layers[0].moe!.experts[1].up);
    expect(e0).not.toEqual(e1);
    const again = upcycle(parent.spec, parent.weights, opts);
    expect(toFloat32(again.weights.layers[1].moe!.experts[3].down)).toEqual(
      toFloat32(noisy.weights.layers[1].moe!.experts[3].down),
    );
  });
});

describe('layout and dtype', () => {
  const toF16 = (t: Tensor): Tensor => fromFloat32(toFloat32(t), t.shape, 'F16');

  it('keeps an F16 parent F16; scaling down by G = 4 is exact in f16; logits match the f16 parent', async () => {
    const w = parent.weights;
    const half: WeightSet = {
      embed: toF16(w.embed),
      finalNorm: toF16(w.finalNorm),
      lmHead: toF16(w.lmHead),
      layers: w.layers.map((l) => ({
        attnNorm: toF16(l.attnNorm),
        ffnNorm: toF16(l.ffnNorm),
        q: toF16(l.q),
        k: toF16(l.k),
        v: toF16(l.v),
        o: toF16(l.o),
        mlp: { gate: toF16(l.mlp!.gate), up: toF16(l.mlp!.up), down: toF16(l.mlp!.down) },
      })),
    };
    const halfSpec: ModelSpec = { ...parent.spec, dtype: 'F16' };
    const child = upcycle(halfSpec, half, {
      experts: 8,
      granularity: 4,
      topK: 4,
      router: { kind: 'random', scale: 2 },
    });
    expect(child.spec.dtype).toBe('F16');
    const moe = child.weights.layers[0].moe!;
    expect(moe.router.dtype).toBe('F16');
    expect(moe.experts[5].down.dtype).toBe('F16');
    // Expert 5 = copy 1, shard 1: columns 16..31 of down, times 4, bit-for-bit.
    const down = toFloat32(half.layers[0].mlp!.down);
    const shard = toFloat32(moe.experts[5].down);
    expect(moe.experts[5].down.shape).toEqual([32, 16]);
    for (let r = 0; r < 32; r++) for (let c = 0; c < 16; c++) expect(shard[r * 16 + c]).toBe(4 * down[r * 64 + 16 + c]);
    const parentHalf = (await logitsOf(halfSpec, half)).logits;
    expect(maxAbsDiff((await logitsOf(child.spec, child.weights)).logits, parentHalf)).toBeLessThanOrEqual(1e-5);
  });

  it('shares attention, norms and embeddings with the parent and the gate/up shards across copies', () => {
    const child = upcycle(parent.spec, parent.weights, { experts: 8, granularity: 2 });
    const [pl, cl] = [parent.weights.layers[1], child.weights.layers[1]];
    expect(cl.q).toBe(pl.q);
    expect(cl.attnNorm).toBe(pl.attnNorm);
    expect(cl.mlp).toBeUndefined();
    expect(child.weights.embed).toBe(parent.weights.embed);
    expect(cl.moe!.experts[0].gate).toBe(cl.moe!.experts[2].gate);
    expect(cl.moe!.experts[0].gate.bytes.buffer).toBe(pl.mlp!.gate.bytes.buffer);
    expect(child.spec.moe!.topK).toBe(4); // default G·min(2, E)
    expect(child.spec.config.model_type).toBe('mixtral');
    expect(child.spec.config.num_local_experts).toBe(8);
    expect(child.spec.config.intermediate_size).toBe(32);
  });
});

describe('validation', () => {
  const cases: [string, UpcycleOptions, RegExp][] = [
    ['N not a multiple of G', { experts: 6, granularity: 4 }, /not a multiple of 4/],
    ['f not divisible by G', { experts: 6, granularity: 3 }, /64 cannot be cut into 3/],
    ['k > N', { experts: 4, topK: 5 }, /top-k/],
    ['k = 0', { experts: 4, topK: 0 }, /top-k/],
    ['negative noise', { experts: 4, noise: -1 }, /Noise/],
  ];
  for (const [name, options, message] of cases) {
    it(`rejects ${name}`, () => {
      expect(() => upcycle(parent.spec, parent.weights, options)).toThrow(UpcycleError);
      expect(() => upcycle(parent.spec, parent.weights, options)).toThrow(message);
    });
  }

  it('rejects a parent that already has experts', () => {
    const child = upcycle(parent.spec, parent.weights, { experts: 4 });
    expect(() => upcycle(child.spec, child.weights, { experts: 8 })).toThrow(/Only dense llama or mistral/);
  });
});
