// The benchmark runs end to end (tiny model, few tokens) and its derived figures follow from the model:
// active parameters and ideal speed-ups from countParameters, weight bytes from the checkpoint's own tensors,
// measured speed-ups from the reported speeds. Timings themselves are never asserted.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeBenchModels } from '../../bench/make-bench-model.ts';
import { countParameters, loadCheckpoint, type Checkpoint } from '../../src/engine/format/index.ts';
import { dirSource } from '../../src/cli/fsSource.ts';
import { parseRoutingMode } from '../../src/engine/routing/index.ts';
import { formatBenchTable, type BenchReport } from '../../src/cli/benchCommand.ts';
import type { Tensor } from '../../src/engine/types.ts';

let temp: string;
let modelDir: string;
let ckpt: Checkpoint;

beforeAll(async () => {
  temp = mkdtempSync(join(tmpdir(), 'bench-test-'));
  modelDir = makeBenchModels(temp, 'tiny');
  ckpt = await loadCheckpoint(dirSource(modelDir));
});
afterAll(() => rmSync(temp, { recursive: true, force: true }));

function run(script: string, ...args: string[]) {
  const r = spawnSync(process.execPath, [script, ...args], { encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Parameters read by one token, counted from the loaded tensors (one embedding row, everything else whole). */
function tensorElements(t: Tensor): number {
  return t.shape.reduce((a, b) => a * b, 1);
}

describe('bench --json on a tiny 8-expert Mixtral (CPU backend)', () => {
  let report: BenchReport;
  beforeAll(() => {
    const r = run(
      'bench/run.mjs',
      modelDir,
      '--backend',
      'cpu',
      '--quantize',
      'none,q8',
      '--no-torch',
      '--prompt-tokens',
      '3',
      '--decode-tokens',
      '2',
      '--min-seconds',
      '0',
      '--json',
    );
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    report = JSON.parse(lines[0]);
  });

  it('reports every default mode with the documented fields, once per quantization', () => {
    const modes = ['dense', 'topk:1', 'topk:2', 'native', 'threshold:1'];
    expect(report.results.map((x) => `${x.quantization} ${x.routing}`)).toEqual([
      ...modes.map((m) => `none ${m}`),
      ...modes.map((m) => `q8 ${m}`),
    ]);
    for (const x of report.results) {
      expect(x.backend).toBe('cpu');
      expect(x.gpuDispatchesPerToken).toBeNull();
      expect(x.torchDecodeTokensPerSecond).toBeNull(); // --no-torch
      for (const key of [
        'prefillTokensPerSecond',
        'decodeTokensPerSecond',
        'activeParameters',
        'weightBytesPerToken',
        'idealSpeedup',
        'measuredSpeedup',
      ] as const) {
        expect(Number.isFinite(x[key]) && x[key] > 0, `${x.routing} ${key}`).toBe(true);
      }
    }
    expect(report.machine.cores).toBeGreaterThan(0);
    expect(report.machine.cpu.length).toBeGreaterThan(0);
    expect(report.machine.backends.cpu).toMatch(/^CPU \(WebAssembly SIMD, weights as stored\)$/); // the first load names the backend
    expect(report.promptTokens).toBe(3);
    expect(report.decodeTokens).toBe(2);
  });

  it('active parameters and ideal speed-ups follow countParameters', () => {
    const counts = countParameters(ckpt.spec);
    const dense = counts.activeFor({ kind: 'dense' });
    for (const x of report.results) {
      const mode = parseRoutingMode(x.routing);
      // Fixed-k modes choose exactly k experts per token and layer; threshold's average is measured.
      if (mode.kind !== 'threshold')
        expect(x.avgExpertsPerLayer).toBe(
          mode.kind === 'dense' ? 8 : mode.kind === 'native' ? 2 : mode.kind === 'topk' ? mode.k : NaN,
        );
      expect(x.avgExpertsPerLayer).toBeGreaterThanOrEqual(1);
      expect(x.avgExpertsPerLayer).toBeLessThanOrEqual(8);
      expect(x.activeParameters).toBe(counts.activeFor(mode, x.avgExpertsPerLayer));
      expect(x.idealSpeedup).toBeCloseTo(dense / x.activeParameters, 12);
    }
    const byMode = Object.fromEntries(report.results.map((x) => [x.routing, x]));
    expect(byMode['topk:2'].activeParameters).toBe(counts.nonExpert + ckpt.spec.numLayers * 2 * counts.perExpert);
    expect(byMode.dense.idealSpeedup).toBe(1);
    expect(byMode.native.activeParameters).toBe(byMode['topk:2'].activeParameters);
  });

  it('measured speed-ups are the decode speeds relative to dense (of the same quantization)', () => {
    for (const q of ['none', 'q8']) {
      const rows = report.results.filter((x) => x.quantization === q);
      for (const x of rows)
        expect(x.measuredSpeedup).toBeCloseTo(x.decodeTokensPerSecond / rows[0].decodeTokensPerSecond, 9);
    }
  });

  it('weight bytes per token: the tensors one decode step touches, as held (f16 matrices, f32 norms; q8: 34 bytes per 32 values)', () => {
    // Independent count from the checkpoint's tensors: every weight once, the embedding table as one row,
    // routed experts only for the chosen ones. Matrices are held as stored (F16) or as Q8 (1 + 2/32 bytes per
    // value, routers stay F16), norm vectors as f32.
    const w = ckpt.weights;
    const V = ckpt.spec.vocabSize;
    const matrixBytes = (t: Tensor, q8: boolean) => tensorElements(t) * (q8 ? 34 / 32 : 2);
    for (const q8 of [false, true]) {
      let fixed = matrixBytes(w.lmHead, q8) + 4 * tensorElements(w.finalNorm) + matrixBytes(w.embed, q8) / V;
      let perExpertAllLayers = 0;
      for (const layer of w.layers) {
        fixed += 4 * (tensorElements(layer.attnNorm) + tensorElements(layer.ffnNorm));
        for (const t of [layer.q, layer.k, layer.v, layer.o]) fixed += matrixBytes(t, q8);
        fixed += 2 * tensorElements(layer.moe!.router);
        const e0 = layer.moe!.experts[0];
        perExpertAllLayers += matrixBytes(e0.gate, q8) + matrixBytes(e0.up, q8) + matrixBytes(e0.down, q8);
      }
      for (const x of report.results.filter((r) => r.quantization === (q8 ? 'q8' : 'none'))) {
        expect(x.weightBytesPerToken, `${x.quantization} ${x.routing}`).toBeCloseTo(
          fixed + x.avgExpertsPerLayer * perExpertAllLayers,
          6,
        );
        expect(x.bytesPerActiveParameter).toBeCloseTo(x.weightBytesPerToken / x.parametersReadPerToken, 12);
        // ≈ 2 for f16, ≈ 1.06 for q8 (the f16 router and the f32 norms add a little).
        if (q8) expect(x.bytesPerActiveParameter).toBeGreaterThan(1.0625);
        else expect(x.bytesPerActiveParameter).toBeGreaterThan(2);
        expect(x.bytesPerActiveParameter).toBeLessThan(q8 ? 1.15 : 2.05);
      }
    }
  });

  it('the table names every row and column', () => {
    const table = formatBenchTable(report.results).split('\n');
    expect(table).toHaveLength(2 + report.results.length);
    expect(table[0]).toMatch(
      /backend .* quant .* mode .* prefill tok\/s .* decode tok\/s .* vs dense .* ideal .* B\/param .* dispatches .* torch tok\/s .* vs torch/,
    );
    expect(table[2 + 4]).toMatch(/^\| cpu +\| none +\| threshold:1 +\|/);
    expect(table[2 + 5]).toMatch(/^\| cpu +\| q8 +\| dense +\|/);
  });
});

describe('bench with the PyTorch eager baseline (tiny model)', () => {
  it('pairs every dense/top-k CPU row with PyTorch on the same weights: the same greedy tokens, a ratio', () => {
    const r = run(
      'bin/moe.mjs',
      'bench',
      modelDir,
      '--torch',
      '--routing',
      'dense,topk:2,threshold:1',
      '--prompt-tokens',
      '4',
      '--decode-tokens',
      '3',
      '--min-seconds',
      '0',
      '--json',
    );
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as BenchReport;
    expect(out.torch?.threads).toBe(1);
    expect(out.repeats).toBe(3);
    for (const x of out.results) {
      if (x.routing === 'threshold:1') {
        expect(x.vsTorch).toBeNull(); // the PyTorch loop has no threshold mode
        continue;
      }
      expect(x.torchDecodeTokensPerSecond! > 0).toBe(true);
      expect(x.vsTorch).toBeCloseTo(x.decodeTokensPerSecond / x.torchDecodeTokensPerSecond!, 9);
      // An independent implementation of the same model decodes the same greedy tokens.
      expect(x.torchTokensAgree, x.routing).toBe(true);
    }
    expect(out.torch!.results.length).toBe(2 * 3); // dense and topk:2, three interleaved measurements each
  });
});

describe('moe bench (the CLI face)', () => {
  it('prints the machine, the model and a table; a bad mode is one line with a hint', () => {
    const ok = run(
      'bin/moe.mjs',
      'bench',
      modelDir,
      '--routing',
      'topk:2',
      '--prompt-tokens',
      '2',
      '--decode-tokens',
      '1',
      '--min-seconds',
      '0',
    );
    expect(ok.status).toBe(0);
    expect(ok.stdout).toMatch(/^machine: .+, \d+ cores$/m);
    expect(ok.stdout).toMatch(/^cpu: CPU/m);
    expect(ok.stdout).toMatch(/^\| cpu +\| none +\| dense +\|/m); // dense is always measured: every ratio is against it
    expect(ok.stdout).toMatch(/^\| cpu +\| none +\| topk:2 +\|/m);
    const bad = run('bin/moe.mjs', 'bench', modelDir, '--backend', 'tpu');
    expect(bad.status).toBe(1);
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
    expect(bad.stderr).toMatch(/Unknown backend "tpu".*Hint: .*all/);
  });
});
