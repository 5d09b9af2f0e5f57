// The precomputed example: a real RunState saved from the engine (scripts/make-example-trace.ts),
// shown before any model is ready. JSON cannot hold Float32Array, so probs travel as number arrays.
import type { RoutingTrace } from '../engine/types.ts';
import type { RunState } from './store.ts';

export interface SavedRun extends Omit<RunState, 'trace' | 'source' | 'modelFacts'> {
  savedBy: string;
  trace: {
    moeLayers: number[];
    positions: number[];
    layers: { experts: number[]; weights: number[]; probs: number[] }[][];
  };
}

export function saveRun(run: RunState, savedBy: string): SavedRun {
  const { source: _source, modelFacts: _facts, ...rest } = run;
  return {
    ...rest,
    savedBy,
    trace: {
      ...run.trace,
      layers: run.trace.layers.map((rows) =>
        rows.map((r) => ({ experts: r.experts, weights: r.weights, probs: Array.from(r.probs) })),
      ),
    },
  };
}

export function loadSavedRun(saved: SavedRun): RunState {
  const trace: RoutingTrace = {
    moeLayers: saved.trace.moeLayers,
    positions: saved.trace.positions,
    layers: saved.trace.layers.map((rows) =>
      rows.map((r) => ({ experts: r.experts, weights: r.weights, probs: Float32Array.from(r.probs) })),
    ),
  };
  const { savedBy: _savedBy, ...rest } = saved;
  // The example's parameter counts are not the loaded model's: no "parameters active" for it.
  return { ...rest, trace, source: 'example', modelFacts: null };
}
