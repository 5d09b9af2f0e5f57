// Locality (Mixtral §5): how often adjacent tokens of a text keep the same first-choice expert
// (the highest-probability one), and how often their chosen sets overlap, against what random
// routing would give. Pairs never cross a window edge: the second token of such a pair was routed
// without the first in its context.

import { checkShape, checkWindow, type LensShape } from './check.ts';
import { percent, type LensAccumulator, type LensWindow } from './types.ts';

export interface LocalityLayer {
  layer: number;
  /** Adjacent token pairs counted. */
  pairs: number;
  /** Share of pairs whose first-choice expert is the same. */
  sameFirst: number;
  /** Share of pairs whose chosen sets share at least one expert. */
  overlap: number;
  /** Random first choices, uniform over experts: 1/E. */
  chanceFirst: number;
  /** Random first choices drawn from this layer's own first-choice frequencies f: Σ f². */
  chanceFirstFromLoad: number;
  /** Random chosen sets of the same sizes: mean over pairs of 1 − C(E−k₁, k₂) / C(E, k₂) (top-k: 1 − C(E−k,k)/C(E,k)). */
  chanceOverlap: number;
}

export interface LocalityLens {
  numExperts: number;
  moeLayers: number[];
  layers: LocalityLayer[];
  sentence: string;
}

/** C(E−k₁, k₂) / C(E, k₂): the chance that a random k₂-set misses a given k₁-set. */
export function disjointChance(E: number, k1: number, k2: number): number {
  let p = 1;
  for (let i = 0; i < k2; i++) {
    if (E - k1 - i <= 0) return 0;
    p *= (E - k1 - i) / (E - i);
  }
  return p;
}

export function createLocalityLens(shape: LensShape): LensAccumulator<LocalityLens> {
  checkShape(shape);
  const E = shape.numExperts;
  const layers = shape.moeLayers.map(() => ({
    pairs: 0,
    same: 0,
    overlap: 0,
    chanceOverlap: 0,
    first: new Array<number>(E).fill(0),
    tokens: 0,
  }));
  return {
    add(w: LensWindow) {
      checkWindow(w, shape);
      w.trace.layers.forEach((rows, m) => {
        const L = layers[m];
        rows.forEach((r, t) => {
          L.first[r.experts[0]]++;
          L.tokens++;
          if (t === 0) return;
          const prev = rows[t - 1];
          L.pairs++;
          if (prev.experts[0] === r.experts[0]) L.same++;
          if (r.experts.some((e) => prev.experts.includes(e))) L.overlap++;
          L.chanceOverlap += 1 - disjointChance(E, prev.experts.length, r.experts.length);
        });
      });
    },
    result() {
      const out: LocalityLayer[] = layers.map((L, m) => ({
        layer: shape.moeLayers[m],
        pairs: L.pairs,
        sameFirst: L.pairs > 0 ? L.same / L.pairs : NaN,
        overlap: L.pairs > 0 ? L.overlap / L.pairs : NaN,
        chanceFirst: 1 / E,
        chanceFirstFromLoad: L.tokens > 0 ? L.first.reduce((a, c) => a + (c / L.tokens) ** 2, 0) : NaN,
        chanceOverlap: L.pairs > 0 ? L.chanceOverlap / L.pairs : NaN,
      }));
      return { numExperts: E, moeLayers: [...shape.moeLayers], layers: out, sentence: localitySentence(out) };
    },
  };
}

function localitySentence(layers: LocalityLayer[]): string {
  const counted = layers.filter((l) => l.pairs > 0);
  if (counted.length === 0) return 'No text has two tokens in a row, so locality cannot be read yet.';
  const best = counted.reduce((a, b) => (b.sameFirst > a.sameFirst ? b : a));
  const worst = counted.reduce((a, b) => (b.sameFirst < a.sameFirst ? b : a));
  const range =
    best === worst
      ? `at layer ${best.layer}`
      : `from ${percent(worst.sameFirst)} at layer ${worst.layer} to ${percent(best.sameFirst)} at layer ${best.layer}`;
  return (
    `Consecutive tokens keep their first-choice expert ${best === worst ? percent(best.sameFirst) + ' of the time ' : ''}${range}, ` +
    `against ${percent(best.chanceFirst, 1)} by chance (${percent(best.chanceFirstFromLoad)} given that layer's load); ` +
    `their chosen sets overlap ${percent(best.overlap)} of the time there (random sets: ${percent(best.chanceOverlap)}).`
  );
}

export function locality(windows: Iterable<LensWindow>, shape: LensShape): LocalityLens {
  const acc = createLocalityLens(shape);
  for (const w of windows) acc.add(w);
  return acc.result();
}
