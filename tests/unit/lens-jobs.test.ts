// The worker's lens jobs, through the same EngineSession the Web Worker runs (CPU backend, fixture
// folders): a job's result is analyzeCorpus/compareRuns on the model's own tokens; Cancel and a
// newer job stop it between windows; the page's model is not touched; bad requests get a sentence.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { dirSource } from '../../src/cli/fsSource.ts';
import { createCpuBackend } from '../../src/engine/backends/cpu/index.ts';
import { loadCheckpoint } from '../../src/engine/format/index.ts';
import { analyzeCorpus, compareRuns } from '../../src/engine/lens/index.ts';
import { parsePlanText, parseRoutingPlan } from '../../src/engine/routing/index.ts';
import { loadTokenizer } from '../../src/engine/tokenizer.ts';
import type { LensJobSpec } from '../../src/worker/lensJobs.ts';
import type { WorkerResponse } from '../../src/worker/protocol.ts';
import { EngineSession } from '../../src/worker/session.ts';

const models = join(import.meta.dirname, '..', 'fixtures', 'models');
const A = join(models, 'mixtral_f32');
const B = join(models, 'mixtral_f16');
const eval_ = (name: string) =>
  readFileSync(join(import.meta.dirname, '..', '..', 'public', 'eval', `${name}.txt`), 'utf8');

async function session(onMessage?: (m: WorkerResponse, s: EngineSession) => void) {
  const messages: WorkerResponse[] = [];
  const s: EngineSession = new EngineSession(
    (m) => {
      messages.push(m);
      onMessage?.(m, s);
    },
    (dir) => dirSource(dir),
  );
  await s.handle({ type: 'init', preferBackend: 'cpu' });
  return { s, messages };
}

const job = (patch: Partial<LensJobSpec> = {}): LensJobSpec => ({
  a: { model: { id: 'a', baseUrl: A }, routing: parsePlanText('native') },
  texts: [
    { name: 'english', text: eval_('english') },
    { name: 'python', text: eval_('python') },
  ],
  maxTokens: 24,
  tradeoff: false,
  ...patch,
});

describe('lens jobs in the engine session', () => {
  it('gives the lenses of both runs and their agreement, as the engine computes them on the same tokens', async () => {
    const { s, messages } = await session();
    await s.handle({
      type: 'lens',
      requestId: 5,
      job: job({ b: { model: { id: 'b', baseUrl: B }, routing: parsePlanText('topk:1') }, tradeoff: true }),
    });
    await s.lensesIdle();
    const done = messages.find((m) => m.type === 'lensDone');
    if (done?.type !== 'lensDone') throw new Error(`no result: ${JSON.stringify(messages.at(-1))}`);
    const progress = messages.filter((m) => m.type === 'lensProgress');
    expect(progress.length).toBeGreaterThan(3);
    expect(progress.every((m, i) => i === 0 || m.fraction >= progress[i - 1].fraction)).toBe(true);

    const load = async (dir: string) => {
      const ckpt = await loadCheckpoint(dirSource(dir));
      return {
        model: await createCpuBackend().load(ckpt.spec, ckpt.weights),
        tok: loadTokenizer(ckpt.tokenizerJson, ckpt.tokenizerConfigJson),
      };
    };
    const a = await load(A);
    const b = await load(B);
    const texts = ['english', 'python'].map((name) => ({ name, tokens: a.tok.encode(eval_(name)) }));
    const native = parseRoutingPlan('native', '');
    const top1 = parseRoutingPlan('topk:1', '');
    const wantA = await analyzeCorpus(a.model, texts, {
      plan: native,
      maxTokens: 24,
      vocab: { tokenText: (id) => a.tok.decodeToken(id) },
    });
    const wantB = await analyzeCorpus(b.model, texts, {
      plan: top1,
      maxTokens: 24,
      vocab: { tokenText: (id) => b.tok.decodeToken(id) },
    });
    expect(done.result.a.analysis).toEqual(wantA);
    expect(done.result.b?.analysis).toEqual(wantB);
    const agreement = await compareRuns(
      { model: a.model, plan: native, label: 'a (native)' },
      { model: b.model, plan: top1, label: 'b (topk:1)' },
      texts,
      { maxTokens: 24 },
    );
    expect(done.result.agreement).toEqual({ ...agreement, a: 'a (native)', b: 'b (topk:1)' });
    expect(done.result.tokens).toEqual({ english: texts[0].tokens.length, python: texts[1].tokens.length });
  });

  it('stops on Cancel between windows and when a newer job replaces it; the page’s model stays', async () => {
    // Cancel as soon as the first window is scored (the worker's message handler would run it there, at the job's yield).
    let cancelled = false;
    const { s, messages } = await session((m, self) => {
      if (!cancelled && m.type === 'lensProgress' && m.requestId === 2 && m.stage.includes('tokens')) {
        cancelled = true;
        void self.handle({ type: 'lensCancel', requestId: 2 });
      }
    });
    await s.handle({ type: 'load', requestId: 1, modelId: 'page', baseUrl: A });
    await s.handle({ type: 'lens', requestId: 2, job: job({ maxTokens: 256, tradeoff: true }) });
    await s.lensesIdle();
    expect(
      messages.filter((m) => m.type === 'lensProgress' && m.requestId === 2 && m.stage.includes('tokens')),
    ).toHaveLength(1);
    expect(messages.filter((m) => m.type === 'lensFailed')).toEqual([
      {
        type: 'lensFailed',
        requestId: 2,
        message: 'The analysis was cancelled; nothing was measured.',
        hint: 'Press Run to start it again.',
        cancelled: true,
      },
    ]);
    expect(messages.some((m) => m.type === 'lensDone')).toBe(false);

    await s.handle({ type: 'lens', requestId: 3, job: job({ maxTokens: 256, tradeoff: true }) });
    await s.handle({ type: 'lens', requestId: 4, job: job() });
    await s.lensesIdle();
    expect(messages.find((m) => m.type === 'lensFailed' && m.requestId === 3)).toMatchObject({ cancelled: true });
    expect(messages.find((m) => m.type === 'lensDone')).toMatchObject({ requestId: 4 });
    // The page's model still generates.
    await s.handle({
      type: 'generate',
      requestId: 9,
      prompt: 'The experts',
      sampling: { temperature: 0, topP: 1, seed: 1, maxTokens: 2 },
      routing: parsePlanText('native'),
    });
    await s.idle();
    expect(messages.find((m) => m.type === 'generated')).toMatchObject({ requestId: 9 });
  });

  it('says why a request cannot run: a dense model, an empty text, a bad routing mode', async () => {
    const { s, messages } = await session();
    const failure = async (requestId: number, spec: LensJobSpec) => {
      await s.handle({ type: 'lens', requestId, job: spec });
      await s.lensesIdle();
      const m = messages.find((x) => x.type === 'lensFailed' && x.requestId === requestId);
      return m?.type === 'lensFailed' ? `${m.message} ${m.hint}` : 'no failure';
    };
    expect(
      await failure(
        1,
        job({ a: { model: { id: 'llama', baseUrl: join(models, 'llama_f32') }, routing: parsePlanText('native') } }),
      ),
    ).toMatch(/dense: it has no router.*upcycle/);
    expect(await failure(2, job({ texts: [{ name: 'blank', text: '  ' }] }))).toMatch(/The text "blank" is empty/);
    expect(await failure(3, job({ texts: [] }))).toMatch(/no texts/);
    expect(await failure(4, job({ a: { model: { id: 'a', baseUrl: A }, routing: parsePlanText('topk:9') } }))).toMatch(
      /9/,
    );
  });
});
