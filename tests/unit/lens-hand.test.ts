// The lenses on a trace small enough to work out on paper: 4 experts, MoE layers 1 and 3, two texts
// ("a": 4 tokens, "b": 2 tokens), top-2 choices written by hand. Every expected value below is
// derived in the comment beside it, not computed by the code under test.

import { describe, expect, it } from 'vitest';
import { countParameters } from '../../src/engine/format/index.ts';
import {
  agreement,
  coactivation,
  createTradeoffPoint,
  disjointChance,
  domainSpecialisation,
  loadBalance,
  locality,
  type LogitWindow,
  tableToCsv,
  vocabTable,
  domainTable,
  tradeoffLens,
  vocabSpecialisation,
} from '../../src/engine/lens/index.ts';
import type { ModelSpec } from '../../src/engine/types.ts';
import { a, b, names, r, shape } from './lensHandTrace.ts';

describe('lenses on a hand-made trace', () => {
  it('domain specialisation', () => {
    const lens = domainSpecialisation([a, b], shape, names);
    // a, layer 1: expert 0 in all 4 tokens, 1 in t0 and t2, 2 in t1, 3 in t3 → 4, 2, 1, 1 of 8 assignments.
    expect(lens.domains[0].assignments[0]).toEqual([4, 2, 1, 1]);
    expect(lens.domains[0].share[0]).toEqual([0.5, 0.25, 0.125, 0.125]);
    expect(lens.domains[0].tokenRate[0]).toEqual([1, 0.5, 0.25, 0.25]);
    // a, layer 3: expert 2 in all 4, expert 3 in t0..t2, expert 1 in t3.
    expect(lens.domains[0].share[1]).toEqual([0, 1 / 8, 4 / 8, 3 / 8]);
    expect(lens.domains[1].share).toEqual([
      [0, 0.5, 0.5, 0],
      [0.5, 0.5, 0, 0],
    ]);
    // pooled layer 1: (4, 2+2, 1+2, 1) of 12.
    expect(lens.pooledShare[0]).toEqual([4 / 12, 4 / 12, 3 / 12, 1 / 12]);
    // layer 1: TV(a) = ½(1/6 + 1/12 + 1/8 + 1/24) = 5/24, TV(b) = ½(1/3 + 1/6 + 1/4 + 1/12) = 10/24 → mean 15/48.
    // layer 3: TV(a) = ½(1/6 + 1/8 + 1/6 + 1/8) = 7/24, TV(b) = ½(1/3 + 1/4 + 1/3 + 1/4) = 14/24 → mean 21/48.
    expect(lens.divergence[0]).toBeCloseTo(15 / 48, 15);
    expect(lens.divergence[1]).toBeCloseTo(21 / 48, 15);
    // a vs b at layer 1: ½(|.5 − 0| + |.25 − .5| + |.125 − .5| + |.125 − 0|) = 0.625; a domain is 0 from itself.
    expect(lens.pairwise[0]).toEqual([
      [0, 0.625],
      [0.625, 0],
    ]);
    // Several cells reach 50% (2× fair share); the first in (domain, layer, expert) order is a / layer 1 / expert 0.
    expect(lens.top).toMatchObject({ layer: 1, expert: 0, domain: 'a', share: 0.5, tokenRate: 1, ratio: 2 });
    expect(lens.sentence).toBe(
      'Expert 0 of layer 1 takes 50% of the a assignments (chosen for 100% of its tokens), 2.0× its fair share of 25.0%; ' +
        "domains differ most at layer 3, where a domain's routing is 44% away from the average (total variation; 0% = no topic specialisation).",
    );
    expect(tableToCsv(domainTable(lens)).split('\r\n')[1]).toBe('1,0,a,4,0.5,1,2');
  });

  it('vocabulary specialisation', () => {
    const lens = vocabSpecialisation([a, b], shape, { minCount: 2 });
    const L1 = lens.layers[0];
    // Token 7 occurs 3 times at layer 1: {0,1}, {0,1}, {1,2} → expert 1 every time.
    expect(L1.tokens).toEqual([
      { token: 7, count: 3, expert: 1, concentration: 1 },
      { token: 5, count: 1, expert: 1, concentration: 1 },
      { token: 8, count: 1, expert: 0, concentration: 1 }, // {0,2}: tie between 0 and 2 → the lower index
      { token: 9, count: 1, expert: 0, concentration: 1 },
    ]);
    // Only token 7 reaches minCount 2; chance = 2 chosen of 4.
    expect(L1.meanConcentration).toBe(1);
    expect(L1.chance).toBe(0.5);
    // Expert 0 at layer 1 gets a's t0..t3 = tokens 7, 8, 7, 9; predictions after them 8, 7, 9, 7.
    expect(L1.experts[0].inputs).toEqual([
      { token: 7, count: 2, share: 2 / 3 },
      { token: 8, count: 1, share: 1 },
      { token: 9, count: 1, share: 1 },
    ]);
    expect(L1.experts[0].predicted).toEqual([
      { token: 7, count: 2 },
      { token: 8, count: 1 },
      { token: 9, count: 1 },
    ]);
    // Expert 1 at layer 1: a t0 (7 → 8), a t2 (7 → 9), b t0 (7 → 5), b t1 (5 → 5).
    expect(L1.experts[1].inputs).toEqual([
      { token: 7, count: 3, share: 1 },
      { token: 5, count: 1, share: 1 },
    ]);
    expect(L1.experts[1].predicted).toEqual([
      { token: 5, count: 2 },
      { token: 8, count: 1 },
      { token: 9, count: 1 },
    ]);
    // Layer 3, token 7: {2,3}, {3,2}, {0,1} → expert 2 (tie with 3, lower index), 2 of 3.
    expect(lens.layers[1].tokens[0]).toEqual({ token: 7, count: 3, expert: 2, concentration: 2 / 3 });
  });

  it('co-activation', () => {
    const lens = coactivation([a, b], shape);
    // Layer 1 sets: {0,1} {0,2} {0,1} {0,3} | {1,2} {1,2} → chosen 4, 4, 3, 1.
    expect(lens.chosen[0]).toEqual([4, 4, 3, 1]);
    expect(lens.matrix[0]).toEqual([
      [1, 2 / 4, 1 / 4, 1 / 4],
      [2 / 4, 1, 2 / 4, 0],
      [1 / 3, 2 / 3, 1, 0],
      [1, 0, 0, 1],
    ]);
    // Σ k(k−1) / ((E−1) Σ k) = 6·2 / (3·12).
    expect(lens.chance[0]).toBeCloseTo(1 / 3, 15);
    expect(lens.expertsPerToken).toEqual([2, 2]);
    expect(lens.top).toBeNull(); // no expert was chosen 10 times
  });

  it('locality', () => {
    const lens = locality([a, b], shape);
    // Layer 1 first choices: a 0,0,1,0 and b 1,1 → pairs (0,0) (0,1) (1,0) | (1,1): 2 of 4 the same.
    // Every pair's sets overlap; random 2-sets of 4 overlap with 1 − C(2,2)/C(4,2) = 5/6.
    // First choices over 6 tokens: expert 0 three times, expert 1 three times → ½² + ½².
    expect(lens.layers[0]).toEqual({
      layer: 1,
      pairs: 4,
      sameFirst: 0.5,
      overlap: 1,
      chanceFirst: 0.25,
      chanceFirstFromLoad: 0.5,
      chanceOverlap: 5 / 6,
    });
    // Layer 3 first choices: a 2,2,3,2 and b 0,0 → (2,2) (2,3) (3,2) | (0,0); load 3/6, 1/6, 2/6.
    expect(lens.layers[1].sameFirst).toBe(0.5);
    expect(lens.layers[1].chanceFirstFromLoad).toBeCloseTo(14 / 36, 15);
    expect(disjointChance(8, 2, 2)).toBeCloseTo(15 / 28, 15); // Mixtral's baseline: 1 − C(6,2)/C(8,2) = 46.4%
    expect(disjointChance(4, 3, 2)).toBe(0);
  });

  it('load balance', () => {
    const lens = loadBalance([a, b], shape);
    const L1 = lens.layers[0];
    // Counts 4, 4, 3, 1 (mean 3): variance (1 + 1 + 0 + 4)/4 = 1.5.
    expect(L1.load).toEqual([4 / 12, 4 / 12, 3 / 12, 1 / 12]);
    expect(L1.cv).toBeCloseTo(Math.sqrt(1.5) / 3, 12);
    expect(L1.maxOverMean).toBeCloseTo(4 / 3, 12);
    // Mean probabilities over 6 tokens: 2.05/6, 1.9/6, 1.15/6, 0.9/6; aux = 4 · Σ f P = 4 · 20.15 / 72.
    expect(L1.meanProb[0]).toBeCloseTo(2.05 / 6, 7);
    expect(L1.meanProb[3]).toBeCloseTo(0.9 / 6, 7);
    expect(L1.auxLoss).toBeCloseTo((4 * 20.15) / 72, 6);
    expect(L1.expertsPerToken).toBe(2);
  });

  it('trade-off point: loss, experts per layer and active share from the parameter count', () => {
    // hidden 4, 4 layers (1 and 3 MoE), 1 head of 4, vocab 10 untied, dense FFN 8, experts of width 2.
    // Attention per layer 2·4 + 16 + 2·16 + 16 = 72. Non-expert = 2·10·4 + 4 + 4·72 + 2·(3·4·8) + 2·(4 experts · 4) = 596.
    // One expert = 3·4·2 = 24; total = 596 + 2·4·24 = 788; two experts per MoE layer: 596 + 2·2·24 = 692.
    const spec = {
      architecture: 'mixtral',
      vocabSize: 10,
      hiddenSize: 4,
      numLayers: 4,
      numHeads: 1,
      numKvHeads: 1,
      headDim: 4,
      intermediateSize: 8,
      rmsNormEps: 1e-5,
      ropeTheta: 1e4,
      maxPositions: 16,
      tieWordEmbeddings: false,
      attentionBias: false,
      qkNorm: 'none',
      dtype: 'F32',
      config: {},
      ropeScaling: null,
      slidingWindow: null,
      embeddingMultiplier: 1,
      attentionScale: 1 / Math.sqrt(4),
      residualMultiplier: 1,
      logitsScaling: 1,
      moe: {
        numExperts: 4,
        topK: 2,
        expertIntermediateSize: 2,
        normTopkProb: true,
        sharedExpertIntermediateSize: 0,
        moeLayers: [false, true, false, true],
      },
    } satisfies ModelSpec;
    const acc = createTradeoffPoint(shape, { kind: 'threshold', t: 1 }, countParameters(spec), names);
    acc.add(a);
    acc.add(b);
    const point = acc.result();
    // −(−1 −2 −3 −0.5) / 4 predictions; a alone 6/3, b alone 0.5/1.
    expect(point).toMatchObject({
      mode: 'threshold:1',
      loss: 1.625,
      lossByDomain: { a: 2, b: 0.5 },
      predictions: 4,
      expertsPerLayer: 2,
      activeParameters: 692,
    });
    expect(point.activeShare).toBeCloseTo(692 / 788, 15);
    const dense = { ...point, mode: 'dense', loss: 1.5, activeShare: 1 };
    const lens = tradeoffLens([point, dense]);
    expect(lens.points[0].deltaLoss).toBeCloseTo(0.125, 15);
    expect(lens.sentence).toBe(
      'Dense loss is 1.500 nats; no sparse mode stays within 0.01 nats of it; the sparsest mode, threshold:1, reads 88% of the parameters for +0.125 nats.',
    );
  });

  it('agreement between two runs', () => {
    // Run B reads b's tokens; layer 1 t1 picks {2,1} (same set, other first choice), layer 3 t0 picks {0,2} (same first, other set).
    const runA: LogitWindow = {
      ...b,
      logits: [
        [0, 0, 0],
        [1, 0, 0],
      ],
    };
    const runB: LogitWindow = {
      ...b,
      trace: {
        ...b.trace,
        layers: [
          [b.trace.layers[0][0], r([2, 1], [0.1, 0.3, 0.5, 0.1])],
          [r([0, 2], [0.5, 0.1, 0.3, 0.1]), b.trace.layers[1][1]],
        ],
      },
      logits: [
        [0, 0, 0],
        [0, 1, 0],
      ],
    };
    const lens = agreement([[runA, runB]], shape);
    expect(lens.layers).toEqual([
      { layer: 1, sameSet: 1, sameFirst: 0.5 },
      { layer: 3, sameSet: 0.5, sameFirst: 1 },
    ]);
    expect(lens.sameSet).toBe(0.75);
    expect(lens.sameFirst).toBe(0.75);
    // Top-1: argmax [0,0,0] = 0 on both sides; then 0 vs 1.
    expect(lens.top1).toBe(0.5);
    // KL(softmax[1,0,0] ‖ softmax[0,1,0]) = e/(e+2)·1 + 1/(e+2)·(−1) = (e−1)/(e+2); the first position adds 0.
    expect(lens.meanKl).toBeCloseTo((Math.E - 1) / (Math.E + 2) / 2, 12);
  });

  it('CSV export quotes token texts with commas, quotes and line breaks (RFC 4180) and leaves NaN empty', () => {
    const lens = vocabSpecialisation([a, b], shape, { top: 1, tokenText: (id) => (id === 7 ? 'x,"y"\n' : `t${id}`) });
    const csv = tableToCsv(vocabTable(lens));
    const lines = csv.split('\r\n');
    expect(lines[0]).toBe('layer,expert,kind,rank,token,text,count,share_of_token');
    // Layer 1, expert 0: input token 7 twice (2 of its 3 occurrences); its top prediction 7, twice.
    expect(lines[1]).toBe('1,0,input,1,7,"x,""y""\n",2,0.6666666666666666');
    expect(lines[2]).toBe('1,0,predicted,1,7,"x,""y""\n",2,');
    expect(tableToCsv({ columns: ['v'], rows: [[Number.NaN], [null]] })).toBe('v\r\n\r\n\r\n');
  });

  it('rejects a window whose trace does not match its tokens or the model', () => {
    expect(() => domainSpecialisation([{ ...a, tokens: [7, 8] }], shape, names)).toThrow(
      /4 routed tokens for a window of 2 tokens/,
    );
    expect(() => locality([a], { numExperts: 4, moeLayers: [0, 1] })).toThrow(
      /covers MoE layers \[1, 3\], not \[0, 1\]/,
    );
    expect(() => coactivation([a], { numExperts: 8, moeLayers: [1, 3] })).toThrow(/4 probabilities/);
  });
});
