// The CPU backend: the readable reference every other backend is checked against, and the
// fallback when WebGPU is missing. Runs anywhere plain TypeScript runs (worker, Node, tests).

import type { Backend, ModelSpec, WeightSet } from '../../types.ts';
import { CpuModel } from './model.ts';

export { CpuModel } from './model.ts';
export type { CpuStats } from './model.ts';

export interface CpuBackend extends Backend {
  readonly kind: 'cpu';
  load(spec: ModelSpec, weights: WeightSet): Promise<CpuModel>;
}

export function createCpuBackend(): CpuBackend {
  return {
    kind: 'cpu',
    description: 'CPU (TypeScript reference, f32)',
    async load(spec, weights) {
      return new CpuModel(spec, weights);
    },
    dispose() {},
  };
}
