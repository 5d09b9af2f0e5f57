// Parity with the PyTorch reference: every fixture in tests/fixtures/models/ (made by
// tests/fixtures/make_fixtures.py), every routing case in its expected.json, run through
// loadCheckpoint + the CPU backend. Logits within 1e-4, router probabilities and gate weights
// within 1e-5, chosen expert lists identical (the generator re-draws seeds with near-ties).

import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { dirSource } from '../../src/cli/fsSource.ts';
import { createCpuBackend } from '../../src/engine/backends/cpu/index.ts';
import { loadCheckpoint } from '../../src/engine/format/index.ts';
import { parseRoutingPlan } from '../../src/engine/routing/index.ts';
import { scoreTokens } from '../../src/engine/run/index.ts';
import type { RoutingTrace } from '../../src/engine/types.ts';
import { maxAbsDiff } from '../maxAbsDiff.ts';

interface ExpectedRouting {
  experts: number[];
  weights: number[];
  probs: number[];
}
interface ExpectedCase {
  routing: string;
  interventions: string;
  logits: number[][];
  routing_trace: ExpectedRouting[][];
  moe_layers: number[];
}
interface Expected {
  tokens: number[];
  cases: ExpectedCase[];
}

const MODELS = join(import.meta.dirname, '..', 'fixtures', 'models');
const fixtureNames = existsSync(MODELS)
  ? readdirSync(MODELS)
      .filter((n) => existsSync(join(MODELS, n, 'expected.json')))
      .sort()
  : [];

/** Sorted-set equality, allowing a swap only between two experts whose probabilities differ by ≤ 1e-6. */
function sameChoice(actual: number[], expected: ExpectedRouting): boolean {
  if (actual.join() === expected.experts.join()) return true;
  const a = new Set(actual);
  const e = new Set(expected.experts);
  const onlyA = actual.filter((x) => !e.has(x));
  const onlyE = expected.experts.filter((x) => !a.has(x));
  if (onlyA.length !== onlyE.length) return false;
  return onlyA.every((x, i) => Math.abs(expected.probs[x] - expected.probs[onlyE[i]]) <= 1e-6);
}

function compareTrace(trace: RoutingTrace, c: ExpectedCase, where: string): void {
  expect(trace.moeLayers, `${where}: MoE layers`).toEqual(c.moe_layers);
  c.routing_trace.forEach((rows, m) => {
    rows.forEach((exp, t) => {
      const got = trace.layers[m][t];
      const at = `${where} layer ${c.moe_layers[m]} token ${t}`;
      expect(maxAbsDiff(got.probs, exp.probs), `${at}: probs`).toBeLessThanOrEqual(1e-5);
      expect(sameChoice(got.experts, exp), `${at}: experts ${got.experts} vs ${exp.experts}`).toBe(true);
      if (got.experts.join() === exp.experts.join()) {
        expect(maxAbsDiff(got.weights, exp.weights), `${at}: weights`).toBeLessThanOrEqual(1e-5);
      }
    });
  });
}

describe('parity with the PyTorch reference', () => {
  it('has fixtures to compare against', () => {
    // An empty folder would make every other test here vanish silently.
    expect(
      fixtureNames.length,
      `no fixtures in ${MODELS}; run /usr/bin/python3 tests/fixtures/make_fixtures.py`,
    ).toBeGreaterThan(0);
  });

  for (const name of fixtureNames) {
    it(`${name}: every routing case matches`, async () => {
      const expected = JSON.parse(readFileSync(join(MODELS, name, 'expected.json'), 'utf8')) as Expected;
      const checkpoint = await loadCheckpoint(dirSource(join(MODELS, name)));
      const model = await createCpuBackend().load(checkpoint.spec, checkpoint.weights);
      expect(expected.cases.length).toBeGreaterThan(0);
      for (const c of expected.cases) {
        const where = `${name} [${c.routing}${c.interventions ? ' ' + c.interventions : ''}]`;
        const plan = parseRoutingPlan(c.routing, c.interventions);
        const result = await scoreTokens(model, expected.tokens, plan);
        expect(result.logits.length).toBe(expected.tokens.length);
        result.logits.forEach((row, t) => {
          expect(maxAbsDiff(row, c.logits[t]), `${where} logits at position ${t}`).toBeLessThanOrEqual(1e-4);
        });
        compareTrace(result.trace, c, where);

        // The same case, decoded one token at a time through the KV cache, must agree too.
        const cache = model.newCache(expected.tokens.length);
        for (let t = 0; t < expected.tokens.length; t++) {
          const step = await model.forward([expected.tokens[t]], cache, { routing: plan, logits: 'last' });
          expect(
            maxAbsDiff(step.logits[0], c.logits[t]),
            `${where} decode logits at position ${t}`,
          ).toBeLessThanOrEqual(1e-4);
        }
      }
    });
  }
});
