// Opening a model from the hub, a URL or the reader's disk: the page's state and its actions,
// outside React. Plain data only; the worker does the work (src/worker/sourceJobs.ts) and its
// replies enter through `receive`. A fetched checkpoint is installed by the page's ordinary model
// load (`port.openModel`), so a failure anywhere keeps the model already loaded.
import { createStore, type StoreApi } from 'zustand/vanilla';
import type { DownloadProgress } from '../engine/source/download.ts';
import type { SourceError } from '../engine/source/errors.ts';
import { DEFAULT_HUB_ENDPOINT, isLoopbackHost, parseSourceRef } from '../engine/source/ref.ts';
import type { StoredModel } from '../engine/source/store.ts';
import type { WorkerRequest, WorkerResponse } from '../worker/protocol.ts';
import { devicePath, type SourceFailureMessage, type SourcePreview } from '../worker/sourceProtocol.ts';

/** A model opened from files on the reader's disk: its id, never written into a link. */
export const LOCAL_PREFIX = 'local:';
export const isLocalModel = (id: string) => id.startsWith(LOCAL_PREFIX);

/** True for a source string that names a remote checkpoint (hf:… or an http(s) address). */
export function isRemoteSource(text: string): boolean {
  if (!/^(hf:|https?:\/\/)/i.test(text)) return false;
  try {
    const kind = parseSourceRef(text).kind;
    return kind === 'hf' || kind === 'url';
  } catch {
    return false;
  }
}

/**
 * The hub the page fetches `hf:` models from: the site's setting (VITE_HUB_ENDPOINT at build time,
 * default https://huggingface.co), or `?hub=ORIGIN` when that origin is on this machine (development
 * and tests). Any other `?hub=` is ignored with a notice, so a link cannot point the page at a stranger's server.
 */
export function hubEndpointFor(
  search: string,
  siteSetting: string | undefined,
): { endpoint: string; notice: string | null } {
  const site = (siteSetting || DEFAULT_HUB_ENDPOINT).replace(/\/+$/, '');
  const asked = new URLSearchParams(search).get('hub');
  if (asked === null || asked === '') return { endpoint: site, notice: null };
  let url: URL | null = null;
  try {
    url = new URL(asked);
  } catch {
    url = null;
  }
  if (
    url &&
    (url.protocol === 'http:' || url.protocol === 'https:') &&
    isLoopbackHost(url.hostname) &&
    !url.username &&
    !url.password
  ) {
    return { endpoint: url.origin, notice: null };
  }
  const shown = JSON.stringify(asked.length > 60 ? `${asked.slice(0, 60)}…` : asked);
  return {
    endpoint: site,
    notice: `The address asks for the hub ${shown}; only a hub on this machine (localhost) can be set in the address, so ${new URL(site).host} is used.`,
  };
}

export interface FileProgress {
  received: number;
  size: number;
}

export interface DownloadView {
  requestId: number;
  source: string;
  status: 'running' | 'failed' | 'done';
  progress: DownloadProgress | null;
  /** Bytes per file so far (files not started yet are absent). */
  files: Record<string, FileProgress>;
  failure: SourceFailureMessage | null;
  /** Opened, but with something to say (not stored: the quota was full). */
  warning: { message: string; hint: string } | null;
  fromDevice: boolean;
}

export type LookupView =
  | { status: 'idle' }
  | { status: 'looking'; requestId: number; source: string }
  | { status: 'preview'; requestId: number; preview: SourcePreview }
  | { status: 'failed'; requestId: number; source: string; failure: SourceFailureMessage };

export interface DeviceView {
  models: StoredModel[];
  used: number;
  available: number | null;
  /** false where the browser keeps nothing (no Cache API). */
  storage: boolean;
}

export interface SourcesState {
  endpoint: string;
  lookup: LookupView;
  download: DownloadView | null;
  /** A link's remote model, waiting for the reader to say yes before anything is downloaded. */
  linkAsk: { source: string } | null;
  /** The last pick or drop of files from the disk, while it is checked and when it failed. */
  local: { requestId: number; name: string; failure: SourceFailureMessage | null } | null;
  device: DeviceView | null;
}

/** What the actions need from the page: the worker, and the ordinary way to install a model. */
export interface SourcePort {
  send(request: WorkerRequest): void;
  newRequestId(): number;
  openModel(model: { id: string; name: string; path: string }): void;
}

export function createSourcesStore(endpoint: string): StoreApi<SourcesState> {
  return createStore<SourcesState>()(() => ({
    endpoint,
    lookup: { status: 'idle' },
    download: null,
    linkAsk: null,
    local: null,
    device: null,
  }));
}

function invalid(text: string, err: unknown): SourceFailureMessage {
  const e = err as SourceError;
  return {
    reason: 'invalid',
    message: e?.message ?? `"${text}" is not a model source.`,
    hint: e?.hint,
    canRetry: false,
  };
}

/** The source string and hub of a store key ("hf:org/name" or "hf:org/name via http://127.0.0.1:PORT"). */
export function sourceOfStoreKey(key: string): { source: string; endpoint: string | null } {
  const at = key.indexOf(' via ');
  return at < 0 ? { source: key, endpoint: null } : { source: key.slice(0, at), endpoint: key.slice(at + 5) };
}

export type SourceActions = ReturnType<typeof createSourceActions>;

export function createSourceActions(store: StoreApi<SourcesState>, port: SourcePort) {
  const set = store.setState;
  const get = store.getState;

  /** What to do when a link's model is not on this device (the page then opens another model and asks). */
  let whenMissing: (() => void) | null = null;

  function refreshDevice(): void {
    port.send({ type: 'device-list', requestId: port.newRequestId() });
  }

  /** Read the configs and headers (no weights) and say what the model is and what it needs. */
  function lookup(text: string): void {
    // "org/name" is taken as the hub repository it looks like.
    const source = /^[A-Za-z0-9][\w.-]*\/[\w.-]+(@\S+)?$/.test(text.trim()) ? `hf:${text.trim()}` : text.trim();
    const requestId = port.newRequestId();
    if (!isRemoteSource(source)) {
      let failure: SourceFailureMessage;
      try {
        parseSourceRef(source);
        failure = {
          reason: 'invalid',
          message: `"${source}" is a built-in model id, not a hub repository or a web address.`,
          hint: 'Pick built-in models from the list above; here write hf:ORG/NAME or an https:// address.',
          canRetry: false,
        };
      } catch (err) {
        failure = invalid(source, err);
      }
      set({ lookup: { status: 'failed', requestId, source, failure } });
      return;
    }
    set({ lookup: { status: 'looking', requestId, source } });
    port.send({ type: 'source-lookup', requestId, source, endpoint: get().endpoint });
  }

  /** Download (or take from this device) and open. Also the Retry: the worker continues where it stopped. */
  function download(source: string): void {
    const requestId = port.newRequestId();
    const previous = get().download;
    const files = previous && previous.source === source ? previous.files : {};
    set({
      download: {
        requestId,
        source,
        status: 'running',
        progress: null,
        files,
        failure: null,
        warning: null,
        fromDevice: false,
      },
      linkAsk: null,
    });
    port.send({ type: 'source-fetch', requestId, source, endpoint: get().endpoint });
  }

  function cancel(): void {
    const d = get().download;
    if (d && d.status === 'running') port.send({ type: 'source-cancel', requestId: d.requestId });
  }

  /**
   * A link names a remote model: open it from this device when it is stored (no network), else show
   * host, repository, revision and size and ask. The lookup reads only configs and headers.
   */
  function askForLink(source: string, onMissing?: () => void): void {
    const requestId = port.newRequestId();
    whenMissing = onMissing ?? null;
    set({
      linkAsk: { source },
      download: {
        requestId,
        source,
        status: 'running',
        progress: null,
        files: {},
        failure: null,
        warning: null,
        fromDevice: true,
      },
    });
    port.send({ type: 'source-fetch', requestId, source, endpoint: get().endpoint, deviceOnly: true });
  }

  function dismissLink(): void {
    set({ linkAsk: null });
  }

  /** Files picked or dropped: the worker checks config.json, then the page loads them like any model. */
  function openFiles(name: string, files: File[]): void {
    const requestId = port.newRequestId();
    set({ local: { requestId, name, failure: null } });
    port.send({ type: 'source-files', requestId, name, files });
  }

  function openStored(model: StoredModel): void {
    const { source } = sourceOfStoreKey(model.source);
    port.openModel({ id: source, name: source, path: devicePath(model.source) });
  }

  function removeStored(key: string): void {
    port.send({ type: 'device-remove', requestId: port.newRequestId(), storeKey: key });
  }

  function receive(message: WorkerResponse): void {
    const state = get();
    switch (message.type) {
      case 'source-preview':
        if (state.lookup.status === 'looking' && state.lookup.requestId === message.requestId) {
          set({ lookup: { status: 'preview', requestId: message.requestId, preview: message.preview } });
        }
        return;
      case 'source-progress': {
        const d = state.download;
        if (!d || d.requestId !== message.requestId) return;
        const p = message.progress;
        set({
          download: {
            ...d,
            progress: p,
            fromDevice: p.from === 'device',
            files: { ...d.files, [p.file]: { received: p.fileReceived, size: p.fileSize } },
          },
        });
        return;
      }
      case 'source-fetched': {
        const d = state.download;
        if (d && d.requestId === message.requestId) {
          set({
            download: { ...d, status: 'done', fromDevice: message.fromDevice, warning: message.warning ?? null },
            linkAsk: null,
          });
          port.openModel({ id: message.source, name: message.source, path: message.modelPath });
          refreshDevice();
        } else if (state.local && state.local.requestId === message.requestId) {
          set({ local: null });
          port.openModel({
            id: message.source,
            name: message.source.slice(LOCAL_PREFIX.length),
            path: message.modelPath,
          });
        }
        return;
      }
      case 'source-failed': {
        const d = state.download;
        if (d && d.requestId === message.requestId) {
          // A link's model not on this device: now look it up, to show its size and ask.
          if (state.linkAsk && message.failure.reason === 'offline-miss' && d.fromDevice) {
            set({ download: null });
            lookup(state.linkAsk.source);
            whenMissing?.();
            whenMissing = null;
            return;
          }
          const files = { ...d.files };
          for (const [name, received] of Object.entries(message.kept ?? {}))
            files[name] = { received, size: files[name]?.size ?? received };
          set({ download: { ...d, status: 'failed', failure: message.failure, files } });
        } else if (state.lookup.status === 'looking' && state.lookup.requestId === message.requestId) {
          set({
            lookup: {
              status: 'failed',
              requestId: message.requestId,
              source: message.source,
              failure: message.failure,
            },
          });
        } else if (state.local && state.local.requestId === message.requestId) {
          set({ local: { ...state.local, failure: message.failure } });
        }
        return;
      }
      case 'device-models':
        set({
          device: {
            models: message.models,
            used: message.used,
            available: message.available,
            storage: message.storage,
          },
        });
        return;
      default:
        return;
    }
  }

  return {
    lookup,
    download,
    cancel,
    askForLink,
    dismissLink,
    openFiles,
    openStored,
    removeStored,
    refreshDevice,
    receive,
  };
}
