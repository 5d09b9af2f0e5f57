// The CPU backend's WebAssembly SIMD products (kernels.wat): one WebAssembly.Memory per loaded model holds
// its weight matrices in their stored or quantized format, plus a scratch area for inputs and outputs.
// Works wherever WebAssembly SIMD does (every current browser, its workers, Node); where it does not,
// loadKernels() returns null and the backend uses the TypeScript products (matrix.ts).

import { dequantizeRows } from '../../../format/quant.ts';
import { isQuantized, tensorBytes } from '../../../format/quant.ts';
import type { QuantTensor, Tensor } from '../../../types.ts';
import { tables, type HostMatrix } from '../matrix.ts';
import { KERNELS_WASM_BASE64 } from './kernelsWasm.ts';

const PAGE = 65536;
/** A 32-bit WebAssembly memory holds at most 65536 pages: 4 GiB. */
export const WASM_MAX_BYTES = 65536 * PAGE;

type Matvec = (
  fmt: number,
  w: number,
  s: number,
  m: number,
  x: number,
  y: number,
  rows: number,
  cols: number,
  tokens: number,
  g: number,
  rowbuf: number,
) => void;

let compiled: Promise<WebAssembly.Module | null> | null = null;
let binary: Uint8Array<ArrayBuffer> | null | undefined;

/** The kernels' bytes when this platform can run them (WebAssembly with SIMD), else null. Checked once. */
function kernelBytes(): Uint8Array<ArrayBuffer> | null {
  if (binary === undefined) {
    if (typeof WebAssembly === 'undefined') binary = null;
    else {
      const bytes = Uint8Array.from(atob(KERNELS_WASM_BASE64), (c) => c.charCodeAt(0));
      binary = WebAssembly.validate(bytes) ? bytes : null; // validation fails without SIMD
    }
  }
  return binary;
}

/** Whether the SIMD kernels can run here (synchronous: backends name themselves before loading). */
export function wasmSimdAvailable(): boolean {
  return kernelBytes() !== null;
}

/** The compiled kernels, or null when this platform has no WebAssembly SIMD. Compiled once per process/worker. */
export function loadKernels(): Promise<WebAssembly.Module | null> {
  compiled ??= (async () => {
    const bytes = kernelBytes();
    return bytes ? WebAssembly.compile(bytes) : null;
  })();
  return compiled;
}

function formatCode(t: Tensor): number {
  switch (t.dtype) {
    case 'F32':
      return 0;
    case 'F16':
      return 1;
    case 'BF16':
      return 2;
    case 'Q8':
      return 3;
    case 'Q4':
      return t.mins ? 5 : 4;
  }
}

/** Whether the SIMD kernels take this matrix (else the TypeScript products run it). */
export function wasmSupports(t: Tensor): boolean {
  if (t.shape.length !== 2) return false;
  if (!isQuantized(t)) return t.shape[1] % 8 === 0;
  return t.dtype === 'Q8' ? t.groupSize % 16 === 0 : t.groupSize % 32 === 0;
}

export class WasmHeap {
  readonly memory: WebAssembly.Memory;
  private readonly matvec: Matvec;
  private top = 16; // 0 stays unused: a null pointer is never a weight
  private scratch = 0;
  private scratchBytes = 0;
  private buffer: ArrayBuffer;
  private f32: Float32Array;

  constructor(module: WebAssembly.Module) {
    this.memory = new WebAssembly.Memory({ initial: 1, maximum: WASM_MAX_BYTES / PAGE });
    const instance = new WebAssembly.Instance(module, { env: { memory: this.memory } });
    this.matvec = instance.exports.matvec as Matvec;
    this.buffer = this.memory.buffer;
    this.f32 = new Float32Array(this.buffer);
  }

  /** Bytes of the memory in use (weights, scratch, alignment). */
  get bytesUsed(): number {
    return this.top;
  }

  private views(): void {
    if (this.buffer !== this.memory.buffer) {
      this.buffer = this.memory.buffer;
      this.f32 = new Float32Array(this.buffer);
    }
  }

  /** `bytes` of memory, 16-byte aligned, growing the memory when needed. */
  alloc(bytes: number): number {
    const ptr = this.top;
    const end = ptr + Math.ceil(bytes / 16) * 16;
    if (end > WASM_MAX_BYTES)
      throw new RangeError(`the CPU backend's WebAssembly memory would exceed 4 GiB (${end} bytes)`);
    const have = this.memory.buffer.byteLength;
    if (end > have) this.memory.grow(Math.ceil((end - have) / PAGE));
    this.top = end;
    this.views();
    return ptr;
  }

  private put(bytes: Uint8Array): number {
    const ptr = this.alloc(bytes.byteLength);
    new Uint8Array(this.buffer, ptr, bytes.byteLength).set(bytes);
    return ptr;
  }

  /** Input, output and decoded-row areas for one product (reused; grown geometrically). */
  private io(xBytes: number, yBytes: number, rowBytes: number): [number, number, number] {
    const x = Math.ceil(xBytes / 16) * 16;
    const y = Math.ceil(yBytes / 16) * 16;
    const need = x + y + rowBytes;
    if (need > this.scratchBytes) {
      this.scratchBytes = Math.max(need, Math.ceil(this.scratchBytes * 1.5));
      this.scratch = this.alloc(this.scratchBytes);
    }
    return [this.scratch, this.scratch + x, this.scratch + x + y];
  }

  /** Copies the matrix into the memory and returns its product; the caller checked wasmSupports(t). */
  matrix(t: Tensor): HostMatrix {
    const [rows, cols] = t.shape as [number, number];
    const fmt = formatCode(t);
    const w = this.put(t.bytes);
    const q = isQuantized(t) ? t : null;
    const s = q ? this.put(new Uint8Array(q.scales.buffer, q.scales.byteOffset, q.scales.byteLength)) : 0;
    const m = q?.mins ? this.put(new Uint8Array(q.mins.buffer, q.mins.byteOffset, q.mins.byteLength)) : 0;
    const g = q ? q.groupSize : 0;
    const heap = this;
    const codeBytes = t.bytes.byteLength;

    // A QuantTensor whose arrays are views into the memory (made per call: a grow detaches old views).
    const quantView = (): QuantTensor => ({
      dtype: q!.dtype,
      shape: [rows, cols],
      groupSize: g,
      bytes: new Uint8Array(heap.buffer, w, codeBytes),
      scales: new Uint16Array(heap.buffer, s, q!.scales.length),
      mins: q!.mins ? new Uint16Array(heap.buffer, m, q!.mins.length) : undefined,
    });
    const decodeRow = (r: number, out: Float32Array): void => {
      heap.views();
      if (q) {
        dequantizeRows(quantView(), r, 1, out);
        return;
      }
      if (fmt === 0) {
        out.set(heap.f32.subarray(w / 4 + r * cols, w / 4 + (r + 1) * cols));
        return;
      }
      const table = fmt === 1 ? tables().f16 : tables().bf16;
      const u16 = new Uint16Array(heap.buffer, w + r * cols * 2, cols);
      for (let i = 0; i < cols; i++) out[i] = table[u16[i]];
    };
    return {
      format: t.dtype,
      rows,
      cols,
      bytes: tensorBytes(t),
      decodeRow,
      matmul(x, tokens, bias) {
        const [xp, yp, rowbuf] = heap.io(tokens * cols * 4, tokens * rows * 4, cols * 4);
        heap.views();
        heap.f32.set(x.subarray(0, tokens * cols), xp / 4);
        heap.matvec(fmt, w, s, m, xp, yp, rows, cols, tokens, g, rowbuf);
        const y = heap.f32.slice(yp / 4, yp / 4 + tokens * rows);
        if (bias) for (let t = 0; t < tokens; t++) for (let o = 0; o < rows; o++) y[t * rows + o] += bias[o];
        return y;
      },
    };
  }
}
