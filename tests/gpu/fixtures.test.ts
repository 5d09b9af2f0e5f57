// The whole WebGPU backend against the PyTorch fixtures (tests/fixtures/README.md): every case of every
// expected.json, prefill and token-by-token decode through the KV cache.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nodeGpu } from '../../src/cli/nodeGpu.ts';
import { createWebGpuBackend, type WebGpuBackend } from '../../src/engine/backends/webgpu/index.ts';
import { loadCheckpoint } from '../../src/engine/format/index.ts';
import { dirSource } from '../../src/cli/fsSource.ts';
import { parseRoutingPlan } from '../../src/engine/routing/index.ts';
import type { LoadedModel, TokenRouting } from '../../src/engine/types.ts';
import { maxAbsDiff } from '../maxAbsDiff.ts';

const FIXTURES = path.resolve(import.meta.dirname, '../fixtures/models');
const NAMES = fs.existsSync(FIXTURES) ? fs.readdirSync(FIXTURES).sort() : [];

interface ExpectedCase {
  routing: string;
  interventions: string;
  logits: number[][];
  routing_trace: Array<Array<{ experts: number[]; weights: number[]; probs: number[] }>>;
  moe_layers: number[];
}
interface Expected {
  tokens: number[];
  cases: ExpectedCase[];
}

// f32 arithmetic on the GPU against float64 PyTorch; the fixtures are tiny (hidden 32), so 1e-4 holds
// with room to spare (the brief asks for 1e-3).
const LOGIT_TOL = 1e-4;
const PROB_TOL = 1e-5;

let backend: WebGpuBackend;
beforeAll(async () => {
  backend = await createWebGpuBackend(await nodeGpu());
});
afterAll(() => backend?.dispose());

/** Sets equal, or differing only between experts whose probabilities are within PROB_TOL (near-ties). */
function expectSameRouting(
  got: TokenRouting,
  want: { experts: number[]; weights: number[]; probs: number[] },
  where: string,
): void {
  expect(maxAbsDiff(got.probs, want.probs), `${where} probs`).toBeLessThanOrEqual(PROB_TOL);
  const g = new Set(got.experts);
  const w = new Set(want.experts);
  const onlyGot = [...g].filter((e) => !w.has(e));
  const onlyWant = [...w].filter((e) => !g.has(e));
  const nearTie = onlyGot.every((a) => onlyWant.some((b) => Math.abs(want.probs[a] - want.probs[b]) <= PROB_TOL));
  expect(
    onlyGot.length === 0 || nearTie,
    `${where}: chose ${got.experts} but the reference chose ${want.experts}`,
  ).toBe(true);
  if (onlyGot.length === 0) {
    expect(got.experts, where).toEqual(want.experts);
    expect(maxAbsDiff(got.weights, want.weights), `${where} weights`).toBeLessThanOrEqual(PROB_TOL);
  }
}

describe('WebGPU backend vs PyTorch fixtures', () => {
  it('has fixtures to check', () => {
    expect(NAMES.length).toBeGreaterThan(0);
  });

  for (const name of NAMES) {
    describe(name, () => {
      let model: LoadedModel;
      let expected: Expected;
      beforeAll(async () => {
        const dir = path.join(FIXTURES, name);
        expected = JSON.parse(fs.readFileSync(path.join(dir, 'expected.json'), 'utf8'));
        const checkpoint = await loadCheckpoint(dirSource(dir));
        model = await backend.load(checkpoint.spec, checkpoint.weights);
      });
      afterAll(() => model?.dispose());

      it('every case: prefill logits and routing', async () => {
        let worst = 0;
        for (const c of expected.cases) {
          const label = `${c.routing}${c.interventions ? ` ${c.interventions}` : ''}`;
          const plan = parseRoutingPlan(c.routing, c.interventions);
          const T = expected.tokens.length;
          const out = await model.forward(expected.tokens, model.newCache(T), { routing: plan, logits: 'all' });
          expect(out.logits.length).toBe(T);
          out.logits.forEach((row, t) => {
            const diff = maxAbsDiff(row, c.logits[t]);
            worst = Math.max(worst, diff);
            expect(diff, `${label} position ${t}`).toBeLessThanOrEqual(LOGIT_TOL);
          });
          expect(out.routing.moeLayers).toEqual(c.moe_layers);
          expect(out.routing.positions).toEqual(expected.tokens.map((_, t) => t));
          c.routing_trace.forEach((layer, m) =>
            layer.forEach((want, t) =>
              expectSameRouting(out.routing.layers[m][t], want, `${label} MoE layer ${c.moe_layers[m]} position ${t}`),
            ),
          );
        }
        console.log(`${name}: ${expected.cases.length} cases, max |Δlogit| = ${worst.toExponential(2)}`);
      });

      it('token-by-token decode through the KV cache equals the prefill', async () => {
        // A few cases keep the run short on SwiftShader: native, a threshold mode, and the last (an intervention).
        const cases = expected.cases.filter(
          (c, i) => i === 0 || i === expected.cases.length - 1 || c.routing === 'threshold:1.5',
        );
        for (const c of cases) {
          const plan = parseRoutingPlan(c.routing, c.interventions);
          const T = expected.tokens.length;
          const cache = model.newCache(T);
          const prefill = await model.forward(expected.tokens, model.newCache(T), { routing: plan, logits: 'all' });
          // Uneven steps: 1 token, then 2, then one at a time (the matvec path), 'last' logits only.
          const steps = [[0, 1], [1, 3], ...Array.from({ length: T - 3 }, (_, i) => [3 + i, 4 + i])];
          for (const [a, b] of steps) {
            const step = await model.forward(expected.tokens.slice(a, b), cache, { routing: plan, logits: 'last' });
            expect(step.logits.length).toBe(1);
            expect(maxAbsDiff(step.logits[0], prefill.logits[b - 1])).toBeLessThanOrEqual(1e-5);
            expect(maxAbsDiff(step.logits[0], c.logits[b - 1])).toBeLessThanOrEqual(LOGIT_TOL);
            step.routing.layers.forEach((rows, m) =>
              rows.forEach((r, i) => expect(r.experts).toEqual(prefill.routing.layers[m][a + i].experts)),
            );
            expect(step.routing.positions).toEqual(Array.from({ length: b - a }, (_, i) => a + i));
          }
          expect(cache.length).toBe(T);
          cache.dispose();
        }
      });
    });
  }
});
