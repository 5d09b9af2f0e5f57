// The run layer: sampling, scoring, generation with the KV cache, and the distribution helpers.

import { describe, expect, it } from 'vitest';
import { createCpuBackend, type CpuModel } from '../../src/engine/backends/cpu/index.ts';
import { parseRoutingPlan } from '../../src/engine/routing/index.ts';
import {
  argmax,
  createRng,
  entropy,
  generate,
  klDivergence,
  logSoftmax,
  nucleus,
  RunError,
  sampleToken,
  scoreTokens,
  tokenCrossEntropy,
  type GeneratedToken,
  type ScoreResult,
} from '../../src/engine/run/index.ts';
import { randomModel } from './cpuRandomModel.ts';
import { maxAbsDiff } from '../maxAbsDiff.ts';

const NATIVE = parseRoutingPlan('native');
const PROMPT = [5, 17, 42, 3];

async function model(): Promise<CpuModel> {
  const { spec, weights } = randomModel({ numExperts: 4, seed: 3 });
  return createCpuBackend().load(spec, weights);
}

/** Logits whose softmax is exactly `probs`. */
const logitsOf = (probs: number[]) => new Float32Array(probs.map(Math.log));

function frequencies(draw: () => number, n: number, size: number): number[] {
  const counts = new Array(size).fill(0);
  for (let i = 0; i < n; i++) counts[draw()]++;
  return counts.map((c) => c / n);
}

describe('createRng (xoshiro128** seeded by splitmix32)', () => {
  it('matches an independent Python implementation', () => {
    // First four 32-bit outputs, from a big-integer Python port of the same algorithm.
    const expected: Record<number, number[]> = {
      0: [3809008728, 1133695204, 53579671, 2891528803],
      42: [2837322924, 544945897, 479756282, 3500138142],
    };
    for (const [seed, outputs] of Object.entries(expected)) {
      const rng = createRng(Number(seed));
      expect(outputs.map(() => rng() * 2 ** 32)).toEqual(outputs);
    }
  });

  it('is uniform on [0, 1)', () => {
    const rng = createRng(7);
    const values = Array.from({ length: 20000 }, rng);
    expect(Math.min(...values)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...values)).toBeLessThan(1);
    const mean = values.reduce((a, b) => a + b, 0) / values.length;
    expect(Math.abs(mean - 0.5)).toBeLessThan(0.01);
  });
});

describe('sampleToken', () => {
  const probs = [0.05, 0.5, 0.15, 0.3];
  const logits = logitsOf(probs);

  it('temperature 0 is argmax (ties to the lower index), whatever the rng', () => {
    expect(sampleToken(logits, { temperature: 0, topP: 1 }, createRng(1))).toBe(1);
    expect(sampleToken(new Float32Array([0, 3, 3, 1]), { temperature: 0, topP: 0.5 }, createRng(2))).toBe(1);
    expect(argmax([2, 9, 9])).toBe(1);
  });

  it('the same seed reproduces the same draws; another seed does not', () => {
    const draws = (seed: number) => {
      const rng = createRng(seed);
      return Array.from({ length: 50 }, () => sampleToken(logits, { temperature: 1, topP: 1 }, rng));
    };
    expect(draws(123)).toEqual(draws(123));
    expect(draws(123)).not.toEqual(draws(124));
  });

  it('without a cut, draws follow softmax(logits / T)', () => {
    const rng = createRng(5);
    const f = frequencies(() => sampleToken(logits, { temperature: 1, topP: 1 }, rng), 20000, 4);
    f.forEach((v, i) => expect(Math.abs(v - probs[i])).toBeLessThan(0.015));
    // T = 2 flattens: p_i ∝ sqrt(probs_i)
    const flat = probs.map(Math.sqrt);
    const z = flat.reduce((a, b) => a + b, 0);
    const f2 = frequencies(() => sampleToken(logits, { temperature: 2, topP: 1 }, rng), 20000, 4);
    f2.forEach((v, i) => expect(Math.abs(v - flat[i] / z)).toBeLessThan(0.015));
  });

  it('top-p draws only from the nucleus, renormalised', () => {
    // sorted: 0.5 (id 1), 0.3 (id 3), 0.15, 0.05 → mass reaches 0.75 after two tokens
    const n = nucleus(logits, 1, 0.75);
    expect(n.ids).toEqual([1, 3]);
    n.probs.forEach((p, i) => expect(p).toBeCloseTo([0.625, 0.375][i], 6));
    const rng = createRng(9);
    const f = frequencies(() => sampleToken(logits, { temperature: 1, topP: 0.75 }, rng), 20000, 4);
    expect(f[0]).toBe(0);
    expect(f[2]).toBe(0);
    expect(Math.abs(f[1] - 0.625)).toBeLessThan(0.015);
    // a tiny top-p keeps only the most likely token
    expect(nucleus(logits, 1, 0.01).ids).toEqual([1]);
  });

  it('rejects impossible settings', () => {
    expect(() => sampleToken(logits, { temperature: -1, topP: 1 }, createRng(1))).toThrow(RunError);
    expect(() => sampleToken(logits, { temperature: 1, topP: 0 }, createRng(1))).toThrow(RunError);
    expect(() => sampleToken(logits, { temperature: 1, topP: 1.5 }, createRng(1))).toThrow(RunError);
  });
});

describe('distribution helpers', () => {
  it('logSoftmax, cross-entropy, KL and entropy agree with closed forms', () => {
    const probs = [0.1, 0.2, 0.7];
    const direct = logSoftmax(logitsOf(probs));
    direct.forEach((v, i) => expect(v).toBeCloseTo(Math.log(probs[i]), 6));
    // adding a constant to every logit changes nothing
    const shifted = logSoftmax(logitsOf(probs).map((v) => v + 50));
    shifted.forEach((v, i) => expect(v).toBeCloseTo(direct[i], 5));
    // temperature divides the logits
    const hot = logSoftmax(logitsOf(probs), 2);
    const z = probs.map(Math.sqrt).reduce((a, b) => a + b, 0);
    hot.forEach((v, i) => expect(v).toBeCloseTo(Math.log(Math.sqrt(probs[i]) / z), 6));
    expect(tokenCrossEntropy(logitsOf(probs), 2)).toBeCloseTo(-Math.log(0.7), 6);
    const p = [0.5, 0.5];
    const q = [0.9, 0.1];
    const kl = 0.5 * Math.log(0.5 / 0.9) + 0.5 * Math.log(0.5 / 0.1);
    expect(klDivergence(logitsOf(p), logitsOf(q))).toBeCloseTo(kl, 6);
    expect(klDivergence(logitsOf(q), logitsOf(q))).toBeCloseTo(0, 12);
    expect(entropy([0.25, 0.25, 0.25, 0.25])).toBeCloseTo(Math.log(4), 12);
    expect(entropy([1, 0, 0])).toBe(0);
  });
});

describe('scoreTokens', () => {
  it('returns every position, per-token log-probs and the mean loss', async () => {
    const m = await model();
    const tokens = [...PROMPT, 9, 1];
    const r = await scoreTokens(m, tokens, NATIVE);
    expect(r.logits.length).toBe(tokens.length);
    expect(r.trace.positions).toEqual([0, 1, 2, 3, 4, 5]);
    expect(r.logProbs.length).toBe(tokens.length - 1);
    r.logProbs.forEach((lp, t) => expect(lp).toBeCloseTo(-tokenCrossEntropy(r.logits[t], tokens[t + 1]), 10));
    expect(r.meanLoss).toBeCloseTo(-r.logProbs.reduce((a, b) => a + b, 0) / r.logProbs.length, 10);
    expect(Number.isNaN((await scoreTokens(m, [3], NATIVE)).meanLoss)).toBe(true);
  });

  it('appends to a given cache', async () => {
    const m = await model();
    const whole = await scoreTokens(m, [...PROMPT, 9, 1], NATIVE);
    const cache = m.newCache(6);
    await scoreTokens(m, PROMPT, NATIVE, { cache });
    const rest = await scoreTokens(m, [9, 1], NATIVE, { cache });
    expect(rest.trace.positions).toEqual([4, 5]);
    rest.logits.forEach((row, i) =>
      row.forEach((v, j) => expect(Math.abs(v - whole.logits[4 + i][j])).toBeLessThanOrEqual(1e-5)),
    );
  });
});

describe('generate', () => {
  it('greedy decoding picks the argmax of a full re-score at every step, and traces every token', async () => {
    const m = await model();
    const events: GeneratedToken[] = [];
    const out = await generate(m, PROMPT, { maxTokens: 6, temperature: 0, topP: 1, seed: 0, routing: NATIVE }, (e) => {
      events.push(e);
    });
    expect(out.generated.length).toBe(6);
    expect(out.stopReason).toBe('maxTokens');
    expect(out.tokens).toEqual([...PROMPT, ...out.generated]);
    expect(events.map((e) => e.id)).toEqual(out.generated);
    expect(events.map((e) => e.position)).toEqual([4, 5, 6, 7, 8, 9]);

    const reference = await scoreTokens(m, out.tokens, NATIVE);
    out.generated.forEach((id, i) => expect(id).toBe(argmax(reference.logits[PROMPT.length - 1 + i])));
    expect(out.trace.positions).toEqual(out.tokens.map((_, i) => i));
    expect(out.trace.layers.map((rows) => rows.map((r) => r.experts))).toEqual(
      reference.trace.layers.map((rows) => rows.map((r) => r.experts)),
    );
    events.forEach((e) =>
      e.routing.forEach((r, m) => expect(r.experts).toEqual(reference.trace.layers[m][e.position].experts)),
    );
  });

  it('reports the prompt scoring once, then each token with the logits before and after it', async () => {
    const m = await model();
    const prefills: ScoreResult[] = [];
    const events: GeneratedToken[] = [];
    const out = await generate(
      m,
      PROMPT,
      { maxTokens: 4, temperature: 1, topP: 1, seed: 5, routing: NATIVE, onPrefill: (p) => void prefills.push(p) },
      (e) => void events.push(e),
    );
    const reference = await scoreTokens(m, out.tokens, NATIVE);
    expect(prefills).toHaveLength(1);
    expect(prefills[0].logProbs).toHaveLength(PROMPT.length - 1);
    prefills[0].logits.forEach((row, t) => expect(maxAbsDiff(row, reference.logits[t])).toBeLessThan(1e-5));
    events.forEach((e, i) => {
      expect(maxAbsDiff(e.logits, reference.logits[e.position - 1])).toBeLessThan(1e-5);
      expect(maxAbsDiff(e.nextLogits, reference.logits[e.position])).toBeLessThan(1e-5);
      if (i + 1 < events.length) expect(events[i + 1].logits).toBe(e.nextLogits);
    });
  });

  it('a seed reproduces a sampled continuation exactly', async () => {
    const m = await model();
    const options = { maxTokens: 8, temperature: 1.5, topP: 0.95, seed: 77, routing: NATIVE };
    const a = await generate(m, PROMPT, options);
    const b = await generate(m, PROMPT, options);
    expect(a.generated).toEqual(b.generated);
    const others = await Promise.all([78, 79, 80].map((seed) => generate(m, PROMPT, { ...options, seed })));
    expect(others.some((o) => o.generated.join() !== a.generated.join())).toBe(true);
  });

  it('stops at a stop token, on abort, and when the context is full', async () => {
    const m = await model();
    const greedy = await generate(m, PROMPT, { maxTokens: 5, temperature: 0, topP: 1, seed: 0, routing: NATIVE });
    const stop = greedy.generated[2];
    const stopped = await generate(m, PROMPT, {
      maxTokens: 5,
      temperature: 0,
      topP: 1,
      seed: 0,
      routing: NATIVE,
      stopTokens: [stop],
    });
    expect(stopped.stopReason).toBe('stopToken');
    expect(stopped.generated).toEqual(greedy.generated.slice(0, greedy.generated.indexOf(stop) + 1));

    const controller = new AbortController();
    const aborted = await generate(
      m,
      PROMPT,
      { maxTokens: 5, temperature: 0, topP: 1, seed: 0, routing: NATIVE, signal: controller.signal },
      (e) => {
        if (e.position === PROMPT.length + 1) controller.abort();
      },
    );
    expect(aborted.stopReason).toBe('aborted');
    expect(aborted.generated.length).toBe(2);
    expect(aborted.trace.positions.length).toBe(PROMPT.length + 2);

    const long = Array.from({ length: m.spec.maxPositions - 2 }, (_, i) => i % 60);
    const full = await generate(m, long, { maxTokens: 10, temperature: 0, topP: 1, seed: 0, routing: NATIVE });
    expect(full.stopReason).toBe('contextFull');
    expect(full.generated.length).toBe(2);
  });

  it('explains requests it cannot serve', async () => {
    const m = await model();
    const base = { maxTokens: 2, temperature: 0, topP: 1, seed: 0, routing: NATIVE };
    await expect(generate(m, [], base)).rejects.toThrow(RunError);
    await expect(generate(m, new Array(m.spec.maxPositions).fill(1), base)).rejects.toThrow(/at most 128/);
  });
});
