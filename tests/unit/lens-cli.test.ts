// `moe analyze` end to end on the built-in moe-top2 model and the public/eval texts, spawned as a
// user runs it: the JSON contract of issue 13, identities every top-2 analysis must satisfy, the
// same numbers as the engine's analyzeCorpus on the same tokens (so the command adds no BOS and
// scores each text as one sequence), windows past the context, and one-line failures.
// The model's own values are never asserted: it may be retrained.

import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { AnalyzeJson } from '../../src/cli/analyzeCommand.ts';
import { dirSource } from '../../src/cli/fsSource.ts';
import { createCpuBackend } from '../../src/engine/backends/cpu/index.ts';
import { loadCheckpoint } from '../../src/engine/format/index.ts';
import { analyzeCorpus } from '../../src/engine/lens/index.ts';
import { parseRoutingMode, parseRoutingPlan } from '../../src/engine/routing/index.ts';
import { loadTokenizer } from '../../src/engine/tokenizer.ts';

const MODEL = 'public/models/moe-top2';
const DOMAINS = ['english', 'german', 'python', 'arithmetic'];
const TEXTS = DOMAINS.map((d) => `${d}=public/eval/${d}.txt`).join(',');
const config = JSON.parse(readFileSync(join(MODEL, 'config.json'), 'utf8')) as {
  num_local_experts: number;
  num_experts_per_tok: number;
  num_hidden_layers: number;
  max_position_embeddings: number;
};

function moe(...args: string[]) {
  const r = spawnSync(process.execPath, ['bin/moe.mjs', ...args], { encoding: 'utf8', timeout: 120_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function onlyJson(r: ReturnType<typeof moe>): AnalyzeJson {
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  const lines = r.stdout.trim().split('\n');
  expect(lines).toHaveLength(1);
  return JSON.parse(lines[0]) as AnalyzeJson;
}

function expectOneLineFailure(r: ReturnType<typeof moe>, pattern: RegExp): void {
  expect(r.status).not.toBe(0);
  expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
  expect(r.stderr).toMatch(/^moe: /);
  expect(r.stderr).toMatch(pattern);
}

describe('moe analyze --json on moe-top2 over the four eval texts', () => {
  const maxTokens = 40;
  const sweep = ['topk:1', 'threshold:1', 'dense'];
  let out: AnalyzeJson;
  beforeAll(() => {
    out = onlyJson(
      moe(
        'analyze',
        MODEL,
        '--texts',
        TEXTS,
        '--max-tokens',
        String(maxTokens),
        '--tradeoff',
        sweep.join(','),
        '--json',
      ),
    );
  }, 120_000);

  it('follows the contract: numExperts, moeLayers, domains, coactivation, locality, vocab, tradeoff', () => {
    for (const key of ['numExperts', 'moeLayers', 'domains', 'coactivation', 'locality', 'vocab', 'tradeoff'])
      expect(out).toHaveProperty(key);
    const E = config.num_local_experts;
    const M = config.num_hidden_layers; // every layer of a Mixtral is an MoE layer
    expect(out.numExperts).toBe(E);
    expect(out.moeLayers).toEqual(Array.from({ length: M }, (_, i) => i));
    expect(Object.keys(out.domains)).toEqual(DOMAINS);
    for (const d of Object.values(out.domains)) {
      expect(d.tokens).toBe(maxTokens);
      expect(d.share).toHaveLength(M);
      for (const row of d.share) {
        expect(row).toHaveLength(E);
        expect(row.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
      }
    }
    expect(out.coactivation).toHaveLength(M);
    expect(out.locality).toHaveLength(M);
    for (const x of out.locality) expect(x >= 0 && x <= 1).toBe(true);
    expect(out.tradeoff.map((p) => p.mode)).toEqual(sweep);
    for (const p of out.tradeoff)
      for (const key of ['mode', 'activeShare', 'loss'] as const) expect(p).toHaveProperty(key);
    expect(Object.keys(out.sentences).sort()).toEqual([
      'coactivation',
      'domains',
      'load',
      'locality',
      'tradeoff',
      'vocab',
    ]);
  });

  it('co-activation rows of a top-2 model: P(a|a) = 1 and the others sum to k − 1 = 1', () => {
    for (const matrix of out.coactivation) {
      expect(matrix).toHaveLength(config.num_local_experts);
      matrix.forEach((row, a) => {
        if (row.every((x) => x === 0)) return; // expert a never chosen at this layer
        expect(row[a]).toBe(1);
        expect(row.reduce((s, x) => s + x, 0) - 1).toBeCloseTo(config.num_experts_per_tok - 1, 12);
      });
    }
  });

  it('the trade-off marks dense with all parameters and topk:1 with one expert per layer', () => {
    const [top1, , dense] = out.tradeoff;
    expect(dense.activeShare).toBe(1);
    expect(dense.deltaLoss).toBe(0);
    expect(dense.expertsPerLayer).toBe(config.num_local_experts);
    expect(top1.expertsPerLayer).toBe(1);
    expect(top1.activeShare).toBeLessThan(1);
    expect(top1.deltaLoss).toBeCloseTo(top1.loss - dense.loss, 12);
  });

  it('gives the numbers analyzeCorpus gives on the tokenizer’s ids of each file (no BOS, one sequence each)', async () => {
    const ckpt = await loadCheckpoint(dirSource(MODEL));
    const tokenizer = loadTokenizer(ckpt.tokenizerJson, ckpt.tokenizerConfigJson);
    const texts = DOMAINS.map((name) => ({
      name,
      tokens: tokenizer.encode(readFileSync(`public/eval/${name}.txt`, 'utf8')),
    }));
    const model = await createCpuBackend().load(ckpt.spec, ckpt.weights);
    const here = await analyzeCorpus(model, texts, {
      plan: parseRoutingPlan('native'),
      maxTokens,
      tradeoffModes: sweep.map(parseRoutingMode),
    });
    model.dispose();
    for (const d of here.domain.domains) expect(out.domains[d.name].share).toEqual(d.share);
    expect(out.coactivation).toEqual(here.coactivation.matrix);
    expect(out.locality).toEqual(here.locality.layers.map((l) => l.sameFirst));
    expect(out.tradeoff.map((p) => p.loss)).toEqual(here.tradeoff.points.map((p) => p.loss));
    expect(out.texts.map((t) => t.totalTokens)).toEqual(texts.map((t) => t.tokens.length));
    expect(out.texts.every((t) => t.windows === 1)).toBe(true);
  });
});

describe('moe analyze: windows, defaults and failures', () => {
  it('scores a text longer than the context in context-sized windows and says so', () => {
    const n = config.max_position_embeddings + 44;
    const out = onlyJson(
      moe(
        'analyze',
        MODEL,
        '--texts',
        'code=public/eval/python.txt',
        '--max-tokens',
        String(n),
        '--tradeoff',
        'none',
        '--json',
      ),
    );
    expect(out.window).toBe(config.max_position_embeddings);
    expect(out.texts[0]).toMatchObject({ name: 'code', tokens: n, windows: 2 });
    expect(out.notes.join(' ')).toMatch(/scored in 2 windows/);
    expect(out.tradeoff).toEqual([]);
    // Locality counts pairs inside windows only: n tokens in 2 windows give n − 2 pairs.
    for (const l of out.localityDetail) expect(l.pairs).toBe(n - 2);
  });

  it('uses the built-in eval texts when --texts is left out, and prints sentences without --json', () => {
    const r = moe('analyze', 'moe-top2', '--max-tokens', '8', '--tradeoff', 'none', '--compare-routing', 'topk:1');
    expect(r.status).toBe(0);
    for (const d of DOMAINS) expect(r.stdout).toContain(`  ${d} (`);
    expect(r.stdout).toMatch(/^Domain specialisation: Expert \d+ of layer \d+ takes/m);
    expect(r.stdout).toMatch(/^Locality: Consecutive tokens keep their first-choice expert/m);
    expect(r.stdout).toMatch(/^Agreement with moe-top2 \(topk:1\): /m);
  });

  it('fails in one line on a dense model, a missing file, a duplicate name and a bad trade-off mode', () => {
    expectOneLineFailure(
      moe('analyze', 'public/models/dense-parent', '--max-tokens', '8'),
      /dense llama model: it has no router/,
    );
    expectOneLineFailure(
      moe('analyze', MODEL, '--texts', 'a=nowhere.txt'),
      /nowhere\.txt \(domain "a"\) does not exist/,
    );
    expectOneLineFailure(
      moe('analyze', MODEL, '--texts', 'a=public/eval/german.txt,a=public/eval/english.txt'),
      /both called "a"/,
    );
    expectOneLineFailure(moe('analyze', MODEL, '--tradeoff', 'topk:99'), /topk:99 asks for 99 experts/);
  });
});
