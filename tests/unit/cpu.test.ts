// The CPU backend on small random models: KV-cache consistency, causality, sparse work really
// skipped, the upcycling identity, and the errors a caller can cause.

import { describe, expect, it } from 'vitest';
import { createCpuBackend, type CpuModel } from '../../src/engine/backends/cpu/index.ts';
import { parseRoutingPlan } from '../../src/engine/routing/index.ts';
import { RunError } from '../../src/engine/run/index.ts';
import type { RoutingPlan, WeightSet } from '../../src/engine/types.ts';
import { randomModel, type RandomModelOptions } from './cpuRandomModel.ts';
import { maxAbsDiff } from '../maxAbsDiff.ts';

const TOKENS = [5, 17, 42, 3, 60, 9, 33, 1];
const NATIVE = parseRoutingPlan('native');

async function load(o: RandomModelOptions): Promise<CpuModel> {
  const { spec, weights } = randomModel(o);
  return createCpuBackend().load(spec, weights);
}

const VARIANTS: [string, RandomModelOptions][] = [
  ['llama (dense, tied embeddings)', { numExperts: 0, tieWordEmbeddings: true }],
  ['mixtral (GQA 4/2)', { architecture: 'mixtral' }],
  [
    'qwen2_moe (biases, shared expert, one dense layer)',
    {
      architecture: 'qwen2_moe',
      numLayers: 3,
      numExperts: 6,
      attentionBias: true,
      sharedExpertIntermediateSize: 20,
      normTopkProb: false,
      moeLayers: [true, false, true],
    },
  ],
  ['qwen3_moe (per-head q/k norm)', { architecture: 'qwen3_moe', qkNorm: 'per_head', numExperts: 8 }],
  ['olmoe (full q/k norm, MHA)', { architecture: 'olmoe', qkNorm: 'full', numKvHeads: 4, normTopkProb: false }],
];

describe('CPU backend: prefill equals decode through the KV cache', () => {
  for (const [name, options] of VARIANTS) {
    for (const mode of ['native', 'threshold:1.2']) {
      it(`${name}, ${mode}`, async () => {
        const model = await load(options);
        const plan = parseRoutingPlan(mode);
        const full = await model.forward(TOKENS, model.newCache(TOKENS.length), { routing: plan, logits: 'all' });
        expect(full.logits.length).toBe(TOKENS.length);
        expect(full.routing.positions).toEqual(TOKENS.map((_, i) => i));

        // uneven chunks: 1 token, then 3, then one at a time
        const cache = model.newCache(TOKENS.length);
        const chunks = [TOKENS.slice(0, 1), TOKENS.slice(1, 4), ...TOKENS.slice(4).map((t) => [t])];
        let t = 0;
        for (const chunk of chunks) {
          const step = await model.forward(chunk, cache, { routing: plan, logits: 'all' });
          step.logits.forEach((row, i) => expect(maxAbsDiff(row, full.logits[t + i])).toBeLessThanOrEqual(1e-5));
          step.routing.layers.forEach((rows, m) =>
            rows.forEach((r, i) => expect(r.experts).toEqual(full.routing.layers[m][t + i].experts)),
          );
          expect(step.routing.positions[0]).toBe(t);
          t += chunk.length;
        }
        expect(cache.length).toBe(TOKENS.length);
      });
    }
  }

  it("logits: 'last' returns only the last row", async () => {
    const model = await load({});
    const all = await model.forward(TOKENS, model.newCache(8), { routing: NATIVE, logits: 'all' });
    const last = await model.forward(TOKENS, model.newCache(8), { routing: NATIVE, logits: 'last' });
    expect(last.logits.length).toBe(1);
    expect(maxAbsDiff(last.logits[0], all.logits[TOKENS.length - 1])).toBe(0);
  });

  it('truncate rewinds the cache so a different continuation can be scored', async () => {
    const model = await load({});
    const other = [...TOKENS.slice(0, 3), 7, 8, 9];
    const fresh = await model.forward(other, model.newCache(8), { routing: NATIVE, logits: 'all' });
    const cache = model.newCache(8);
    await model.forward(TOKENS, cache, { routing: NATIVE, logits: 'all' });
    cache.truncate(3);
    expect(cache.length).toBe(3);
    const rescored = await model.forward(other.slice(3), cache, { routing: NATIVE, logits: 'all' });
    rescored.logits.forEach((row, i) => expect(maxAbsDiff(row, fresh.logits[3 + i])).toBeLessThanOrEqual(1e-5));
    expect(() => cache.truncate(7)).toThrow(RangeError);
  });

  it('is causal: a position never sees later tokens', async () => {
    const model = await load({});
    const a = await model.forward(TOKENS, model.newCache(8), { routing: NATIVE, logits: 'all' });
    const changed = [...TOKENS.slice(0, 4), 11, 12, 13, 14];
    const b = await model.forward(changed, model.newCache(8), { routing: NATIVE, logits: 'all' });
    for (let t = 0; t < 4; t++) expect(maxAbsDiff(a.logits[t], b.logits[t])).toBe(0);
    expect(maxAbsDiff(a.logits[4], b.logits[4])).toBeGreaterThan(1e-3);
  });
});

describe('CPU backend: sparse routing really skips experts', () => {
  const T = TOKENS.length;
  const numMoeLayers = 2;
  const count = async (model: CpuModel, plan: RoutingPlan) => {
    model.resetStats();
    const result = await model.forward(TOKENS, model.newCache(T), { routing: plan, logits: 'last' });
    return { calls: model.stats.expertCalls, macs: model.stats.expertMacs, result };
  };

  it('topk:1 computes one expert per token per MoE layer, dense computes all E', async () => {
    const model = await load({ numExperts: 8 });
    const perCall = 3 * 16 * 24; // 3 · d · f
    const top1 = await count(model, parseRoutingPlan('topk:1'));
    expect(top1.calls).toBe(T * numMoeLayers);
    expect(top1.macs).toBe(T * numMoeLayers * perCall);
    expect((await count(model, parseRoutingPlan('native'))).calls).toBe(2 * T * numMoeLayers);
    const dense = await count(model, parseRoutingPlan('dense'));
    expect(dense.calls).toBe(8 * T * numMoeLayers);
    expect(dense.macs).toBe(8 * top1.macs);
  });

  it('threshold computes exactly the experts its trace reports', async () => {
    const model = await load({ numExperts: 8 });
    const { calls, result } = await count(model, parseRoutingPlan('threshold:1.0'));
    const reported = result.routing.layers.flat().reduce((n, r) => n + r.experts.length, 0);
    expect(calls).toBe(reported);
    expect(reported).toBeGreaterThan(T * numMoeLayers); // the random router spreads mass: some tokens use several
    expect(reported).toBeLessThan(8 * T * numMoeLayers);
  });
});

describe('CPU backend: identities', () => {
  it('an MoE whose experts are copies of one FFN equals the dense model (renormalised routing)', async () => {
    const moe = randomModel({ numExperts: 4, seed: 7 });
    const dense = randomModel({ numExperts: 0, seed: 7 });
    // dense weights := the MoE's non-expert weights + expert 0 as the MLP; every expert := expert 0
    const denseWeights: WeightSet = {
      ...moe.weights,
      layers: moe.weights.layers.map(({ moe: m, ...rest }) => ({ ...rest, mlp: m!.experts[0] })),
    };
    const moeWeights: WeightSet = {
      ...moe.weights,
      layers: moe.weights.layers.map((l) => ({
        ...l,
        moe: { ...l.moe!, experts: l.moe!.experts.map(() => l.moe!.experts[0]) },
      })),
    };
    const backend = createCpuBackend();
    const denseModel = await backend.load(dense.spec, denseWeights);
    const moeModel = await backend.load(moe.spec, moeWeights);
    const reference = await denseModel.forward(TOKENS, denseModel.newCache(8), { routing: NATIVE, logits: 'all' });
    for (const mode of ['native', 'topk:1', 'topk:3', 'threshold:1.5', 'dense']) {
      const out = await moeModel.forward(TOKENS, moeModel.newCache(8), {
        routing: parseRoutingPlan(mode),
        logits: 'all',
      });
      out.logits.forEach((row, t) => expect(maxAbsDiff(row, reference.logits[t]), mode).toBeLessThanOrEqual(1e-5));
    }
  });

  it('ablating an expert changes the output only where that expert was chosen', async () => {
    const model = await load({ numExperts: 4, numLayers: 1 });
    const base = await model.forward(TOKENS, model.newCache(8), { routing: NATIVE, logits: 'all' });
    const used = base.routing.layers[0].map((r) => r.experts.includes(1));
    expect(used.some(Boolean)).toBe(true);
    const ablated = await model.forward(TOKENS, model.newCache(8), {
      routing: parseRoutingPlan('native', 'L0E1-'),
      logits: 'all',
    });
    // a token's layer-0 output feeds later positions through attention, so compare up to the first use
    const firstUse = used.indexOf(true);
    for (let t = 0; t < firstUse; t++) expect(maxAbsDiff(ablated.logits[t], base.logits[t])).toBe(0);
    expect(maxAbsDiff(ablated.logits[firstUse], base.logits[firstUse])).toBeGreaterThan(1e-4);
    expect(ablated.routing.layers[0].every((r) => !r.experts.includes(1) && r.probs[1] === 0)).toBe(true);
  });
});

describe('CPU backend: errors a caller can cause', () => {
  it('rejects unknown tokens, overflowing caches, empty input and impossible plans', async () => {
    const model = await load({});
    const options = { routing: NATIVE, logits: 'last' } as const;
    await expect(model.forward([64], model.newCache(4), options)).rejects.toThrow(RunError);
    await expect(model.forward([1, 2, 3], model.newCache(2), options)).rejects.toThrow(/KV cache holds only 2/);
    await expect(model.forward([], model.newCache(2), options)).rejects.toThrow(RunError);
    await expect(
      model.forward([1], model.newCache(2), { ...options, routing: parseRoutingPlan('topk:5') }),
    ).rejects.toThrow('topk:5 asks for 5 experts but the model has 4');
    const other = await load({});
    await expect(model.forward([1], other.newCache(2), options)).rejects.toThrow(/not made by this model/);
  });

  it('leaves the cache untouched when a forward fails', async () => {
    const model = await load({});
    const cache = model.newCache(4);
    await model.forward([1, 2], cache, { routing: NATIVE, logits: 'last' });
    await expect(model.forward([3, 99], cache, { routing: NATIVE, logits: 'last' })).rejects.toThrow(RunError);
    expect(cache.length).toBe(2);
  });
});
