// Numbers the views show, derived from the engine's RoutingTrace and scores. Pure functions.
import type { RoutingTrace } from '../engine/types.ts';

export interface ParameterFacts {
  parametersTotal: number;
  parametersNonExpert: number;
  parametersPerExpert: number;
  moeLayers: number[];
}

/** Mean number of experts a token visited per MoE layer, measured over the trace. */
export function meanExpertsPerLayer(trace: RoutingTrace): number {
  let chosen = 0;
  let cells = 0;
  for (const rows of trace.layers) {
    for (const routing of rows) {
      chosen += routing.experts.length;
      cells++;
    }
  }
  return cells > 0 ? chosen / cells : 0;
}

/** Share of the model's parameters a token actually used, with the measured mean experts per layer. */
export function activeShare(model: ParameterFacts, trace: RoutingTrace): number {
  if (model.parametersTotal <= 0) return 0;
  if (model.moeLayers.length === 0) return 1;
  const active =
    model.parametersNonExpert + model.moeLayers.length * meanExpertsPerLayer(trace) * model.parametersPerExpert;
  return active / model.parametersTotal;
}

/** Share of routing assignments each expert received in MoE layer m (sums to 1); uniform is 1/E. */
export function expertLoad(trace: RoutingTrace, m: number, numExperts: number): number[] {
  const counts = new Array<number>(numExperts).fill(0);
  let total = 0;
  for (const routing of trace.layers[m] ?? []) {
    for (const e of routing.experts) {
      counts[e]++;
      total++;
    }
  }
  return counts.map((c) => (total > 0 ? c / total : 0));
}

/** Mean of −log p over the scored tokens (nulls skipped); NaN when none. */
export function meanLoss(logProbs: readonly (number | null)[]): number {
  let sum = 0;
  let n = 0;
  for (const lp of logProbs) {
    if (lp === null) continue;
    sum -= lp;
    n++;
  }
  return n > 0 ? sum / n : NaN;
}

/** Mean of the non-null values; NaN when none. */
export function mean(values: readonly (number | null)[] | null): number {
  if (!values) return NaN;
  const kept = values.filter((v): v is number => v !== null && Number.isFinite(v));
  return kept.length > 0 ? kept.reduce((a, b) => a + b, 0) / kept.length : NaN;
}

/** Router entropy (nats) of a probability vector. */
export function entropy(probs: ArrayLike<number>): number {
  let h = 0;
  for (let i = 0; i < probs.length; i++) if (probs[i] > 0) h -= probs[i] * Math.log(probs[i]);
  return h;
}
