// The lenses' shared vocabulary: what every lens reads (a scored window of a text) and how the
// results name a (layer, expert) pair. Plain data only.

import type { RoutingTrace } from '../types.ts';

/**
 * One scored sequence of one text: the unit every lens reads. A text longer than the model's context
 * is scored in several windows; statistics over adjacent tokens (locality) never cross a window edge.
 */
export interface LensWindow {
  /** Index of the text (domain) in the analysis' list of names. */
  domain: number;
  /** Token ids of the window, in order. */
  tokens: readonly number[];
  /** Routing of every token: trace.layers[m][t] is MoE layer m, token t (t aligned with `tokens`). */
  trace: RoutingTrace;
  /** The model's top-1 next-token prediction after each token (argmax of its logits); length tokens.length. */
  predicted?: ArrayLike<number>;
  /** logProbs[t] = log p(tokens[t+1] | tokens[..t]); length tokens.length − 1. */
  logProbs?: readonly number[];
}

/** A window with its next-token logits, for comparing two runs on the same tokens. */
export interface LogitWindow extends LensWindow {
  logits: readonly ArrayLike<number>[];
}

/** Something that reads windows one at a time (so a worker can report progress between them). */
export interface LensAccumulator<R> {
  add(window: LensWindow): void;
  result(): R;
}

/** Names a figure's subject the way people say it: "expert 5 of layer 2" (absolute layer index). */
export function expertName(layer: number, expert: number): string {
  return `expert ${expert} of layer ${layer}`;
}

export function percent(x: number, digits = 0): string {
  return `${(100 * x).toFixed(digits)}%`;
}
