// How much memory a model needs on each backend, before anything is downloaded, and a refusal that
// names the limit and the way out when it cannot fit.

import { bytesPerElement } from '../format/dtype.ts';
import type { BackendKind, ModelSpec } from '../types.ts';
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

/** Bytes per parameter each backend holds, given the stored dtype (the CPU backend computes in f32). */
export function heldBytesPerParameter(backend: BackendKind, storedBytesPerParameter: number): number {
  return backend === 'cpu' ? 4 : storedBytesPerParameter;
}

export function memoryNeeded(spec: ModelSpec, weightBytes: number, backend: BackendKind, contextLength = Math.min(spec.maxPositions, 2048)): MemoryNeed {
  const stored = bytesPerElement(spec.dtype);
  const weights = (weightBytes / stored) * heldBytesPerParameter(backend, stored);
  const kvDim = spec.numKvHeads * spec.headDim;
  const kv = 2 * spec.numLayers * kvDim * contextLength * 4;
  const widest = Math.max(spec.intermediateSize, spec.moe?.expertIntermediateSize ?? 0, spec.hiddenSize * 4);
  const working = kv + spec.vocabSize * 4 * 2 + widest * 4 * 64;
  // The WebGPU backend uploads and lets the files go; the CPU backend converts from them.
  const files = weightBytes;
  return { files, weights, working, total: backend === 'webgpu' ? Math.max(files, weights) + working : files + weights + working };
}

function gb(n: number): string {
  return n >= 2 ** 30 ? `${(n / 2 ** 30).toFixed(1)} GB` : `${Math.ceil(n / 2 ** 20)} MB`;
}

/** Throw SourceError('too-large') when `need` exceeds `budget` bytes; `limitName` says whose limit it is. */
export function checkFits(need: MemoryNeed, budget: number, backend: BackendKind, limitName: string, label: string): void {
  if (need.total <= budget) return;
  const other = backend === 'cpu' ? 'the WebGPU backend (it keeps weights at their stored size)' : 'the CPU backend';
  throw new SourceError('too-large', label,
    `${label} needs about ${gb(need.total)} on the ${backend === 'cpu' ? 'CPU' : 'WebGPU'} backend, more than ${limitName} (${gb(budget)}).`,
    `Try ${other}, a quantized copy of the model, or a smaller model.`);
}
