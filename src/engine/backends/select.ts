// Picks the backend: WebGPU when the platform offers a working adapter, else the CPU reference,
// always with a sentence saying why, so the UI and the CLI can show which engine runs.
import { NATIVE_PLAN } from '../routing/index.ts';
import type { Backend, LoadedModel } from '../types.ts';
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

/** What the platform's WebGPU adapter is: a software renderer (SwiftShader, llvmpipe, WARP, a fallback adapter) or hardware. */
export interface AdapterNature {
  software: boolean;
  /** The adapter's name in words (vendor, architecture, device, description). */
  name: string;
  /** What gave a software adapter away ("isFallbackAdapter", "SwiftShader" …); '' for hardware. */
  evidence: string;
}

const SOFTWARE_NAMES = /swiftshader|llvmpipe|lavapipe|softpipe|microsoft basic render|\bwarp\b|software/i;

/** Reads the adapter's info: `isFallbackAdapter`, or a renderer known to run on the CPU. */
export function adapterNature(
  info: { vendor?: string; architecture?: string; device?: string; description?: string; isFallbackAdapter?: boolean },
  isFallbackAdapter = false,
): AdapterNature {
  const parts = [info.vendor, info.architecture, info.device, info.description].filter(
    (s): s is string => !!s && s.length > 0,
  );
  const name = parts.length > 0 ? [...new Set(parts)].join(' ') : 'an unnamed adapter';
  const fallback = isFallbackAdapter || info.isFallbackAdapter === true;
  const match = SOFTWARE_NAMES.exec(parts.join(' '));
  const evidence = match
    ? fallback
      ? `${match[0]}, a fallback adapter`
      : match[0]
    : fallback
      ? 'isFallbackAdapter'
      : '';
  return { software: evidence !== '', name, evidence };
}

/** Asks the platform for its adapter and says what it is; null without WebGPU or an adapter. */
export async function probeAdapter(gpu?: GPU): Promise<AdapterNature | null> {
  const platformGpu = gpu ?? (typeof navigator !== 'undefined' ? navigator.gpu : undefined);
  if (!platformGpu) return null;
  try {
    const adapter = await platformGpu.requestAdapter({ powerPreference: 'high-performance' });
    if (!adapter) return null;
    const legacy = (adapter as GPUAdapter & { isFallbackAdapter?: boolean }).isFallbackAdapter === true;
    return adapterNature(adapter.info ?? {}, legacy);
  } catch {
    return null;
  }
}

/**
 * Decode speed in tokens per second: single-token forwards after a prompt and one warm-up step, until
 * `maxSteps` steps or `budgetMs` milliseconds (whichever comes first; at least 2 steps).
 */
export async function measureDecode(
  model: LoadedModel,
  prompt: number[],
  maxSteps = 32,
  budgetMs = 600,
): Promise<number> {
  const steps = Math.max(2, Math.min(maxSteps, model.spec.maxPositions - prompt.length - 2));
  const cache = model.newCache(prompt.length + steps + 1);
  const options = { routing: NATIVE_PLAN, logits: 'last' as const };
  await model.forward(prompt, cache, options);
  await model.forward([prompt[prompt.length - 1]], cache, options);
  const started = performance.now();
  let done = 0;
  while (done < steps && (done < 2 || performance.now() - started < budgetMs)) {
    await model.forward([prompt[done % prompt.length]], cache, options);
    done++;
  }
  const seconds = (performance.now() - started) / 1000;
  return done / Math.max(seconds, 1e-6);
}

/** The badge's sentence for a measured choice: "CPU: 3.1x faster than WebGPU on this software adapter (SwiftShader)". */
export function describeRace(
  cpu: number,
  webgpu: number,
  adapter: AdapterNature,
): { kind: 'cpu' | 'webgpu'; reason: string } {
  const where = adapter.software
    ? `this software adapter (${adapter.evidence === 'isFallbackAdapter' ? 'a fallback adapter' : adapter.evidence})`
    : `this adapter (${adapter.name})`;
  const kind = cpu >= webgpu ? 'cpu' : 'webgpu';
  const ratio = kind === 'cpu' ? cpu / webgpu : webgpu / cpu;
  const rate = (v: number) => v.toFixed(v >= 10 ? 0 : 1);
  const measured = `measured ${rate(cpu)} vs ${rate(webgpu)} tok/s decoding`;
  return kind === 'cpu'
    ? { kind, reason: `CPU: ${ratio.toFixed(1)}x faster than WebGPU on ${where}; ${measured} (CPU vs WebGPU)` }
    : { kind, reason: `WebGPU: ${ratio.toFixed(1)}x faster than the CPU on ${where}; ${measured} (CPU vs WebGPU)` };
}
