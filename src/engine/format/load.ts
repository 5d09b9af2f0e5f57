// Read a Hugging Face checkpoint folder (config.json, tokenizer.json, safetensors) from any source.

import type { CheckpointSource, DType, ModelSpec, PlainTensor, WeightSet } from '../types.ts';
import { specFromConfig } from './config.ts';
import { numelOf } from './dtype.ts';
import { CheckpointError, HINT_REDOWNLOAD } from './errors.ts';
import { parseSafetensors } from './safetensors.ts';
import { weightsFromTensors } from './weights.ts';

export interface Checkpoint {
  spec: ModelSpec;
  weights: WeightSet;
  /** Absent when the folder has no tokenizer.json (token ids still work; text does not). */
  tokenizerJson?: unknown;
  tokenizerConfigJson?: unknown;
  /** generation_config.json when present (eos_token_id for stopping). */
  generationConfigJson?: unknown;
  /** Total size of the files read. */
  bytesOnDisk: number;
}

export const INDEX_FILE = 'model.safetensors.index.json';
export const WEIGHTS_FILE = 'model.safetensors';

function parseJson(bytes: Uint8Array, file: string): unknown {
  try {
    return JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (err) {
    throw new CheckpointError(file, `the file is not valid JSON (${(err as Error).message}).`, HINT_REDOWNLOAD);
  }
}

async function readRequired(source: CheckpointSource, name: string, why: string): Promise<Uint8Array> {
  const bytes = await source.readFile(name);
  if (!bytes) {
    throw new CheckpointError(name, `${name} is missing from ${source.label}.`, `A checkpoint folder needs ${name} (${why}).`);
  }
  return bytes;
}

// Shard names come from a downloaded file: refuse anything that could reach outside the folder.
function checkShardName(name: unknown): string {
  if (typeof name !== 'string' || name === '' || name.startsWith('/') || name.includes('\\') || name.split('/').includes('..')) {
    throw new CheckpointError(INDEX_FILE, `weight_map names the shard ${JSON.stringify(name)}, which is not a file name in this folder.`, HINT_REDOWNLOAD);
  }
  return name;
}

/** The most common dtype by number of elements: what the spec reports as the storage dtype. */
export function dominantDtype(tensors: Iterable<PlainTensor>, fallback: DType): DType {
  const count = new Map<DType, number>();
  for (const t of tensors) count.set(t.dtype, (count.get(t.dtype) ?? 0) + numelOf(t.shape));
  let best = fallback;
  let bestCount = -1;
  for (const [dtype, n] of count) {
    if (n > bestCount) [best, bestCount] = [dtype, n];
  }
  return best;
}

export async function loadCheckpoint(source: CheckpointSource): Promise<Checkpoint> {
  let bytesOnDisk = 0;
  const configBytes = await readRequired(source, 'config.json', 'the model architecture');
  bytesOnDisk += configBytes.byteLength;
  const spec = specFromConfig(parseJson(configBytes, 'config.json'), 'config.json');

  const tokenizerBytes = await source.readFile('tokenizer.json');
  let tokenizerJson: unknown;
  if (tokenizerBytes) {
    bytesOnDisk += tokenizerBytes.byteLength;
    tokenizerJson = parseJson(tokenizerBytes, 'tokenizer.json');
  }
  const tokenizerConfigBytes = await source.readFile('tokenizer_config.json');
  let tokenizerConfigJson: unknown;
  if (tokenizerConfigBytes) {
    bytesOnDisk += tokenizerConfigBytes.byteLength;
    tokenizerConfigJson = parseJson(tokenizerConfigBytes, 'tokenizer_config.json');
  }

  const generationConfigBytes = await source.readFile('generation_config.json');
  let generationConfigJson: unknown;
  if (generationConfigBytes) {
    bytesOnDisk += generationConfigBytes.byteLength;
    generationConfigJson = parseJson(generationConfigBytes, 'generation_config.json');
  }

  const tensors = new Map<string, PlainTensor>();
  const fileOfTensor = new Map<string, string>();
  const indexBytes = await source.readFile(INDEX_FILE);
  if (indexBytes) {
    bytesOnDisk += indexBytes.byteLength;
    const index = parseJson(indexBytes, INDEX_FILE) as { weight_map?: unknown } | null;
    const weightMap = index?.weight_map;
    if (typeof weightMap !== 'object' || weightMap === null || Array.isArray(weightMap)) {
      throw new CheckpointError(INDEX_FILE, 'the file has no "weight_map" object.', HINT_REDOWNLOAD);
    }
    const shardOf = new Map(Object.entries(weightMap as Record<string, unknown>).map(([t, f]) => [t, checkShardName(f)]));
    for (const shard of new Set(shardOf.values())) {
      const bytes = await source.readFile(shard);
      if (!bytes) {
        throw new CheckpointError(shard, `shard ${shard} (listed in ${INDEX_FILE}) is missing from ${source.label}.`,
          'Download every shard listed in the index into the same folder.');
      }
      bytesOnDisk += bytes.byteLength;
      for (const [name, t] of parseSafetensors(bytes, shard).tensors) {
        if (tensors.has(name)) {
          throw new CheckpointError(shard, `tensor ${name} appears in both ${fileOfTensor.get(name)} and ${shard}.`, HINT_REDOWNLOAD);
        }
        tensors.set(name, t);
        fileOfTensor.set(name, shard);
      }
    }
    for (const [name, shard] of shardOf) {
      if (fileOfTensor.get(name) !== shard) {
        throw new CheckpointError(shard, `tensor ${name} is listed in ${INDEX_FILE} but is not in ${shard}.`, HINT_REDOWNLOAD);
      }
    }
  } else {
    const bytes = await source.readFile(WEIGHTS_FILE);
    if (!bytes) {
      throw new CheckpointError(WEIGHTS_FILE, `neither ${WEIGHTS_FILE} nor ${INDEX_FILE} is in ${source.label}.`,
        'Download the weights in safetensors format (pytorch_model.bin is not supported).');
    }
    bytesOnDisk += bytes.byteLength;
    for (const [name, t] of parseSafetensors(bytes, WEIGHTS_FILE).tensors) {
      tensors.set(name, t);
      fileOfTensor.set(name, WEIGHTS_FILE);
    }
  }

  // A missing tensor is reported against the shard the index would have put it in.
  const defaultFile = indexBytes ? INDEX_FILE : WEIGHTS_FILE;
  const weights = weightsFromTensors(spec, tensors, (name) => fileOfTensor.get(name) ?? defaultFile);
  spec.dtype = dominantDtype(tensors.values(), spec.dtype);
  return { spec, weights, tokenizerJson, tokenizerConfigJson, generationConfigJson, bytesOnDisk };
}
