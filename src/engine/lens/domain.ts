// Domain specialisation (Mixtral §5, OLMoE §5): for each MoE layer and each text (domain), the
// share of the (token, chosen expert) assignments every expert receives, against the fair share 1/E.

import { checkShape, checkWindow, type LensShape } from './check.ts';
import { expertName, percent, type LensAccumulator, type LensWindow } from './types.ts';

export interface DomainRow {
  name: string;
  /** Tokens of this domain that were routed (every analysed token). */
  tokens: number;
  /** assignments[m][e]: (token, chosen expert) pairs with expert e at MoE layer m. */
  assignments: number[][];
  /** share[m][e] = assignments[m][e] / Σ_e assignments[m][e]; sums to 1 per layer; fair share 1/E. */
  share: number[][];
  /** tokenRate[m][e] = assignments[m][e] / tokens: how often expert e is among a token's chosen experts. */
  tokenRate: number[][];
}

export interface DomainSpecialist {
  /** Absolute layer index and its position m in moeLayers. */
  layer: number;
  layerIndex: number;
  expert: number;
  domain: string;
  share: number;
  tokenRate: number;
  /** share × E: how many times its fair share. */
  ratio: number;
}

export interface DomainLens {
  numExperts: number;
  moeLayers: number[];
  domains: DomainRow[];
  /** pooledShare[m][e]: the same share over every domain's tokens together. */
  pooledShare: number[][];
  /**
   * divergence[m]: mean over domains of the total-variation distance ½Σ_e |share_d − pooled| at layer m.
   * 0 when every domain is routed alike (no topic specialisation); 1 when domains use disjoint experts.
   */
  divergence: number[];
  /** pairwise[m][d1][d2]: total-variation distance between two domains' shares at layer m (0 = routed alike). */
  pairwise: number[][][];
  /** The (layer, expert, domain) with the largest share × E; null when nothing was routed. */
  top: DomainSpecialist | null;
  sentence: string;
}

export function createDomainLens(shape: LensShape, domainNames: readonly string[]): LensAccumulator<DomainLens> {
  checkShape(shape);
  const E = shape.numExperts;
  const M = shape.moeLayers.length;
  const counts = domainNames.map(() => Array.from({ length: M }, () => new Array<number>(E).fill(0)));
  const tokens = domainNames.map(() => 0);
  return {
    add(w: LensWindow) {
      checkWindow(w, shape, domainNames.length);
      tokens[w.domain] += w.tokens.length;
      w.trace.layers.forEach((rows, m) => {
        const c = counts[w.domain][m];
        for (const r of rows) for (const e of r.experts) c[e]++;
      });
    },
    result() {
      const share = (row: number[]) => {
        const total = row.reduce((a, b) => a + b, 0);
        return row.map((c) => (total > 0 ? c / total : 0));
      };
      const domains: DomainRow[] = domainNames.map((name, d) => ({
        name,
        tokens: tokens[d],
        assignments: counts[d].map((row) => [...row]),
        share: counts[d].map(share),
        tokenRate: counts[d].map((row) => row.map((c) => (tokens[d] > 0 ? c / tokens[d] : 0))),
      }));
      const pooledShare = shape.moeLayers.map((_, m) =>
        share(Array.from({ length: E }, (_, e) => counts.reduce((a, dc) => a + dc[m][e], 0))),
      );
      const used = domains.filter((d) => d.tokens > 0);
      const divergence = pooledShare.map((pooled, m) =>
        used.length === 0
          ? 0
          : used.reduce((a, d) => a + 0.5 * d.share[m].reduce((s, x, e) => s + Math.abs(x - pooled[e]), 0), 0) /
            used.length,
      );
      const tv = (x: number[], y: number[]) => 0.5 * x.reduce((s, v, e) => s + Math.abs(v - y[e]), 0);
      const pairwise = shape.moeLayers.map((_, m) =>
        domains.map((d1) => domains.map((d2) => tv(d1.share[m], d2.share[m]))),
      );
      let top: DomainSpecialist | null = null;
      for (const d of used)
        d.share.forEach((row, m) =>
          row.forEach((x, e) => {
            if (!top || x > top.share) {
              top = {
                layer: shape.moeLayers[m],
                layerIndex: m,
                expert: e,
                domain: d.name,
                share: x,
                tokenRate: d.tokenRate[m][e],
                ratio: x * E,
              };
            }
          }),
        );
      return {
        numExperts: E,
        moeLayers: [...shape.moeLayers],
        domains,
        pooledShare,
        divergence,
        pairwise,
        top,
        sentence: domainSentence(top, divergence, shape.moeLayers, E, used.length),
      };
    },
  };
}

function domainSentence(
  top: DomainSpecialist | null,
  divergence: number[],
  moeLayers: readonly number[],
  E: number,
  domains: number,
): string {
  if (!top) return 'No tokens were routed, so there is nothing to read yet.';
  const lead =
    `${capitalise(expertName(top.layer, top.expert))} takes ${percent(top.share)} of the ${top.domain} assignments ` +
    `(chosen for ${percent(top.tokenRate)} of its tokens), ${top.ratio.toFixed(1)}× its fair share of ${percent(1 / E, 1)}`;
  if (domains < 2) return `${lead}.`;
  const m = divergence.indexOf(Math.max(...divergence));
  return `${lead}; domains differ most at layer ${moeLayers[m]}, where a domain's routing is ${percent(divergence[m])} away from the average (total variation; 0% = no topic specialisation).`;
}

export function capitalise(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

export function domainSpecialisation(
  windows: Iterable<LensWindow>,
  shape: LensShape,
  domainNames: readonly string[],
): DomainLens {
  const acc = createDomainLens(shape, domainNames);
  for (const w of windows) acc.add(w);
  return acc.result();
}
