// Picks the backend: WebGPU when the platform offers a working adapter, else the CPU reference,
// always with a sentence saying why, so the UI and the CLI can show which engine runs.
import type { Backend } from '../types.ts';
import { createCpuBackend } from './cpu/index.ts';

export interface BackendChoice {
  backend: Backend;
  /** Set when WebGPU was wanted but the CPU backend runs instead. */
  fallbackReason?: string;
}

export async function chooseBackend(prefer: 'webgpu' | 'cpu', gpu?: GPU): Promise<BackendChoice> {
  if (prefer === 'cpu') return { backend: createCpuBackend() };
  const platformGpu = gpu ?? (typeof navigator !== 'undefined' ? navigator.gpu : undefined);
  if (!platformGpu) {
    return { backend: createCpuBackend(), fallbackReason: 'this browser does not offer WebGPU' };
  }
  try {
    const { createWebGpuBackend } = await import('./webgpu/index.ts');
    return { backend: await createWebGpuBackend(platformGpu) };
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    return { backend: createCpuBackend(), fallbackReason: reason };
  }
}
