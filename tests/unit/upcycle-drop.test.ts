// Drop-Upcycling (Nakamura et al., ICLR 2025): each expert re-initialises a share r of its
// intermediate units (rows of gate/up, the same columns of down) from N(mean, std) of the matrix.
// Checked against the parent's own weights: which units changed, how many, and what they hold.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ModelSpec, Tensor, WeightSet } from '../../src/engine/types.ts';
import { toFloat32 } from '../../src/engine/format/index.ts';
import { createCpuBackend } from '../../src/engine/backends/cpu/index.ts';
import { scoreTokens } from '../../src/engine/run/index.ts';
import { parseRoutingPlan } from '../../src/engine/routing/index.ts';
import { upcycle, UpcycleError } from '../../src/engine/upcycle/index.ts';
import { upcycleOptionsFromFlags } from '../../src/cli/upcycleCommand.ts';
import { CliError } from '../../src/cli/common.ts';
import { randomDenseLlama } from '../../src/cli/randomModel.ts';

const D = 64;
const F = 256;
let parent: { spec: ModelSpec; weights: WeightSet };

beforeAll(() => {
  parent = randomDenseLlama({
    vocabSize: 300,
    hiddenSize: D,
    numLayers: 2,
    numHeads: 4,
    numKvHeads: 2,
    intermediateSize: F,
    dtype: 'F32',
    seed: 5,
  });
});

/** Intermediate units (rows of a [I, d] matrix) whose values differ from the reference rows. */
function changedRows(t: Tensor, ref: Float32Array, refRowOffset: number): number[] {
  const v = toFloat32(t);
  const [rows, d] = t.shape;
  const out: number[] = [];
  for (let r = 0; r < rows; r++) {
    let same = true;
    for (let c = 0; c < d; c++) if (v[r * d + c] !== ref[(refRowOffset + r) * d + c]) same = false;
    if (!same) out.push(r);
  }
  return out;
}

/** Units (columns of a [d, I] matrix) that differ from columns [offset, offset + I) of the reference [d, F]. */
function changedCols(t: Tensor, ref: Float32Array, refCols: number, offset: number): number[] {
  const v = toFloat32(t);
  const [d, width] = t.shape;
  const out: number[] = [];
  for (let i = 0; i < width; i++) {
    let same = true;
    for (let r = 0; r < d; r++) if (v[r * width + i] !== ref[r * refCols + offset + i]) same = false;
    if (!same) out.push(i);
  }
  return out;
}

function stats(values: number[] | Float32Array): { mean: number; std: number } {
  let s = 0;
  for (const v of values) s += v;
  const mean = s / values.length;
  let q = 0;
  for (const v of values) q += (v - mean) ** 2;
  return { mean, std: Math.sqrt(q / values.length) };
}

describe('Drop-Upcycling', () => {
  it("r = 0 is plain upcycling: bit-identical experts and the parent's exact logits", async () => {
    const plain = upcycle(parent.spec, parent.weights, { experts: 8, topK: 2, seed: 3 });
    const dropped = upcycle(parent.spec, parent.weights, { experts: 8, topK: 2, seed: 3, drop: 0 });
    dropped.weights.layers.forEach((layer, l) =>
      layer.moe!.experts.forEach((e, k) => {
        const p = plain.weights.layers[l].moe!.experts[k];
        expect(Array.from(e.gate.bytes)).toEqual(Array.from(p.gate.bytes));
        expect(Array.from(e.down.bytes)).toEqual(Array.from(p.down.bytes));
      }),
    );
    const backend = createCpuBackend();
    const tokens = [1, 200, 17, 42, 99];
    const a = await backend.load(parent.spec, parent.weights);
    const b = await backend.load(dropped.spec, dropped.weights);
    const la = (await scoreTokens(a, tokens, parseRoutingPlan('native'))).logits;
    const lb = (await scoreTokens(b, tokens, parseRoutingPlan('native'))).logits;
    let m = 0;
    la.forEach((row, t) => row.forEach((x, i) => (m = Math.max(m, Math.abs(x - lb[t][i])))));
    expect(m).toBeLessThan(1e-5);
    a.dispose();
    b.dispose();
    backend.dispose();
  });

  for (const [g, r] of [
    [1, 0.5],
    [1, 0.1],
    [4, 0.5],
    [1, 1],
  ] as const) {
    it(`G=${g}, r=${r}: exactly round(r·I) units per expert re-initialised, the rest bit-identical, index sets differ by expert`, () => {
      const width = F / g;
      const child = upcycle(parent.spec, parent.weights, { experts: 8, granularity: g, topK: g * 2, seed: 9, drop: r });
      const expected = Math.round(r * width);
      child.weights.layers.forEach((layer, l) => {
        const mlp = parent.weights.layers[l].mlp!;
        const gate = toFloat32(mlp.gate);
        const up = toFloat32(mlp.up);
        // Down is scaled by G in exact granular upcycling; compare against the scaled parent columns.
        const down = toFloat32(mlp.down).map((x) => x * g);
        const sets = layer.moe!.experts.map((e, k) => {
          const shard = k % g;
          const rowsG = changedRows(e.gate, gate, shard * width);
          const rowsU = changedRows(e.up, up, shard * width);
          const colsD = changedCols(e.down, down, F, shard * width);
          expect(rowsG.length).toBe(expected);
          expect(rowsU).toEqual(rowsG);
          expect(colsD).toEqual(rowsG);
          return rowsG.join(',');
        });
        if (r < 1) expect(new Set(sets).size).toBe(8);
      });
    });
  }

  it('re-initialised values follow N(mean, std) of the matrix they replace (within sampling error)', () => {
    const r = 0.5;
    const child = upcycle(parent.spec, parent.weights, { experts: 8, topK: 2, seed: 21, drop: r });
    for (const [name, kind] of [
      ['gate', 'rows'],
      ['up', 'rows'],
      ['down', 'cols'],
    ] as const) {
      const ref = toFloat32(parent.weights.layers[0].mlp![name]);
      const truth = stats(ref);
      const fresh: number[] = [];
      for (const e of child.weights.layers[0].moe!.experts) {
        const v = toFloat32(e[name]);
        const units = kind === 'rows' ? changedRows(e[name], ref, 0) : changedCols(e[name], ref, F, 0);
        for (const u of units) {
          if (kind === 'rows') for (let c = 0; c < D; c++) fresh.push(v[u * D + c]);
          else for (let row = 0; row < D; row++) fresh.push(v[row * F + u]);
        }
      }
      const n = fresh.length; // 8 experts × 128 units × 64 = 65536 samples
      expect(n).toBe(8 * Math.round(r * F) * D);
      const got = stats(fresh);
      // Standard errors: std/√n for the mean, std/√(2n) for the std; allow 5 of them.
      expect(Math.abs(got.mean - truth.mean)).toBeLessThan((5 * truth.std) / Math.sqrt(n));
      expect(Math.abs(got.std - truth.std)).toBeLessThan((5 * truth.std) / Math.sqrt(2 * n));
      // And they are not the parent's values moved around: the fresh samples are new numbers.
      const parentValues = new Set(ref);
      expect(fresh.filter((x) => parentValues.has(x)).length).toBeLessThan(n / 1000);
    }
  });

  it('is a pure function of the seed: same seed, same child; another seed, other units', () => {
    const a = upcycle(parent.spec, parent.weights, { experts: 4, topK: 2, seed: 1, drop: 0.25 });
    const b = upcycle(parent.spec, parent.weights, { experts: 4, topK: 2, seed: 1, drop: 0.25 });
    const c = upcycle(parent.spec, parent.weights, { experts: 4, topK: 2, seed: 2, drop: 0.25 });
    const gateOf = (m: typeof a, k: number) => Array.from(m.weights.layers[1].moe!.experts[k].gate.bytes);
    expect(gateOf(a, 3)).toEqual(gateOf(b, 3));
    expect(gateOf(a, 3)).not.toEqual(gateOf(c, 3));
    expect((a.spec.config.upcycling as { drop: number }).drop).toBe(0.25);
  });

  it('rejects a ratio outside [0, 1] with a typed error, in the engine and on the command line', () => {
    expect(() => upcycle(parent.spec, parent.weights, { experts: 8, drop: 1.5 })).toThrow(UpcycleError);
    expect(() => upcycle(parent.spec, parent.weights, { experts: 8, drop: Number.NaN })).toThrow(/drop ratio/);
    expect(() => upcycleOptionsFromFlags({ experts: '8', drop: '-0.1' })).toThrow(CliError);
    expect(upcycleOptionsFromFlags({ experts: '8', drop: '0.5' }).drop).toBe(0.5);
    expect(upcycleOptionsFromFlags({ experts: '8' }).drop).toBe(0);
  });
});

describe('moe upcycle --drop', () => {
  const LLAMA = 'tests/fixtures/models/llama_f32';
  let tmp: string;
  beforeAll(() => {
    tmp = mkdtempSync(join(tmpdir(), 'moe-drop-'));
  });
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));
  const moe = (...argv: string[]) =>
    spawnSync(process.execPath, ['bin/moe.mjs', ...argv], { encoding: 'utf8', timeout: 60_000 });

  it('writes a child that records the ratio, says it no longer equals its parent, and indeed differs', () => {
    const out = join(tmp, 'dropped');
    const up = moe('upcycle', LLAMA, out, '--experts', '4', '--top-k', '2', '--seed', '3', '--drop', '0.5');
    expect(up.stderr).toBe('');
    expect(up.status).toBe(0);
    expect(up.stdout).toMatch(
      /Drop-Upcycling re-initialised \d+ of \d+ units per expert, so the child no longer equals its parent/,
    );
    const config = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
    expect(config.upcycling).toMatchObject({ experts: 4, topK: 2, drop: 0.5 });
    const logits = (dir: string) =>
      JSON.parse(moe('eval', dir, '--tokens', '5,17,42,99', '--json').stdout).logits as number[][];
    const a = logits(LLAMA).flat();
    const b = logits(out).flat();
    expect(Math.max(...a.map((x, i) => Math.abs(x - b[i])))).toBeGreaterThan(1e-3);
  });

  it('rejects a ratio outside [0, 1] in one line, writing nothing', () => {
    const r = moe('upcycle', LLAMA, join(tmp, 'bad'), '--experts', '4', '--drop', '2');
    expect(r.status).not.toBe(0);
    expect(r.stderr.trim().split('\n').length).toBeLessThanOrEqual(2);
    expect(r.stderr).toMatch(/--drop 2 is not valid: it must be a number between 0 and 1/);
    expect(existsSync(join(tmp, 'bad'))).toBe(false);
  });
});
