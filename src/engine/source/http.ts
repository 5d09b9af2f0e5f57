// Files under an http(s) base URL (a Hugging Face resolve URL, any static host, the dev server).
// Works in the browser, the worker and Node (global fetch). Redirects are followed by fetch, as
// huggingface_hub follows the hub's 302 to its file host.
//
// A 200 is never trusted alone: static servers (Vite's among them) answer a missing file with their
// index.html and status 200. A file counts as present only when its content can be what it should be.

import type { CheckpointSource } from '../types.ts';
import { SourceError, cancelled, isAbort } from './errors.ts';
import { fileUrl } from './ref.ts';

export interface FileStat {
  /** Bytes in the whole file. */
  size: number;
  /** The server's entity tag without quotes (the hub's is the file's sha256 for large files). */
  etag?: string;
  /** The hub's X-Repo-Commit: the commit a branch or tag resolved to. */
  commit?: string;
}

export interface FileDownloadOptions {
  /** The file's size when known (from stat); the buffer is allocated once at this size. */
  size?: number;
  /** Resume: bytes 0..resume.received of `resume.into` are already here. */
  resume?: { into: Uint8Array; received: number };
  /** Called as bytes arrive: bytes of this file so far, and its size. */
  onBytes?: (received: number, size: number) => void;
  signal?: AbortSignal;
}

/** A partly received file that a retry continues instead of starting over. */
export class PartialDownload extends SourceError {
  readonly into: Uint8Array;
  readonly received: number;
  constructor(base: SourceError, into: Uint8Array, received: number) {
    super(base.reason, base.file, base.message, base.hint);
    this.into = into;
    this.received = received;
  }
}

export interface RemoteSource extends CheckpointSource {
  readonly base: string;
  /** Size and identity of a file without downloading it; null when absent. */
  stat(name: string, signal?: AbortSignal): Promise<FileStat | null>;
  /** Bytes [start, end) of a file; null when the file is absent. */
  readRange(name: string, start: number, end: number, signal?: AbortSignal): Promise<Uint8Array | null>;
  /** The whole file, streamed into one buffer of its final size; null when absent. */
  download(name: string, options?: FileDownloadOptions): Promise<Uint8Array | null>;
}

export interface HttpSourceOptions {
  fetch?: typeof fetch;
  label?: string;
  /** Whether the device is online (navigator.onLine in a browser), to tell "offline" from a refusal. */
  isOnline?: () => boolean;
}

const HINT_RETRY = 'Check your connection and try again; files already downloaded are kept.';

function unquote(etag: string | null): string | undefined {
  if (!etag) return undefined;
  return etag.replace(/^W\//, '').replace(/^"|"$/g, '') || undefined;
}

function looksLikeHtml(response: Response, name: string): boolean {
  if (name.endsWith('.html')) return false;
  const type = response.headers.get('content-type') ?? '';
  return /text\/html/i.test(type);
}

/** What the server is, for sentences: "huggingface.co", "127.0.0.1:8000". */
function hostOf(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return url;
  }
}

export function httpSource(base: string, options: HttpSourceOptions = {}): RemoteSource {
  const baseUrl = base.endsWith('/') ? base : `${base}/`;
  const doFetch = options.fetch ?? ((...args: Parameters<typeof fetch>) => fetch(...args));
  const label = options.label ?? baseUrl;

  async function request(name: string, init: RequestInit): Promise<Response | null> {
    const url = fileUrl(baseUrl, name);
    let response: Response;
    try {
      response = await doFetch(url, { ...init, credentials: 'omit', redirect: 'follow' });
    } catch (err) {
      if (isAbort(err) || init.signal?.aborted) throw cancelled(name);
      const offline = options.isOnline && !options.isOnline();
      if (offline) {
        throw new SourceError(
          'network',
          name,
          `This device is offline, so ${name} could not be downloaded from ${hostOf(url)}.`,
          'Connect to the internet, or open a model already stored on this device.',
        );
      }
      throw new SourceError(
        'network',
        name,
        `${hostOf(url)} could not be reached for ${name} (${(err as Error).message}).`,
        'Check the address and your connection. A server on another site must also allow this page to read its files (CORS); the Hugging Face hub does.',
      );
    }
    if (response.status === 404 || response.status === 410) return null;
    if (response.status === 401 || response.status === 403) {
      throw new SourceError(
        'unauthorized',
        name,
        `${hostOf(url)} refused ${name} (HTTP ${response.status}): the model is gated or private.`,
        'Accept its licence on the model page and download it, then open the folder from your disk; links never carry passwords or tokens.',
      );
    }
    if (response.status === 416) {
      throw new SourceError(
        'truncated',
        name,
        `${hostOf(url)} has fewer bytes of ${name} than expected.`,
        'The file changed on the server; delete the stored copy and download it again.',
      );
    }
    if (!response.ok) {
      throw new SourceError(
        'server',
        name,
        `${hostOf(url)} answered HTTP ${response.status}${response.statusText ? ` ${response.statusText}` : ''} for ${name}.`,
        'The server may be busy; try again in a minute.',
      );
    }
    if (looksLikeHtml(response, name)) {
      // A web page where a model file should be: the server's "not found" page with status 200.
      await response.body?.cancel().catch(() => {});
      return null;
    }
    return response;
  }

  /** Total size from Content-Range ("bytes 0-7/1234") or Content-Length of a full answer. */
  function sizeOf(response: Response): number | undefined {
    const range = response.headers.get('content-range');
    const m = range && /\/(\d+)\s*$/.exec(range);
    if (m) return Number(m[1]);
    if (response.status === 200) {
      const linked = response.headers.get('x-linked-size');
      if (linked && /^\d+$/.test(linked)) return Number(linked);
      const length = response.headers.get('content-length');
      if (length && /^\d+$/.test(length)) return Number(length);
    }
    return undefined;
  }

  /** Read at most `limit` bytes of a body, then stop reading (the server may be sending a whole file). */
  async function readPrefix(response: Response, limit: number, name: string): Promise<Uint8Array> {
    const out = new Uint8Array(limit);
    let n = 0;
    const reader = response.body?.getReader();
    if (!reader) return out.subarray(0, 0);
    try {
      while (n < limit) {
        const { done, value } = await reader.read();
        if (done) break;
        const take = Math.min(value.byteLength, limit - n);
        out.set(value.subarray(0, take), n);
        n += take;
      }
    } catch (err) {
      if (isAbort(err)) throw cancelled(name);
      throw new SourceError(
        'network',
        name,
        `the connection broke while reading ${name} (${(err as Error).message}).`,
        HINT_RETRY,
      );
    } finally {
      if (n >= limit) await reader.cancel().catch(() => {});
    }
    return out.subarray(0, n);
  }

  async function readRange(name: string, start: number, end: number, signal?: AbortSignal): Promise<Uint8Array | null> {
    if (end <= start) return new Uint8Array(0);
    const response = await request(name, { headers: { Range: `bytes=${start}-${end - 1}` }, signal });
    if (!response) return null;
    if (response.status === 206) {
      const bytes = await readPrefix(response, end - start, name);
      if (bytes.byteLength !== end - start) {
        throw new SourceError(
          'truncated',
          name,
          `${name} ended after ${start + bytes.byteLength} bytes; ${end} were expected.`,
          HINT_RETRY,
        );
      }
      return bytes;
    }
    // The server ignored Range and sends the whole file: read up to `end`, keep [start, end).
    const bytes = await readPrefix(response, end, name);
    if (bytes.byteLength < end) {
      throw new SourceError(
        'truncated',
        name,
        `${name} has only ${bytes.byteLength} bytes; ${end} were expected.`,
        HINT_RETRY,
      );
    }
    return bytes.subarray(start, end);
  }

  async function stat(name: string, signal?: AbortSignal): Promise<FileStat | null> {
    // A one-byte range answers with the total size in Content-Range, through the hub's redirect too.
    const response = await request(name, { headers: { Range: 'bytes=0-0' }, signal });
    if (!response) return null;
    const size = sizeOf(response);
    const etag = unquote(response.headers.get('x-linked-etag')) ?? unquote(response.headers.get('etag'));
    const commit = response.headers.get('x-repo-commit') ?? undefined;
    await response.body?.cancel().catch(() => {});
    if (size === undefined) {
      throw new SourceError(
        'server',
        name,
        `${label} did not say how large ${name} is.`,
        'The server must answer range requests (or send Content-Length); most static hosts and the Hugging Face hub do.',
      );
    }
    return { size, etag, commit };
  }

  async function download(name: string, opts: FileDownloadOptions = {}): Promise<Uint8Array | null> {
    const resumeAt = opts.resume?.received ?? 0;
    const headers: Record<string, string> = resumeAt > 0 ? { Range: `bytes=${resumeAt}-` } : {};
    const response = await request(name, { headers, signal: opts.signal });
    if (!response) return null;
    let into: Uint8Array;
    let received: number;
    if (resumeAt > 0 && response.status === 206) {
      into = opts.resume!.into;
      received = resumeAt;
    } else {
      const size = opts.size ?? sizeOf(response);
      if (size === undefined) {
        // Unknown length (chunked, no Content-Length): small files only; collect and join once.
        const bytes = new Uint8Array(
          await response.arrayBuffer().catch((err) => {
            throw new SourceError(
              'network',
              name,
              `the download of ${name} broke off (${(err as Error).message}).`,
              HINT_RETRY,
            );
          }),
        );
        opts.onBytes?.(bytes.byteLength, bytes.byteLength);
        return bytes;
      }
      into = new Uint8Array(size);
      received = 0;
    }
    const size = into.byteLength;
    const reader = response.body?.getReader();
    try {
      while (reader) {
        const { done, value } = await reader.read();
        if (done) break;
        if (received + value.byteLength > size) {
          throw new SourceError(
            'truncated',
            name,
            `${name} is larger than the ${size} bytes announced.`,
            'The file changed on the server; try again.',
          );
        }
        into.set(value, received);
        received += value.byteLength;
        opts.onBytes?.(received, size);
      }
    } catch (err) {
      if (isAbort(err) || opts.signal?.aborted) throw new PartialDownload(cancelled(name), into, received);
      const base =
        err instanceof SourceError
          ? err
          : new SourceError(
              'network',
              name,
              `the download of ${name} broke off after ${received} of ${size} bytes (${(err as Error).message}).`,
              HINT_RETRY,
            );
      throw new PartialDownload(base, into, received);
    }
    if (received < size) {
      throw new PartialDownload(
        new SourceError(
          'truncated',
          name,
          `the download of ${name} stopped after ${received} of ${size} bytes.`,
          HINT_RETRY,
        ),
        into,
        received,
      );
    }
    return into;
  }

  return {
    label,
    base: baseUrl,
    stat,
    readRange,
    download,
    async readFile(name) {
      return download(name);
    },
  };
}
