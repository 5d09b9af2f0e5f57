import { describe, expect, it } from 'vitest';
import { nodeGpu } from '../../src/cli/nodeGpu.ts';

describe('WebGPU in Node (Dawn on SwiftShader)', () => {
  it('finds an adapter and a device', async () => {
    const gpu = await nodeGpu();
    const adapter = await gpu.requestAdapter();
    expect(adapter).not.toBeNull();
    const info = adapter!.info;
    console.log('adapter:', info.vendor, info.architecture, info.device, info.description);
    console.log(
      'maxStorageBufferBindingSize',
      adapter!.limits.maxStorageBufferBindingSize,
      'maxBufferSize',
      adapter!.limits.maxBufferSize,
      'features',
      [...adapter!.features].join(','),
    );
    const device = await adapter!.requestDevice();
    expect(device.limits.maxComputeInvocationsPerWorkgroup).toBeGreaterThanOrEqual(256);
    device.destroy();
  });
});
