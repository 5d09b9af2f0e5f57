// Each WGSL kernel against plain-JS math on small shapes, for f32, f16 and bf16 weights.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nodeGpu } from '../../src/cli/nodeGpu.ts';
import { createWebGpuBackend, type WebGpuBackend } from '../../src/engine/backends/webgpu/index.ts';
import { Recorder } from '../../src/engine/backends/webgpu/context.ts';
import * as K from '../../src/engine/backends/webgpu/kernels.ts';
import { fromFloat32, toFloat32 } from '../../src/engine/format/index.ts';
import { routeToken } from '../../src/engine/routing/index.ts';
import type { DType, MoeSpec, RoutingPlan } from '../../src/engine/types.ts';
import { maxAbsDiff } from '../maxAbsDiff.ts';

let backend: WebGpuBackend;
beforeAll(async () => {
  backend = await createWebGpuBackend(await nodeGpu());
  console.log(backend.description);
});
afterAll(() => backend?.dispose());

/** Deterministic pseudo-random values in [-1, 1). */
function rand(n: number, seed: number): Float32Array {
  let s = seed >>> 0 || 1;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    out[i] = (s / 2 ** 32) * 2 - 1;
  }
  return out;
}

/** A weight matrix stored in `dtype`, plus the exact values the GPU should see after unpacking. */
function weight(values: Float32Array, shape: number[], dtype: DType) {
  const t = fromFloat32(values, shape, dtype);
  return { tensor: t, exact: toFloat32(t), gpu: { buffer: backend.ctx.uploadBuffer(t.bytes), dtype } };
}

async function read(buffer: GPUBuffer, floats: number, rec = new Recorder(backend.ctx)): Promise<Float32Array> {
  const [bytes] = await rec.run([{ buffer, offset: 0, size: floats * 4 }]);
  return new Float32Array(bytes);
}

const DTYPES: DType[] = ['F32', 'F16', 'BF16'];

describe('projection kernels (matvec, tiled matmul)', () => {
  for (const dtype of DTYPES) {
    for (const kernel of ['matvec', 'matmul'] as const) {
      it(`${kernel} ${dtype}: offsets, strides, bias and accumulate`, async () => {
        const ctx = backend.ctx;
        // Odd sizes so rows, tokens and K all leave partial tiles; wOffset odd to test half-word starts.
        const rows = 37,
          Kd = 83,
          tokens = 5,
          wOffset = 3,
          xOffset = 2,
          xStride = Kd + 4,
          yOffset = 1,
          yStride = rows + 2;
        const w = weight(rand(wOffset + rows * Kd, 11), [wOffset + rows * Kd], dtype);
        const x = rand(xOffset + tokens * xStride, 12);
        const bias = rand(rows, 13);
        const y0 = rand(yOffset + tokens * yStride, 14);
        const xb = ctx.uploadBuffer(x),
          bb = ctx.uploadBuffer(bias),
          yb = ctx.uploadBuffer(y0);
        const rec = new Recorder(ctx);
        K.project(
          rec,
          {
            weight: w.gpu,
            rows,
            K: Kd,
            tokens,
            x: xb,
            y: yb,
            bias: bb,
            wOffset,
            xOffset,
            xStride,
            yOffset,
            yStride,
            accumulate: true,
          },
          bb,
          kernel,
        );
        const got = await read(yb, y0.length, rec);
        const want = Float32Array.from(y0);
        for (let t = 0; t < tokens; t++) {
          for (let r = 0; r < rows; r++) {
            let s = 0;
            for (let k = 0; k < Kd; k++) s += w.exact[wOffset + r * Kd + k] * x[xOffset + t * xStride + k];
            want[yOffset + t * yStride + r] += s + bias[r];
          }
        }
        expect(maxAbsDiff(got, want)).toBeLessThan(1e-5);
        for (const b of [w.gpu.buffer, xb, bb, yb]) ctx.destroyBuffer(b);
      });
    }
  }

  it('matvec handles more rows than one dispatch dimension holds (row split)', async () => {
    const ctx = backend.ctx;
    const rows = K.ROW_SPLIT + 5,
      Kd = 3;
    const w = weight(rand(rows * Kd, 21), [rows, Kd], 'F16');
    const x = rand(Kd, 22);
    const xb = ctx.uploadBuffer(x),
      yb = ctx.uploadBuffer(new Float32Array(rows));
    const rec = new Recorder(ctx);
    K.project(rec, { weight: w.gpu, rows, K: Kd, tokens: 1, x: xb, y: yb }, xb, 'matvec');
    const got = await read(yb, rows, rec);
    for (const r of [0, 1, K.ROW_SPLIT - 1, K.ROW_SPLIT, rows - 1]) {
      const want = w.exact[r * 3] * x[0] + w.exact[r * 3 + 1] * x[1] + w.exact[r * 3 + 2] * x[2];
      expect(Math.abs(got[r] - want)).toBeLessThan(1e-5);
    }
    for (const b of [w.gpu.buffer, xb, yb]) ctx.destroyBuffer(b);
  });
});

describe('embedding, norm, rope, attention', () => {
  for (const dtype of DTYPES) {
    it(`embed gathers rows (${dtype})`, async () => {
      const ctx = backend.ctx;
      const V = 11,
        d = 7,
        ids = [3, 0, 10, 3];
      const table = weight(rand(V * d, 31), [V, d], dtype);
      const idb = ctx.uploadBuffer(new Uint32Array([99, ...ids]));
      const out = ctx.uploadBuffer(new Float32Array(ids.length * d));
      const rec = new Recorder(ctx);
      K.embed(rec, table.gpu, idb, 1, ids.length, d, out);
      const got = await read(out, ids.length * d, rec);
      const want = new Float32Array(ids.flatMap((id) => Array.from(table.exact.subarray(id * d, id * d + d))));
      expect(maxAbsDiff(got, want)).toBe(0);
      // granitemoe's embedding_multiplier (12: an exact f32 product of every value)
      const rec2 = new Recorder(ctx);
      K.embed(rec2, table.gpu, idb, 1, ids.length, d, out, 12);
      expect(
        maxAbsDiff(
          await read(out, ids.length * d, rec2),
          want.map((v) => Math.fround(v * 12)),
        ),
      ).toBe(0);
      for (const b of [table.gpu.buffer, idb, out]) ctx.destroyBuffer(b);
    });
  }

  it('rmsnorm over rows with offsets', async () => {
    const ctx = backend.ctx;
    const rows = 3,
      len = 150,
      eps = 1e-5,
      inOffset = 4;
    const x = rand(inOffset + rows * len, 41);
    const w = rand(len, 42);
    const xb = ctx.uploadBuffer(x),
      wb = ctx.uploadBuffer(w),
      ob = ctx.uploadBuffer(new Float32Array(2 + rows * len));
    const rec = new Recorder(ctx);
    K.rmsNorm(rec, { x: xb, weight: wb, out: ob, rows, len, eps, inOffset, outOffset: 2 });
    const got = await read(ob, 2 + rows * len, rec);
    const want = new Float32Array(2 + rows * len);
    for (let r = 0; r < rows; r++) {
      let ss = 0;
      for (let i = 0; i < len; i++) ss += x[inOffset + r * len + i] ** 2;
      const scale = 1 / Math.sqrt(ss / len + eps);
      for (let i = 0; i < len; i++) want[2 + r * len + i] = x[inOffset + r * len + i] * scale * w[i];
    }
    expect(maxAbsDiff(got, want)).toBeLessThan(1e-5);
    for (const b of [xb, wb, ob]) ctx.destroyBuffer(b);
  });

  it('rope rotates halves by position', async () => {
    const ctx = backend.ctx;
    const tokens = 3,
      heads = 2,
      hd = 8,
      pos0 = 5,
      theta = 10000;
    const x = rand(tokens * heads * hd, 51);
    const inv = new Float32Array(hd / 2).map((_, i) => 1 / theta ** ((2 * i) / hd));
    // Tables for positions pos0-1 .. : the kernel must start at table row 1.
    const tables = K.ropeTables(inv, pos0 - 1, tokens + 1);
    const xb = ctx.uploadBuffer(x),
      cb = ctx.uploadBuffer(tables.cos),
      sb = ctx.uploadBuffer(tables.sin);
    const rec = new Recorder(ctx);
    K.rope(rec, xb, cb, sb, tokens, heads, hd, 1);
    const got = await read(xb, x.length, rec);
    const want = Float32Array.from(x);
    for (let t = 0; t < tokens; t++) {
      for (let h = 0; h < heads; h++) {
        const b = (t * heads + h) * hd;
        for (let i = 0; i < hd / 2; i++) {
          const a = (pos0 + t) * inv[i];
          want[b + i] = x[b + i] * Math.cos(a) - x[b + i + hd / 2] * Math.sin(a);
          want[b + i + hd / 2] = x[b + i + hd / 2] * Math.cos(a) + x[b + i] * Math.sin(a);
        }
      }
    }
    expect(maxAbsDiff(got, want)).toBeLessThan(1e-5);
    for (const b of [xb, cb, sb]) ctx.destroyBuffer(b);
  });

  // Plain causal; a sliding window of 5 with granitemoe's score and output multipliers; a window longer than the cache.
  const attentionCases: Array<{ label: string; window?: number; scale?: number; outScale?: number }> = [
    { label: 'causal' },
    { label: 'sliding window 5, scale 1/8, output × 0.22', window: 5, scale: 0.125, outScale: 0.22 },
    { label: 'window 100 > cache: plain causal', window: 100 },
  ];
  for (const c of attentionCases) {
    it(`grouped-query attention over a cache: ${c.label}`, async () => {
      const ctx = backend.ctx;
      const tokens = 3,
        heads = 4,
        kvHeads = 2,
        hd = 8,
        pos0 = 70; // > 64 positions: threads stride
      const n = pos0 + tokens;
      const q = rand(tokens * heads * hd, 61);
      const kc = rand(n * kvHeads * hd, 62),
        vc = rand(n * kvHeads * hd, 63);
      const qb = ctx.uploadBuffer(q),
        kb = ctx.uploadBuffer(kc),
        vb = ctx.uploadBuffer(vc);
      const sb = ctx.uploadBuffer(new Float32Array(tokens * heads * n)),
        ob = ctx.uploadBuffer(new Float32Array(q.length));
      const rec = new Recorder(ctx);
      K.attention(rec, {
        q: qb,
        kCache: kb,
        vCache: vb,
        scores: sb,
        out: ob,
        tokens,
        heads,
        kvHeads,
        headDim: hd,
        pos0,
        scoreStride: n,
        window: c.window,
        scale: c.scale,
        outScale: c.outScale,
      });
      const got = await read(ob, q.length, rec);
      const want = new Float32Array(q.length);
      const scale = c.scale ?? 1 / Math.sqrt(hd);
      for (let t = 0; t < tokens; t++) {
        for (let h = 0; h < heads; h++) {
          const kvh = Math.floor(h / (heads / kvHeads));
          // Query at position p sees keys j with p − window < j ≤ p.
          const p = pos0 + t;
          const keys = Array.from({ length: p + 1 }, (_, j) => j).filter(
            (j) => c.window === undefined || j > p - c.window,
          );
          const s = keys.map((j) => {
            let dot = 0;
            for (let i = 0; i < hd; i++) dot += q[(t * heads + h) * hd + i] * kc[(j * kvHeads + kvh) * hd + i];
            return dot * scale;
          });
          const mx = Math.max(...s);
          const e = s.map((v) => Math.exp(v - mx));
          const sum = e.reduce((a, b) => a + b, 0);
          for (let i = 0; i < hd; i++) {
            let acc = 0;
            keys.forEach((j, k) => {
              acc += (e[k] / sum) * vc[(j * kvHeads + kvh) * hd + i];
            });
            want[(t * heads + h) * hd + i] = acc * (c.outScale ?? 1);
          }
        }
      }
      expect(maxAbsDiff(got, want)).toBeLessThan(1e-5);
      for (const b of [qb, kb, vb, sb, ob]) ctx.destroyBuffer(b);
    });
  }
});

describe('router kernel agrees with routeToken (the routing contract)', () => {
  const E = 8,
    T = 6,
    layer = 1;
  const logits = rand(T * E, 71).map((v) => v * 3);
  // Token 5 has an exact tie between experts 2 and 6: lower index must win.
  logits[5 * E + 2] = 2.5;
  logits[5 * E + 6] = 2.5;
  const cases: Array<{ name: string; plan: RoutingPlan; renorm: boolean }> = [
    { name: 'native (top-2), renormalised', plan: { mode: { kind: 'native' }, interventions: [] }, renorm: true },
    { name: 'topk:1, raw weights', plan: { mode: { kind: 'topk', k: 1 }, interventions: [] }, renorm: false },
    {
      name: 'topk:3 with ablate and force',
      plan: {
        mode: { kind: 'topk', k: 3 },
        interventions: [
          { layer: 1, expert: 2, action: 'ablate' },
          { layer: 1, expert: 7, action: 'force' },
          { layer: 0, expert: 1, action: 'ablate' },
        ],
      },
      renorm: true,
    },
    {
      name: 'topk:2 with three forced',
      plan: {
        mode: { kind: 'topk', k: 2 },
        interventions: [0, 3, 5].map((e) => ({ layer: 1, expert: e, action: 'force' as const })),
      },
      renorm: true,
    },
    { name: 'threshold:1.2', plan: { mode: { kind: 'threshold', t: 1.2 }, interventions: [] }, renorm: true },
    {
      name: 'threshold:50 falls back to the argmax',
      plan: { mode: { kind: 'threshold', t: 50 }, interventions: [] },
      renorm: false,
    },
    {
      name: 'threshold:0.9 with force',
      plan: { mode: { kind: 'threshold', t: 0.9 }, interventions: [{ layer: 1, expert: 4, action: 'force' }] },
      renorm: false,
    },
    {
      name: 'dense with ablation',
      plan: { mode: { kind: 'dense' }, interventions: [{ layer: 1, expert: 0, action: 'ablate' }] },
      renorm: true,
    },
    {
      name: 'dense with ablation, zero-weight (PyTorch literal)',
      plan: {
        mode: { kind: 'dense' },
        interventions: [{ layer: 1, expert: 0, action: 'ablate' }],
        ablation: 'zero-weight',
      },
      renorm: true,
    },
    {
      name: 'topk:8 with two ablated chooses the six live experts',
      plan: {
        mode: { kind: 'topk', k: 8 },
        interventions: [
          { layer: 1, expert: 3, action: 'ablate' },
          { layer: 1, expert: 5, action: 'ablate' },
        ],
      },
      renorm: true,
    },
    {
      name: 'topk:8 with two ablated, zero-weight (PyTorch literal)',
      plan: {
        mode: { kind: 'topk', k: 8 },
        interventions: [
          { layer: 1, expert: 3, action: 'ablate' },
          { layer: 1, expert: 5, action: 'ablate' },
        ],
        ablation: 'zero-weight',
      },
      renorm: true,
    },
  ];
  for (const c of cases) {
    it(c.name, async () => {
      const ctx = backend.ctx;
      const moe: MoeSpec = {
        numExperts: E,
        topK: 2,
        expertIntermediateSize: 4,
        normTopkProb: c.renorm,
        sharedExpertIntermediateSize: 0,
        moeLayers: [true, true],
      };
      const flags = new Uint32Array(2 * E);
      for (const iv of c.plan.interventions) flags[iv.layer * E + iv.expert] |= iv.action === 'ablate' ? 1 : 2;
      const m = c.plan.mode;
      const recBase = 3;
      const lb = ctx.uploadBuffer(logits),
        fb = ctx.uploadBuffer(flags);
      const rb = ctx.uploadBuffer(new Uint32Array(recBase + T * K.routeRecordWords(E)));
      const rec = new Recorder(ctx);
      K.route(rec, {
        logits: lb,
        flags: fb,
        route: rb,
        recBase,
        tokens: T,
        experts: E,
        layer,
        mode: m.kind === 'dense' ? 'dense' : m.kind === 'threshold' ? 'threshold' : 'topk',
        k: m.kind === 'topk' ? m.k : 2,
        threshold: m.kind === 'threshold' ? m.t : 0,
        renorm: c.renorm,
        ablation: c.plan.ablation,
      });
      const [bytes] = await rec.run([{ buffer: rb, offset: 0, size: (recBase + T * K.routeRecordWords(E)) * 4 }]);
      const words = new Uint32Array(bytes),
        floats = new Float32Array(bytes);
      for (let t = 0; t < T; t++) {
        const want = routeToken(logits.subarray(t * E, (t + 1) * E), layer, moe, c.plan);
        const b = recBase + t * K.routeRecordWords(E);
        const count = words[b];
        expect(Array.from(words.subarray(b + 1, b + 1 + count))).toEqual(want.experts);
        expect(maxAbsDiff(floats.subarray(b + 1 + E, b + 1 + E + count), want.weights)).toBeLessThan(1e-6);
        expect(maxAbsDiff(floats.subarray(b + 1 + 2 * E, b + 1 + 3 * E), want.probs)).toBeLessThan(1e-6);
      }
      for (const b of [lb, fb, rb]) ctx.destroyBuffer(b);
    });
  }
});

describe('expert kernels read only the chosen experts', () => {
  for (const dtype of DTYPES) {
    it(`gate·up·silu then weighted down into the residual (${dtype})`, async () => {
      const ctx = backend.ctx;
      const E = 5,
        f = 9,
        d = 70,
        T = 3,
        slots = 3;
      const gate = weight(rand(E * f * d, 81), [E, f, d], dtype);
      const up = weight(rand(E * f * d, 82), [E, f, d], dtype);
      const down = weight(rand(E * d * f, 83), [E, d, f], dtype);
      const x = rand(T * d, 84);
      const h0 = rand(T * d, 85);
      // Hand-written routing records: token 0 → experts 4, 1; token 1 → expert 2; token 2 → 0, 3, 4.
      const choices = [
        [
          [4, 0.7],
          [1, 0.3],
        ],
        [[2, 1]],
        [
          [0, 0.5],
          [3, 0.25],
          [4, 0.125],
        ],
      ];
      const Rw = K.routeRecordWords(E);
      const route = new Uint32Array(T * Rw);
      const rf = new Float32Array(route.buffer);
      choices.forEach((cs, t) => {
        route[t * Rw] = cs.length;
        cs.forEach(([e, w], s) => {
          route[t * Rw + 1 + s] = e;
          rf[t * Rw + 1 + E + s] = w;
        });
      });
      const xb = ctx.uploadBuffer(x),
        hb = ctx.uploadBuffer(h0),
        rb = ctx.uploadBuffer(route);
      const act = ctx.uploadBuffer(new Float32Array(T * slots * f));
      const rec = new Recorder(ctx);
      K.experts(rec, {
        gate: gate.gpu,
        up: up.gpu,
        down: down.gpu,
        f,
        d,
        tokens: T,
        slots,
        route: rb,
        recBase: 0,
        recExperts: E,
        x: xb,
        act,
        h: hb,
      });
      const got = await read(hb, T * d, rec);
      const want = Float32Array.from(h0);
      choices.forEach((cs, t) => {
        for (const [e, w] of cs) {
          const a = new Float64Array(f);
          for (let j = 0; j < f; j++) {
            let g = 0,
              u = 0;
            for (let k = 0; k < d; k++) {
              g += gate.exact[(e * f + j) * d + k] * x[t * d + k];
              u += up.exact[(e * f + j) * d + k] * x[t * d + k];
            }
            a[j] = (g / (1 + Math.exp(-g))) * u;
          }
          for (let i = 0; i < d; i++) {
            let s = 0;
            for (let j = 0; j < f; j++) s += down.exact[(e * d + i) * f + j] * a[j];
            want[t * d + i] += w * s;
          }
        }
      });
      expect(maxAbsDiff(got, want)).toBeLessThan(1e-4);
      // granitemoe: the block's output is scaled by residual_multiplier before it joins the residual stream.
      const hb2 = ctx.uploadBuffer(h0);
      const rec2 = new Recorder(ctx);
      K.experts(rec2, {
        gate: gate.gpu,
        up: up.gpu,
        down: down.gpu,
        f,
        d,
        tokens: T,
        slots,
        route: rb,
        recBase: 0,
        recExperts: E,
        x: xb,
        act,
        h: hb2,
        outScale: 0.22,
      });
      const scaled = await read(hb2, T * d, rec2);
      expect(
        maxAbsDiff(
          scaled,
          h0.map((v, i) => v + 0.22 * (want[i] - v)),
        ),
      ).toBeLessThan(1e-4);
      for (const b of [gate.gpu.buffer, up.gpu.buffer, down.gpu.buffer, xb, hb, hb2, rb, act]) ctx.destroyBuffer(b);
    });
  }
});
