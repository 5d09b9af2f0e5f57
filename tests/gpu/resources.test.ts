// Buffer accounting, sparse weight traffic, refusals and device loss of the WebGPU backend.
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nodeGpu } from '../../src/cli/nodeGpu.ts';
import {
  createWebGpuBackend,
  WebGpuDeviceLostError,
  WebGpuTooLargeError,
  WebGpuUnavailableError,
  type WebGpuBackend,
  type WebGpuModel,
} from '../../src/engine/backends/webgpu/index.ts';
import { loadCheckpoint, type Checkpoint } from '../../src/engine/format/index.ts';
import { dirSource } from '../../src/cli/fsSource.ts';
import { parseRoutingPlan } from '../../src/engine/routing/index.ts';
import type { Tensor, WeightSet } from '../../src/engine/types.ts';

const FIXTURES = path.resolve(import.meta.dirname, '../fixtures/models');
const TOKENS = [5, 17, 42, 3, 60, 9];

let backend: WebGpuBackend;
let mixtral: Checkpoint;
beforeAll(async () => {
  backend = await createWebGpuBackend(await nodeGpu());
  mixtral = await loadCheckpoint(dirSource(path.join(FIXTURES, 'mixtral_f32')));
});
afterAll(() => backend?.dispose());

function nanLike(t: Tensor): Tensor {
  const bytes = new Uint8Array(t.bytes.byteLength);
  new Float32Array(bytes.buffer).fill(NaN);
  return { ...t, bytes };
}

describe('WebGPU backend resources', () => {
  it('load, run and unload 20 times: live buffers and bytes return to the start', async () => {
    const start = backend.stats();
    let during = start;
    for (let i = 0; i < 20; i++) {
      const model = await backend.load(mixtral.spec, mixtral.weights);
      const cache = model.newCache(16);
      await model.forward(TOKENS, cache, { routing: parseRoutingPlan(i % 2 ? 'dense' : 'native'), logits: 'all' });
      during = backend.stats();
      if (i % 3 === 0) cache.dispose(); // the others are released by model.dispose()
      model.dispose();
      expect(backend.stats()).toEqual(start);
    }
    expect(during.liveBuffers).toBeGreaterThan(start.liveBuffers);
    expect(during.liveBytes).toBeGreaterThan(start.liveBytes);
  });

  it('counts expert weight bytes: topk:2 reads 2/E of what dense reads', async () => {
    const model = (await backend.load(mixtral.spec, mixtral.weights)) as WebGpuModel;
    const E = mixtral.spec.moe!.numExperts;
    const run = async (mode: string) => {
      await model.forward(TOKENS, model.newCache(8), { routing: parseRoutingPlan(mode), logits: 'last' });
      return model.lastStats!;
    };
    const dense = await run('dense');
    const top2 = await run('topk:2');
    const perExpert = ['gate', 'up', 'down'].reduce(
      (s, k) => s + mixtral.weights.layers[0].moe!.experts[0][k as 'gate'].bytes.byteLength,
      0,
    );
    // Independent count: tokens × MoE layers × experts × bytes per expert.
    expect(dense.expertBytesRead).toBe(TOKENS.length * 2 * E * perExpert);
    expect(dense.denseExpertBytes).toBe(dense.expertBytesRead);
    expect(top2.expertBytesRead).toBe((2 / E) * dense.expertBytesRead);
    expect(top2.weightBytesPerToken).toBeLessThan(dense.weightBytesPerToken);
    model.dispose();
  });

  it('one forward call maps exactly one buffer back to the CPU (logits and all routing together)', async () => {
    const model = await backend.load(mixtral.spec, mixtral.weights);
    const proto = (globalThis as unknown as { GPUBuffer: { prototype: GPUBuffer } }).GPUBuffer.prototype;
    const original = proto.mapAsync;
    let maps = 0;
    proto.mapAsync = function (this: GPUBuffer, ...args: Parameters<GPUBuffer['mapAsync']>) {
      maps++;
      return original.apply(this, args);
    };
    try {
      const out = await model.forward(TOKENS, model.newCache(8), {
        routing: parseRoutingPlan('native'),
        logits: 'all',
      });
      expect(out.routing.layers.length).toBe(2);
      expect(maps).toBe(1);
    } finally {
      proto.mapAsync = original;
      model.dispose();
    }
  });

  it('sparse means sparse: experts that are not chosen are never read', async () => {
    // Poison every expert except 2 (layer 0) and 5 (layer 1) with NaN; topk:1 with those two forced must
    // still give the clean model's logits, while dense (which reads all experts) turns to NaN.
    const keep = [2, 5];
    const poisoned: WeightSet = {
      ...mixtral.weights,
      layers: mixtral.weights.layers.map((layer, l) => ({
        ...layer,
        moe: {
          ...layer.moe!,
          experts: layer.moe!.experts.map((e, i) =>
            i === keep[l] ? e : { gate: nanLike(e.gate), up: nanLike(e.up), down: nanLike(e.down) },
          ),
        },
      })),
    };
    const plan = parseRoutingPlan('topk:1', 'L0E2+,L1E5+');
    const clean = await backend.load(mixtral.spec, mixtral.weights);
    const dirty = await backend.load(mixtral.spec, poisoned);
    const want = await clean.forward(TOKENS, clean.newCache(8), { routing: plan, logits: 'all' });
    const got = await dirty.forward(TOKENS, dirty.newCache(8), { routing: plan, logits: 'all' });
    got.logits.forEach((row, t) => {
      expect(row.every(Number.isFinite)).toBe(true);
      expect(Array.from(row)).toEqual(Array.from(want.logits[t]));
    });
    const dense = await dirty.forward(TOKENS, dirty.newCache(8), {
      routing: parseRoutingPlan('dense'),
      logits: 'last',
    });
    expect(dense.logits[0].some(Number.isNaN)).toBe(true);
    clean.dispose();
    dirty.dispose();
  });

  it('refuses a KV cache larger than the largest GPU buffer before allocating anything', async () => {
    // (Weights larger than one buffer are split instead: tests/gpu/split.test.ts.)
    const before = backend.stats();
    const limit = backend.ctx.maxBufferBytes;
    const model = await backend.load(mixtral.spec, mixtral.weights);
    const kvWidth = mixtral.spec.numKvHeads * mixtral.spec.headDim;
    expect(() => model.newCache(Math.floor(limit / (kvWidth * 4)) + 1)).toThrow(WebGpuTooLargeError);
    model.dispose();
    expect(backend.stats()).toEqual(before);
  });

  it('a lost device is reported in words; a new backend works', async () => {
    const doomed = await createWebGpuBackend(await nodeGpu());
    const model = await doomed.load(mixtral.spec, mixtral.weights);
    const cache = model.newCache(8);
    doomed.ctx.device.destroy();
    await doomed.ctx.device.lost;
    expect(doomed.lostReason).toMatch(/GPU device was lost|disposed/);
    await expect(model.forward(TOKENS, cache, { routing: parseRoutingPlan('native'), logits: 'last' })).rejects.toThrow(
      WebGpuDeviceLostError,
    );
    await expect(doomed.load(mixtral.spec, mixtral.weights)).rejects.toThrow(WebGpuDeviceLostError);

    const fresh = await createWebGpuBackend(await nodeGpu());
    const again = await fresh.load(mixtral.spec, mixtral.weights);
    const out = await again.forward(TOKENS, again.newCache(8), { routing: parseRoutingPlan('native'), logits: 'last' });
    expect(out.logits[0].every(Number.isFinite)).toBe(true);
    fresh.dispose();
  });

  it('no WebGPU → WebGpuUnavailableError with a reason', async () => {
    const saved = (globalThis as { navigator?: unknown }).navigator;
    try {
      // Node without the webgpu package: no navigator.gpu at all.
      Object.defineProperty(globalThis, 'navigator', { value: {}, configurable: true });
      await expect(createWebGpuBackend()).rejects.toThrow(WebGpuUnavailableError);
      await expect(createWebGpuBackend()).rejects.toThrow(/does not offer WebGPU/);
    } finally {
      Object.defineProperty(globalThis, 'navigator', { value: saved, configurable: true });
    }
  });
});
