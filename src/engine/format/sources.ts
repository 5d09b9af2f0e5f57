// CheckpointSource implementations that work in the browser, the worker and Node (no Node imports).

import type { CheckpointSource } from '../types.ts';
import { CheckpointError } from './errors.ts';

/** Files held in memory (tests, exported checkpoints, already-read uploads). */
export function memorySource(files: ReadonlyMap<string, Uint8Array>, label = 'memory'): CheckpointSource {
  return {
    label,
    async readFile(name) {
      return files.get(name) ?? null;
    },
  };
}

/** The part of the DOM File interface we need, so dropped files work without DOM types here. */
export interface NamedBlob {
  readonly name: string;
  readonly webkitRelativePath?: string;
  arrayBuffer(): Promise<ArrayBuffer>;
}

/** Dropped or picked files; a folder's files are matched by their name relative to the folder. */
export function filesSource(files: Iterable<NamedBlob>, label = 'dropped files'): CheckpointSource {
  const byName = new Map<string, NamedBlob>();
  for (const file of files) {
    const relative = file.webkitRelativePath ? file.webkitRelativePath.split('/').slice(1).join('/') : '';
    byName.set(relative || file.name, file);
    if (!byName.has(file.name)) byName.set(file.name, file);
  }
  return {
    label,
    async readFile(name) {
      const file = byName.get(name);
      return file ? new Uint8Array(await file.arrayBuffer()) : null;
    },
  };
}

/** Reads a response body in chunks so a long download can report its progress. */
async function readBody(
  response: Response,
  onProgress?: (received: number, total: number | null) => void,
): Promise<Uint8Array> {
  const length = Number(response.headers.get('content-length'));
  // A compressed reply's content-length counts compressed bytes: no total then.
  const total = Number.isFinite(length) && length > 0 && !response.headers.get('content-encoding') ? length : null;
  if (!onProgress || !response.body) return new Uint8Array(await response.arrayBuffer());
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let received = 0;
  onProgress(0, total);
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    received += value.byteLength;
    onProgress(received, total);
  }
  if (chunks.length === 1) return chunks[0];
  const out = new Uint8Array(received);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}

/**
 * Files under a URL prefix, e.g. "https://huggingface.co/org/model/resolve/main/" or "/models/tiny/".
 * A 404, or an HTML page where a checkpoint file was asked for (what Vite's servers and many
 * single-page hosts answer for a missing file, with status 200), counts as a missing file.
 */
export function urlSource(baseUrl: string, fetchFn: typeof fetch = (...args) => fetch(...args)): CheckpointSource {
  const base = baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`;
  return {
    label: baseUrl,
    async readFile(name, onProgress) {
      const url = base + name.split('/').map(encodeURIComponent).join('/');
      let response: Response;
      try {
        response = await fetchFn(url);
      } catch (err) {
        throw new CheckpointError(
          name,
          `could not download ${url} (${(err as Error).message}).`,
          'Check the address and your connection; a server on another site must allow cross-origin requests (CORS).',
        );
      }
      if (response.status === 404) return null;
      if (!response.ok) {
        const hint =
          response.status === 401 || response.status === 403
            ? 'The model may be gated or private; download it and open the folder instead.'
            : 'The server refused the request; try again later or download the files.';
        throw new CheckpointError(
          name,
          `${url} answered HTTP ${response.status}${response.statusText ? ` ${response.statusText}` : ''}.`,
          hint,
        );
      }
      const type = (response.headers.get('content-type') ?? '').toLowerCase();
      if (type.startsWith('text/html') && !/\.html?$/i.test(name)) {
        await response.body?.cancel().catch(() => undefined);
        return null;
      }
      try {
        return await readBody(response, onProgress);
      } catch (err) {
        throw new CheckpointError(
          name,
          `the download of ${url} broke off (${(err as Error).message}).`,
          'Check your connection and try again.',
        );
      }
    },
  };
}
