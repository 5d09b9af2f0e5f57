// The router lenses against an independent computation: tests/fixtures/make_lens_fixtures.py runs the
// PyTorch reference model (make_fixtures.py) on the committed fixture checkpoints over three small
// texts and recomputes every statistic in numpy from its definition; here the engine (CPU backend +
// src/engine/lens) does the same run and must agree. Counts and chosen sets exactly (the script
// re-draws texts with near-ties), shares to 1e-9, quantities read from router probabilities to 1e-5,
// losses to 1e-4 (the logits' tolerance).

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { dirSource } from '../../src/cli/fsSource.ts';
import { createCpuBackend } from '../../src/engine/backends/cpu/index.ts';
import { loadCheckpoint } from '../../src/engine/format/index.ts';
import {
  analyzeCorpus,
  compareRuns,
  type CorpusAnalysis,
  LensAbortedError,
  LensError,
  type LensProgress,
  type LensText,
  planWindows,
} from '../../src/engine/lens/index.ts';
import { parseRoutingMode, parseRoutingPlan } from '../../src/engine/routing/index.ts';
import type { LoadedModel } from '../../src/engine/types.ts';

const FIXTURES = join(import.meta.dirname, '..', 'fixtures');
type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
const expected = JSON.parse(readFileSync(join(FIXTURES, 'lens_expected.json'), 'utf8')) as {
  window: number;
  vocabTop: number;
  minCount: number;
  texts: LensText[];
  cases: ({ model: string; mode: string } & Record<string, Json>)[];
  tradeoff: { model: string; points: Json[] };
  agreement: { a: { model: string; mode: string }; b: { model: string; mode: string }; expected: Json }[];
};

/**
 * Every number in `want` matches `got` within `tol` (null stands for NaN); arrays have the same length;
 * only the keys of `want` are compared (the engine adds display fields such as `text` and `sentence`).
 */
function expectClose(got: unknown, want: Json, tol: number, path = '$'): void {
  if (want === null) {
    expect(got === null || Number.isNaN(got), `${path}: want NaN/null, got ${String(got)}`).toBe(true);
  } else if (typeof want === 'number') {
    expect(typeof got, path).toBe('number');
    expect(Math.abs((got as number) - want), `${path}: got ${String(got)}, want ${want}`).toBeLessThanOrEqual(tol);
  } else if (Array.isArray(want)) {
    expect(Array.isArray(got), `${path} is an array`).toBe(true);
    expect((got as unknown[]).length, `${path}.length`).toBe(want.length);
    want.forEach((w, i) => expectClose((got as unknown[])[i], w, tol, `${path}[${i}]`));
  } else if (typeof want === 'object') {
    expect(typeof got === 'object' && got !== null, `${path} is an object`).toBe(true);
    for (const [key, w] of Object.entries(want))
      expectClose((got as Record<string, unknown>)[key], w, tol, `${path}.${key}`);
  } else {
    expect(got, path).toEqual(want);
  }
}

const models = new Map<string, LoadedModel>();
async function model(name: string): Promise<LoadedModel> {
  let m = models.get(name);
  if (!m) {
    const ckpt = await loadCheckpoint(dirSource(join(FIXTURES, 'models', name)));
    m = await createCpuBackend().load(ckpt.spec, ckpt.weights);
    models.set(name, m);
  }
  return m;
}

function analyse(name: string, mode: string, tradeoff: string[] = []): Promise<CorpusAnalysis> {
  return model(name).then((m) =>
    analyzeCorpus(m, expected.texts, {
      plan: parseRoutingPlan(mode),
      window: expected.window,
      tradeoffModes: tradeoff.map(parseRoutingMode),
      vocab: { top: expected.vocabTop, minCount: expected.minCount },
    }),
  );
}

describe.each(expected.cases.map((c) => [`${c.model} ${c.mode}`, c] as const))(
  'lenses on %s vs numpy over the PyTorch run',
  (_, want) => {
    let got: CorpusAnalysis;
    beforeAll(async () => {
      got = await analyse(want.model, want.mode);
    });

    it('names the same MoE layers and expert count', () => {
      expect(got.moeLayers).toEqual(want.moeLayers);
      expect(got.numExperts).toBe(want.numExperts);
    });
    it('domain specialisation: assignments, shares, token rates, divergence and the top expert', () => {
      expectClose(got.domain, want.domain, 1e-9);
      expect(got.domain.sentence).toMatch(/fair share/);
    });
    it('vocabulary specialisation: per-expert input and predicted tokens, per-token concentration', () => {
      expectClose(got.vocab.layers, want.vocab, 1e-9);
    });
    it('co-activation: P(b chosen | a chosen), chosen counts and the random-set baseline', () => {
      expectClose(got.coactivation, want.coactivation, 1e-9);
      for (const rows of got.coactivation.matrix) rows.forEach((row, a) => expect(row[a]).toBe(1));
    });
    it('locality: same first choice, set overlap and the three chance baselines', () => {
      expectClose(got.locality.layers, want.locality, 1e-9);
    });
    it('load balance: load, mean router probability, CV, max/mean, Switch auxiliary loss', () => {
      expectClose(got.load.layers, want.load, 1e-5);
    });
    it('loss and active parameters of the analysed mode (parameters counted from the safetensors)', () => {
      expectClose(got.point, want.point, 1e-4);
    });
  },
);

describe('sparsity trade-off sweep on mixtral_f32 vs the PyTorch run of every mode', () => {
  it('gives loss, experts per layer and active share for topk:1..7, three thresholds and dense', async () => {
    const modes = (expected.tradeoff.points as { mode: string }[]).map((p) => p.mode);
    const got = await analyse(expected.tradeoff.model, 'native', modes);
    expectClose(got.tradeoff.points, expected.tradeoff.points, 1e-4);
    const dense = got.tradeoff.dense!;
    expect(dense.mode).toBe('dense');
    expect(dense.activeShare).toBe(1);
    for (const p of got.tradeoff.points) expect(p.deltaLoss).toBeCloseTo(p.loss - dense.loss, 12);
    // native is topk:2 on this model: the sweep reuses the analysed run for it instead of running it again.
    expect(got.tradeoff.points.find((p) => p.mode === 'topk:2')!.loss).toBe(got.point.loss);
  });
});

describe.each(expected.agreement.map((c) => [`${c.a.model} ${c.a.mode} vs ${c.b.model} ${c.b.mode}`, c] as const))(
  'agreement %s vs numpy over the PyTorch runs',
  (_, c) => {
    it('same chosen set, same first choice (per layer and overall), top-1 next token, mean KL', async () => {
      const got = await compareRuns(
        { model: await model(c.a.model), plan: parseRoutingPlan(c.a.mode), label: 'A' },
        { model: await model(c.b.model), plan: parseRoutingPlan(c.b.mode), label: 'B' },
        expected.texts,
        { window: expected.window },
      );
      expectClose(got, c.expected, 1e-5);
      expect(got.sentence).toMatch(/^A and B choose the same experts/);
    });
  },
);

describe('windows, progress and cancellation', () => {
  it('splits a text longer than the window into consecutive windows and caps it at maxTokens', () => {
    const plans = planWindows([{ name: 'a', tokens: Array.from({ length: 40 }, (_, i) => i) }], 16, 35);
    expect(plans[0]).toEqual({
      name: 'a',
      tokens: 35,
      totalTokens: 40,
      windows: [
        [0, 16],
        [16, 32],
        [32, 35],
      ],
    });
  });

  it('reports progress after every window up to the total, and stops at the next window once aborted', async () => {
    const m = await model('mixtral_f32');
    const seen: LensProgress[] = [];
    await analyzeCorpus(m, expected.texts, {
      plan: parseRoutingPlan('native'),
      window: expected.window,
      tradeoffModes: [parseRoutingMode('topk:1')],
      onProgress: (p) => void seen.push(p),
    });
    const total = expected.texts.reduce((a, t) => a + t.tokens.length, 0);
    expect(seen.length).toBe(2 * 6); // 6 windows (3 + 2 + 1), routing run + one sweep mode
    expect(seen.at(-1)).toEqual({ phase: 'tradeoff', mode: 'topk:1', tokensDone: 2 * total, tokensTotal: 2 * total });
    expect(seen.map((p) => p.tokensDone)).toEqual([...seen.map((p) => p.tokensDone)].sort((a, b) => a - b));

    const abort = new AbortController();
    let calls = 0;
    const run = analyzeCorpus(m, expected.texts, {
      plan: parseRoutingPlan('native'),
      window: expected.window,
      signal: abort.signal,
      onProgress: () => {
        calls++;
        abort.abort();
      },
    });
    await expect(run).rejects.toBeInstanceOf(LensAbortedError);
    expect(calls).toBe(1);
  });

  it('refuses a dense model, a duplicate name and an empty text with a sentence and a hint', async () => {
    const dense = await model('llama_f32');
    await expect(analyzeCorpus(dense, expected.texts, { plan: parseRoutingPlan('native') })).rejects.toThrow(
      /dense: it has no router/,
    );
    const m = await model('mixtral_f32');
    const twice = [expected.texts[0], { ...expected.texts[1], name: expected.texts[0].name }];
    await expect(analyzeCorpus(m, twice, { plan: parseRoutingPlan('native') })).rejects.toBeInstanceOf(LensError);
    await expect(
      analyzeCorpus(m, [{ name: 'empty', tokens: [] }], { plan: parseRoutingPlan('native') }),
    ).rejects.toThrow(/"empty" has no tokens/);
    await expect(
      compareRuns(
        { model: m, plan: parseRoutingPlan('native'), label: 'a' },
        { model: await model('qwen2_moe_f32'), plan: parseRoutingPlan('native'), label: 'b' },
        expected.texts,
      ),
    ).rejects.toThrow(/different numbers of experts/);
  });
});
