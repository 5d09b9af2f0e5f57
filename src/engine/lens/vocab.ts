// Vocabulary specialisation (OLMoE §5): which input tokens each expert receives most, which tokens
// the model predicts after it, and per token the concentration max_e count(token→e) / count(token)
// (token→e: e among the token's chosen experts, so with top-k the chance level is k/E).

import { checkShape, checkWindow, type LensShape } from './check.ts';
import { expertName, percent, type LensAccumulator, type LensWindow } from './types.ts';

export interface TokenCount {
  token: number;
  count: number;
  /** The token as text, when the caller gave a tokenText function. */
  text?: string;
}

export interface ExpertInput extends TokenCount {
  /** count / the token's occurrences: the share of this token's occurrences routed to the expert. */
  share: number;
}

export interface VocabExpert {
  expert: number;
  /** Tokens routed to this expert, most often first (ties: lower id). */
  inputs: ExpertInput[];
  /** The model's top-1 predictions after tokens routed to this expert, most often first. */
  predicted: TokenCount[];
}

export interface TokenConcentration extends TokenCount {
  /** The expert this token goes to most often (ties: lower index). */
  expert: number;
  /** max_e count(token→e) / count(token). */
  concentration: number;
}

export interface VocabLayer {
  layer: number;
  experts: VocabExpert[];
  /** Every token seen, most frequent first (ties: lower id). */
  tokens: TokenConcentration[];
  /** Occurrence-weighted mean concentration over tokens seen at least minCount times; NaN if none. */
  meanConcentration: number;
  /** The concentration random routing would give: mean chosen experts per token / E. */
  chance: number;
}

export interface VocabLens {
  numExperts: number;
  moeLayers: number[];
  minCount: number;
  layers: VocabLayer[];
  sentence: string;
}

export interface VocabOptions {
  /** How many tokens to list per expert (default 10). */
  top?: number;
  /** Tokens seen fewer times do not enter meanConcentration (default 5): one occurrence is always 100% concentrated. */
  minCount?: number;
  tokenText?: (id: number) => string;
}

/** Sort [token, count] pairs: most frequent first, ties to the lower token id. */
function byCount(map: Map<number, number>): [number, number][] {
  return [...map].sort((a, b) => b[1] - a[1] || a[0] - b[0]);
}

export function createVocabLens(shape: LensShape, options: VocabOptions = {}): LensAccumulator<VocabLens> {
  checkShape(shape);
  const E = shape.numExperts;
  const top = options.top ?? 10;
  const minCount = options.minCount ?? 5;
  const text = options.tokenText;
  const layers = shape.moeLayers.map(() => ({
    inputs: Array.from({ length: E }, () => new Map<number, number>()),
    predicted: Array.from({ length: E }, () => new Map<number, number>()),
    perToken: new Map<number, number[]>(),
    occurrences: new Map<number, number>(),
    chosen: 0,
    routed: 0,
  }));
  const bump = (map: Map<number, number>, key: number) => map.set(key, (map.get(key) ?? 0) + 1);
  const named = <T extends TokenCount>(x: T): T => (text ? { ...x, text: text(x.token) } : x);
  return {
    add(w: LensWindow) {
      checkWindow(w, shape);
      w.trace.layers.forEach((rows, m) => {
        const L = layers[m];
        rows.forEach((r, t) => {
          const token = w.tokens[t];
          bump(L.occurrences, token);
          let row = L.perToken.get(token);
          if (!row) {
            row = new Array<number>(E).fill(0);
            L.perToken.set(token, row);
          }
          for (const e of r.experts) {
            row[e]++;
            bump(L.inputs[e], token);
            if (w.predicted) bump(L.predicted[e], w.predicted[t]);
          }
          L.chosen += r.experts.length;
          L.routed++;
        });
      });
    },
    result() {
      const out: VocabLayer[] = layers.map((L, m) => {
        const experts: VocabExpert[] = L.inputs.map((inputs, e) => ({
          expert: e,
          inputs: byCount(inputs)
            .slice(0, top)
            .map(([token, count]) => named({ token, count, share: count / L.occurrences.get(token)! })),
          predicted: byCount(L.predicted[e])
            .slice(0, top)
            .map(([token, count]) => named({ token, count })),
        }));
        const tokens: TokenConcentration[] = byCount(L.occurrences).map(([token, count]) => {
          const row = L.perToken.get(token)!;
          let best = 0;
          for (let e = 1; e < E; e++) if (row[e] > row[best]) best = e;
          return named({ token, count, expert: best, concentration: row[best] / count });
        });
        let weighted = 0;
        let occurrences = 0;
        for (const t of tokens) {
          if (t.count < minCount) continue;
          weighted += t.concentration * t.count;
          occurrences += t.count;
        }
        return {
          layer: shape.moeLayers[m],
          experts,
          tokens,
          meanConcentration: occurrences > 0 ? weighted / occurrences : NaN,
          chance: L.routed > 0 ? L.chosen / L.routed / E : NaN,
        };
      });
      return {
        numExperts: E,
        moeLayers: [...shape.moeLayers],
        minCount,
        layers: out,
        sentence: vocabSentence(out, minCount),
      };
    },
  };
}

function vocabSentence(layers: VocabLayer[], minCount: number): string {
  const scored = layers.filter((l) => Number.isFinite(l.meanConcentration));
  if (scored.length === 0)
    return `No token was seen ${minCount} times or more, so vocabulary specialisation cannot be read yet.`;
  const best = scored.reduce((a, b) => (b.meanConcentration > a.meanConcentration ? b : a));
  const frequent = best.tokens.find((t) => t.count >= minCount)!;
  const shown = frequent.text !== undefined ? JSON.stringify(frequent.text) : `token ${frequent.token}`;
  return (
    `Tokens are most tied to experts at layer ${best.layer}: a token (seen ≥ ${minCount} times) goes to its usual expert ` +
    `${percent(best.meanConcentration)} of the time (random routing: ${percent(best.chance)}); ` +
    `its most frequent token ${shown} goes to ${expertName(best.layer, frequent.expert)} ${percent(frequent.concentration)} of ${frequent.count} times.`
  );
}

export function vocabSpecialisation(
  windows: Iterable<LensWindow>,
  shape: LensShape,
  options: VocabOptions = {},
): VocabLens {
  const acc = createVocabLens(shape, options);
  for (const w of windows) acc.add(w);
  return acc.result();
}
