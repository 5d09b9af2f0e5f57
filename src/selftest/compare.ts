// Compares one forward pass with a PyTorch expected.json case (tests/fixtures/README.md): logits within a
// tolerance, router probabilities, and chosen expert sets equal except where the reference has a near-tie.
import type { TokenRouting } from '../engine/types.ts';

export interface ExpectedRouting {
  experts: number[];
  weights: number[];
  probs: number[];
}

export interface ExpectedCase {
  routing: string;
  interventions: string;
  logits: number[][];
  routing_trace: ExpectedRouting[][];
  moe_layers: number[];
}

export interface ExpectedFile {
  tokens: number[];
  cases: ExpectedCase[];
}

/** Two experts whose reference probabilities differ by at most this are a near-tie: either may be chosen. */
export const NEAR_TIE = 1e-5;

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity;
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

export interface RoutingComparison {
  /** Largest |Δ| of the router probabilities. */
  probDiff: number;
  /** Largest |Δ| of the gate weights, where the chosen sets agree. */
  weightDiff: number;
  /** The chosen set differs and the difference is not explained by a near-tie. */
  mismatch: boolean;
  /** The chosen set differs, but only between near-tied experts. */
  nearTie: boolean;
}

export function compareRouting(got: TokenRouting, want: ExpectedRouting): RoutingComparison {
  const probDiff = maxAbsDiff(got.probs, want.probs);
  const g = new Set(got.experts);
  const w = new Set(want.experts);
  const onlyGot = [...g].filter((e) => !w.has(e));
  const onlyWant = [...w].filter((e) => !g.has(e));
  if (onlyGot.length === 0 && onlyWant.length === 0 && got.experts.length === want.experts.length) {
    const sameOrder = got.experts.every((e, i) => e === want.experts[i]);
    return {
      probDiff,
      weightDiff: sameOrder ? maxAbsDiff(got.weights, want.weights) : Infinity,
      mismatch: !sameOrder,
      nearTie: false,
    };
  }
  const explained =
    onlyGot.length === onlyWant.length &&
    onlyGot.every((a) => onlyWant.some((b) => Math.abs(want.probs[a] - want.probs[b]) <= NEAR_TIE));
  return { probDiff, weightDiff: 0, mismatch: !explained, nearTie: explained };
}
