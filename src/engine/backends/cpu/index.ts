// The CPU backend: the readable reference every other backend is checked against, and the
// fallback when WebGPU is missing. Runs anywhere plain TypeScript runs (worker, Node, tests).
// Weights stay in their stored format (F32/F16/BF16) or are quantized on load (Q8/Q4); the
// products decode them on the fly.

import { quantizeWeights } from '../../format/quant.ts';
import type { Backend, ModelSpec, QuantScheme, WeightSet } from '../../types.ts';
import { CpuModel } from './model.ts';

export { CpuModel } from './model.ts';
export type { CpuStats, CpuWeightMemory } from './model.ts';

export interface CpuBackendOptions {
  /** Quantize the matrices on load (routers stay as stored). Default 'none'. */
  quantize?: QuantScheme;
}

export interface CpuBackend extends Backend {
  readonly kind: 'cpu';
  readonly quantize: QuantScheme;
  load(spec: ModelSpec, weights: WeightSet): Promise<CpuModel>;
}

export function createCpuBackend(options: CpuBackendOptions = {}): CpuBackend {
  const quantize = options.quantize ?? 'none';
  return {
    kind: 'cpu',
    quantize,
    description: `CPU (TypeScript${quantize === 'none' ? ', weights as stored' : `, weights quantized to ${quantize}`})`,
    async load(spec, weights) {
      return new CpuModel(spec, quantizeWeights(weights, quantize));
    },
    dispose() {},
  };
}
