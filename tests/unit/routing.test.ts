// The routing contract (docs/routing.md) against hand-computed cases.

import { describe, expect, it } from 'vitest';
import {
  formatInterventions,
  formatRoutingMode,
  parseInterventions,
  parseRoutingMode,
  routeToken,
  RoutingModeError,
  validateRoutingPlan,
} from '../../src/engine/routing/index.ts';
import type { ModelSpec, MoeSpec, RoutingMode, RoutingPlan } from '../../src/engine/types.ts';

const moe = (over: Partial<MoeSpec> = {}): MoeSpec => ({
  numExperts: 4,
  topK: 2,
  expertIntermediateSize: 8,
  normTopkProb: true,
  sharedExpertIntermediateSize: 0,
  moeLayers: [true, true],
  ...over,
});

/** Logits whose softmax is exactly proportional to the given positive weights. */
const logitsFor = (weights: number[]) => new Float32Array(weights.map(Math.log));
const plan = (mode: string, iv = ''): RoutingPlan => ({
  mode: parseRoutingMode(mode),
  interventions: parseInterventions(iv),
});
const close = (actual: number[], expected: number[]) => {
  expect(actual.length).toBe(expected.length);
  actual.forEach((v, i) => expect(v).toBeCloseTo(expected[i], 6));
};

// p = [0.1, 0.4, 0.2, 0.3]
const P = [0.1, 0.4, 0.2, 0.3];

describe('parseRoutingMode / formatRoutingMode', () => {
  it('parses every mode and round-trips', () => {
    const cases: [string, RoutingMode][] = [
      ['native', { kind: 'native' }],
      ['dense', { kind: 'dense' }],
      ['topk:2', { kind: 'topk', k: 2 }],
      ['threshold:1.5', { kind: 'threshold', t: 1.5 }],
      ['threshold:0', { kind: 'threshold', t: 0 }],
    ];
    for (const [s, m] of cases) {
      expect(parseRoutingMode(s)).toEqual(m);
      expect(formatRoutingMode(m)).toBe(s);
    }
    expect(parseRoutingMode(' TopK:3 ')).toEqual({ kind: 'topk', k: 3 });
  });

  it('rejects bad strings with a RoutingModeError that has a hint', () => {
    for (const s of [
      'topk:0',
      'topk:abc',
      'topk:1.5',
      'topk:',
      'topk',
      'threshold:-1',
      'threshold:x',
      'threshold:',
      'sparse',
      '',
    ]) {
      let error: unknown;
      try {
        parseRoutingMode(s);
      } catch (e) {
        error = e;
      }
      expect(error, s).toBeInstanceOf(RoutingModeError);
      expect((error as RoutingModeError).hint.length).toBeGreaterThan(0);
    }
  });
});

describe('parseInterventions / formatInterventions', () => {
  it('parses ablate and force and round-trips', () => {
    const ivs = parseInterventions('L1E3-, L0E2+');
    expect(ivs).toEqual([
      { layer: 1, expert: 3, action: 'ablate' },
      { layer: 0, expert: 2, action: 'force' },
    ]);
    expect(formatInterventions(ivs)).toBe('L1E3-,L0E2+');
    expect(parseInterventions('')).toEqual([]);
  });

  it('rejects malformed interventions', () => {
    for (const s of ['L1E3', 'E3-', 'L1-', 'L-1E2+', 'LxE2+', 'L1E2*']) {
      expect(() => parseInterventions(s), s).toThrow(RoutingModeError);
    }
  });
});

describe('validateRoutingPlan', () => {
  const spec = { architecture: 'mixtral', numLayers: 2, moe: moe({ numExperts: 8 }) } as ModelSpec;
  it('names the model size when K is too large', () => {
    expect(() => validateRoutingPlan(plan('topk:9'), spec)).toThrow('topk:9 asks for 9 experts but the model has 8');
    expect(() => validateRoutingPlan(plan('topk:8'), spec)).not.toThrow();
  });
  it('rejects interventions outside the model or contradicting each other', () => {
    expect(() => validateRoutingPlan(plan('native', 'L2E0-'), spec)).toThrow(/layer 2/);
    expect(() => validateRoutingPlan(plan('native', 'L0E8-'), spec)).toThrow(/expert 8/);
    expect(() => validateRoutingPlan(plan('native', 'L0E1-,L0E1+'), spec)).toThrow(/both ablated and forced/);
    const all = Array.from({ length: 8 }, (_, e) => `L1E${e}-`).join(',');
    expect(() => validateRoutingPlan(plan('native', all), spec)).toThrow(/every expert of layer 1/i);
    const mixed = { ...spec, moe: moe({ numExperts: 8, moeLayers: [true, false] }) } as ModelSpec;
    expect(() => validateRoutingPlan(plan('native', 'L1E0+'), mixed)).toThrow(/no router/);
  });
  it('refuses interventions on a dense model but accepts any mode', () => {
    const dense = { architecture: 'llama', numLayers: 2, moe: null } as ModelSpec;
    expect(() => validateRoutingPlan(plan('topk:3'), dense)).not.toThrow();
    expect(() => validateRoutingPlan(plan('native', 'L0E0-'), dense)).toThrow(/dense/);
  });
});

describe('routeToken', () => {
  it('computes softmax probabilities over all experts', () => {
    const r = routeToken(new Float32Array([0, Math.log(2), 0, 0]), 0, moe(), plan('dense'));
    close([...r.probs], [0.2, 0.4, 0.2, 0.2]);
  });

  it('native = top-k of num_experts_per_tok, renormalised, ordered by descending p', () => {
    const r = routeToken(logitsFor(P), 0, moe(), plan('native'));
    expect(r.experts).toEqual([1, 3]);
    close(r.weights, [0.4 / 0.7, 0.3 / 0.7]);
  });

  it('topk without renormalisation keeps raw probabilities', () => {
    const r = routeToken(logitsFor(P), 0, moe({ normTopkProb: false }), plan('topk:3'));
    expect(r.experts).toEqual([1, 3, 2]);
    close(r.weights, [0.4, 0.3, 0.2]);
  });

  it('topk:1 renormalised gives weight 1', () => {
    const r = routeToken(logitsFor(P), 0, moe(), plan('topk:1'));
    expect(r.experts).toEqual([1]);
    close(r.weights, [1]);
  });

  it('breaks ties towards the lower index', () => {
    const r = routeToken(new Float32Array([1, 2, 2, 2]), 0, moe(), plan('topk:2'));
    expect(r.experts).toEqual([1, 2]);
    close(r.weights, [0.5, 0.5]);
    const all = routeToken(new Float32Array([0, 0, 0, 0]), 0, moe(), plan('dense'));
    expect(all.experts).toEqual([0, 1, 2, 3]);
  });

  it('dense uses every expert with raw p, even when the model renormalises', () => {
    const r = routeToken(logitsFor(P), 0, moe(), plan('dense'));
    expect(r.experts).toEqual([1, 3, 2, 0]);
    close(r.weights, [0.4, 0.3, 0.2, 0.1]);
  });

  it('threshold keeps every expert with E·p > T', () => {
    // E·p = [0.4, 1.6, 0.8, 1.2]
    const r = routeToken(logitsFor(P), 0, moe({ normTopkProb: false }), plan('threshold:0.7'));
    expect(r.experts).toEqual([1, 3, 2]);
    close(r.weights, [0.4, 0.3, 0.2]);
    const renorm = routeToken(logitsFor(P), 0, moe(), plan('threshold:1.0'));
    expect(renorm.experts).toEqual([1, 3]);
    close(renorm.weights, [0.4 / 0.7, 0.3 / 0.7]);
  });

  it('threshold never routes to fewer than one expert (the argmax)', () => {
    const r = routeToken(logitsFor(P), 0, moe({ normTopkProb: false }), plan('threshold:3'));
    expect(r.experts).toEqual([1]);
    close(r.weights, [0.4]);
  });

  it('ablation sets the logit to -inf before the softmax; the rest renormalise', () => {
    const r = routeToken(logitsFor(P), 1, moe(), plan('native', 'L1E1-'));
    close([...r.probs], [1 / 6, 0, 2 / 6, 3 / 6]);
    expect(r.experts).toEqual([3, 2]);
    close(r.weights, [0.6, 0.4]);
    // the intervention names layer 1: layer 0 is untouched
    expect(routeToken(logitsFor(P), 0, moe(), plan('native', 'L1E1-')).experts).toEqual([1, 3]);
  });

  it('forced experts take top-k slots first, the rest go to the largest p', () => {
    const r = routeToken(logitsFor(P), 0, moe(), plan('topk:2', 'L0E0+'));
    expect(r.experts).toEqual([1, 0]);
    close(r.weights, [0.4 / 0.5, 0.1 / 0.5]);
    // more forced experts than K: all forced ones, no others
    const over = routeToken(logitsFor(P), 0, moe(), plan('topk:1', 'L0E0+,L0E2+'));
    expect(over.experts).toEqual([2, 0]);
    close(over.weights, [2 / 3, 1 / 3]);
  });

  it('forced experts are added to the threshold set; dense is unchanged by forcing', () => {
    const r = routeToken(logitsFor(P), 0, moe({ normTopkProb: false }), plan('threshold:1.5', 'L0E0+'));
    expect(r.experts).toEqual([1, 0]);
    close(r.weights, [0.4, 0.1]);
    const d = routeToken(logitsFor(P), 0, moe(), plan('dense', 'L0E0+'));
    close(d.weights, [0.4, 0.3, 0.2, 0.1]);
  });

  it('an ablated expert is never chosen: with fewer live experts than k, the live ones are chosen', () => {
    // P = [0.1, 0.4, 0.2, 0.3]; ablating expert 1 leaves p ∝ [0.1, 0, 0.2, 0.3] = [1/6, 0, 2/6, 3/6].
    const r = routeToken(logitsFor(P), 0, moe(), plan('topk:4', 'L0E1-'));
    expect(r.experts).toEqual([3, 2, 0]);
    close(r.weights, [0.5, 2 / 6, 1 / 6]);
    const two = routeToken(logitsFor(P), 0, moe(), plan('topk:3', 'L0E1-,L0E3-'));
    expect(two.experts).toEqual([2, 0]);
    close(two.weights, [2 / 3, 1 / 3]);
    // Dense runs the live experts only, with their probabilities.
    const d = routeToken(logitsFor(P), 0, moe(), plan('dense', 'L0E1-'));
    expect(d.experts).toEqual([3, 2, 0]);
    close(d.weights, [0.5, 2 / 6, 1 / 6]);
  });

  it("ablation 'zero-weight' (the PyTorch reference, literally): an ablated expert fills a leftover top-k slot and stays in dense, weight 0", () => {
    const literal = (mode: string, iv: string): RoutingPlan => ({ ...plan(mode, iv), ablation: 'zero-weight' });
    const r = routeToken(logitsFor(P), 0, moe(), literal('topk:4', 'L0E1-'));
    expect(r.experts).toEqual([3, 2, 0, 1]);
    close(r.weights, [0.5, 2 / 6, 1 / 6, 0]);
    const d = routeToken(logitsFor(P), 0, moe(), literal('dense', 'L0E1-'));
    expect(d.experts).toEqual([3, 2, 0, 1]);
    close(d.weights, [0.5, 2 / 6, 1 / 6, 0]);
    // With enough live experts both rules agree.
    expect(routeToken(logitsFor(P), 0, moe(), literal('topk:2', 'L0E1-')).experts).toEqual(
      routeToken(logitsFor(P), 0, moe(), plan('topk:2', 'L0E1-')).experts,
    );
  });
});
