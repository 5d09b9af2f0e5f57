// Models kept on this device. The engine defines what a store must do; the browser's lives in the
// worker (Cache API), the CLI's on disk in the Hugging Face cache layout (src/cli/hubCache.ts).

export interface StoredFile {
  name: string;
  size: number;
  etag?: string;
}

/** A model whose files are all stored: written last, so a half-finished download is never listed. */
export interface StoredModel {
  /** The canonical source string: "hf:org/name@rev" or a base URL. */
  source: string;
  /** The commit a branch resolved to when it was downloaded (the hub says it), pinned from then on. */
  commit?: string;
  files: StoredFile[];
  bytes: number;
  storedAt: number;
  lastUsed: number;
  /** A few facts for the list: architecture, parameters, experts. */
  summary?: string;
}

export interface ModelStore {
  /** The stored model for a source, or null when it is not (completely) stored. */
  manifest(source: string): Promise<StoredModel | null>;
  readFile(source: string, file: StoredFile): Promise<Uint8Array | null>;
  /** Store one finished file. A full disk or quota throws SourceError('quota'). */
  writeFile(source: string, file: StoredFile, bytes: Uint8Array): Promise<void>;
  /** Record that every file of `model` is stored. */
  commit(model: StoredModel): Promise<void>;
  touch(source: string): Promise<void>;
  list(): Promise<StoredModel[]>;
  remove(source: string): Promise<void>;
  /** Bytes used by stored models and, when the platform says, bytes still available. */
  usage(): Promise<{ used: number; available?: number }>;
}

/** An in-memory store: for tests of the download logic and for sessions where storage is refused. */
export function memoryStore(): ModelStore {
  const manifests = new Map<string, StoredModel>();
  const blobs = new Map<string, Uint8Array>();
  const key = (source: string, f: StoredFile) => `${source}\n${f.name}\n${f.size}\n${f.etag ?? ''}`;
  return {
    async manifest(source) {
      return manifests.get(source) ?? null;
    },
    async readFile(source, file) {
      return blobs.get(key(source, file)) ?? null;
    },
    async writeFile(source, file, bytes) {
      blobs.set(key(source, file), bytes);
    },
    async commit(model) {
      manifests.set(model.source, model);
    },
    async touch(source) {
      const m = manifests.get(source);
      if (m) m.lastUsed = Date.now();
    },
    async list() {
      return [...manifests.values()];
    },
    async remove(source) {
      manifests.delete(source);
      for (const k of [...blobs.keys()]) if (k.startsWith(`${source}\n`)) blobs.delete(k);
    },
    async usage() {
      let used = 0;
      for (const b of blobs.values()) used += b.byteLength;
      return { used };
    },
  };
}
