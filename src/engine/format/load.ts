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

/** What loadCheckpoint reports while it reads: the file, and its bytes so far (total when known). */
export interface LoadProgress {
  file: string;
  received: number;
  total: number | null;
}

export interface LoadOptions {
  onProgress?: (progress: LoadProgress) => void;
}

/**
 * Why a file counts as absent. Many static servers (Vite's dev server and `vite preview` among
 * them) answer a missing file with the site's index page and status 200, so a reply is only taken
 * for the file when it looks like one: JSON files must not be a web page, and a safetensors file
 * must start with a header length and '{'.
 */
type Absence = 'missing' | 'web page' | 'not safetensors';

/** First byte that is not whitespace or a UTF-8 byte-order mark. */
function firstSignificantByte(bytes: Uint8Array): number | undefined {
  let i = 0;
  if (bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) i = 3;
  while (i < bytes.length && (bytes[i] === 0x20 || bytes[i] === 0x0a || bytes[i] === 0x0d || bytes[i] === 0x09)) i++;
  return bytes[i];
}

/** A reply that is an HTML page (a server's fallback page), not the JSON file asked for. */
export function isWebPage(bytes: Uint8Array): boolean {
  return firstSignificantByte(bytes) === 0x3c; // '<'
}

/**
 * Whether bytes begin like a safetensors file: a little-endian u64 header length whose high word
 * is 0, then '{'. A truncated or damaged real file still passes, so parseSafetensors names its fault.
 */
export function looksLikeSafetensors(bytes: Uint8Array): boolean {
  return bytes.length >= 9 && bytes[4] === 0 && bytes[5] === 0 && bytes[6] === 0 && bytes[7] === 0 && bytes[8] === 0x7b;
}

async function readChecked(
  source: CheckpointSource,
  name: string,
  kind: 'json' | 'safetensors',
  options: LoadOptions,
): Promise<{ bytes: Uint8Array } | { absent: Absence }> {
  const onProgress = options.onProgress;
  const bytes = await source.readFile(
    name,
    onProgress && ((received, total) => onProgress({ file: name, received, total })),
  );
  if (!bytes) return { absent: 'missing' };
  // A safetensors file starts with a binary header length whose bytes can read as ' <' (0x20 0x3c):
  // only its own shape test applies to it; the web-page test is for the JSON files.
  if (kind === 'safetensors') {
    if (!looksLikeSafetensors(bytes)) return { absent: isWebPage(bytes) ? 'web page' : 'not safetensors' };
  } else if (isWebPage(bytes)) {
    return { absent: 'web page' };
  }
  return { bytes };
}

function absenceNote(absent: Absence): string {
  if (absent === 'web page') return ' (the server answered with a web page instead)';
  if (absent === 'not safetensors') return ' (the server answered with something that is not a safetensors file)';
  return '';
}

function parseJson(bytes: Uint8Array, file: string): unknown {
  try {
    return JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (err) {
    throw new CheckpointError(file, `the file is not valid JSON (${(err as Error).message}).`, HINT_REDOWNLOAD);
  }
}

async function readRequired(
  source: CheckpointSource,
  name: string,
  why: string,
  options: LoadOptions,
): Promise<Uint8Array> {
  const read = await readChecked(source, name, 'json', options);
  if ('absent' in read) {
    throw new CheckpointError(
      name,
      `${name} is missing from ${source.label}${absenceNote(read.absent)}.`,
      `A checkpoint folder needs ${name} (${why}); check that the address names the model's folder.`,
    );
  }
  return read.bytes;
}

// Shard names come from a downloaded file: refuse anything that could reach outside the folder.
function checkShardName(name: unknown): string {
  if (
    typeof name !== 'string' ||
    name === '' ||
    name.startsWith('/') ||
    name.includes('\\') ||
    name.split('/').includes('..')
  ) {
    throw new CheckpointError(
      INDEX_FILE,
      `weight_map names the shard ${JSON.stringify(name)}, which is not a file name in this folder.`,
      HINT_REDOWNLOAD,
    );
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

/**
 * Reads config.json, tokenizer.json (+ tokenizer_config.json when present) and the weights:
 * model.safetensors first, else the sharded index and its shards. A reply that is not the file
 * asked for (a server's fallback page) counts as absent, never as a broken file.
 */
export async function loadCheckpoint(source: CheckpointSource, options: LoadOptions = {}): Promise<Checkpoint> {
  let bytesOnDisk = 0;
  const configBytes = await readRequired(source, 'config.json', 'the model architecture', options);
  bytesOnDisk += configBytes.byteLength;
  const spec = specFromConfig(parseJson(configBytes, 'config.json'), 'config.json');

  const tokenizerRead = await readChecked(source, 'tokenizer.json', 'json', options);
  let tokenizerJson: unknown;
  if ('bytes' in tokenizerRead) {
    bytesOnDisk += tokenizerRead.bytes.byteLength;
    tokenizerJson = parseJson(tokenizerRead.bytes, 'tokenizer.json');
  }
  const tokenizerConfigRead = await readChecked(source, 'tokenizer_config.json', 'json', options);
  let tokenizerConfigJson: unknown;
  if ('bytes' in tokenizerConfigRead) {
    bytesOnDisk += tokenizerConfigRead.bytes.byteLength;
    tokenizerConfigJson = parseJson(tokenizerConfigRead.bytes, 'tokenizer_config.json');
  }

  // Optional and read last among the small files: when it cannot be fetched at all (an offline copy
  // kept before this file was read), the model still loads; only extra stop ids are lost.
  const generationConfigRead = await readChecked(source, 'generation_config.json', 'json', options).catch(
    () => ({ absent: 'missing' }) as const,
  );
  let generationConfigJson: unknown;
  if ('bytes' in generationConfigRead) {
    bytesOnDisk += generationConfigRead.bytes.byteLength;
    generationConfigJson = parseJson(generationConfigRead.bytes, 'generation_config.json');
  }

  const tensors = new Map<string, PlainTensor>();
  const fileOfTensor = new Map<string, string>();
  const single = await readChecked(source, WEIGHTS_FILE, 'safetensors', options);
  const indexRead = 'bytes' in single ? null : await readChecked(source, INDEX_FILE, 'json', options);
  const indexBytes = indexRead && 'bytes' in indexRead ? indexRead.bytes : null;
  if ('bytes' in single) {
    bytesOnDisk += single.bytes.byteLength;
    for (const [name, t] of parseSafetensors(single.bytes, WEIGHTS_FILE).tensors) {
      tensors.set(name, t);
      fileOfTensor.set(name, WEIGHTS_FILE);
    }
  } else if (indexBytes) {
    bytesOnDisk += indexBytes.byteLength;
    const index = parseJson(indexBytes, INDEX_FILE) as { weight_map?: unknown } | null;
    const weightMap = index?.weight_map;
    if (typeof weightMap !== 'object' || weightMap === null || Array.isArray(weightMap)) {
      throw new CheckpointError(INDEX_FILE, 'the file has no "weight_map" object.', HINT_REDOWNLOAD);
    }
    const shardOf = new Map(
      Object.entries(weightMap as Record<string, unknown>).map(([t, f]) => [t, checkShardName(f)]),
    );
    for (const shard of new Set(shardOf.values())) {
      const read = await readChecked(source, shard, 'safetensors', options);
      if ('absent' in read) {
        throw new CheckpointError(
          shard,
          `shard ${shard} (listed in ${INDEX_FILE}) is missing from ${source.label}${absenceNote(read.absent)}.`,
          'Download every shard listed in the index into the same folder.',
        );
      }
      const bytes = read.bytes;
      bytesOnDisk += bytes.byteLength;
      for (const [name, t] of parseSafetensors(bytes, shard).tensors) {
        if (tensors.has(name)) {
          throw new CheckpointError(
            shard,
            `tensor ${name} appears in both ${fileOfTensor.get(name)} and ${shard}.`,
            HINT_REDOWNLOAD,
          );
        }
        tensors.set(name, t);
        fileOfTensor.set(name, shard);
      }
    }
    for (const [name, shard] of shardOf) {
      if (fileOfTensor.get(name) !== shard) {
        throw new CheckpointError(
          shard,
          `tensor ${name} is listed in ${INDEX_FILE} but is not in ${shard}.`,
          HINT_REDOWNLOAD,
        );
      }
    }
  } else {
    const served =
      single.absent !== 'missing' || (indexRead !== null && 'absent' in indexRead && indexRead.absent !== 'missing');
    throw new CheckpointError(
      WEIGHTS_FILE,
      `neither ${WEIGHTS_FILE} nor ${INDEX_FILE} is in ${source.label}${served ? ' (the server answered with a web page or other content instead of the weights)' : ''}.`,
      "The folder needs the weights in safetensors format (pytorch_model.bin is not supported); check that the address names the model's folder.",
    );
  }

  // A missing tensor is reported against the shard the index would have put it in.
  const defaultFile = indexBytes ? INDEX_FILE : WEIGHTS_FILE;
  const weights = weightsFromTensors(spec, tensors, (name) => fileOfTensor.get(name) ?? defaultFile);
  spec.dtype = dominantDtype(tensors.values(), spec.dtype);
  return { spec, weights, tokenizerJson, tokenizerConfigJson, generationConfigJson, bytesOnDisk };
}
