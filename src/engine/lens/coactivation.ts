// Co-activation (OLMoE §5): P(b chosen | a chosen) per MoE layer, over every routed token.
// Meaningful when more than one expert is chosen per token (top-k ≥ 2, or a threshold).

import { checkShape, checkWindow, type LensShape } from './check.ts';
import { capitalise } from './domain.ts';
import { expertName, percent, type LensAccumulator, type LensWindow } from './types.ts';

export interface CoactivationPair {
  layer: number;
  layerIndex: number;
  a: number;
  b: number;
  /** P(b chosen | a chosen). */
  probability: number;
  /** How many tokens chose a. */
  support: number;
}

export interface CoactivationLens {
  numExperts: number;
  moeLayers: number[];
  /** chosen[m][e]: tokens that chose e at layer m. */
  chosen: number[][];
  /** together[m][a][b]: tokens that chose both a and b (diagonal = chosen). */
  together: number[][][];
  /** matrix[m][a][b] = together / chosen[m][a] = P(b chosen | a chosen); diagonal 1; a row of 0 when a was never chosen. */
  matrix: number[][][];
  /** What random sets of the same sizes would give off the diagonal: Σ k(k−1) / ((E−1) Σ k). */
  chance: number[];
  /** Mean chosen experts per token, per layer (co-activation needs more than 1). */
  expertsPerToken: number[];
  /** The off-diagonal pair with the largest P(b | a) among experts chosen at least 10 times; null when there is none. */
  top: CoactivationPair | null;
  sentence: string;
}

/** The least number of times `a` must be chosen before its row names a "top" pair. */
const MIN_SUPPORT = 10;

export function createCoactivationLens(shape: LensShape): LensAccumulator<CoactivationLens> {
  checkShape(shape);
  const E = shape.numExperts;
  const M = shape.moeLayers.length;
  const together = Array.from({ length: M }, () => Array.from({ length: E }, () => new Array<number>(E).fill(0)));
  const sizes = Array.from({ length: M }, () => ({ k: 0, kk: 0, tokens: 0 }));
  return {
    add(w: LensWindow) {
      checkWindow(w, shape);
      w.trace.layers.forEach((rows, m) => {
        const c = together[m];
        for (const r of rows) {
          const ex = r.experts;
          for (const a of ex) for (const b of ex) c[a][b]++;
          sizes[m].k += ex.length;
          sizes[m].kk += ex.length * (ex.length - 1);
          sizes[m].tokens++;
        }
      });
    },
    result() {
      const chosen = together.map((c) => c.map((row, a) => row[a]));
      const matrix = together.map((c, m) =>
        c.map((row, a) => row.map((x) => (chosen[m][a] > 0 ? x / chosen[m][a] : 0))),
      );
      const chance = sizes.map((s) => (s.k > 0 && E > 1 ? s.kk / ((E - 1) * s.k) : 0));
      const expertsPerToken = sizes.map((s) => (s.tokens > 0 ? s.k / s.tokens : 0));
      let top: CoactivationPair | null = null;
      matrix.forEach((rows, m) =>
        rows.forEach((row, a) => {
          if (chosen[m][a] < MIN_SUPPORT) return;
          row.forEach((p, b) => {
            if (b !== a && (!top || p > top.probability))
              top = { layer: shape.moeLayers[m], layerIndex: m, a, b, probability: p, support: chosen[m][a] };
          });
        }),
      );
      return {
        numExperts: E,
        moeLayers: [...shape.moeLayers],
        chosen,
        together: together.map((c) => c.map((row) => [...row])),
        matrix,
        chance,
        expertsPerToken,
        top,
        sentence: coactivationSentence(top, chance, expertsPerToken),
      };
    },
  };
}

function coactivationSentence(top: CoactivationPair | null, chance: number[], expertsPerToken: number[]): string {
  if (expertsPerToken.every((k) => k <= 1))
    return 'Every token chose exactly one expert, so no two experts are ever chosen together: use top-k ≥ 2 or a threshold.';
  if (!top) return `No expert was chosen ${MIN_SUPPORT} times or more, so co-activation cannot be read yet.`;
  return capitalise(
    `When ${expertName(top.layer, top.a)} is chosen, expert ${top.b} is chosen with it ${percent(top.probability)} of the time ` +
      `(${top.support} tokens; random sets of the same size: ${percent(chance[top.layerIndex])}).`,
  );
}

export function coactivation(windows: Iterable<LensWindow>, shape: LensShape): CoactivationLens {
  const acc = createCoactivationLens(shape);
  for (const w of windows) acc.add(w);
  return acc.result();
}
