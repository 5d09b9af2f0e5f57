// The part of the worker protocol that opens checkpoints from the hub, a URL or the reader's disk:
// look up (configs and headers only), download with progress into the device's store, cancel,
// retry, and the list of models kept on this device. Plain, structured-cloneable data only.
import type { DownloadProgress } from '../engine/source/download.ts';
import type { SourceFailure } from '../engine/source/errors.ts';
import type { StoredModel } from '../engine/source/store.ts';
import { DEFAULT_HUB_ENDPOINT, formatSourceRef, type SourceRef } from '../engine/source/ref.ts';

/** What "Look up" shows before a byte of weights moves. */
export interface SourcePreview {
  /** The source string as the person wrote it, canonical ("hf:org/name", "hf:org/name@rev", a base URL). */
  source: string;
  /** The key the device's store and `device:` model paths use (the source, plus the hub when it is not the default). */
  storeKey: string;
  host: string;
  /** "org/name" for hub sources; the folder path for URLs. */
  repository: string;
  revision: string | null;
  /** The commit the revision resolved to, when the server says (the hub does). */
  commit: string | null;
  architecture: string;
  numLayers: number;
  numExperts: number;
  topK: number;
  dtype: string;
  parametersTotal: number;
  parametersActive: number;
  downloadBytes: number;
  files: { name: string; size: number }[];
  hasTokenizer: boolean;
  /** Memory needed on each backend (bytes), the device's limit, and the refusal sentence when it does not fit. */
  memory: Record<'cpu' | 'webgpu', { bytes: number; refusal: { message: string; hint: string } | null }>;
  memoryLimit: { bytes: number; name: string };
  /** Every file is already on this device: opening it needs no network. */
  stored: boolean;
}

export interface SourceFailureMessage {
  reason: SourceFailure | 'checkpoint';
  message: string;
  hint?: string;
  file?: string;
  /** A retry continues where this stopped (finished files and partial bytes are kept). */
  canRetry: boolean;
}

export type SourceRequest =
  | { type: 'source-lookup'; requestId: number; source: string; endpoint: string }
  /**
   * Download every file (or take it from the device) and hold the checkpoint for a `load` of `device:<storeKey>`.
   * `deviceOnly`: never touch the network; a model not stored fails with reason 'offline-miss'.
   */
  | { type: 'source-fetch'; requestId: number; source: string; endpoint: string; deviceOnly?: boolean }
  | { type: 'source-cancel'; requestId: number }
  /** Files picked or dropped by the reader; held for a `load` of `device:local:<name>`. */
  | { type: 'source-files'; requestId: number; name: string; files: File[] }
  | { type: 'device-list'; requestId: number }
  | { type: 'device-remove'; requestId: number; storeKey: string };

export type SourceResponse =
  | { type: 'source-preview'; requestId: number; preview: SourcePreview }
  | { type: 'source-progress'; requestId: number; progress: DownloadProgress }
  /** Ready to load: `modelPath` is what a `load` request's baseUrl names. `warning`: stored nowhere (quota), it runs anyway. */
  | {
      type: 'source-fetched';
      requestId: number;
      source: string;
      modelPath: string;
      fromDevice: boolean;
      warning?: { message: string; hint: string };
    }
  /** `kept`: bytes of each file a Retry will not fetch again (finished files whole, a broken one up to where it stopped). */
  | {
      type: 'source-failed';
      requestId: number;
      source: string;
      failure: SourceFailureMessage;
      kept?: Record<string, number>;
    }
  | {
      type: 'device-models';
      requestId: number;
      models: StoredModel[];
      used: number;
      available: number | null;
      storage: boolean;
    };

export const SOURCE_REQUEST_TYPES: ReadonlySet<string> = new Set([
  'source-lookup',
  'source-fetch',
  'source-cancel',
  'source-files',
  'device-list',
  'device-remove',
]);

/** The `load` baseUrl of a checkpoint the worker holds or stores under `key`. */
export const devicePath = (key: string) => `device:${key}`;
/** The store key of a remote source: its canonical string, plus the hub when it is not the default one. */
export function storeKeyOf(ref: SourceRef, endpoint: string): string {
  const text = formatSourceRef(ref);
  if (ref.kind !== 'hf') return text;
  const origin = endpoint.replace(/\/+$/, '');
  return origin === DEFAULT_HUB_ENDPOINT ? text : `${text} via ${origin}`;
}
