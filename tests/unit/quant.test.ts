// Q8 / Q4 group quantization (src/engine/format/quant.ts) against an independent numpy implementation
// (tests/fixtures/quant_reference.py): identical codes, scales and dequantized values, and the error
// bound each format promises.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { f16BitsToFloat, fromFloat32, toFloat32 } from '../../src/engine/format/index.ts';
import {
  dequantize,
  QuantizationError,
  quantizeTensor,
  quantizeValues,
  quantizeWeights,
  tensorBytes,
  weightBytesBySchemes,
  weightSetBytes,
  type QuantOptions,
} from '../../src/engine/format/quant.ts';
import { createRng } from '../../src/engine/run/index.ts';
import type { QuantTensor } from '../../src/engine/types.ts';
import { randomModel } from './cpuRandomModel.ts';

const PYTHON = '/usr/bin/python3';
const SCRIPT = join(import.meta.dirname, '..', 'fixtures', 'quant_reference.py');
const dir = mkdtempSync(join(tmpdir(), 'quant-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Weight-like values: normal(0, 0.05) with a few outliers, one all-zero group and one constant group. */
function sampleMatrix(rows: number, cols: number, seed: number): Float32Array {
  const rng = createRng(seed);
  const v = new Float32Array(rows * cols);
  for (let i = 0; i < v.length; i += 2) {
    const r = Math.sqrt(-2 * Math.log(1 - rng())) * 0.05;
    const a = 2 * Math.PI * rng();
    v[i] = r * Math.cos(a);
    v[i + 1] = r * Math.sin(a);
  }
  for (let i = 0; i < v.length; i += 97) v[i] *= 12; // outliers
  v.fill(0, 0, 64); // an all-zero group
  v.fill(-0.25, 128, 192); // a constant group
  // As stored in an f16 checkpoint.
  return toFloat32(fromFloat32(v, [rows, cols], 'F16'));
}

function unpackCodes(t: QuantTensor): Int32Array {
  const n = t.shape[0] * t.shape[1];
  const out = new Int32Array(n);
  if (t.dtype === 'Q8') {
    const c = new Int8Array(t.bytes.buffer, t.bytes.byteOffset, n);
    for (let i = 0; i < n; i++) out[i] = c[i];
  } else {
    // Group g's codes: byte g·G/2 + k holds code k (low nibble) and code k + G/2 (high nibble).
    const G = t.groupSize;
    for (let i = 0; i < n; i++) {
      const g = Math.floor(i / G);
      const k = i % G;
      out[i] = (t.bytes[g * (G / 2) + (k % (G / 2))] >> (k < G / 2 ? 0 : 4)) & 15;
    }
  }
  return out;
}

const CASES: { name: string; py: string; o: QuantOptions }[] = [
  { name: 'Q8 group 32', py: 'q8', o: { dtype: 'Q8', groupSize: 32 } },
  { name: 'Q8 per row (group = 256)', py: 'q8', o: { dtype: 'Q8', groupSize: 256 } },
  { name: 'Q4 group 32', py: 'q4', o: { dtype: 'Q4', groupSize: 32 } },
  { name: 'Q4 group 64 with offsets', py: 'q4off', o: { dtype: 'Q4', groupSize: 64, offsets: true } },
];

describe('quantization vs numpy', () => {
  const rows = 48;
  const cols = 256;
  const values = sampleMatrix(rows, cols, 7);
  const input = join(dir, 'x.f32');
  writeFileSync(input, new Uint8Array(values.buffer));

  for (const c of CASES) {
    it(`${c.name}: codes, scales and values identical to numpy; error within the format's bound`, () => {
      const t = quantizeTensor(fromFloat32(values, [rows, cols], 'F32'), c.o);
      const out = join(dir, c.name.replace(/\W+/g, '_'));
      const r = spawnSync(PYTHON, [SCRIPT, input, String(rows), String(cols), c.py, String(c.o.groupSize), out], {
        encoding: 'utf8',
      });
      expect(r.status, r.stderr).toBe(0);
      const ref = (ext: string) => new Uint8Array(readFileSync(`${out}.${ext}`)); // a copy: its own aligned buffer
      const refCodes =
        c.o.dtype === 'Q8' ? Int32Array.from(new Int8Array(ref('codes').buffer)) : Int32Array.from(ref('codes'));
      expect(Array.from(unpackCodes(t))).toEqual(Array.from(refCodes));
      expect(Array.from(t.scales)).toEqual(Array.from(new Uint16Array(ref('scales').buffer)));
      if (c.o.offsets) expect(Array.from(t.mins!)).toEqual(Array.from(new Uint16Array(ref('mins').buffer)));
      const deq = dequantize(t);
      expect(Array.from(deq)).toEqual(Array.from(new Float32Array(ref('deq').buffer)));

      // The bound: half a step (Q4 centred: one step for values beyond +7.5 steps; offsets: plus the f16 rounding of the minimum).
      let worst = 0;
      for (let i = 0; i < values.length; i++) {
        const g = Math.floor(i / c.o.groupSize);
        const s = Math.abs(f16BitsToFloat(t.scales[g]));
        const bound =
          c.o.dtype === 'Q8'
            ? 0.5 * s
            : c.o.offsets
              ? 0.5 * s +
                Math.abs(
                  f16BitsToFloat(t.mins![g]) - Math.min(...values.subarray(g * c.o.groupSize, (g + 1) * c.o.groupSize)),
                )
              : s;
        const err = Math.abs(deq[i] - values[i]);
        expect(err).toBeLessThanOrEqual(bound * (1 + 1e-6) + 1e-12);
        worst = Math.max(worst, err / (s || 1));
      }
      expect(worst).toBeGreaterThan(0.3); // the test sees real rounding, not an identity
      // The zero group stays exactly zero; Q4 returns a constant group exactly (it is its own extreme).
      for (let i = 0; i < 32; i++) expect(deq[i] === 0).toBe(true); // ±0
      if (c.o.dtype === 'Q4' && c.o.groupSize <= 64) expect(deq[130]).toBe(-0.25);
      // Bytes held: packed codes + f16 scales (+ mins).
      const groups = (rows * cols) / c.o.groupSize;
      expect(tensorBytes(t)).toBe(
        (c.o.dtype === 'Q8' ? rows * cols : (rows * cols) / 2) + groups * 2 * (c.o.offsets ? 2 : 1),
      );
    });
  }
});

describe('weights that cannot be quantized', () => {
  it('NaN or out-of-range values: a QuantizationError with a sentence and a hint, not garbage', () => {
    const nan = new Float32Array(64).fill(0.1);
    nan[5] = NaN;
    expect(() => quantizeValues(nan, 2, 32, { dtype: 'Q8', groupSize: 32 })).toThrow(QuantizationError);
    expect(() => quantizeValues(nan, 2, 32, { dtype: 'Q8', groupSize: 32 })).toThrow(/Inf or NaN/);
    for (const offsets of [false, true])
      expect(() => quantizeValues(nan, 2, 32, { dtype: 'Q4', groupSize: 32, offsets })).toThrow(/Inf or NaN/);
    const huge = new Float32Array(64).fill(1e9);
    try {
      quantizeValues(huge, 2, 32, { dtype: 'Q4', groupSize: 32 });
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(QuantizationError);
      expect((e as QuantizationError).message).toMatch(/beyond what an f16 scale can express/);
      expect((e as QuantizationError).hint).toMatch(/--quantize none/);
    }
  });
});

describe('quantizeWeights', () => {
  it('quantizes every matrix but the routers, keeps tied embeddings one tensor, and counts bytes exactly', () => {
    const { weights } = randomModel({
      hiddenSize: 64,
      intermediateSize: 96,
      vocabSize: 80,
      numHeads: 4,
      numKvHeads: 2,
      headDim: 16,
      tieWordEmbeddings: true,
      seed: 3,
    });
    const predicted = weightBytesBySchemes(weights);
    expect(predicted.none).toBe(weightSetBytes(weights));
    for (const scheme of ['q8', 'q4'] as const) {
      const q = quantizeWeights(weights, scheme);
      const want = scheme === 'q8' ? 'Q8' : 'Q4';
      expect(q.embed.dtype).toBe(want);
      expect(q.lmHead).toBe(q.embed);
      for (const l of q.layers) {
        for (const t of [l.q, l.k, l.v, l.o]) expect(t.dtype).toBe(want);
        expect(l.moe!.router.dtype).toBe(weights.layers[0].moe!.router.dtype);
        for (const e of l.moe!.experts) for (const t of [e.gate, e.up, e.down]) expect(t.dtype).toBe(want);
        expect(l.attnNorm.dtype).toBe(weights.layers[0].attnNorm.dtype);
      }
      expect(weightSetBytes(q)).toBe(predicted[scheme]);
      expect(predicted[scheme]).toBeLessThan(predicted.none / (scheme === 'q8' ? 3.5 : 6.5)); // the fixture is F32
    }
  });
});
