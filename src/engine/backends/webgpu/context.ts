// The device, its counted buffers, its compiled pipelines, and a recorder that turns a list of kernel
// dispatches into one command buffer with one uniform upload and (at most) one readback.

import preludeWgsl from '../../../../shaders/prelude.wgsl?raw';
import weightsWgsl from '../../../../shaders/weights.wgsl?raw';
import embedWgsl from '../../../../shaders/embed.wgsl?raw';
import matvecWgsl from '../../../../shaders/matvec.wgsl?raw';
import matmulWgsl from '../../../../shaders/matmul.wgsl?raw';
import rmsnormWgsl from '../../../../shaders/rmsnorm.wgsl?raw';
import ropeWgsl from '../../../../shaders/rope.wgsl?raw';
import attentionWgsl from '../../../../shaders/attention.wgsl?raw';
import routerWgsl from '../../../../shaders/router.wgsl?raw';
import fixedRouteWgsl from '../../../../shaders/fixed_route.wgsl?raw';
import expertGateUpWgsl from '../../../../shaders/expert_gate_up.wgsl?raw';
import expertDownWgsl from '../../../../shaders/expert_down.wgsl?raw';
import expertArgsWgsl from '../../../../shaders/expert_args.wgsl?raw';
import type { DType, TensorDType } from '../../types.ts';
import { WebGpuDeviceLostError, WebGpuInternalError } from './errors.ts';

export type KernelName =
  | 'embed'
  | 'matvec'
  | 'matmul'
  | 'rmsnorm'
  | 'rope'
  | 'attention'
  | 'router'
  | 'fixedRoute'
  | 'expertGateUp'
  | 'expertDown'
  | 'expertArgs';

/** Each kernel's source and the weight arrays it reads (each gets a weight_NAME accessor, see weights.wgsl). */
const KERNELS: Record<KernelName, { source: string; weights: string[] }> = {
  embed: { source: embedWgsl, weights: ['EMB'] },
  matvec: { source: matvecWgsl, weights: ['W'] },
  matmul: { source: matmulWgsl, weights: ['W'] },
  rmsnorm: { source: rmsnormWgsl, weights: [] },
  rope: { source: ropeWgsl, weights: [] },
  attention: { source: attentionWgsl, weights: [] },
  router: { source: routerWgsl, weights: [] },
  fixedRoute: { source: fixedRouteWgsl, weights: [] },
  expertGateUp: { source: expertGateUpWgsl, weights: ['WG_GATE', 'WG_UP'] },
  expertDown: { source: expertDownWgsl, weights: ['WD'] },
  expertArgs: { source: expertArgsWgsl, weights: [] },
};

/** How a kernel's weights are stored: weights.wgsl's W_FORMAT code and W_GROUP. */
export interface WeightFormat {
  code: number;
  group: number;
}

const PLAIN_CODE: Record<DType, number> = { F32: 0, F16: 1, BF16: 2 };

/** The format of a stored dtype (F32/F16/BF16), or of a quantized one with its group size and minimums. */
export function weightFormat(dtype: TensorDType, group = 32, mins = false): WeightFormat {
  if (dtype === 'Q8') return { code: 3, group };
  if (dtype === 'Q4') return { code: mins ? 5 : 4, group };
  return { code: PLAIN_CODE[dtype], group: 32 };
}

function accessor(name: string): string {
  return `fn weight_${name}(i: u32) -> f32 {
  let v = weightFromWord(${name}[wordIndex(i)], i);
  if (W_FORMAT < 3u) { return v; }
  return dequant(v, ${name}_Q[auxIndex(i)], i);
}
`;
}

/**
 * GPUBufferUsage / GPUMapMode values from the WebGPU spec, as plain numbers so importing this module
 * needs no WebGPU globals (it is imported before we know whether the platform has WebGPU).
 */
export const USAGE = {
  MAP_READ: 0x1,
  COPY_SRC: 0x4,
  COPY_DST: 0x8,
  UNIFORM: 0x40,
  STORAGE: 0x80,
  INDIRECT: 0x100,
} as const;
const MAP_MODE_READ = 0x1;

/** Workgroups per dispatch dimension we rely on (the WebGPU default minimum is 65535). */
export const ROW_SPLIT = 32768;

export interface BufferStats {
  liveBuffers: number;
  liveBytes: number;
}

export class GpuContext {
  private live = new Set<GPUBuffer>();
  private liveBytes = 0;
  private pipelines = new Map<string, GPUComputePipeline>();
  private firstError: string | null = null;
  lostMessage: string | null = null;

  /** `bufferCap`: a smaller largest weight buffer than the device's (tests of tensor splitting). */
  constructor(
    readonly device: GPUDevice,
    readonly adapterDescription: string,
    private readonly bufferCap = Infinity,
  ) {
    device.lost.then((info) => {
      // 'destroyed' is our own dispose(); anything else is the platform taking the device away.
      if (info.reason !== 'destroyed') {
        this.lostMessage = `The GPU device was lost (${info.message || 'no reason given'}).`;
      } else {
        this.lostMessage ??= 'The WebGPU backend was disposed.';
      }
    });
    device.onuncapturederror = (event) => {
      this.firstError ??= event.error.message;
    };
  }

  /** Largest single buffer we may create and bind as storage. */
  get maxBufferBytes(): number {
    return Math.min(this.device.limits.maxBufferSize, this.device.limits.maxStorageBufferBindingSize);
  }

  /** Largest weight buffer: maxBufferBytes, or the smaller cap the context was made with. */
  get maxWeightBufferBytes(): number {
    return Math.min(this.maxBufferBytes, this.bufferCap);
  }

  assertUsable(): void {
    if (this.lostMessage) throw new WebGpuDeviceLostError(this.lostMessage);
  }

  /** Throws (once) the first validation error the device reported since the last check. */
  takeError(): void {
    const e = this.firstError;
    this.firstError = null;
    if (e) throw new WebGpuInternalError(`The GPU rejected a command: ${e}`);
  }

  createBuffer(size: number, usage: GPUBufferUsageFlags, label?: string): GPUBuffer {
    // Sizes are rounded up to 16 bytes: writeBuffer and copies want multiples of 4, bindings like 16.
    const bytes = Math.max(16, Math.ceil(size / 16) * 16);
    const buffer = this.device.createBuffer({ size: bytes, usage, label });
    this.live.add(buffer);
    this.liveBytes += bytes;
    return buffer;
  }

  /** A storage buffer holding `data` (padded to a multiple of 4 bytes). */
  uploadBuffer(data: ArrayBufferView, label?: string, extraUsage: GPUBufferUsageFlags = 0): GPUBuffer {
    const buffer = this.createBuffer(
      data.byteLength,
      USAGE.STORAGE | USAGE.COPY_DST | USAGE.COPY_SRC | extraUsage,
      label,
    );
    this.write(buffer, 0, data);
    return buffer;
  }

  write(buffer: GPUBuffer, offset: number, data: ArrayBufferView): void {
    const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    const aligned = bytes.byteLength & ~3;
    if (aligned > 0) this.device.queue.writeBuffer(buffer, offset, bytes, 0, aligned);
    if (aligned < bytes.byteLength) {
      const tail = new Uint8Array(4);
      tail.set(bytes.subarray(aligned));
      this.device.queue.writeBuffer(buffer, offset + aligned, tail);
    }
  }

  destroyBuffer(buffer: GPUBuffer): void {
    if (!this.live.delete(buffer)) return;
    this.liveBytes -= buffer.size;
    buffer.destroy();
  }

  stats(): BufferStats {
    return { liveBuffers: this.live.size, liveBytes: this.liveBytes };
  }

  pipeline(name: KernelName, dtype: DType | WeightFormat = 'F32'): GPUComputePipeline {
    const kernel = KERNELS[name];
    const readsWeights = kernel.weights.length > 0;
    const format = typeof dtype === 'string' ? weightFormat(dtype) : dtype;
    const key = readsWeights ? `${name}:${format.code}:${format.group}` : name;
    let p = this.pipelines.get(key);
    if (!p) {
      const code = readsWeights
        ? `${preludeWgsl}\n${weightsWgsl}\n${kernel.weights.map(accessor).join('')}\n${kernel.source}`
        : `${preludeWgsl}\n${kernel.source}`;
      const module = this.device.createShaderModule({ code, label: name });
      p = this.device.createComputePipeline({
        layout: 'auto',
        label: key,
        compute: {
          module,
          entryPoint: 'main',
          constants: readsWeights ? { W_FORMAT: format.code, W_GROUP: format.group } : {},
        },
      });
      this.pipelines.set(key, p);
    }
    return p;
  }

  destroy(): void {
    for (const b of this.live) b.destroy();
    this.live.clear();
    this.liveBytes = 0;
    this.device.destroy();
  }
}

/** Spread `groups` workgroups over x (≤ ROW_SPLIT) and a second dimension. */
export function splitGroups(groups: number): [number, number] {
  return groups <= ROW_SPLIT ? [Math.max(groups, 1), 1] : [ROW_SPLIT, Math.ceil(groups / ROW_SPLIT)];
}

interface DispatchOp {
  kind: 'dispatch';
  name: KernelName;
  dtype: DType | WeightFormat;
  params: ArrayBuffer;
  buffers: GPUBuffer[];
  groups: [number, number, number];
  /** Take the workgroup counts from this buffer (three u32 at `offset` bytes) instead of `groups`. */
  indirect?: { buffer: GPUBuffer; offset: number };
}
interface CopyOp {
  kind: 'copy';
  src: GPUBuffer;
  srcOffset: number;
  dst: GPUBuffer;
  dstOffset: number;
  size: number;
}

const PARAM_STRIDE = 256; // minUniformBufferOffsetAlignment is at most 256 on every device

/** Kernel parameters: a small struct of u32/f32 fields, written in declaration order. */
/** One field of a kernel's `struct Params`, as its WGSL source declares it. */
export interface ParamField {
  name: string;
  type: 'u32' | 'i32' | 'f32';
}

/** The fields of `struct Params { ... }` in a kernel's source, in order (the uniform's layout). */
export function paramFields(source: string): ParamField[] {
  const body = /struct\s+Params\s*\{([^}]*)\}/.exec(source)?.[1];
  if (!body) return [];
  const fields: ParamField[] = [];
  for (const m of body.replace(/\/\/[^\n]*/g, '').matchAll(/(\w+)\s*:\s*(u32|i32|f32)/g)) {
    fields.push({ name: m[1], type: m[2] as ParamField['type'] });
  }
  return fields;
}

const PARAM_FIELDS = Object.fromEntries(
  Object.entries(KERNELS).map(([name, k]) => [name, paramFields(k.source)]),
) as Record<KernelName, ParamField[]>;

/**
 * A kernel's uniform parameters by name, packed in the order of its WGSL `struct Params` (read from
 * the shader itself, so the two cannot drift). Padding fields (`_p0`...) are 0; a field left out or a
 * name the struct does not have is a bug and throws.
 */
export function uniforms(kernel: KernelName, values: Record<string, number>): ArrayBuffer {
  const fields = PARAM_FIELDS[kernel];
  const known = new Set(fields.map((f) => f.name));
  for (const key of Object.keys(values)) {
    if (!known.has(key)) throw new Error(`uniforms(${kernel}): struct Params has no field "${key}"`);
  }
  const buf = new ArrayBuffer(Math.max(16, Math.ceil((fields.length * 4) / 16) * 16));
  const u = new Uint32Array(buf);
  const i32 = new Int32Array(buf);
  const f = new Float32Array(buf);
  fields.forEach((field, i) => {
    const v = values[field.name];
    if (v === undefined) {
      if (field.name.startsWith('_')) return;
      throw new Error(`uniforms(${kernel}): field "${field.name}" is missing`);
    }
    if (field.type === 'f32') f[i] = v;
    else if (field.type === 'i32') i32[i] = v;
    else u[i] = v >>> 0;
  });
  return buf;
}

/**
 * Collects a step's dispatches and copies, then submits them as one command buffer. Parameters of all
 * dispatches go up in one uniform buffer; outputs come back through one staging buffer and one mapAsync.
 */
export class Recorder {
  private ops: Array<DispatchOp | CopyOp> = [];

  constructor(private ctx: GpuContext) {}

  /** Compute dispatches recorded so far (the bench reports them per token). */
  get dispatchCount(): number {
    return this.ops.reduce((n, op) => n + (op.kind === 'dispatch' ? 1 : 0), 0);
  }

  dispatch(
    name: KernelName,
    dtype: DType | WeightFormat,
    p: ArrayBuffer,
    buffers: GPUBuffer[],
    groups: [number, number?, number?],
  ): void {
    const g: [number, number, number] = [groups[0], groups[1] ?? 1, groups[2] ?? 1];
    if (g[0] === 0 || g[1] === 0 || g[2] === 0) return;
    this.ops.push({ kind: 'dispatch', name, dtype, params: p, buffers, groups: g });
  }

  /** A dispatch whose workgroup counts an earlier dispatch of this recording writes into `args` (at byte `offset`). */
  dispatchIndirect(
    name: KernelName,
    dtype: DType | WeightFormat,
    p: ArrayBuffer,
    buffers: GPUBuffer[],
    args: GPUBuffer,
    offset: number,
  ): void {
    this.ops.push({
      kind: 'dispatch',
      name,
      dtype,
      params: p,
      buffers,
      groups: [0, 0, 0],
      indirect: { buffer: args, offset },
    });
  }

  copy(src: GPUBuffer, srcOffset: number, dst: GPUBuffer, dstOffset: number, size: number): void {
    if (size > 0) this.ops.push({ kind: 'copy', src, srcOffset, dst, dstOffset, size });
  }

  /** Submits everything; returns the bytes of each requested region, read back together. */
  async run(readbacks: Array<{ buffer: GPUBuffer; offset: number; size: number }> = []): Promise<ArrayBuffer[]> {
    const ctx = this.ctx;
    ctx.assertUsable();
    const device = ctx.device;
    const dispatches = this.ops.filter((o): o is DispatchOp => o.kind === 'dispatch');
    const temps: GPUBuffer[] = [];
    try {
      let uniforms: GPUBuffer | null = null;
      if (dispatches.length > 0) {
        const all = new Uint8Array(dispatches.length * PARAM_STRIDE);
        dispatches.forEach((d, i) => all.set(new Uint8Array(d.params), i * PARAM_STRIDE));
        uniforms = ctx.createBuffer(all.byteLength, USAGE.UNIFORM | USAGE.COPY_DST, 'params');
        temps.push(uniforms);
        ctx.write(uniforms, 0, all);
      }
      device.pushErrorScope('validation');
      const encoder = device.createCommandEncoder();
      let pass: GPUComputePassEncoder | null = null;
      let index = 0;
      for (const op of this.ops) {
        if (op.kind === 'copy') {
          pass?.end();
          pass = null;
          encoder.copyBufferToBuffer(op.src, op.srcOffset, op.dst, op.dstOffset, op.size);
          continue;
        }
        pass ??= encoder.beginComputePass();
        const pipeline = ctx.pipeline(op.name, op.dtype);
        const entries: GPUBindGroupEntry[] = [
          { binding: 0, resource: { buffer: uniforms!, offset: index * PARAM_STRIDE, size: op.params.byteLength } },
          ...op.buffers.map((buffer, i) => ({ binding: i + 1, resource: { buffer } })),
        ];
        index++;
        pass.setPipeline(pipeline);
        pass.setBindGroup(0, device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries }));
        if (op.indirect) pass.dispatchWorkgroupsIndirect(op.indirect.buffer, op.indirect.offset);
        else pass.dispatchWorkgroups(...op.groups);
      }
      pass?.end();

      const total = readbacks.reduce((s, r) => s + r.size, 0);
      let staging: GPUBuffer | null = null;
      if (total > 0) {
        staging = ctx.createBuffer(total, USAGE.MAP_READ | USAGE.COPY_DST, 'readback');
        temps.push(staging);
        let at = 0;
        for (const r of readbacks) {
          encoder.copyBufferToBuffer(r.buffer, r.offset, staging, at, r.size);
          at += r.size;
        }
      }
      device.queue.submit([encoder.finish()]);
      this.ops = [];
      const validation = await device.popErrorScope();
      if (validation) throw new WebGpuInternalError(`The GPU rejected a command: ${validation.message}`);
      const out: ArrayBuffer[] = [];
      if (staging) {
        try {
          await staging.mapAsync(MAP_MODE_READ);
        } catch (e) {
          ctx.assertUsable();
          throw new WebGpuInternalError(`Reading results back from the GPU failed: ${(e as Error).message}`);
        }
        const mapped = staging.getMappedRange(0, total).slice(0);
        staging.unmap();
        let at = 0;
        for (const r of readbacks) {
          out.push(mapped.slice(at, at + r.size));
          at += r.size;
        }
      } else {
        await device.queue.onSubmittedWorkDone();
      }
      ctx.assertUsable();
      ctx.takeError();
      return out;
    } finally {
      for (const t of temps) ctx.destroyBuffer(t);
    }
  }
}
