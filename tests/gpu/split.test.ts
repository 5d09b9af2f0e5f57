// Tensors larger than the largest GPU buffer are split instead of refused: embedding tables and LM heads by
// rows, expert stacks by experts. Tested with an artificially low limit (maxBufferBytes) on the fixtures:
// the split model computes what the unsplit one computes (experts split into parts add their contributions in
// one more step, so sums may round differently: 1e-5). Only a single row / expert too large refuses.
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nodeGpu } from '../../src/cli/nodeGpu.ts';
import { dirSource } from '../../src/cli/fsSource.ts';
import {
  createWebGpuBackend,
  WebGpuTooLargeError,
  type WebGpuBackend,
} from '../../src/engine/backends/webgpu/index.ts';
import { loadCheckpoint } from '../../src/engine/format/index.ts';
import { quantizeWeights } from '../../src/engine/format/quant.ts';
import { parseRoutingPlan } from '../../src/engine/routing/index.ts';
import type { QuantScheme } from '../../src/engine/types.ts';

const FIXTURES = path.resolve(import.meta.dirname, '../fixtures/models');
const TOKENS = [3, 17, 42, 5, 99, 260, 7, 1, 64, 307, 0, 150];

let whole: WebGpuBackend;
beforeAll(async () => {
  whole = await createWebGpuBackend(await nodeGpu());
});
afterAll(() => whole?.dispose());

describe('splitting tensors larger than one buffer', () => {
  const cases: [string, string, QuantScheme, number][] = [
    // qwen2_moe f32: q/k/v/o take 4 KiB, its dense MLP's matrices 6 KiB, one expert's 3 KiB; embed and LM head 38.5 KiB each.
    ['qwen2_moe_f32', 'threshold:1.5', 'none', 6144],
    // mixtral f16 at q4: rows of 16 bytes + scales; a stack of 8 experts' gates is 4.5 KiB.
    ['mixtral_f16', 'dense', 'q4', 1024],
  ];
  for (const [fixture, mode, scheme, limit] of cases) {
    it(`${fixture}, ${scheme}, limit ${limit} B: embedding, LM head and expert stacks split; logits and routing equal the unsplit model's`, async () => {
      const { spec, weights } = await loadCheckpoint(dirSource(path.join(FIXTURES, fixture)));
      const w = quantizeWeights(weights, scheme);
      const small = await createWebGpuBackend(await nodeGpu(), { maxBufferBytes: limit });
      try {
        const plan = parseRoutingPlan(mode);
        const w0 = whole.stats().liveBuffers;
        const a = await whole.load(spec, w);
        const s0 = small.stats().liveBuffers;
        const b = await small.load(spec, w);
        // More, smaller buffers: the split happened.
        expect(small.stats().liveBuffers - s0).toBeGreaterThan(whole.stats().liveBuffers - w0 + 4);
        for (const m of [a, b]) expect(m.spec).toBe(spec);
        const ra = await a.forward(TOKENS, a.newCache(TOKENS.length + 1), { routing: plan, logits: 'all' });
        const cache = b.newCache(TOKENS.length + 1);
        const rb = await b.forward(TOKENS, cache, { routing: plan, logits: 'all' });
        rb.logits.forEach((row, t) =>
          expect(Math.max(...row.map((v, i) => Math.abs(v - ra.logits[t][i])))).toBeLessThanOrEqual(1e-5),
        );
        rb.routing.layers.forEach((layer, m) =>
          layer.forEach((r, t) => expect(r.experts).toEqual(ra.routing.layers[m][t].experts)),
        );
        // Decode (matvec) through the split LM head too.
        const step = await b.forward([9], cache, { routing: plan, logits: 'last' });
        const ref = await a.forward([...TOKENS, 9], a.newCache(TOKENS.length + 1), { routing: plan, logits: 'last' });
        expect(Math.max(...step.logits[0].map((v, i) => Math.abs(v - ref.logits[0][i])))).toBeLessThanOrEqual(1e-5);
        a.dispose();
        b.dispose();
      } finally {
        small.dispose();
      }
    });
  }

  it('refuses, before allocating, when a single row is larger than the limit', async () => {
    const { spec, weights } = await loadCheckpoint(dirSource(path.join(FIXTURES, 'mixtral_f16')));
    const tiny = await createWebGpuBackend(await nodeGpu(), { maxBufferBytes: 48 }); // a row of 32 f16 values is 64 B
    try {
      const before = tiny.stats();
      await expect(tiny.load(spec, weights)).rejects.toThrow(WebGpuTooLargeError);
      await expect(tiny.load(spec, weights)).rejects.toThrow(
        /token embeddings \(one row\) take .* more than this GPU's largest buffer/,
      );
      expect(tiny.stats()).toEqual(before);
    } finally {
      tiny.dispose();
    }
  });
});
