// Download a previewed checkpoint: byte progress per file and in total, with speed and time left;
// cancel; a failed file is retried from where it broke off (HTTP Range), and files already finished
// are never fetched again. Each file streams into one buffer of its final size (no second copy).
// Finished files go to a ModelStore when one is given, so the next visit needs no network.

import { loadCheckpoint, type Checkpoint } from '../format/load.ts';
import { memorySource } from '../format/sources.ts';
import { SourceError, cancelled } from './errors.ts';
import { PartialDownload, type RemoteSource } from './http.ts';
import type { CheckpointPreview, RemoteFile } from './inspect.ts';
import type { ModelStore, StoredModel } from './store.ts';

export interface DownloadProgress {
  file: string;
  fileReceived: number;
  fileSize: number;
  /** Bytes of all files so far (stored and resumed bytes included). */
  received: number;
  total: number;
  /** Over the last few seconds; 0 until measured. */
  bytesPerSecond: number;
  /** Estimated; Infinity until a speed is known. */
  secondsLeft: number;
  filesDone: number;
  filesTotal: number;
  /** Where the current file's bytes come from. */
  from: 'network' | 'device';
}

/** What survives a failed or cancelled download, so "Retry" continues instead of starting over. */
export interface DownloadState {
  finished: Map<string, Uint8Array>;
  partial: Map<string, { into: Uint8Array; received: number }>;
}

export function newDownloadState(): DownloadState {
  return { finished: new Map(), partial: new Map() };
}

export interface DownloadOptions {
  /** The canonical source string (the store's key). */
  sourceId: string;
  store?: ModelStore;
  state?: DownloadState;
  onProgress?: (p: DownloadProgress) => void;
  signal?: AbortSignal;
  /** Automatic retries per file after a network failure before giving up (each resumes). */
  retries?: number;
  /** Clock for speed estimates (tests pass their own). */
  now?: () => number;
}

const SHA256_ETAG = /^[0-9a-f]{64}$/;

async function sha256Hex(bytes: Uint8Array): Promise<string | null> {
  const subtle = (globalThis.crypto as Crypto | undefined)?.subtle;
  if (!subtle) return null;
  const digest = new Uint8Array(await subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>));
  return [...digest].map((b) => b.toString(16).padStart(2, '0')).join('');
}

/** Moving speed estimate over a short window. */
function speedMeter(now: () => number) {
  const samples: Array<[number, number]> = [];
  return (received: number): number => {
    const t = now();
    samples.push([t, received]);
    while (samples.length > 2 && t - samples[0][0] > 5000) samples.shift();
    const [t0, r0] = samples[0];
    return t > t0 ? ((received - r0) * 1000) / (t - t0) : 0;
  };
}

/**
 * Fetch every file of `preview` (from the store when it holds them, else from `source`).
 * Returns the files' bytes by name. Throws SourceError; `options.state` then holds what to resume.
 */
export async function downloadFiles(
  source: RemoteSource,
  preview: CheckpointPreview,
  options: DownloadOptions,
): Promise<Map<string, Uint8Array>> {
  const state = options.state ?? newDownloadState();
  const now = options.now ?? (() => Date.now());
  const retries = options.retries ?? 2;
  const total = preview.files.reduce((a, f) => a + f.size, 0);
  const meter = speedMeter(now);
  const doneBytes = () => [...state.finished.values()].reduce((a, b) => a + b.byteLength, 0);

  function report(file: RemoteFile, fileReceived: number, from: DownloadProgress['from']) {
    const received = doneBytes() + (state.finished.has(file.name) ? 0 : fileReceived);
    const bytesPerSecond = from === 'network' ? meter(received) : 0;
    options.onProgress?.({
      file: file.name,
      fileReceived,
      fileSize: file.size,
      received,
      total,
      bytesPerSecond,
      secondsLeft: bytesPerSecond > 0 ? (total - received) / bytesPerSecond : Infinity,
      filesDone: state.finished.size,
      filesTotal: preview.files.length,
      from,
    });
  }

  for (const file of preview.files) {
    if (options.signal?.aborted) throw cancelled(file.name);
    if (state.finished.has(file.name)) continue;
    const stored = options.store ? await options.store.readFile(options.sourceId, file).catch(() => null) : null;
    if (stored && stored.byteLength === file.size) {
      state.finished.set(file.name, stored);
      report(file, file.size, 'device');
      continue;
    }
    let attempt = 0;
    for (;;) {
      const resume = state.partial.get(file.name);
      try {
        const bytes = await source.download(file.name, {
          size: file.size,
          resume,
          signal: options.signal,
          onBytes: (received) => report(file, received, 'network'),
        });
        if (!bytes) {
          throw new SourceError(
            'not-found',
            file.name,
            `${file.name} disappeared from ${source.label} during the download.`,
            'The repository changed; open it again.',
          );
        }
        state.partial.delete(file.name);
        if (bytes.byteLength !== file.size) {
          throw new SourceError(
            'truncated',
            file.name,
            `${file.name} has ${bytes.byteLength} bytes, not the ${file.size} announced.`,
            'The file changed on the server; open the model again.',
          );
        }
        if (file.etag && SHA256_ETAG.test(file.etag)) {
          const digest = await sha256Hex(bytes);
          if (digest !== null && digest !== file.etag) {
            throw new SourceError(
              'truncated',
              file.name,
              `${file.name} arrived corrupted: its checksum does not match the server's.`,
              'Download it again (Retry).',
            );
          }
        }
        state.finished.set(file.name, bytes);
        if (options.store) await options.store.writeFile(options.sourceId, file, bytes);
        report(file, file.size, 'network');
        break;
      } catch (err) {
        if (err instanceof PartialDownload) {
          if (err.received > 0) state.partial.set(file.name, { into: err.into, received: err.received });
          if (err.reason === 'cancelled') throw cancelled(file.name);
        }
        const retryable =
          err instanceof SourceError &&
          (err.reason === 'network' || err.reason === 'truncated' || err.reason === 'server');
        if (!retryable || attempt >= retries || options.signal?.aborted) throw err;
        attempt++;
      }
    }
  }

  if (options.store) {
    const model: StoredModel = {
      source: options.sourceId,
      commit: preview.commit,
      files: preview.files.map(({ name, size, etag }) => ({ name, size, etag })),
      bytes: total,
      storedAt: now(),
      lastUsed: now(),
      summary: summarise(preview),
    };
    await options.store.commit(model);
  }
  return state.finished;
}

export function summarise(preview: CheckpointPreview): string {
  const s = preview.spec;
  const moe = s.moe ? `, ${s.moe.numExperts} experts top-${s.moe.topK}` : ', dense';
  return `${s.architecture}, ${s.numLayers} layers${moe}, ${(preview.params.total / 1e6).toFixed(0)} M parameters`;
}

/** Open a stored model without touching the network; null when it is not stored completely. */
export async function loadStored(store: ModelStore, sourceId: string): Promise<Checkpoint | null> {
  const manifest = await store.manifest(sourceId);
  if (!manifest) return null;
  const files = new Map<string, Uint8Array>();
  for (const f of manifest.files) {
    const bytes = await store.readFile(sourceId, f);
    if (!bytes || bytes.byteLength !== f.size) return null;
    files.set(f.name, bytes);
  }
  await store.touch(sourceId);
  return loadCheckpoint(memorySource(files, sourceId));
}

/** Download (or take from the store) and parse: the checkpoint, ready for a backend. */
export async function openRemote(
  source: RemoteSource,
  preview: CheckpointPreview,
  options: DownloadOptions,
): Promise<Checkpoint> {
  const files = await downloadFiles(source, preview, options);
  return loadCheckpoint(memorySource(files, preview.label));
}
