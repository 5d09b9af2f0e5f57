// safetensors: 8-byte little-endian header length, a JSON header, then raw tensor bytes.
// Parsing never copies tensor data and never allocates in proportion to what the header claims.

import type { DType, PlainTensor, Tensor } from '../types.ts';
import { plainTensor } from './quant.ts';
import { bytesPerElement, SUPPORTED_DTYPES } from './dtype.ts';
import { CheckpointError, HINT_REDOWNLOAD } from './errors.ts';

export interface SafetensorsFile {
  /** Tensors in header order; each `bytes` is a view into the file buffer. */
  tensors: Map<string, PlainTensor>;
  /** The optional "__metadata__" string map. */
  metadata: Record<string, string>;
}

// A header larger than this is not a real checkpoint (the reference implementation uses 100 MB).
const MAX_HEADER_BYTES = 100_000_000;

/** One tensor as the header describes it: byte offsets relative to the start of the data section. */
export interface SafetensorsEntry {
  name: string;
  dtype: DType;
  shape: number[];
  begin: number;
  end: number;
}

export interface SafetensorsHeader {
  /** Bytes before the tensor data: 8 + the JSON header's length. */
  dataStart: number;
  /** Tensors in header order. */
  entries: SafetensorsEntry[];
  /** The optional "__metadata__" string map. */
  metadata: Record<string, string>;
}

/**
 * The JSON header's length from a file's first 8 bytes, checked against the file size. Separate so a
 * remote file's header can be fetched with two small range requests before any tensor data.
 */
export function readHeaderLength(prefix: Uint8Array, fileSize: number, fileName: string): number {
  function fail(message: string): never {
    throw new CheckpointError(fileName, message, HINT_REDOWNLOAD);
  }
  if (fileSize < 8 || prefix.byteLength < 8)
    fail(`the file is only ${Math.min(fileSize, prefix.byteLength)} bytes long, too short to be a safetensors file.`);
  // Read the u64 as two u32 halves so a lying huge value can be rejected without BigInt maths.
  const view = new DataView(prefix.buffer, prefix.byteOffset, 8);
  const lo = view.getUint32(0, true);
  const hi = view.getUint32(4, true);
  const headerLength = hi * 2 ** 32 + lo;
  if (hi !== 0 || headerLength > fileSize - 8) {
    fail(`header length ${headerLength} is beyond the end of the ${fileSize}-byte file.`);
  }
  if (headerLength > MAX_HEADER_BYTES) fail(`header length ${headerLength} is implausibly large.`);
  if (headerLength < 2) fail(`header length ${headerLength} is too small to hold a JSON header.`);
  return headerLength;
}

/**
 * Parse and check the JSON header (the bytes after the 8-byte length) of a file of `fileSize` bytes.
 * Every check that needs no tensor data happens here, so a remote file can be vetted before download.
 */
export function parseSafetensorsHeader(headerBytes: Uint8Array, fileSize: number, fileName: string): SafetensorsHeader {
  function fail(message: string, hint = HINT_REDOWNLOAD): never {
    throw new CheckpointError(fileName, message, hint);
  }
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(headerBytes));
  } catch {
    fail('the header is not valid JSON.');
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) {
    fail('the header is not a JSON object.');
  }

  const dataStart = 8 + headerBytes.byteLength;
  const dataLength = fileSize - dataStart;
  const entries: SafetensorsEntry[] = [];
  let metadata: Record<string, string> = {};

  for (const [name, entry] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) fail('"__metadata__" is not an object.');
      metadata = Object.fromEntries(Object.entries(entry as object).map(([k, v]) => [k, String(v)]));
      continue;
    }
    if (typeof entry !== 'object' || entry === null) fail(`the header entry for tensor ${name} is not an object.`);
    const { dtype, shape, data_offsets: offsets } = entry as Record<string, unknown>;

    if (typeof dtype !== 'string') fail(`tensor ${name} has no dtype.`);
    if (!(SUPPORTED_DTYPES as readonly string[]).includes(dtype as string)) {
      fail(
        `tensor ${name} has unsupported dtype ${String(dtype)}; only F32, F16 and BF16 are supported.`,
        'Convert the checkpoint to float32, float16 or bfloat16 (quantised weights are not supported).',
      );
    }
    if (!Array.isArray(shape) || !shape.every((s) => Number.isSafeInteger(s) && s >= 0)) {
      fail(`tensor ${name} has shape ${JSON.stringify(shape)}; entries must be non-negative integers.`);
    }
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isSafeInteger(o) && o >= 0)) {
      fail(`tensor ${name} has data_offsets ${JSON.stringify(offsets)}; expected [begin, end].`);
    }
    const [begin, end] = offsets as [number, number];
    if (end < begin) fail(`tensor ${name} has data_offsets [${begin}, ${end}] that end before they begin.`);
    if (end > dataLength) {
      fail(`tensor ${name} has data_offsets [${begin}, ${end}] beyond the ${dataLength} bytes of tensor data.`);
    }
    // Multiply step by step so a huge claimed shape cannot overflow past the check.
    const bpe = bytesPerElement(dtype as DType);
    let expected = bpe;
    for (const s of shape as number[]) {
      expected *= s;
      if (expected > dataLength) break;
    }
    if (expected !== end - begin) {
      fail(
        `tensor ${name} has shape [${(shape as number[]).join(',')}] of ${dtype} (needs ${expected > dataLength ? 'more than the file' : `${expected} bytes`}) but data_offsets span ${end - begin} bytes.`,
      );
    }
    entries.push({ name, dtype: dtype as DType, shape: [...(shape as number[])], begin, end });
  }

  const ranges = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  for (let i = 1; i < ranges.length; i++) {
    const prev = ranges[i - 1];
    const cur = ranges[i];
    // Empty tensors occupy no bytes and cannot overlap anything.
    if (cur.begin < prev.end && cur.end > cur.begin && prev.end > prev.begin) {
      fail(`tensors ${prev.name} and ${cur.name} overlap in the file (bytes ${cur.begin}..${prev.end}).`);
    }
  }
  return { dataStart, entries, metadata };
}

export function parseSafetensors(bytes: Uint8Array, fileName: string): SafetensorsFile {
  const size = bytes.byteLength;
  const headerLength = readHeaderLength(bytes, size, fileName);
  const { dataStart, entries, metadata } = parseSafetensorsHeader(bytes.subarray(8, 8 + headerLength), size, fileName);
  const tensors = new Map<string, PlainTensor>();
  for (const { name, dtype, shape, begin, end } of entries) {
    tensors.set(name, { dtype, shape, bytes: bytes.subarray(dataStart + begin, dataStart + end) });
  }
  return { tensors, metadata };
}

/**
 * Serialise tensors as a safetensors file. Order is deterministic: wider dtypes first (so every
 * F32 tensor stays 4-byte aligned), otherwise the order given. The header is padded with spaces
 * to a multiple of 8 bytes.
 */
export function writeSafetensors(
  tensors: Record<string, Tensor> | Map<string, Tensor>,
  metadata?: Record<string, string>,
): Uint8Array {
  const entries = [...(tensors instanceof Map ? tensors.entries() : Object.entries(tensors))].map(
    ([name, t]): [string, PlainTensor] => [name, plainTensor(t, `writeSafetensors (tensor ${name})`)],
  );
  const order = entries
    .map((entry, index) => ({ entry, index }))
    .sort((a, b) => bytesPerElement(b.entry[1].dtype) - bytesPerElement(a.entry[1].dtype) || a.index - b.index)
    .map((x) => x.entry);

  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  let offset = 0;
  for (const [name, t] of order) {
    let numel = 1;
    for (const s of t.shape) numel *= s;
    if (t.bytes.byteLength !== numel * bytesPerElement(t.dtype)) {
      throw new Error(
        `writeSafetensors: tensor ${name} has ${t.bytes.byteLength} bytes but shape [${t.shape}] of ${t.dtype}`,
      );
    }
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + t.bytes.byteLength] };
    offset += t.bytes.byteLength;
  }

  let headerBytes = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(headerBytes.byteLength / 8) * 8;
  if (padded !== headerBytes.byteLength) {
    const withSpaces = new Uint8Array(padded).fill(0x20);
    withSpaces.set(headerBytes);
    headerBytes = withSpaces;
  }

  const out = new Uint8Array(8 + headerBytes.byteLength + offset);
  const view = new DataView(out.buffer);
  view.setUint32(0, headerBytes.byteLength, true);
  view.setUint32(4, 0, true);
  out.set(headerBytes, 8);
  let pos = 8 + headerBytes.byteLength;
  for (const [, t] of order) {
    out.set(t.bytes, pos);
    pos += t.bytes.byteLength;
  }
  return out;
}
