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
    const r = run('bench/run.mjs', modelDir, '--backend', 'cpu', '--prompt-tokens', '3', '--decode-tokens', '2', '--min-seconds', '0', '--json');
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    report = JSON.parse(lines[0]);
  });

  it('reports every default mode with the documented fields', () => {
    expect(report.results.map((x) => x.routing)).toEqual(['dense', 'topk:1', 'topk:2', 'native', 'threshold:1']);
    for (const x of report.results) {
      expect(x.backend).toBe('cpu');
      for (const key of ['prefillTokensPerSecond', 'decodeTokensPerSecond', 'activeParameters', 'weightBytesPerToken', 'idealSpeedup', 'measuredSpeedup'] as const) {
        expect(Number.isFinite(x[key]) && x[key] > 0, `${x.routing} ${key}`).toBe(true);
      }
    }
    expect(report.machine.cores).toBeGreaterThan(0);
    expect(report.machine.cpu.length).toBeGreaterThan(0);
    expect(report.machine.backends.cpu).toMatch(/CPU/);
    expect(report.promptTokens).toBe(3);
    expect(report.decodeTokens).toBe(2);
  });

  it('active parameters and ideal speed-ups follow countParameters', () => {
    const counts = countParameters(ckpt.spec);
    const dense = counts.activeFor({ kind: 'dense' });
    for (const x of report.results) {
      const mode = parseRoutingMode(x.routing);
      // Fixed-k modes choose exactly k experts per token and layer; threshold's average is measured.
      if (mode.kind !== 'threshold') expect(x.avgExpertsPerLayer).toBe(mode.kind === 'dense' ? 8 : mode.kind === 'native' ? 2 : mode.kind === 'topk' ? mode.k : NaN);
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

  it('measured speed-ups are the decode speeds relative to dense', () => {
    const dense = report.results[0];
    for (const x of report.results) expect(x.measuredSpeedup).toBeCloseTo(x.decodeTokensPerSecond / dense.decodeTokensPerSecond, 9);
  });

  it('weight bytes per token: the f32 tensors one decode step touches', () => {
    // Independent count from the checkpoint's tensors: every weight once, the embedding table as one row,
    // routed experts only for the chosen ones. The CPU backend holds everything as f32.
    const w = ckpt.weights;
    const d = ckpt.spec.hiddenSize;
    let fixed = tensorElements(w.lmHead) + tensorElements(w.finalNorm) + d;
    let perExpertAllLayers = 0;
    for (const layer of w.layers) {
      for (const t of [layer.attnNorm, layer.ffnNorm, layer.q, layer.k, layer.v, layer.o]) fixed += tensorElements(t);
      fixed += tensorElements(layer.moe!.router);
      const e0 = layer.moe!.experts[0];
      perExpertAllLayers += tensorElements(e0.gate) + tensorElements(e0.up) + tensorElements(e0.down);
    }
    for (const x of report.results) {
      expect(x.weightBytesPerToken, x.routing).toBeCloseTo(4 * (fixed + x.avgExpertsPerLayer * perExpertAllLayers), 6);
    }
  });

  it('the table names every row and column', () => {
    const table = formatBenchTable(report.results).split('\n');
    expect(table).toHaveLength(2 + report.results.length);
    expect(table[0]).toMatch(/backend .* mode .* prefill tok\/s .* decode tok\/s .* vs dense .* ideal/);
    expect(table[2 + 4]).toMatch(/^\| cpu +\| threshold:1 +\|/);
  });
});

describe('moe bench (the CLI face)', () => {
  it('prints the machine, the model and a table; a bad mode is one line with a hint', () => {
    const ok = run('bin/moe.mjs', 'bench', modelDir, '--routing', 'topk:2', '--prompt-tokens', '2', '--decode-tokens', '1', '--min-seconds', '0');
    expect(ok.status).toBe(0);
    expect(ok.stdout).toMatch(/^machine: .+, \d+ cores$/m);
    expect(ok.stdout).toMatch(/^cpu: CPU/m);
    expect(ok.stdout).toMatch(/^\| cpu +\| dense +\|/m); // dense is always measured: every ratio is against it
    expect(ok.stdout).toMatch(/^\| cpu +\| topk:2 +\|/m);
    const bad = run('bin/moe.mjs', 'bench', modelDir, '--backend', 'tpu');
    expect(bad.status).toBe(1);
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
    expect(bad.stderr).toMatch(/Unknown backend "tpu".*Hint: .*all/);
  });
});
