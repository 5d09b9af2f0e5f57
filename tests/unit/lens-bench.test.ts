// The lens rows of the benchmark (bench/lens.ts) on a tiny synthetic 8-expert Mixtral: every stage is
// reported for the analysed token count, next to the native prefill speed of the main table. Timings
// themselves are never asserted.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeBenchModels } from '../../bench/make-bench-model.ts';
import type { LensBenchReport } from '../../bench/lens.ts';
import { formatLensTable } from '../../bench/lens.ts';
import type { BenchReport } from '../../src/cli/benchCommand.ts';

let temp: string;
let modelDir: string;
beforeAll(() => {
  temp = mkdtempSync(join(tmpdir(), 'lens-bench-'));
  modelDir = makeBenchModels(temp, 'tiny');
});
afterAll(() => rmSync(temp, { recursive: true, force: true }));

function bench(...args: string[]) {
  const r = spawnSync(
    process.execPath,
    [
      'bench/run.mjs',
      modelDir,
      '--backend',
      'cpu',
      '--routing',
      'native',
      '--prompt-tokens',
      '3',
      '--decode-tokens',
      '1',
      '--min-seconds',
      '0',
      '--json',
      ...args,
    ],
    {
      encoding: 'utf8',
      timeout: 60_000,
    },
  );
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  return JSON.parse(r.stdout) as BenchReport & { lenses: LensBenchReport | null };
}

describe('bench: lens throughput rows', () => {
  it('reports analyze, statistics and agreement over the requested tokens, with the native prefill alongside', () => {
    const report = bench('--lens-tokens', '16');
    const lenses = report.lenses!;
    expect(lenses.tokens).toBe(16); // 4 texts × 4 tokens
    expect(lenses.rows.map((r) => r.stage)).toEqual(['analyze', 'statistics', 'agreement']);
    const native = report.results.find((r) => r.routing === 'native')!;
    for (const row of lenses.rows) {
      expect(row.backend).toBe('cpu');
      expect(row.tokens).toBe(16);
      expect(Number.isFinite(row.tokensPerSecond) && row.tokensPerSecond > 0).toBe(true);
      expect(row.prefillTokensPerSecond).toBe(native.prefillTokensPerSecond);
    }
    const table = formatLensTable(lenses).split('\n');
    expect(table[2]).toMatch(/backend .* lens stage .* tokens .* tok\/s .* prefill tok\/s .* vs prefill/);
    expect(table).toHaveLength(4 + 3);
  });

  it('--lens-tokens 0 leaves the lens rows out', () => {
    expect(bench('--lens-tokens', '0').lenses).toBeNull();
  });
});
