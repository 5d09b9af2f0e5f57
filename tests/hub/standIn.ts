// A local server that behaves like the Hugging Face hub for the tests (never the real hub):
//   {endpoint}/{org}/{name}/resolve/{revision}/{file}
//     small files: 200 with ETag (git blob id) and X-Repo-Commit
//     large (LFS) files: 302 to a second origin, the "file host", with X-Linked-Size / X-Linked-Etag
//       (the file's sha256) / X-Repo-Commit, as the hub answers
//   the file host: Range (206 + Content-Range), ETag, CORS with the exposed headers the hub exposes
//   401 for gated repos, 404 for unknown repos/revisions/files (with X-Error-Code), a repo whose
//   file host sends no CORS headers, and per-file faults: slow transfer, a connection cut after N
//   bytes (a given number of times), a corrupted byte.
// Weights of generated repos are computed from their position, so a 0.8 GB checkpoint costs no disk
// and every range request of the same bytes answers the same.

import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { join } from 'node:path';
import { floatToBf16Bits, floatToF16Bits } from '../../src/engine/format/dtype.ts';

export interface HubFile {
  size: number;
  /** Served through the file host with a 302, like LFS files on the hub. */
  lfs: boolean;
  read(start: number, end: number): Uint8Array;
  sha256?: string;
  /** An ETag that is not the content's sha256 (so clients skip verification): for huge generated files in fast tests. */
  opaqueEtag?: string;
}

export interface HubRepo {
  files: Map<string, HubFile>;
  commit: string;
  /** Revision names besides the commit itself that resolve to it. */
  revisions?: string[];
  gated?: boolean;
  /** The file host answers without CORS headers (a browser refuses to read it). */
  noCors?: boolean;
}

export interface Faults {
  /** Bytes per second for this file name (any repo). */
  slow?: Map<string, number>;
  /** Cut the connection after this many bytes of the file, `times` times. */
  cut?: Map<string, { afterBytes: number; times: number }>;
  /** Flip one byte of the file at this offset (the download then fails its checksum). */
  corrupt?: Map<string, number>;
  /** Answer every request with a connection reset (the hub is down). */
  down?: boolean;
}

export interface StandInHub {
  endpoint: string;
  fileHost: string;
  repos: Map<string, HubRepo>;
  faults: Faults;
  /** Every request: method, path, range. */
  log: Array<{ method: string; path: string; range?: string }>;
  close(): Promise<void>;
}

const CORS_EXPOSE =
  'Content-Range, Content-Length, Accept-Ranges, ETag, X-Linked-Size, X-Linked-Etag, X-Repo-Commit, X-Error-Code';

function cors(response: ServerResponse) {
  response.setHeader('Access-Control-Allow-Origin', '*');
  response.setHeader('Access-Control-Expose-Headers', CORS_EXPOSE);
}

function preflight(request: IncomingMessage, response: ServerResponse, allow: boolean): boolean {
  if (request.method !== 'OPTIONS') return false;
  if (allow) {
    cors(response);
    response.setHeader('Access-Control-Allow-Headers', 'Range, Content-Type');
    response.setHeader('Access-Control-Allow-Methods', 'GET, HEAD, OPTIONS');
  }
  response.statusCode = 204;
  response.end();
  return true;
}

/** The bytes of a whole file in memory. */
export function memoryFile(bytes: Uint8Array, lfs: boolean): HubFile {
  return {
    size: bytes.byteLength,
    lfs,
    read: (start, end) => bytes.subarray(start, end),
    sha256: createHash('sha256').update(bytes).digest('hex'),
  };
}

/** A repo from a checkpoint folder on disk (safetensors files are LFS). */
export function folderRepo(dir: string, commit: string): HubRepo {
  const files = new Map<string, HubFile>();
  for (const name of readdirSync(dir)) {
    if (!statSync(join(dir, name)).isFile() || name === 'expected.json') continue;
    files.set(name, memoryFile(new Uint8Array(readFileSync(join(dir, name))), name.endsWith('.safetensors')));
  }
  return { files, commit };
}

// ---------------------------------------------------------------------------------------------
// Generated checkpoints: real configs, position-derived weights.

interface TensorPlan {
  name: string;
  shape: number[];
  /** 'ones' for norm weights, else small random values. */
  init: 'ones' | 'random';
}

/** Tensor names and shapes of a Mixtral or Llama checkpoint, from the config (the test's own table). */
export function mixtralTensors(config: Record<string, unknown>): TensorPlan[] {
  const d = config.hidden_size as number;
  const heads = config.num_attention_heads as number;
  const kv = (config.num_key_value_heads as number) ?? heads;
  const hd = (config.head_dim as number) ?? d / heads;
  const f = config.intermediate_size as number;
  const E = (config.num_local_experts as number) ?? 0;
  const out: TensorPlan[] = [
    { name: 'model.embed_tokens.weight', shape: [config.vocab_size as number, d], init: 'random' },
  ];
  for (let l = 0; l < (config.num_hidden_layers as number); l++) {
    const p = `model.layers.${l}`;
    out.push(
      { name: `${p}.input_layernorm.weight`, shape: [d], init: 'ones' },
      { name: `${p}.self_attn.q_proj.weight`, shape: [heads * hd, d], init: 'random' },
      { name: `${p}.self_attn.k_proj.weight`, shape: [kv * hd, d], init: 'random' },
      { name: `${p}.self_attn.v_proj.weight`, shape: [kv * hd, d], init: 'random' },
      { name: `${p}.self_attn.o_proj.weight`, shape: [d, heads * hd], init: 'random' },
      { name: `${p}.post_attention_layernorm.weight`, shape: [d], init: 'ones' },
    );
    if (E > 0) {
      out.push({ name: `${p}.block_sparse_moe.gate.weight`, shape: [E, d], init: 'random' });
      for (let e = 0; e < E; e++) {
        out.push(
          { name: `${p}.block_sparse_moe.experts.${e}.w1.weight`, shape: [f, d], init: 'random' },
          { name: `${p}.block_sparse_moe.experts.${e}.w2.weight`, shape: [d, f], init: 'random' },
          { name: `${p}.block_sparse_moe.experts.${e}.w3.weight`, shape: [f, d], init: 'random' },
        );
      }
    } else {
      out.push(
        { name: `${p}.mlp.gate_proj.weight`, shape: [f, d], init: 'random' },
        { name: `${p}.mlp.up_proj.weight`, shape: [f, d], init: 'random' },
        { name: `${p}.mlp.down_proj.weight`, shape: [d, f], init: 'random' },
      );
    }
  }
  out.push({ name: 'model.norm.weight', shape: [d], init: 'ones' });
  if (!config.tie_word_embeddings)
    out.push({ name: 'lm_head.weight', shape: [config.vocab_size as number, d], init: 'random' });
  return out;
}

/** Deterministic value in [-scale, scale) for element i of a tensor with seed s. */
function randomAt(seed: number, i: number, scale: number): number {
  let x = (Math.imul(i, 0x9e3779b1) ^ Math.imul(seed, 0x85ebca77)) >>> 0;
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d) >>> 0;
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b) >>> 0;
  x ^= x >>> 16;
  return (((x >>> 0) / 2 ** 32) * 2 - 1) * scale;
}

/**
 * A safetensors file whose bytes are computed on demand: header from the plan, each 2-byte element
 * of tensor t at index i a function of (t, i). `dtype` F16 or BF16.
 */
export function generatedSafetensors(
  plan: TensorPlan[],
  dtype: 'F16' | 'BF16',
  seed: number,
  opaqueEtag = false,
): HubFile {
  const header: Record<string, unknown> = {};
  let offset = 0;
  const spans: Array<{ begin: number; end: number; t: number; init: TensorPlan['init'] }> = [];
  plan.forEach((tensor, t) => {
    const bytes = tensor.shape.reduce((a, b) => a * b, 1) * 2;
    header[tensor.name] = { dtype, shape: tensor.shape, data_offsets: [offset, offset + bytes] };
    spans.push({ begin: offset, end: offset + bytes, t, init: tensor.init });
    offset += bytes;
  });
  let headerBytes = new TextEncoder().encode(JSON.stringify({ __metadata__: { format: 'pt' }, ...header }));
  const padded = Math.ceil(headerBytes.byteLength / 8) * 8;
  const withSpaces = new Uint8Array(padded).fill(0x20);
  withSpaces.set(headerBytes);
  headerBytes = withSpaces;
  const dataStart = 8 + headerBytes.byteLength;
  const size = dataStart + offset;
  const prefix = new Uint8Array(dataStart);
  new DataView(prefix.buffer).setUint32(0, headerBytes.byteLength, true);
  prefix.set(headerBytes, 8);
  const toBits = dtype === 'F16' ? floatToF16Bits : floatToBf16Bits;
  const one = toBits(1);

  function read(start: number, end: number): Uint8Array {
    const out = new Uint8Array(end - start);
    let pos = start;
    if (pos < dataStart) {
      const n = Math.min(end, dataStart) - pos;
      out.set(prefix.subarray(pos, pos + n), 0);
      pos += n;
    }
    let s = spans.findIndex((sp) => sp.end > pos - dataStart);
    while (pos < end && s >= 0 && s < spans.length) {
      const span = spans[s];
      const rel = pos - dataStart;
      if (rel >= span.end) {
        s++;
        continue;
      }
      const stop = Math.min(end - dataStart, span.end);
      for (let b = rel; b < stop; b++) {
        const element = (b - span.begin) >> 1;
        const bits = span.init === 'ones' ? one : toBits(randomAt(seed * 7919 + span.t, element, 0.05));
        out[b - start + dataStart] = (b - span.begin) & 1 ? bits >> 8 : bits & 0xff;
      }
      pos = stop + dataStart;
      s++;
    }
    return out;
  }
  const etag = opaqueEtag
    ? `gen-${createHash('sha256')
        .update(JSON.stringify([plan, dtype, seed]))
        .digest('hex')
        .slice(0, 24)}`
    : undefined;
  return { size, lfs: true, read, opaqueEtag: etag };
}

/** A sharded generated checkpoint: config.json, the index and the shards (split by tensor count). */
export function generatedRepo(
  config: Record<string, unknown>,
  options: {
    dtype: 'F16' | 'BF16';
    shards: number;
    seed: number;
    commit: string;
    tokenizer?: Uint8Array;
    opaqueEtags?: boolean;
  },
): HubRepo {
  const plan = mixtralTensors(config);
  const files = new Map<string, HubFile>();
  files.set('config.json', memoryFile(new TextEncoder().encode(JSON.stringify(config, null, 2)), false));
  if (options.tokenizer) files.set('tokenizer.json', memoryFile(options.tokenizer, true));
  const perShard = Math.ceil(plan.length / options.shards);
  const weightMap: Record<string, string> = {};
  let total = 0;
  for (let s = 0; s < options.shards; s++) {
    const name =
      options.shards === 1
        ? 'model.safetensors'
        : `model-${String(s + 1).padStart(5, '0')}-of-${String(options.shards).padStart(5, '0')}.safetensors`;
    const part = plan.slice(s * perShard, (s + 1) * perShard);
    const file = generatedSafetensors(part, options.dtype, options.seed + s, options.opaqueEtags);
    files.set(name, file);
    for (const t of part) {
      weightMap[t.name] = name;
      total += t.shape.reduce((a, b) => a * b, 1) * 2;
    }
  }
  if (options.shards > 1) {
    const index = { metadata: { total_size: total }, weight_map: weightMap };
    files.set(
      'model.safetensors.index.json',
      memoryFile(new TextEncoder().encode(JSON.stringify(index, null, 2)), false),
    );
  }
  return { files, commit: options.commit };
}

/** The sha256 of a (generated) file, computed once by streaming it. */
export function sha256Of(file: HubFile): string {
  if (file.opaqueEtag) return file.opaqueEtag;
  if (file.sha256) return file.sha256;
  const hash = createHash('sha256');
  for (let pos = 0; pos < file.size; pos += 1 << 22) hash.update(file.read(pos, Math.min(file.size, pos + (1 << 22))));
  file.sha256 = hash.digest('hex');
  return file.sha256;
}

// ---------------------------------------------------------------------------------------------
// The two servers.

function listen(server: Server): Promise<string> {
  return new Promise((done) => {
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      if (!address || typeof address === 'string') throw new Error('no port');
      done(`http://127.0.0.1:${address.port}`);
    });
  });
}

function notFound(response: ServerResponse, code: string) {
  response.statusCode = 404;
  response.setHeader('X-Error-Code', code);
  response.setHeader('content-type', 'text/plain');
  response.end(`${code}`);
}

async function sendBody(
  response: ServerResponse,
  file: HubFile,
  start: number,
  end: number,
  name: string,
  faults: Faults,
  request: IncomingMessage,
) {
  const bytesPerSecond = faults.slow?.get(name);
  const cut = faults.cut?.get(name);
  const corruptAt = faults.corrupt?.get(name);
  const chunk = bytesPerSecond ? Math.max(1024, Math.floor(bytesPerSecond / 20)) : 1 << 20;
  let sent = 0;
  let closed = false;
  request.on('close', () => {
    closed = true;
  });
  for (let pos = start; pos < end && !closed; pos += chunk) {
    const stop = Math.min(end, pos + chunk);
    let bytes = file.read(pos, stop);
    if (corruptAt !== undefined && corruptAt >= pos && corruptAt < stop) {
      bytes = bytes.slice();
      bytes[corruptAt - pos] ^= 0xff;
    }
    if (cut && cut.times > 0 && sent + bytes.byteLength > cut.afterBytes) {
      const keep = Math.max(0, cut.afterBytes - sent);
      if (keep > 0) response.write(bytes.subarray(0, keep));
      cut.times--;
      await new Promise((r) => setTimeout(r, 20));
      response.socket?.destroy();
      return;
    }
    sent += bytes.byteLength;
    if (!response.write(bytes)) await new Promise((r) => response.once('drain', r));
    if (bytesPerSecond) await new Promise((r) => setTimeout(r, (bytes.byteLength / bytesPerSecond) * 1000));
  }
  response.end();
}

function parseRange(header: string | undefined, size: number): [number, number] | 'bad' | null {
  if (!header) return null;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m) return 'bad';
  let start: number;
  let end: number;
  if (m[1] === '') {
    start = Math.max(0, size - Number(m[2]));
    end = size;
  } else {
    start = Number(m[1]);
    end = m[2] === '' ? size : Math.min(size, Number(m[2]) + 1);
  }
  if (start >= size || end <= start) return 'bad';
  return [start, end];
}

export async function startStandInHub(repos: Map<string, HubRepo> = new Map()): Promise<StandInHub> {
  const faults: Faults = { slow: new Map(), cut: new Map(), corrupt: new Map() };
  const log: StandInHub['log'] = [];

  function find(repoId: string, revision: string): HubRepo | undefined {
    const repo = repos.get(repoId);
    if (!repo) return undefined;
    if (revision === repo.commit || revision === 'main' || repo.revisions?.includes(revision)) return repo;
    return undefined;
  }

  // The file host: /files/{org}/{name}/{commit}/{file}
  const fileHostServer = createServer((request, response) => {
    const url = new URL(request.url ?? '/', 'http://x');
    log.push({ method: request.method ?? '', path: `file-host:${url.pathname}`, range: request.headers.range });
    if (faults.down) return void request.socket.destroy();
    const parts = url.pathname.split('/').slice(2).map(decodeURIComponent);
    const repo = repos.get(`${parts[0]}/${parts[1]}`);
    if (preflight(request, response, !repo?.noCors)) return;
    if (!repo?.noCors) cors(response);
    const name = parts.slice(3).join('/');
    const file = repo?.files.get(name);
    if (!repo || !file || parts[2] !== repo.commit) return notFound(response, 'EntryNotFound');
    const etag = sha256Of(file);
    response.setHeader('ETag', `"${etag}"`);
    response.setHeader('Accept-Ranges', 'bytes');
    response.setHeader('content-type', 'application/octet-stream');
    const range = parseRange(request.headers.range, file.size);
    if (range === 'bad') {
      response.statusCode = 416;
      response.setHeader('Content-Range', `bytes */${file.size}`);
      return void response.end();
    }
    const [start, end] = range ?? [0, file.size];
    response.statusCode = range ? 206 : 200;
    if (range) response.setHeader('Content-Range', `bytes ${start}-${end - 1}/${file.size}`);
    response.setHeader('Content-Length', String(end - start));
    if (request.method === 'HEAD') return void response.end();
    void sendBody(response, file, start, end, name, faults, request);
  });
  const fileHost = await listen(fileHostServer);

  // The hub: /{org}/{name}/resolve/{revision}/{file}
  const hubServer = createServer((request, response) => {
    const url = new URL(request.url ?? '/', 'http://x');
    log.push({ method: request.method ?? '', path: url.pathname, range: request.headers.range });
    if (faults.down) return void request.socket.destroy();
    if (preflight(request, response, true)) return;
    cors(response);
    const parts = url.pathname.split('/').slice(1).map(decodeURIComponent);
    if (parts[2] !== 'resolve' || parts.length < 5) return notFound(response, 'RepoNotFound');
    const repoId = `${parts[0]}/${parts[1]}`;
    const repoAny = repos.get(repoId);
    if (!repoAny) return notFound(response, 'RepoNotFound');
    if (repoAny.gated) {
      response.statusCode = 401;
      response.setHeader('X-Error-Code', 'GatedRepo');
      return void response.end('Access to this model is restricted.');
    }
    const repo = find(repoId, parts[3]);
    if (!repo) return notFound(response, 'RevisionNotFound');
    const name = parts.slice(4).join('/');
    const file = repo.files.get(name);
    if (!file) return notFound(response, 'EntryNotFound');
    response.setHeader('X-Repo-Commit', repo.commit);
    if (file.lfs) {
      const etag = sha256Of(file);
      response.statusCode = 302;
      response.setHeader('X-Linked-Size', String(file.size));
      response.setHeader('X-Linked-Etag', `"${etag}"`);
      response.setHeader(
        'Location',
        `${fileHost}/files/${repoId}/${repo.commit}/${name.split('/').map(encodeURIComponent).join('/')}`,
      );
      return void response.end();
    }
    const bytes = file.read(0, file.size);
    response.setHeader('ETag', `"${createHash('sha1').update(bytes).digest('hex')}"`);
    response.setHeader('content-type', name.endsWith('.json') ? 'application/json' : 'application/octet-stream');
    const range = parseRange(request.headers.range, file.size);
    if (range && range !== 'bad') {
      response.statusCode = 206;
      response.setHeader('Content-Range', `bytes ${range[0]}-${range[1] - 1}/${file.size}`);
      return void response.end(bytes.subarray(range[0], range[1]));
    }
    response.setHeader('Content-Length', String(file.size));
    response.end(request.method === 'HEAD' ? undefined : bytes);
  });
  const endpoint = await listen(hubServer);

  return {
    endpoint,
    fileHost,
    repos,
    faults,
    log,
    close: async () => {
      hubServer.closeAllConnections();
      fileHostServer.closeAllConnections();
      await Promise.all([
        new Promise<void>((done) => hubServer.close(() => done())),
        new Promise<void>((done) => fileHostServer.close(() => done())),
      ]);
    },
  };
}

/** llm-jp/FS-8x152M's config.json as published (MixtralForCausalLM, 0.42 B parameters). */
export const LLM_JP_8X152M_CONFIG = {
  architectures: ['MixtralForCausalLM'],
  attention_bias: false,
  attention_dropout: 0.0,
  bos_token_id: 1,
  eos_token_id: 2,
  hidden_act: 'silu',
  hidden_size: 512,
  initializer_range: 0.02,
  intermediate_size: 2048,
  max_position_embeddings: 4096,
  mlp_bias: false,
  model_type: 'mixtral',
  num_attention_heads: 8,
  num_experts_per_tok: 2,
  num_hidden_layers: 12,
  num_key_value_heads: 8,
  num_local_experts: 8,
  output_router_logits: true,
  rms_norm_eps: 1e-5,
  rope_scaling: null,
  rope_theta: 10000,
  router_aux_loss_coef: 0.02,
  router_jitter_noise: 0.0,
  sliding_window: null,
  tie_word_embeddings: false,
  torch_dtype: 'bfloat16',
  transformers_version: '4.42.4',
  use_cache: true,
  vocab_size: 99584,
} as const;

/** The same layout, small: what the regular test suite downloads and runs. */
export const LLM_JP_SHAPED_SMALL_CONFIG = {
  ...LLM_JP_8X152M_CONFIG,
  hidden_size: 64,
  intermediate_size: 128,
  num_hidden_layers: 3,
  num_attention_heads: 4,
  num_key_value_heads: 4,
  vocab_size: 4096,
  max_position_embeddings: 256,
};
