// Load balance per MoE layer: how evenly the (token, chosen expert) assignments spread over the
// experts, and the Switch Transformer auxiliary loss E · Σ_i f_i · P_i.

import { checkShape, checkWindow, type LensShape } from './check.ts';
import { expertName, percent, type LensAccumulator, type LensWindow } from './types.ts';

export interface LoadLayer {
  layer: number;
  tokens: number;
  /** f_i: share of the (token, chosen expert) assignments going to expert i (sums to 1; balanced = 1/E). */
  load: number[];
  /** P_i: mean router probability of expert i over the tokens. */
  meanProb: number[];
  /** Standard deviation / mean of the per-expert assignment counts (population std; 0 = perfectly even). */
  cv: number;
  /** Largest per-expert assignment count / the mean count (1 = perfectly even, E = one expert takes all). */
  maxOverMean: number;
  /**
   * E · Σ_i f_i · P_i, with f summing to 1 (Switch's top-1 definition, generalised): 1 when balanced.
   * Hugging Face's Mixtral loss counts f per chosen slot (f sums to k), which is k times this.
   */
  auxLoss: number;
  expertsPerToken: number;
}

export interface LoadLens {
  numExperts: number;
  moeLayers: number[];
  layers: LoadLayer[];
  sentence: string;
}

export function createLoadLens(shape: LensShape): LensAccumulator<LoadLens> {
  checkShape(shape);
  const E = shape.numExperts;
  const layers = shape.moeLayers.map(() => ({
    counts: new Array<number>(E).fill(0),
    probs: new Float64Array(E),
    tokens: 0,
  }));
  return {
    add(w: LensWindow) {
      checkWindow(w, shape);
      w.trace.layers.forEach((rows, m) => {
        const L = layers[m];
        for (const r of rows) {
          for (const e of r.experts) L.counts[e]++;
          for (let e = 0; e < E; e++) L.probs[e] += r.probs[e];
          L.tokens++;
        }
      });
    },
    result() {
      const out: LoadLayer[] = layers.map((L, m) => {
        const total = L.counts.reduce((a, b) => a + b, 0);
        const mean = total / E;
        const variance = L.counts.reduce((a, c) => a + (c - mean) ** 2, 0) / E;
        const load = L.counts.map((c) => (total > 0 ? c / total : 0));
        const meanProb = Array.from(L.probs, (p) => (L.tokens > 0 ? p / L.tokens : 0));
        return {
          layer: shape.moeLayers[m],
          tokens: L.tokens,
          load,
          meanProb,
          cv: mean > 0 ? Math.sqrt(variance) / mean : NaN,
          maxOverMean: mean > 0 ? Math.max(...L.counts) / mean : NaN,
          auxLoss: E * load.reduce((a, f, i) => a + f * meanProb[i], 0),
          expertsPerToken: L.tokens > 0 ? total / L.tokens : 0,
        };
      });
      return { numExperts: E, moeLayers: [...shape.moeLayers], layers: out, sentence: loadSentence(out, E) };
    },
  };
}

function loadSentence(layers: LoadLayer[], E: number): string {
  const counted = layers.filter((l) => l.tokens > 0);
  if (counted.length === 0) return 'No tokens were routed, so load balance cannot be read yet.';
  const worst = counted.reduce((a, b) => (b.maxOverMean > a.maxOverMean ? b : a));
  const busiest = worst.load.indexOf(Math.max(...worst.load));
  return (
    `Load is least even at layer ${worst.layer}: ${expertName(worst.layer, busiest)} takes ${percent(worst.load[busiest])} of the assignments ` +
    `(${worst.maxOverMean.toFixed(2)}× the mean; fair share ${percent(1 / E, 1)}), coefficient of variation ${worst.cv.toFixed(2)}, ` +
    `Switch auxiliary loss ${worst.auxLoss.toFixed(3)} (1 = balanced).`
  );
}

export function loadBalance(windows: Iterable<LensWindow>, shape: LensShape): LoadLens {
  const acc = createLoadLens(shape);
  for (const w of windows) acc.add(w);
  return acc.result();
}
