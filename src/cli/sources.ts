// Every `moe` command takes the same SOURCE: a folder on disk, hf:ORG/NAME[@REVISION] (endpoint from
// HF_ENDPOINT), an https:// base URL (http:// on loopback), or a built-in model id (public/models/ID).
// Remote models are downloaded once into the Hugging Face cache (src/cli/hubCache.ts); --offline
// (or HF_HUB_OFFLINE=1) never touches the network.

import { existsSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { loadCheckpoint, type Checkpoint } from '../engine/format/load.ts';
import { downloadFiles, loadStored, type DownloadProgress } from '../engine/source/download.ts';
import { SourceError } from '../engine/source/errors.ts';
import { httpSource } from '../engine/source/http.ts';
import { inspectRemote, type CheckpointPreview } from '../engine/source/inspect.ts';
import {
  DEFAULT_HUB_ENDPOINT,
  formatSourceRef,
  hubBaseUrl,
  parseSourceRef,
  type SourceRef,
} from '../engine/source/ref.ts';
import { memorySource } from '../engine/format/sources.ts';
import { dirSource } from './fsSource.ts';
import { hubCacheStore } from './hubCache.ts';

const REPO_ROOT = resolve(import.meta.dirname, '../..');

export interface OpenOptions {
  offline?: boolean;
  /** Progress lines on stderr (never on stdout, which may carry JSON). */
  progress?: (p: DownloadProgress) => void;
  env?: NodeJS.ProcessEnv;
}

export function isOffline(env: NodeJS.ProcessEnv = process.env): boolean {
  return ['1', 'true', 'yes', 'on'].includes((env.HF_HUB_OFFLINE ?? '').toLowerCase());
}

/** What a SOURCE argument names. A path that exists wins over every other reading. */
export function resolveSource(text: string): SourceRef {
  if (existsSync(text)) return { kind: 'local', path: text };
  if (/^(hf:|https?:\/\/)/i.test(text)) return parseSourceRef(text);
  const builtin = join(REPO_ROOT, 'public/models', text);
  if (/^[a-z0-9][a-z0-9-]*$/.test(text) && existsSync(join(builtin, 'config.json')))
    return { kind: 'local', path: builtin };
  if (/[\\/]|^\./.test(text)) {
    throw new SourceError(
      'not-found',
      text,
      `folder ${text} does not exist.`,
      'Check the path; it should be a folder holding config.json and the safetensors files.',
    );
  }
  throw new SourceError(
    'not-found',
    text,
    `${text} is not a folder, a built-in model id, hf:ORG/NAME or an https:// address.`,
    'Give a folder holding config.json and the safetensors files, hf:ORG/NAME[@REVISION], an https:// address of such a folder, or a built-in id (public/models/).',
  );
}

function baseUrlOf(ref: SourceRef, env: NodeJS.ProcessEnv): string {
  if (ref.kind === 'hf') return hubBaseUrl(ref.repo, ref.revision, env.HF_ENDPOINT || DEFAULT_HUB_ENDPOINT);
  if (ref.kind === 'url') return ref.base;
  throw new Error(`baseUrlOf: ${ref.kind}`);
}

/** Describe a remote source from its configs and headers only (no weights downloaded). */
export async function previewSource(
  text: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<CheckpointPreview | null> {
  const ref = resolveSource(text);
  if (ref.kind === 'local' || ref.kind === 'builtin') return null;
  return inspectRemote(httpSource(baseUrlOf(ref, env), { label: formatSourceRef(ref) }));
}

export async function openSource(text: string, options: OpenOptions = {}): Promise<Checkpoint> {
  const env = options.env ?? process.env;
  const ref = resolveSource(text);
  if (ref.kind === 'local') {
    if (!statSync(ref.path).isDirectory()) {
      throw new SourceError(
        'invalid',
        ref.path,
        `${ref.path} is a file, not a folder.`,
        'Pass the folder that holds config.json, not a file inside it.',
      );
    }
    return loadCheckpoint(dirSource(ref.path));
  }
  const id = formatSourceRef(ref);
  const store = hubCacheStore(env.HF_HUB_CACHE ? env.HF_HUB_CACHE : undefined);
  const stored = await loadStored(store, id);
  if (stored) return stored;
  if (options.offline ?? isOffline(env)) {
    throw new SourceError(
      'offline-miss',
      id,
      `${id} is not in the model cache, and --offline forbids downloading it.`,
      'Run the same command once without --offline (and HF_HUB_OFFLINE unset) to download it.',
    );
  }
  const source = httpSource(baseUrlOf(ref, env), { label: id });
  const preview = await inspectRemote(source);
  const files = await downloadFiles(source, preview, { sourceId: id, store, onProgress: options.progress });
  return loadCheckpoint(memorySource(files, id));
}

/** A compact progress line for stderr. */
export function progressLine(p: DownloadProgress): string {
  const mb = (n: number) => (n / 2 ** 20).toFixed(1);
  const pct = p.total > 0 ? ((100 * p.received) / p.total).toFixed(0) : '0';
  const speed =
    p.bytesPerSecond > 0
      ? `, ${mb(p.bytesPerSecond)} MiB/s, ${Number.isFinite(p.secondsLeft) ? `${Math.ceil(p.secondsLeft)} s left` : ''}`
      : '';
  return `${p.from === 'device' ? 'cached' : 'download'} ${p.file}: ${mb(p.fileReceived)}/${mb(p.fileSize)} MiB; total ${mb(p.received)}/${mb(p.total)} MiB (${pct}%${speed})`;
}
