// The shape checks every lens makes on a window before counting it, so a bad trace fails loudly
// with one sentence instead of producing quiet nonsense.

import { LensError } from './errors.ts';
import type { LensWindow } from './types.ts';

/** The MoE layers and expert count every window of one analysis must share. */
export interface LensShape {
  numExperts: number;
  moeLayers: readonly number[];
}

export function checkShape(shape: LensShape): void {
  if (!(Number.isInteger(shape.numExperts) && shape.numExperts >= 1) || shape.moeLayers.length === 0) {
    throw new LensError(
      'This model has no routed experts, so there is no routing to analyse.',
      'Load a mixture-of-experts model (or upcycle the dense one) first.',
    );
  }
}

export function checkWindow(w: LensWindow, shape: LensShape, domains?: number): void {
  const { trace, tokens } = w;
  if (domains !== undefined && !(Number.isInteger(w.domain) && w.domain >= 0 && w.domain < domains)) {
    throw new LensError(
      `A window names text ${w.domain}, but there are ${domains} texts.`,
      'Pass the window of a text in the analysis.',
    );
  }
  if (trace.moeLayers.length !== shape.moeLayers.length || trace.moeLayers.some((l, i) => l !== shape.moeLayers[i])) {
    throw new LensError(
      `A trace covers MoE layers [${trace.moeLayers.join(', ')}], not [${shape.moeLayers.join(', ')}].`,
      'Analyse traces of one model together.',
    );
  }
  for (const rows of trace.layers) {
    if (rows.length !== tokens.length) {
      throw new LensError(
        `A trace has ${rows.length} routed tokens for a window of ${tokens.length} tokens.`,
        'Pass the trace that came with these tokens.',
      );
    }
    for (const r of rows) {
      if (r.probs.length !== shape.numExperts || r.experts.length === 0) {
        throw new LensError(
          `A routing entry has ${r.probs.length} probabilities and ${r.experts.length} chosen experts; the model has ${shape.numExperts} experts.`,
          'Analyse traces of one model together.',
        );
      }
    }
  }
}
