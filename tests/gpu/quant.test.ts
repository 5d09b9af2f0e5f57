// Quantized weights on the WebGPU backend: the kernels read packed Q8 / Q4 codes and f16 scales (no f32
// expansion on the GPU) and agree with the CPU backend (itself checked against numpy and PyTorch in
// tests/unit) on the same quantized weights.
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeBenchMoe } from '../../bench/make-bench-model.ts';
import { nodeGpu } from '../../src/cli/nodeGpu.ts';
import { dirSource } from '../../src/cli/fsSource.ts';
import { createCpuBackend } from '../../src/engine/backends/cpu/index.ts';
import { createWebGpuBackend, type WebGpuBackend } from '../../src/engine/backends/webgpu/index.ts';
import { loadCheckpoint, numelOf } from '../../src/engine/format/index.ts';
import {
  allTensors,
  quantizeTensor,
  quantizeWeights,
  tensorBytes,
  type QuantOptions,
} from '../../src/engine/format/quant.ts';
import { parseRoutingPlan } from '../../src/engine/routing/index.ts';
import type { FfnWeights, ModelSpec, Tensor, WeightSet } from '../../src/engine/types.ts';
import { maxAbsDiff } from '../maxAbsDiff.ts';

const FIXTURES = path.resolve(import.meta.dirname, '../fixtures/models');
const TOKENS = [3, 17, 42, 5, 99, 260, 7, 1, 64, 128, 33, 2];

let backend: WebGpuBackend;
beforeAll(async () => {
  backend = await createWebGpuBackend(await nodeGpu());
});
afterAll(() => backend?.dispose());

/** Every matrix but the routers in one quantized format (the Q4-with-minimums variant is not a scheme's default). */
function quantizeAll(w: WeightSet, o: QuantOptions): WeightSet {
  const q = (t: Tensor) => (t.shape.length === 2 && t.shape[1] % o.groupSize === 0 ? quantizeTensor(t as never, o) : t);
  const ffn = (f: FfnWeights): FfnWeights => ({ gate: q(f.gate), up: q(f.up), down: q(f.down) });
  const embed = q(w.embed);
  return {
    embed,
    lmHead: w.lmHead === w.embed ? embed : q(w.lmHead),
    finalNorm: w.finalNorm,
    layers: w.layers.map((l) => ({
      ...l,
      q: q(l.q),
      k: q(l.k),
      v: q(l.v),
      o: q(l.o),
      mlp: l.mlp && ffn(l.mlp),
      moe: l.moe && {
        ...l.moe,
        experts: l.moe.experts.map(ffn),
        sharedExpert: l.moe.sharedExpert && ffn(l.moe.sharedExpert),
      },
    })),
  };
}

async function compare(spec: ModelSpec, weights: WeightSet, mode: string, label: string): Promise<void> {
  const plan = parseRoutingPlan(mode);
  const cpu = await createCpuBackend().load(spec, weights);
  const want = await cpu.forward(TOKENS, cpu.newCache(TOKENS.length + 2), { routing: plan, logits: 'all' });
  const gpu = await backend.load(spec, weights);
  const cache = gpu.newCache(TOKENS.length + 2);
  const got = await gpu.forward(TOKENS.slice(0, -2), cache, { routing: plan, logits: 'all' }); // prefill: matmul
  const steps = [
    await gpu.forward([TOKENS[TOKENS.length - 2]], cache, { routing: plan, logits: 'last' }),
    await gpu.forward([TOKENS[TOKENS.length - 1]], cache, { routing: plan, logits: 'last' }),
  ]; // decode: matvec
  const rows = [...got.logits, ...steps.map((s) => s.logits[0])];
  let worst = 0;
  rows.forEach((row, t) => (worst = Math.max(worst, maxAbsDiff(row, want.logits[t]))));
  got.routing.layers.forEach((layer, m) =>
    layer.forEach((r, t) => expect(r.experts).toEqual(want.routing.layers[m][t].experts)),
  );
  console.log(`${label}: max |Δlogit| GPU vs CPU = ${worst.toExponential(2)}`);
  expect(worst).toBeLessThanOrEqual(1e-4);
  gpu.dispose();
}

describe('WebGPU on quantized weights agrees with the CPU backend', () => {
  const formats: [string, QuantOptions][] = [
    ['Q8 group 32', { dtype: 'Q8', groupSize: 32 }],
    ['Q4 group 32', { dtype: 'Q4', groupSize: 32 }],
    ['Q4 group 32 with minimums', { dtype: 'Q4', groupSize: 32, offsets: true }],
  ];
  for (const [fixture, mode] of [
    ['mixtral_f16', 'native'],
    ['qwen2_moe_f32', 'threshold:1.5'],
  ] as const) {
    for (const [name, o] of formats) {
      it(`${fixture} (${mode}), ${name}: prefill and decode`, async () => {
        const { spec, weights } = await loadCheckpoint(dirSource(path.join(FIXTURES, fixture)));
        await compare(spec, quantizeAll(weights, o), mode, `${fixture} ${name}`);
      });
    }
  }

  for (const scheme of ['q8', 'q4'] as const) {
    it(`llmjp-mini (llm-jp 8x152M's layout at test size), ${scheme}: the GPU holds the packed bytes, no f32 copy`, async () => {
      const { spec, weights } = makeBenchMoe('llmjp-mini');
      const q = quantizeWeights(weights, scheme);
      const before = backend.stats().liveBytes;
      const gpu = await backend.load(spec, q);
      const held = backend.stats().liveBytes - before;
      const tensors = allTensors(q);
      const packed = tensors.filter((t) => t.shape.length === 2).reduce((s, t) => s + tensorBytes(t), 0);
      const vectors = tensors.filter((t) => t.shape.length === 1).reduce((s, t) => s + 4 * numelOf(t.shape), 0); // norms as f32
      const f32 = tensors.reduce((s, t) => s + 4 * numelOf(t.shape), 0);
      // Buffers are rounded up to 16 bytes; one 16-byte dummy.
      expect(held).toBeGreaterThanOrEqual(packed + vectors);
      expect(held).toBeLessThanOrEqual(packed + vectors + 16 * (2 * tensors.length + 1));
      expect(held).toBeLessThan(f32 / (scheme === 'q8' ? 3.5 : 6));
      gpu.dispose();
      await compare(spec, q, 'native', `llmjp-mini ${scheme}`);
    });
  }
});
