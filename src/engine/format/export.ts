// Write a model back out as a Hugging Face folder: config.json, model.safetensors, tokenizer.json.

import type { ModelSpec, WeightSet } from '../types.ts';
import { configFromSpec } from './config.ts';
import { writeSafetensors } from './safetensors.ts';
import { tensorsFromWeights } from './weights.ts';

function jsonBytes(value: unknown): Uint8Array {
  if (value instanceof Uint8Array) return value;
  const text = typeof value === 'string' ? value : JSON.stringify(value, null, 2);
  return new TextEncoder().encode(text);
}

/** File name → bytes. Tensors use the architecture's HF names (per-expert layout), so transformers can load them. */
export function exportCheckpoint(
  spec: ModelSpec,
  weights: WeightSet,
  tokenizerJson: unknown | undefined,
  tokenizerConfigJson?: unknown,
): Map<string, Uint8Array> {
  const files = new Map<string, Uint8Array>();
  files.set('config.json', jsonBytes(configFromSpec(spec)));
  files.set('model.safetensors', writeSafetensors(tensorsFromWeights(spec, weights), { format: 'pt' }));
  // A checkpoint without a tokenizer stays without one (token ids still work).
  if (tokenizerJson !== undefined) files.set('tokenizer.json', jsonBytes(tokenizerJson));
  if (tokenizerConfigJson !== undefined) files.set('tokenizer_config.json', jsonBytes(tokenizerConfigJson));
  return files;
}
