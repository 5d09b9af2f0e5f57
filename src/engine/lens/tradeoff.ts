// The sparsity trade-off (DS-MoE's picture): mean next-token loss against the share of parameters a
// token reads, one point per routing mode (top-k 1…E−1, a range of thresholds, dense), dense marked.

import type { ParameterCount } from '../format/params.ts';
import { formatRoutingMode } from '../routing/index.ts';
import type { ModelSpec, RoutingMode } from '../types.ts';
import { checkShape, checkWindow, type LensShape } from './check.ts';
import { percent, type LensAccumulator, type LensWindow } from './types.ts';

export interface TradeoffPoint {
  mode: string;
  /** Parameters read per token / all parameters (countParameters().activeFor with the measured experts per layer). */
  activeShare: number;
  activeParameters: number;
  /** Mean chosen experts per token and MoE layer. */
  expertsPerLayer: number;
  /** Mean next-token loss (nats) over every prediction of every text. */
  loss: number;
  /** loss − the dense loss; null when dense was not measured. */
  deltaLoss: number | null;
  lossByDomain: Record<string, number>;
  /** Predictions counted (tokens with a next token in their window). */
  predictions: number;
}

export interface TradeoffLens {
  points: TradeoffPoint[];
  /** The dense point (every expert, activeShare 1), or null when it was not in the sweep. */
  dense: TradeoffPoint | null;
  sentence: string;
}

/** The thresholds swept by default: E·p > T, from "almost every expert" to "only clear favourites". */
export const DEFAULT_THRESHOLDS = [0.25, 0.5, 0.75, 1, 1.5, 2];

/** topk:1 … topk:E−1, the default thresholds, then dense (topk:E computes the same as dense). */
export function defaultTradeoffModes(
  spec: ModelSpec,
  thresholds: readonly number[] = DEFAULT_THRESHOLDS,
): RoutingMode[] {
  if (!spec.moe) return [];
  const modes: RoutingMode[] = [];
  for (let k = 1; k < spec.moe.numExperts; k++) modes.push({ kind: 'topk', k });
  for (const t of thresholds) modes.push({ kind: 'threshold', t });
  modes.push({ kind: 'dense' });
  return modes;
}

/** Reads the windows of one routing mode and gives its point (deltaLoss filled in by tradeoffLens). */
export function createTradeoffPoint(
  shape: LensShape,
  mode: RoutingMode,
  counts: ParameterCount,
  domainNames: readonly string[],
): LensAccumulator<TradeoffPoint> {
  checkShape(shape);
  let chosen = 0;
  let routed = 0;
  const lossSum = domainNames.map(() => 0);
  const predictions = domainNames.map(() => 0);
  return {
    add(w: LensWindow) {
      checkWindow(w, shape, domainNames.length);
      if (!w.logProbs) throw new Error('createTradeoffPoint: the window has no logProbs');
      for (const rows of w.trace.layers)
        for (const r of rows) {
          chosen += r.experts.length;
          routed++;
        }
      for (const lp of w.logProbs) lossSum[w.domain] -= lp;
      predictions[w.domain] += w.logProbs.length;
    },
    result() {
      const expertsPerLayer = routed > 0 ? chosen / routed : 0;
      const activeParameters = counts.activeFor(mode, expertsPerLayer);
      const n = predictions.reduce((a, b) => a + b, 0);
      const lossByDomain: Record<string, number> = {};
      domainNames.forEach((name, d) => (lossByDomain[name] = predictions[d] > 0 ? lossSum[d] / predictions[d] : NaN));
      return {
        mode: formatRoutingMode(mode),
        activeShare: activeParameters / counts.total,
        activeParameters,
        expertsPerLayer,
        loss: n > 0 ? lossSum.reduce((a, b) => a + b, 0) / n : NaN,
        deltaLoss: null,
        lossByDomain,
        predictions: n,
      };
    },
  };
}

/** The points with their loss relative to dense, and the sentence that reads the curve. */
export function tradeoffLens(points: readonly TradeoffPoint[]): TradeoffLens {
  const dense = points.find((p) => p.mode === 'dense') ?? null;
  const out = points.map((p) => ({ ...p, deltaLoss: dense ? p.loss - dense.loss : null }));
  return {
    points: out,
    dense: dense ? out[points.indexOf(dense)] : null,
    sentence: tradeoffSentence(out, dense ? out[points.indexOf(dense)] : null),
  };
}

/** Within this many nats of dense counts as "no loss" in the sentence. */
export const TRADEOFF_CLOSE = 0.01;

function tradeoffSentence(points: TradeoffPoint[], dense: TradeoffPoint | null): string {
  if (points.length === 0) return 'No routing modes were swept, so there is no trade-off to read.';
  const finite = points.filter((p) => Number.isFinite(p.loss));
  if (finite.length === 0) return 'No text had two tokens in a window, so no loss could be measured.';
  if (!dense) {
    const best = finite.reduce((a, b) => (b.loss < a.loss ? b : a));
    return `Lowest loss: ${best.mode}, ${best.loss.toFixed(3)} nats with ${percent(best.activeShare)} of the parameters active (dense was not measured).`;
  }
  const sparse = finite.filter((p) => p !== dense);
  const close = sparse
    .filter((p) => p.loss - dense.loss <= TRADEOFF_CLOSE)
    .sort((a, b) => a.activeShare - b.activeShare)[0];
  const cheapest = [...sparse].sort((a, b) => a.activeShare - b.activeShare)[0];
  const sign = (x: number) => `${x >= 0 ? '+' : '−'}${Math.abs(x).toFixed(3)}`;
  const head = `Dense loss is ${dense.loss.toFixed(3)} nats`;
  if (!cheapest) return `${head}.`;
  const low = `the sparsest mode, ${cheapest.mode}, reads ${percent(cheapest.activeShare)} of the parameters for ${sign(cheapest.loss - dense.loss)} nats`;
  if (close === cheapest) {
    return `${head}; even the sparsest mode, ${close.mode}, stays within ${TRADEOFF_CLOSE} nats of it (${sign(close.loss - dense.loss)}) with ${percent(close.activeShare)} of the parameters active.`;
  }
  return close
    ? `${head}; ${close.mode} stays within ${TRADEOFF_CLOSE} nats of it (${sign(close.loss - dense.loss)}) with ${percent(close.activeShare)} of the parameters active; ${low}.`
    : `${head}; no sparse mode stays within ${TRADEOFF_CLOSE} nats of it; ${low}.`;
}
