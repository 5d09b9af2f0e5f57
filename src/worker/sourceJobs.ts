// The worker's side of opening a checkpoint from the hub, a URL or the reader's disk. It looks a
// source up (configs and safetensors headers only), downloads it into the device's store with
// progress, cancel and resume, and then serves it to the engine session as `device:<key>`, so the
// ordinary `load` request installs it (and a failed one keeps the model already loaded).
import { specFromConfig } from '../engine/format/config.ts';
import { filesSource, memorySource } from '../engine/format/sources.ts';
import { CheckpointError } from '../engine/format/errors.ts';
import type { CheckpointSource } from '../engine/types.ts';
import {
  downloadFiles,
  newDownloadState,
  type DownloadState,
  type DownloadProgress,
} from '../engine/source/download.ts';
import { SourceError } from '../engine/source/errors.ts';
import { httpSource, type RemoteSource } from '../engine/source/http.ts';
import { inspectRemote, type CheckpointPreview } from '../engine/source/inspect.ts';
import { checkFits, memoryNeeded } from '../engine/source/memory.ts';
import { formatSourceRef, hubBaseUrl, parseSourceRef, type SourceRef } from '../engine/source/ref.ts';
import type { ModelStore, StoredFile, StoredModel } from '../engine/source/store.ts';
import {
  devicePath,
  storeKeyOf,
  type SourceFailureMessage,
  type SourcePreview,
  type SourceRequest,
  type SourceResponse,
} from './sourceProtocol.ts';

type Post = (message: SourceResponse) => void;

export interface SourceJobOptions {
  /** The device's store (the Cache API in the worker); null where the browser keeps nothing. */
  store: () => Promise<ModelStore | null>;
  fetch?: typeof fetch;
  isOnline?: () => boolean;
  /** The memory a model may need on this device, and how to name that limit in a sentence. */
  memoryLimit?: () => { bytes: number; name: string };
  /** Milliseconds between progress messages for one file. */
  progressInterval?: number;
}

const GiB = 2 ** 30;

/** What the browser says about the device's memory (navigator.deviceMemory, in GB, rounded down and capped by the browser). */
export function browserMemoryLimit(): { bytes: number; name: string } {
  const reported = (globalThis.navigator as { deviceMemory?: number } | undefined)?.deviceMemory;
  if (typeof reported === 'number' && reported > 0) {
    return { bytes: reported * GiB, name: 'the memory this browser reports for this device' };
  }
  return {
    bytes: 4 * GiB,
    name: 'the 4 GB this page assumes when the browser does not say how much memory the device has',
  };
}

function remoteRef(text: string): SourceRef & { kind: 'hf' | 'url' } {
  const ref = parseSourceRef(text);
  if (ref.kind !== 'hf' && ref.kind !== 'url') {
    throw new SourceError(
      'invalid',
      text,
      `"${text}" is a built-in model, not a hub repository or a web address.`,
      'Pick it from the model list, or write hf:ORG/NAME or an https:// address.',
    );
  }
  return ref;
}

function parseConfig(bytes: Uint8Array): unknown {
  try {
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch (err) {
    throw new CheckpointError(
      'config.json',
      `the file is not valid JSON (${(err as Error).message}).`,
      'Pick the checkpoint folder again, or download it again.',
    );
  }
}

function failureOf(error: unknown): SourceFailureMessage {
  if (error instanceof SourceError) {
    const canRetry = ['network', 'server', 'truncated', 'cancelled', 'quota', 'offline-miss'].includes(error.reason);
    return { reason: error.reason, message: error.message, hint: error.hint, file: error.file, canRetry };
  }
  if (error instanceof CheckpointError)
    return { reason: 'checkpoint', message: error.message, hint: error.hint, file: error.file, canRetry: false };
  const e = error as { message?: string; hint?: string };
  return {
    reason: 'checkpoint',
    message: e?.message ?? String(error),
    hint: typeof e?.hint === 'string' ? e.hint : undefined,
    canRetry: false,
  };
}

/**
 * A store that keeps going when the browser refuses to store more: the first refusal is remembered
 * (its sentence is shown), the partial copy removed, and the model still opens from memory.
 */
function forgivingStore(store: ModelStore, key: string): { store: ModelStore; refused: () => SourceError | null } {
  let refused: SourceError | null = null;
  return {
    refused: () => refused,
    store: {
      ...store,
      async writeFile(source: string, file: StoredFile, bytes: Uint8Array) {
        if (refused) return;
        try {
          await store.writeFile(source, file, bytes);
        } catch (err) {
          if (!(err instanceof SourceError) || err.reason !== 'quota') throw err;
          refused = err;
          await store.remove(key).catch(() => undefined);
        }
      },
      async commit(model: StoredModel) {
        if (!refused) await store.commit(model);
      },
    },
  };
}

export class SourceJobs {
  /** Checkpoint files the store could not keep (no Cache API, or a full quota), and picked local files. */
  private readonly held = new Map<string, CheckpointSource>();
  /** What survives a failed or cancelled download, per store key, so Retry continues. */
  private readonly resume = new Map<string, DownloadState>();
  private readonly previews = new Map<string, CheckpointPreview>();
  private running: { requestId: number; abort: AbortController } | null = null;
  private storePromise: Promise<ModelStore | null> | null = null;

  constructor(
    private readonly post: Post,
    private readonly options: SourceJobOptions,
  ) {}

  private store(): Promise<ModelStore | null> {
    this.storePromise ??= this.options.store().catch(() => null);
    return this.storePromise;
  }

  private remote(ref: SourceRef & { kind: 'hf' | 'url' }, endpoint: string, label: string): RemoteSource {
    const base = ref.kind === 'hf' ? hubBaseUrl(ref.repo, ref.revision, endpoint) : ref.base;
    return httpSource(base, { label, fetch: this.options.fetch, isOnline: this.options.isOnline });
  }

  /** The checkpoint behind a `device:` model path, or null for any other path. */
  sourceFor(baseUrl: string): CheckpointSource | null {
    if (!baseUrl.startsWith('device:')) return null;
    const key = baseUrl.slice('device:'.length);
    const held = this.held.get(key);
    if (held) return held;
    return {
      label: key,
      readFile: async (name) => {
        const store = await this.store();
        const manifest = store && (await store.manifest(key));
        if (!store || !manifest) {
          throw new SourceError(
            'offline-miss',
            key,
            `${key} is no longer stored on this device.`,
            'Open it again from its source; it will be downloaded.',
          );
        }
        const file = manifest.files.find((f) => f.name === name);
        if (!file) return null;
        const bytes = await store.readFile(key, file);
        if (!bytes) {
          throw new SourceError(
            'truncated',
            name,
            `The stored copy of ${key} has lost ${name}.`,
            'Delete it under "Models on this device" and open it again.',
          );
        }
        return bytes;
      },
    };
  }

  async handle(request: SourceRequest): Promise<void> {
    switch (request.type) {
      case 'source-lookup':
        return this.lookup(request);
      case 'source-fetch':
        return this.fetch(request);
      case 'source-cancel':
        if (this.running?.requestId === request.requestId) this.running.abort.abort();
        return;
      case 'source-files':
        return this.files(request);
      case 'device-list':
        return this.list(request.requestId);
      case 'device-remove': {
        const store = await this.store();
        await store?.remove(request.storeKey);
        return this.list(request.requestId);
      }
    }
  }

  private async lookup(request: Extract<SourceRequest, { type: 'source-lookup' }>): Promise<void> {
    let source = request.source;
    try {
      const ref = remoteRef(request.source);
      source = formatSourceRef(ref);
      const key = storeKeyOf(ref, request.endpoint);
      const remote = this.remote(ref, request.endpoint, source);
      const preview = await inspectRemote(remote);
      this.previews.set(key, preview);
      const store = await this.store();
      const stored = store ? (await store.manifest(key)) !== null : false;
      const limit = (this.options.memoryLimit ?? browserMemoryLimit)();
      const memoryOn = (backend: 'cpu' | 'webgpu') => {
        const need = memoryNeeded(preview.spec, preview.weightBytes, backend);
        try {
          checkFits(need, limit.bytes, backend, limit.name, source);
          return { bytes: need.total, refusal: null };
        } catch (err) {
          const e = err as SourceError;
          return { bytes: need.total, refusal: { message: e.message, hint: e.hint } };
        }
      };
      const spec = preview.spec;
      const base = new URL(remote.base);
      const result: SourcePreview = {
        source,
        storeKey: key,
        host: ref.kind === 'hf' ? new URL(request.endpoint).host : base.host,
        repository: ref.kind === 'hf' ? ref.repo : base.pathname,
        revision: ref.kind === 'hf' ? ref.revision : null,
        commit: preview.commit ?? null,
        architecture: spec.architecture,
        numLayers: spec.numLayers,
        numExperts: spec.moe?.numExperts ?? 0,
        topK: spec.moe?.topK ?? 0,
        dtype: spec.dtype,
        parametersTotal: preview.params.total,
        parametersActive: preview.params.activeFor({ kind: 'native' }),
        downloadBytes: preview.downloadBytes,
        files: preview.files.map(({ name, size }) => ({ name, size })),
        hasTokenizer: preview.hasTokenizer,
        memory: { cpu: memoryOn('cpu'), webgpu: memoryOn('webgpu') },
        memoryLimit: limit,
        stored,
      };
      this.post({ type: 'source-preview', requestId: request.requestId, preview: result });
    } catch (error) {
      this.post({
        type: 'source-failed',
        requestId: request.requestId,
        source,
        failure: { ...failureOf(error), canRetry: false },
      });
    }
  }

  private async fetch(request: Extract<SourceRequest, { type: 'source-fetch' }>): Promise<void> {
    this.running?.abort.abort();
    const abort = new AbortController();
    this.running = { requestId: request.requestId, abort };
    let source = request.source;
    let key = '';
    try {
      const ref = remoteRef(request.source);
      source = formatSourceRef(ref);
      key = storeKeyOf(ref, request.endpoint);
      const store = await this.store();
      // Stored completely: open from the device, no network at all.
      if (store && (await store.manifest(key))) {
        await store.touch(key).catch(() => undefined);
        this.post({
          type: 'source-fetched',
          requestId: request.requestId,
          source,
          modelPath: devicePath(key),
          fromDevice: true,
        });
        return;
      }
      if (request.deviceOnly) {
        throw new SourceError('offline-miss', source, `${source} is not stored on this device.`, 'Download it first.');
      }
      const remote = this.remote(ref, request.endpoint, source);
      const preview = this.previews.get(key) ?? (await inspectRemote(remote, abort.signal));
      this.previews.set(key, preview);
      const state = this.resume.get(key) ?? newDownloadState();
      this.resume.set(key, state);
      const kept = store ? forgivingStore(store, key) : null;
      const interval = this.options.progressInterval ?? 100;
      let lastPost = 0;
      let lastFile = '';
      const files = await downloadFiles(remote, preview, {
        sourceId: key,
        store: kept?.store,
        state,
        signal: abort.signal,
        onProgress: (progress: DownloadProgress) => {
          const now = Date.now();
          const fileDone = progress.fileReceived === progress.fileSize;
          if (progress.file === lastFile && !fileDone && now - lastPost < interval) return;
          lastPost = now;
          lastFile = progress.file;
          this.post({ type: 'source-progress', requestId: request.requestId, progress });
        },
      });
      this.resume.delete(key);
      const refused = kept?.refused() ?? null;
      // Kept by the store: the load reads it back from there. Otherwise the engine takes it from memory.
      if (!store || refused) this.held.set(key, memorySource(files, source));
      else this.held.delete(key);
      this.post({
        type: 'source-fetched',
        requestId: request.requestId,
        source,
        modelPath: devicePath(key),
        fromDevice: false,
        warning: refused
          ? {
              message: `${source} opened, but it could not be kept on this device: ${refused.message}`,
              hint: refused.hint,
            }
          : !store
            ? {
                message: `${source} opened, but this browser keeps no models (no Cache API here): the next visit downloads it again.`,
                hint: 'A normal (not private) window keeps models on the device.',
              }
            : undefined,
      });
    } catch (error) {
      const kept: Record<string, number> = {};
      const state = this.resume.get(key);
      for (const [name, bytes] of state?.finished ?? []) kept[name] = bytes.byteLength;
      for (const [name, part] of state?.partial ?? []) kept[name] = part.received;
      this.post({ type: 'source-failed', requestId: request.requestId, source, failure: failureOf(error), kept });
    } finally {
      if (this.running?.abort === abort) this.running = null;
    }
  }

  private async files(request: Extract<SourceRequest, { type: 'source-files' }>): Promise<void> {
    const key = `local:${request.name}`;
    const source = filesSource(request.files, request.name);
    try {
      // Read config.json now, so a folder that is not a checkpoint is refused before anything changes.
      const config = await source.readFile('config.json');
      if (!config) {
        throw new CheckpointError(
          request.name,
          `${request.name} has no config.json, so it is not a Hugging Face checkpoint folder.`,
          'Pick the folder that holds config.json, the .safetensors files and tokenizer.json (or select those files together).',
        );
      }
      specFromConfig(parseConfig(config), 'config.json');
      this.held.set(key, source);
      this.post({
        type: 'source-fetched',
        requestId: request.requestId,
        source: key,
        modelPath: devicePath(key),
        fromDevice: true,
      });
    } catch (error) {
      this.post({
        type: 'source-failed',
        requestId: request.requestId,
        source: key,
        failure: { ...failureOf(error), canRetry: false },
      });
    }
  }

  private async list(requestId: number): Promise<void> {
    const store = await this.store();
    if (!store) {
      this.post({ type: 'device-models', requestId, models: [], used: 0, available: null, storage: false });
      return;
    }
    const [models, usage] = await Promise.all([store.list(), store.usage()]);
    this.post({
      type: 'device-models',
      requestId,
      models,
      used: usage.used,
      available: usage.available ?? null,
      storage: true,
    });
  }
}
