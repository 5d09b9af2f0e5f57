// The CPU backend: the readable reference every other backend is checked against, and the
// fallback when WebGPU is missing. Runs anywhere plain TypeScript runs (worker, Node, tests).
// Weights stay in their stored format (F32/F16/BF16) or are quantized on load (Q8/Q4); the
// products decode them on the fly, as WebAssembly SIMD (wasm/kernels.wat) where the platform has
// it, else in TypeScript (matrix.ts). Attention, norms and routing stay in TypeScript.

import { fitHint, formatGiB, ModelTooLargeError, quantizeWeights, weightSetBytes } from '../../format/quant.ts';
import type { Backend, ModelSpec, QuantScheme, WeightSet } from '../../types.ts';
import { hostMatrix } from './matrix.ts';
import { CpuModel } from './model.ts';
import { loadKernels, WASM_MAX_BYTES, WasmHeap, wasmSimdAvailable, wasmSupports } from './wasm/heap.ts';

export { CpuModel } from './model.ts';
export type { CpuStats, CpuWeightMemory } from './model.ts';

export interface CpuBackendOptions {
  /** Quantize the matrices on load (routers stay as stored). Default 'none'. */
  quantize?: QuantScheme;
  /** Which products: WebAssembly SIMD when available ('auto', the default), or always TypeScript ('js'). */
  kernels?: 'auto' | 'js';
}

export interface CpuBackend extends Backend {
  readonly kind: 'cpu';
  readonly quantize: QuantScheme;
  load(spec: ModelSpec, weights: WeightSet): Promise<CpuModel>;
}

/** Room left in the 4 GiB WebAssembly memory for scratch (inputs and outputs of one product). */
const SCRATCH_RESERVE = 64 * 2 ** 20;

export function createCpuBackend(options: CpuBackendOptions = {}): CpuBackend {
  const quantize = options.quantize ?? 'none';
  const weightsText = quantize === 'none' ? 'weights as stored' : `weights quantized to ${quantize}`;
  const simd = options.kernels !== 'js' && wasmSimdAvailable();
  return {
    kind: 'cpu',
    quantize,
    description: `CPU (${simd ? 'WebAssembly SIMD' : 'TypeScript'}, ${weightsText})`,
    async load(spec, weights) {
      const module = simd ? await loadKernels() : null;
      const ready = quantizeWeights(weights, quantize);
      if (!module) return new CpuModel(spec, ready);
      const need = weightSetBytes(ready);
      if (need + SCRATCH_RESERVE > WASM_MAX_BYTES) {
        throw new ModelTooLargeError(
          `The weights need ${formatGiB(need)}${quantize === 'none' ? '' : ` at ${quantize}`}, more than the 4 GiB the CPU backend's WebAssembly memory can hold.`,
          fitHint(
            weights,
            WASM_MAX_BYTES - SCRATCH_RESERVE,
            'This model is too large for the CPU backend; use the WebGPU backend.',
          ),
        );
      }
      const heap = new WasmHeap(module);
      return new CpuModel(spec, ready, (t) => (wasmSupports(t) ? heap.matrix(t) : hostMatrix(t)));
    },
    dispose() {},
  };
}
