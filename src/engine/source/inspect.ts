// Know before you download: read a remote checkpoint's configs and every safetensors header (two
// small range requests per weight file) and say what it is, how large it is and what it needs.
// Anything the engine cannot run is refused here, before a byte of weights moves.

import { specFromConfig } from '../format/config.ts';
import { CheckpointError, HINT_REDOWNLOAD } from '../format/errors.ts';
import { INDEX_FILE, WEIGHTS_FILE, dominantDtype } from '../format/load.ts';
import { countParameters, type ParameterCount } from '../format/params.ts';
import { parseSafetensorsHeader, readHeaderLength } from '../format/safetensors.ts';
import { weightsFromTensors } from '../format/weights.ts';
import type { ModelSpec, PlainTensor } from '../types.ts';
import { SourceError } from './errors.ts';
import type { FileStat, RemoteSource } from './http.ts';

export interface RemoteFile extends FileStat {
  name: string;
}

export interface CheckpointPreview {
  label: string;
  spec: ModelSpec;
  params: ParameterCount;
  /** Every file a load needs, weights last, with sizes: what a download fetches. */
  files: RemoteFile[];
  weightFiles: string[];
  downloadBytes: number;
  /** Bytes of the weights as stored (the sum of the tensors, without headers). */
  weightBytes: number;
  hasTokenizer: boolean;
  /** The commit a branch or tag resolved to, when the server says (the hub does). */
  commit?: string;
}

export const OPTIONAL_FILES = ['tokenizer_config.json', 'generation_config.json'] as const;

function parseJson(bytes: Uint8Array, file: string): unknown {
  try {
    return JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (err) {
    throw new CheckpointError(file, `the file is not valid JSON (${(err as Error).message}).`, HINT_REDOWNLOAD);
  }
}

async function statRequired(source: RemoteSource, name: string, signal?: AbortSignal): Promise<RemoteFile> {
  const s = await source.stat(name, signal);
  if (!s)
    throw new SourceError(
      'not-found',
      name,
      `${source.label} has no ${name}.`,
      'Check the repository name and revision; the model must be in safetensors format.',
    );
  return { name, ...s };
}

/** Read only what is needed to describe the checkpoint and check that the engine can run it. */
export async function inspectRemote(source: RemoteSource, signal?: AbortSignal): Promise<CheckpointPreview> {
  // The hub answers small files itself, with X-Repo-Commit (large ones redirect to a file host that does not).
  const configStat = await source.stat('config.json', signal);
  const configBytes = configStat && (await source.download('config.json', { signal }));
  if (!configBytes) {
    throw new SourceError(
      'not-found',
      'config.json',
      `${source.label} has no config.json: there is no model at this address, or the name or revision is misspelt.`,
      'Check the repository name (ORG/NAME) and the revision; for a web address, give the folder that holds config.json.',
    );
  }
  // Unsupported architectures and config fields are refused here, naming the field.
  const spec = specFromConfig(parseJson(configBytes, 'config.json'), 'config.json');

  const files: RemoteFile[] = [{ name: 'config.json', size: configBytes.byteLength }];
  const tokenizer = await source.stat('tokenizer.json', signal);
  if (tokenizer) files.push({ name: 'tokenizer.json', ...tokenizer });
  for (const name of OPTIONAL_FILES) {
    const s = await source.stat(name, signal);
    if (s) files.push({ name, ...s });
  }

  let weightFiles: string[];
  const single = await source.stat(WEIGHTS_FILE, signal);
  let commit = configStat?.commit ?? single?.commit;
  if (single) {
    weightFiles = [WEIGHTS_FILE];
  } else {
    const indexBytes = await source.download(INDEX_FILE, { signal });
    if (!indexBytes) {
      throw new SourceError(
        'not-found',
        WEIGHTS_FILE,
        `${source.label} has neither ${WEIGHTS_FILE} nor ${INDEX_FILE}.`,
        'The playground reads safetensors weights; pytorch_model.bin and GGUF files are not supported.',
      );
    }
    files.push({ name: INDEX_FILE, size: indexBytes.byteLength });
    const weightMap = (parseJson(indexBytes, INDEX_FILE) as { weight_map?: unknown } | null)?.weight_map;
    if (typeof weightMap !== 'object' || weightMap === null || Array.isArray(weightMap)) {
      throw new CheckpointError(INDEX_FILE, 'the file has no "weight_map" object.', HINT_REDOWNLOAD);
    }
    weightFiles = [...new Set(Object.values(weightMap as Record<string, unknown>).map(String))];
    for (const f of weightFiles) {
      if (f === '' || f.startsWith('/') || f.includes('\\') || f.split('/').includes('..')) {
        throw new CheckpointError(
          INDEX_FILE,
          `weight_map names the shard ${JSON.stringify(f)}, which is not a file name in this folder.`,
          HINT_REDOWNLOAD,
        );
      }
    }
  }

  // Headers only: 8 bytes, then the JSON. Shapes are checked against config.json with the loader's
  // own rules, on tensors that have no bytes yet.
  const tensors = new Map<string, PlainTensor>();
  const fileOf = new Map<string, string>();
  let weightBytes = 0;
  for (const name of weightFiles) {
    const stat = name === WEIGHTS_FILE && single ? { name, ...single } : await statRequired(source, name, signal);
    commit ??= stat.commit;
    files.push(stat);
    const prefix = await source.readRange(name, 0, 8, signal);
    if (!prefix) throw new SourceError('not-found', name, `${name} disappeared from ${source.label}.`, 'Try again.');
    const headerLength = readHeaderLength(prefix, stat.size, name);
    const headerBytes = await source.readRange(name, 8, 8 + headerLength, signal);
    if (!headerBytes)
      throw new SourceError('not-found', name, `${name} disappeared from ${source.label}.`, 'Try again.');
    const header = parseSafetensorsHeader(headerBytes, stat.size, name);
    for (const e of header.entries) {
      tensors.set(e.name, { dtype: e.dtype, shape: e.shape, bytes: new Uint8Array(0) });
      fileOf.set(e.name, name);
      weightBytes += e.end - e.begin;
    }
  }
  weightsFromTensors(spec, tensors, (n) => fileOf.get(n) ?? weightFiles[0]);
  spec.dtype = dominantDtype(tensors.values(), spec.dtype);

  return {
    label: source.label,
    spec,
    params: countParameters(spec),
    files,
    weightFiles,
    downloadBytes: files.reduce((a, f) => a + f.size, 0),
    weightBytes,
    hasTokenizer: tokenizer !== null,
    commit,
  };
}
