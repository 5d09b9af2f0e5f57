// Kernel parameters are passed by name and packed in the order the WGSL `struct Params` declares,
// read from the shader source itself, so the TypeScript side and the shader cannot drift.
import { describe, expect, it } from 'vitest';
import attentionWgsl from '../../shaders/attention.wgsl?raw';
import { paramFields, uniforms } from '../../src/engine/backends/webgpu/context.ts';

describe('named kernel parameters', () => {
  it('reads the struct fields, with their types, from the shader', () => {
    expect(paramFields(attentionWgsl).map((f) => `${f.name}:${f.type}`)).toEqual([
      'tokens:u32',
      'heads:u32',
      'kvHeads:u32',
      'headDim:u32',
      'pos0:u32',
      'scoreStride:u32',
      'scale:f32',
      'window:u32',
      'outScale:f32',
      '_p0:u32',
      '_p1:u32',
      '_p2:u32',
    ]);
  });

  it('packs values by name in struct order (f32 as floats, padding 0) and refuses missing or unknown names', () => {
    const buf = uniforms('attention', {
      tokens: 3,
      heads: 4,
      kvHeads: 2,
      headDim: 16,
      pos0: 5,
      scoreStride: 8,
      scale: 0.25,
      window: 0,
      outScale: 1.5,
    });
    const u = new Uint32Array(buf);
    const f = new Float32Array(buf);
    expect([...u.slice(0, 6)]).toEqual([3, 4, 2, 16, 5, 8]);
    expect(f[6]).toBe(0.25);
    expect(u[7]).toBe(0);
    expect(f[8]).toBe(1.5);
    expect([...u.slice(9)]).toEqual([0, 0, 0]);
    expect(buf.byteLength % 16).toBe(0);
    expect(() => uniforms('rope', { tokens: 1, heads: 1, headDim: 2 })).toThrow(/field "tableRow" is missing/);
    expect(() => uniforms('rope', { tokens: 1, heads: 1, headDim: 2, tableRow: 0, extra: 1 })).toThrow(
      /no field "extra"/,
    );
  });
});
