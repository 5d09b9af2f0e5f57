// How much memory a model needs on each backend, before anything is downloaded, and a refusal that
// names the limit and the way out when it cannot fit.

import { bytesPerElement } from '../format/dtype.ts';
import type { BackendKind, ModelSpec, QuantScheme } from '../types.ts';
import { SourceError } from './errors.ts';

export interface MemoryNeed {
  /** The downloaded files, held while the model loads. */
  files: number;
  /** What the backend keeps for the weights. */
  weights: number;
  /** KV cache at the playground's context length plus working buffers. */
  working: number;
  total: number;
}

/** Bytes per weight held for a quantization scheme: as stored, or int8/4-bit codes with an f16 scale per 32. */
export function heldBytesPerParameter(storedBytesPerParameter: number, quant: QuantScheme = 'none'): number {
  if (quant === 'q8') return 1 + 2 / 32;
  if (quant === 'q4') return 0.5 + 2 / 32;
  return storedBytesPerParameter;
}

export function memoryNeeded(
  spec: ModelSpec,
  weightBytes: number,
  backend: BackendKind,
  quant: QuantScheme = 'none',
  contextLength = Math.min(spec.maxPositions, 2048),
): MemoryNeed {
  const stored = bytesPerElement(spec.dtype);
  const weights = (weightBytes / stored) * heldBytesPerParameter(stored, quant);
  const kvDim = spec.numKvHeads * spec.headDim;
  const kv = 2 * spec.numLayers * kvDim * contextLength * 4;
  const widest = Math.max(spec.intermediateSize, spec.moe?.expertIntermediateSize ?? 0, spec.hiddenSize * 4);
  const working = kv + spec.vocabSize * 4 * 2 + widest * 4 * 64;
  const files = weightBytes;
  // The CPU backend copies the weights (as stored, or their quantized codes) into its WebAssembly memory
  // (at most 4 GiB: src/engine/backends/cpu), so the files and that copy coexist while loading; the WebGPU
  // backend uploads and lets the files go.
  const cpuTotal = files + weights + working;
  return { files, weights, working, total: backend === 'webgpu' ? Math.max(files, weights) + working : cpuTotal };
}

function gb(n: number): string {
  return n >= 2 ** 30 ? `${(n / 2 ** 30).toFixed(1)} GB` : `${Math.ceil(n / 2 ** 20)} MB`;
}

/** Throw SourceError('too-large') when `need` exceeds `budget` bytes; `limitName` says whose limit it is. */
export function checkFits(
  need: MemoryNeed,
  budget: number,
  backend: BackendKind,
  limitName: string,
  label: string,
): void {
  if (need.total <= budget) return;
  const other = backend === 'cpu' ? 'the WebGPU backend' : 'the CPU backend';
  throw new SourceError(
    'too-large',
    label,
    `${label} needs about ${gb(need.total)} on the ${backend === 'cpu' ? 'CPU' : 'WebGPU'} backend, more than ${limitName} (${gb(budget)}).`,
    `Try ${other}, a quantized copy of the model, or a smaller model.`,
  );
}
