// The model foundry end to end, tiny: `training/build.py --smoke` (corpus from Debian packages ->
// byte-level BPE -> dense llama -> continued on extra text -> `moe upcycle` (plain and --drop) -> top-2,
// DS-MoE, fine-grained and the zoo's naive / from-scratch runs -> HF export).
// Then the app reads what it wrote: the tokenizer agrees with the Python encoder, and the engine's
// CPU backend reproduces PyTorch's logits for every exported model (native routing and all experts).
import { beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadTokenizer } from '../../src/engine/tokenizer.ts';
import { loadCheckpoint } from '../../src/engine/format/index.ts';
import { dirSource } from '../../src/cli/fsSource.ts';
import { createCpuBackend } from '../../src/engine/backends/cpu/index.ts';
import { scoreTokens } from '../../src/engine/run/index.ts';
import type { RoutingPlan } from '../../src/engine/types.ts';
import { maxAbsDiff } from '../maxAbsDiff.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const MODELS = ['dense-parent', 'moe-top2', 'ds-moe', 'fine-grained', 'fine-grained-naive', 'fine-grained-scratch'];
// biome-ignore lint/suspicious/noExplicitAny: the expected-logits files are free-form JSON read field by field below
const readJson = (path: string): any => JSON.parse(readFileSync(path, 'utf8'));

describe('training/build.py --smoke', () => {
  let dir = '';
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'moe-foundry-test-'));
    execFileSync('/usr/bin/python3', [join(ROOT, 'training', 'build.py'), '--smoke', '--threads', '1', '--work', dir], {
      cwd: ROOT,
      stdio: 'pipe',
      timeout: 170_000,
    });
    return () => rmSync(dir, { recursive: true, force: true });
  }, 180_000);

  it('trains: held-out loss falls in every domain; plain upcycling starts where the parent ended, Drop-Upcycling and scratch do not', () => {
    const evals = (run: string) =>
      readFileSync(join(dir, 'runs', run, 'log.jsonl'), 'utf8')
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line))
        .filter((e) => e.eval)
        .map((e) => e.eval.loss as Record<string, number>);
    const dense = evals('dense');
    for (const domain of ['english', 'german', 'python', 'arithmetic']) {
      expect(dense.at(-1)![domain]).toBeLessThan(dense[0][domain] - 0.3);
    }
    // Plain upcycling preserves the function: step 0 of the MoE equals the exported (f16) parent closely.
    const parent = evals('parent').at(-1)!;
    const domains = ['english', 'german', 'python', 'arithmetic'];
    for (const domain of domains)
      expect(Math.abs(evals('fine-grained-naive')[0][domain] - parent[domain])).toBeLessThan(0.02);
    // Drop-Upcycling re-initialises half of every expert's units: the start is a different function.
    for (const run of ['moe-top2', 'ds-moe', 'fine-grained']) {
      expect(Math.max(...domains.map((d) => Math.abs(evals(run)[0][d] - parent[d])))).toBeGreaterThan(0.005);
    }
    // From scratch: near the uniform guess ln(512) = 6.24, far above the parent.
    expect(evals('fine-grained-scratch')[0].english).toBeGreaterThan(parent.english + 0.5);
  });

  it('resumes an interrupted run exactly, and its MoE block matches a per-token computation (training/selftest.py)', () => {
    const out = execFileSync('/usr/bin/python3', [join(ROOT, 'training', 'selftest.py'), dir], {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(out).toContain('selftest: ok');
  });

  it('writes Hugging Face folders: llama parent, mixtral children, DS-MoE without renormalisation', () => {
    const configs = MODELS.map((m) => readJson(join(dir, 'models', m, 'config.json')));
    expect(configs.map((c) => c.model_type)).toEqual(['llama', 'mixtral', 'mixtral', 'mixtral', 'mixtral', 'mixtral']);
    expect([configs[1].num_local_experts, configs[1].num_experts_per_tok]).toEqual([8, 2]);
    expect(configs[1].norm_topk_prob).toBeUndefined();
    expect(configs[2].norm_topk_prob).toBe(false);
    // Fine-grained: 2 copies x 4 shards of the parent's FFN, top-4 (one whole copy at init).
    expect([configs[3].num_local_experts, configs[3].num_experts_per_tok]).toEqual([8, 4]);
    expect(configs[3].intermediate_size * 4).toBe(configs[0].intermediate_size);
    // The zoo: the same shape for the naive and from-scratch members.
    for (const c of configs.slice(4))
      expect([c.num_local_experts, c.num_experts_per_tok, c.intermediate_size]).toEqual([
        8,
        4,
        configs[3].intermediate_size,
      ]);
  });

  it('writes a tokenizer the app reads with the same ids as the trainer', () => {
    const tokDir = join(dir, 'work', 'tokenizer');
    const tok = loadTokenizer(
      readJson(join(tokDir, 'tokenizer.json')),
      readJson(join(tokDir, 'tokenizer_config.json')),
    );
    const expected = readJson(join(tokDir, 'agreement.json')) as Record<string, { text: string; ids: number[] }>;
    expect(Object.keys(expected).length).toBe(5);
    for (const { text, ids } of Object.values(expected)) {
      expect(tok.encode(text)).toEqual(ids);
      expect(tok.decode(ids)).toBe(text);
    }
  });

  for (const name of MODELS) {
    it(`${name}: the engine's CPU backend reproduces PyTorch's logits`, async () => {
      const expected = readJson(join(dir, 'runs', 'expected', `${name}.json`));
      const checkpoint = await loadCheckpoint(dirSource(join(dir, 'models', name)));
      const model = await createCpuBackend().load(checkpoint.spec, checkpoint.weights);
      const modes: [string, RoutingPlan][] = [['native', { mode: { kind: 'native' }, interventions: [] }]];
      if (expected.dense) modes.push(['dense', { mode: { kind: 'dense' }, interventions: [] }]);
      for (const [key, plan] of modes) {
        const result = await scoreTokens(model, expected.tokens, plan);
        result.logits.forEach((row, t) => {
          expect(maxAbsDiff(row, expected[key][t]), `${key} logits at position ${t}`).toBeLessThan(2e-3);
        });
      }
      model.dispose();
    });
  }
});
