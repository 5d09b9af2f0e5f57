// Parameter counts: what the model holds, and what a routing mode actually reads per token.

import type { ModelSpec, RoutingMode } from '../types.ts';
import { bytesPerElement } from './dtype.ts';

export interface ParameterCount {
  total: number;
  /** Everything but the routed experts: embeddings, attention, norms, routers, dense MLPs, shared experts. */
  nonExpert: number;
  /** One routed expert (gate + up + down); 0 for dense models. */
  perExpert: number;
  /** Number of MoE layers. */
  moeLayers: number;
  /** total × bytes per element of spec.dtype. */
  bytes: number;
  /**
   * Parameters used per token under a routing mode. For `threshold` the count depends on the input:
   * pass the measured average experts per MoE layer, otherwise the upper bound (all E) is returned.
   */
  activeFor(mode: RoutingMode, avgExpertsPerLayer?: number): number;
}

export function countParameters(spec: ModelSpec): ParameterCount {
  const d = spec.hiddenSize;
  const qDim = spec.numHeads * spec.headDim;
  const kvDim = spec.numKvHeads * spec.headDim;
  const ffn = (f: number) => 3 * d * f;

  let attention = 2 * d + qDim * d + 2 * kvDim * d + d * qDim; // two norms + q, k, v, o
  if (spec.attentionBias) attention += qDim + 2 * kvDim;
  if (spec.qkNorm === 'per_head') attention += 2 * spec.headDim;
  if (spec.qkNorm === 'full') attention += qDim + kvDim;

  const moe = spec.moe;
  const numMoeLayers = moe ? moe.moeLayers.filter(Boolean).length : 0;
  const perExpert = moe ? ffn(moe.expertIntermediateSize) : 0;
  let nonExpert = spec.vocabSize * d * (spec.tieWordEmbeddings ? 1 : 2) + d; // embed (+ head) + final norm
  nonExpert += spec.numLayers * attention;
  nonExpert += (spec.numLayers - numMoeLayers) * ffn(spec.intermediateSize);
  if (moe) {
    const shared = moe.sharedExpertIntermediateSize > 0 ? ffn(moe.sharedExpertIntermediateSize) + d : 0;
    nonExpert += numMoeLayers * (moe.numExperts * d + shared);
  }
  const E = moe?.numExperts ?? 0;
  const total = nonExpert + numMoeLayers * E * perExpert;

  return {
    total,
    nonExpert,
    perExpert,
    moeLayers: numMoeLayers,
    bytes: total * bytesPerElement(spec.dtype),
    activeFor(mode, avgExpertsPerLayer) {
      if (!moe) return total;
      let experts: number;
      switch (mode.kind) {
        case 'native':
          experts = moe.topK;
          break;
        case 'topk':
          experts = mode.k;
          break;
        case 'dense':
          experts = E;
          break;
        case 'threshold':
          experts = avgExpertsPerLayer ?? E;
          break;
      }
      experts = Math.min(Math.max(experts, 1), E);
      return nonExpert + numMoeLayers * experts * perExpert;
    },
  };
}
