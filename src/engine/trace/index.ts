// Helpers over RoutingTrace, the one type every view, export and analysis reads.

import type { RoutingTrace, TokenRouting } from '../types.ts';

export function emptyTrace(moeLayers: number[]): RoutingTrace {
  return { moeLayers: [...moeLayers], positions: [], layers: moeLayers.map(() => []) };
}

/** Join traces of consecutive runs (prefill, then one per decoded token) into one. */
export function concatTraces(traces: RoutingTrace[]): RoutingTrace {
  if (traces.length === 0) return emptyTrace([]);
  const moeLayers = traces[0].moeLayers;
  const out = emptyTrace(moeLayers);
  for (const tr of traces) {
    if (tr.moeLayers.length !== moeLayers.length || tr.moeLayers.some((l, i) => l !== moeLayers[i])) {
      throw new Error('concatTraces: traces cover different MoE layers');
    }
    out.positions.push(...tr.positions);
    tr.layers.forEach((rows, m) => out.layers[m].push(...rows));
  }
  return out;
}

/** The routing of the token at index `i` of the trace (not position): one TokenRouting per MoE layer. */
export function routingAt(trace: RoutingTrace, i: number): TokenRouting[] {
  return trace.layers.map((rows) => rows[i]);
}
