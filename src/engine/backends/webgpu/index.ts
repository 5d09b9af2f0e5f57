// The WebGPU backend: same Backend / LoadedModel / KvCache contract as the CPU reference, kernels in
// shaders/*.wgsl. Creating it fails with WebGpuUnavailableError (a sentence a person can read) when the
// platform has no usable WebGPU, so the caller can fall back to the CPU backend.

import { quantizeWeights } from '../../format/quant.ts';
import type { Backend, ModelSpec, QuantScheme, WeightSet } from '../../types.ts';
import { GpuContext, type BufferStats } from './context.ts';
import { WebGpuUnavailableError } from './errors.ts';
import { WebGpuModel } from './model.ts';

export {
  WebGpuUnavailableError,
  WebGpuDeviceLostError,
  WebGpuTooLargeError,
  WebGpuUnsupportedError,
  WebGpuInternalError,
} from './errors.ts';
export { WebGpuModel, type WebGpuForwardStats } from './model.ts';
export type { BufferStats } from './context.ts';

export class WebGpuBackend implements Backend {
  readonly kind = 'webgpu' as const;
  private models = new Set<WebGpuModel>();

  constructor(
    readonly ctx: GpuContext,
    readonly description: string,
    readonly quantize: QuantScheme = 'none',
  ) {}

  /** Live GPU buffers and their bytes, over weights, caches and scratch of every loaded model. */
  stats(): BufferStats {
    return this.ctx.stats();
  }

  /** Set when the device was lost: the reason in words. The backend is then unusable; create a new one. */
  get lostReason(): string | null {
    return this.ctx.lostMessage;
  }

  async load(spec: ModelSpec, weights: WeightSet): Promise<WebGpuModel> {
    this.ctx.assertUsable();
    const model = new WebGpuModel(this.ctx, spec, quantizeWeights(weights, this.quantize), (m) =>
      this.models.delete(m),
    );
    this.models.add(model);
    // Surface upload errors (out of memory, validation) now rather than at the first forward.
    await this.ctx.device.queue.onSubmittedWorkDone();
    this.ctx.assertUsable();
    try {
      this.ctx.takeError();
    } catch (e) {
      model.dispose();
      throw e;
    }
    return model;
  }

  dispose(): void {
    for (const m of [...this.models]) m.dispose();
    this.ctx.destroy();
  }
}

function describeAdapter(adapter: GPUAdapter): string {
  const info = adapter.info;
  const parts = [info.vendor, info.architecture, info.device, info.description].filter((s) => s && s.length > 0);
  return `WebGPU on ${parts.length > 0 ? [...new Set(parts)].join(' ') : 'an unnamed adapter'}`;
}

export interface WebGpuBackendOptions {
  /** Quantize the matrices on load (routers stay as stored); the kernels read the packed codes. Default 'none'. */
  quantize?: QuantScheme;
  /** Treat buffers above this many bytes as too large (tests of splitting large tensors). */
  maxBufferBytes?: number;
}

/** Limits the backend asks for at the adapter's own maximum (the defaults are far below what GPUs offer). */
const MAX_LIMITS = [
  'maxStorageBufferBindingSize',
  'maxBufferSize',
  'maxStorageBuffersPerShaderStage',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupsPerDimension',
  'maxBindingsPerBindGroup',
] as const;

/** Opens a WebGPU device (from `gpu`, or navigator.gpu) and returns a backend on it. */
export async function createWebGpuBackend(gpu?: GPU, options: WebGpuBackendOptions = {}): Promise<WebGpuBackend> {
  const platformGpu = gpu ?? (typeof navigator !== 'undefined' ? navigator.gpu : undefined);
  if (!platformGpu) throw new WebGpuUnavailableError('This browser does not offer WebGPU (navigator.gpu is missing).');
  let adapter: GPUAdapter | null;
  try {
    adapter = await platformGpu.requestAdapter({ powerPreference: 'high-performance' });
  } catch (e) {
    throw new WebGpuUnavailableError(`Asking for a WebGPU adapter failed: ${(e as Error).message}`);
  }
  if (!adapter) throw new WebGpuUnavailableError('WebGPU is present but found no usable GPU adapter.');
  let device: GPUDevice;
  try {
    // Ask for the adapter's own limits: the defaults (128/256 MiB buffers) are too small for most models.
    const requiredLimits: Record<string, number> = {};
    for (const name of MAX_LIMITS) {
      const value = adapter.limits[name];
      if (typeof value === 'number') requiredLimits[name] = value;
    }
    device = await adapter.requestDevice({ requiredLimits });
  } catch (e) {
    throw new WebGpuUnavailableError(`The GPU adapter refused to open a device: ${(e as Error).message}`);
  }
  const quantize = options.quantize ?? 'none';
  const description = describeAdapter(adapter) + (quantize === 'none' ? '' : `, weights quantized to ${quantize}`);
  return new WebGpuBackend(new GpuContext(device, description, options.maxBufferBytes), description, quantize);
}
