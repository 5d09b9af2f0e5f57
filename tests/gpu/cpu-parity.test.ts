// Longer sequences than the fixtures hold: the WebGPU backend against the CPU reference backend (itself
// checked against PyTorch in tests/unit) on 150 tokens, which crosses the 128-token prefill chunk and
// makes attention span more positions than a workgroup has threads.
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nodeGpu } from '../../src/cli/nodeGpu.ts';
import { createWebGpuBackend, type WebGpuBackend } from '../../src/engine/backends/webgpu/index.ts';
import { createCpuBackend } from '../../src/engine/backends/cpu/index.ts';
import { loadCheckpoint } from '../../src/engine/format/index.ts';
import { dirSource } from '../../src/cli/fsSource.ts';
import { parseRoutingPlan } from '../../src/engine/routing/index.ts';
import { maxAbsDiff } from '../maxAbsDiff.ts';

const FIXTURES = path.resolve(import.meta.dirname, '../fixtures/models');

let backend: WebGpuBackend;
beforeAll(async () => {
  backend = await createWebGpuBackend(await nodeGpu());
});
afterAll(() => backend?.dispose());

describe('WebGPU vs CPU backend on 150 tokens', () => {
  for (const [name, mode] of [
    ['qwen2_moe_f32', 'threshold:1.5'],
    ['mixtral_bf16', 'native'],
  ] as const) {
    it(`${name}, ${mode}: prefill of 140 (two chunks) then 10 decode steps`, async () => {
      const { spec, weights } = await loadCheckpoint(dirSource(path.join(FIXTURES, name)));
      const tokens = Array.from({ length: 150 }, (_, i) => (i * 37 + 11) % 300);
      const plan = parseRoutingPlan(mode);
      const cpu = await createCpuBackend().load(spec, weights);
      const want = await cpu.forward(tokens, cpu.newCache(150), { routing: plan, logits: 'all' });

      const gpu = await backend.load(spec, weights);
      const cache = gpu.newCache(150);
      const prefill = await gpu.forward(tokens.slice(0, 140), cache, { routing: plan, logits: 'all' });
      let worst = 0;
      let routingMismatches = 0;
      const check = (t: number, row: Float32Array) => {
        worst = Math.max(worst, maxAbsDiff(row, want.logits[t]));
      };
      prefill.logits.forEach((row, t) => check(t, row));
      prefill.routing.layers.forEach((rows, m) =>
        rows.forEach((r, t) => {
          if (r.experts.join() !== want.routing.layers[m][t].experts.join()) routingMismatches++;
        }),
      );
      for (let t = 140; t < 150; t++) {
        const step = await gpu.forward([tokens[t]], cache, { routing: plan, logits: 'last' });
        check(t, step.logits[0]);
      }
      console.log(
        `${name}: max |Δlogit| over 150 positions = ${worst.toExponential(2)}, routing mismatches ${routingMismatches}`,
      );
      expect(worst).toBeLessThanOrEqual(1e-4);
      expect(routingMismatches).toBe(0);
      gpu.dispose();
    });
  }
});
