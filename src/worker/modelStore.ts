// The browser's model store: the Cache API (available in workers), one cache for every model opened
// from the hub or a URL. Keys are synthetic https URLs under a reserved host, so they can never
// collide with a real request; each model's manifest is written after its last file.

import { SourceError } from '../engine/source/errors.ts';
import type { ModelStore, StoredFile, StoredModel } from '../engine/source/store.ts';

const CACHE_NAME = 'moe-models-v1';
const HOST = 'https://models.moe-playground.invalid/';

const fileKey = (source: string, f: StoredFile) =>
  `${HOST}file/${encodeURIComponent(source)}/${encodeURIComponent(f.name)}?size=${f.size}&etag=${encodeURIComponent(f.etag ?? '')}`;
const manifestKey = (source: string) => `${HOST}manifest/${encodeURIComponent(source)}`;

function quota(err: unknown, file: string): never {
  const name = (err as { name?: string } | null)?.name;
  if (name === 'QuotaExceededError') {
    throw new SourceError(
      'quota',
      file,
      `This browser has no room left to store ${file}.`,
      'Delete models you no longer need under "Models on this device", or free disk space, then retry.',
    );
  }
  throw new SourceError(
    'quota',
    file,
    `This browser refused to store ${file} (${(err as Error).message}).`,
    'Private windows and some settings forbid storage; the model still runs, it will just be downloaded again next time.',
  );
}

/** The Cache API store, or null where the browser offers no Cache API (then models are not kept). */
export async function cacheApiStore(): Promise<ModelStore | null> {
  if (typeof caches === 'undefined') return null;
  let cache: Cache;
  try {
    cache = await caches.open(CACHE_NAME);
  } catch {
    return null;
  }
  async function readManifest(source: string): Promise<StoredModel | null> {
    const r = await cache.match(manifestKey(source));
    return r ? ((await r.json()) as StoredModel) : null;
  }
  async function writeManifest(model: StoredModel): Promise<void> {
    try {
      await cache.put(
        manifestKey(model.source),
        new Response(JSON.stringify(model), { headers: { 'content-type': 'application/json' } }),
      );
    } catch (err) {
      quota(err, 'the model list');
    }
  }
  async function list(): Promise<StoredModel[]> {
    const out: StoredModel[] = [];
    for (const request of await cache.keys()) {
      if (!request.url.startsWith(`${HOST}manifest/`)) continue;
      const r = await cache.match(request);
      if (r) out.push((await r.json()) as StoredModel);
    }
    return out.sort((a, b) => b.lastUsed - a.lastUsed);
  }
  return {
    manifest: readManifest,
    list,
    async readFile(source, file) {
      const r = await cache.match(fileKey(source, file));
      if (!r) return null;
      const bytes = new Uint8Array(await r.arrayBuffer());
      return bytes.byteLength === file.size ? bytes : null;
    },
    async writeFile(source, file, bytes) {
      try {
        await cache.put(
          fileKey(source, file),
          new Response(bytes as Uint8Array<ArrayBuffer>, { headers: { 'content-length': String(bytes.byteLength) } }),
        );
      } catch (err) {
        quota(err, file.name);
      }
    },
    commit: writeManifest,
    async touch(source) {
      const m = await readManifest(source);
      if (m) await writeManifest({ ...m, lastUsed: Date.now() }).catch(() => {});
    },
    async remove(source) {
      const prefix = `${HOST}file/${encodeURIComponent(source)}/`;
      for (const request of await cache.keys()) {
        if (request.url.startsWith(prefix) || request.url === manifestKey(source)) await cache.delete(request);
      }
    },
    async usage() {
      let used = 0;
      for (const m of await list()) used += m.bytes;
      const estimate = await navigator.storage?.estimate?.().catch(() => undefined);
      const available =
        estimate?.quota !== undefined && estimate.usage !== undefined ? estimate.quota - estimate.usage : undefined;
      return { used, available };
    },
  };
}
