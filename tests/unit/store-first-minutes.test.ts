// Regression tests for issue 9 at the store level, driven by a real engine session (CPU backend, the
// mixtral_f32 and llama_f32 PyTorch fixtures) with the messages the Web Worker sends.
import { describe, expect, it } from 'vitest';
import { parsePlanText } from '../../src/engine/routing/index.ts';
import { resolve } from 'node:path';
import { dirSource } from '../../src/cli/fsSource.ts';
import { createPlaygroundStore } from '../../src/state/store.ts';
import { activeShare, meanExpertsPerLayer } from '../../src/state/derive.ts';
import { EngineSession } from '../../src/worker/session.ts';
import type { WorkerRequest, WorkerResponse } from '../../src/worker/protocol.ts';

const fixtures = resolve(import.meta.dirname, '../fixtures/models');
const sampling = { temperature: 0.9, topP: 0.95, seed: 3, maxTokens: 6 };

async function startSession() {
  const store = createPlaygroundStore();
  const seen: WorkerResponse[] = [];
  const session = new EngineSession(
    (m) => {
      seen.push(m);
      store.getState().receive(m);
    },
    (dir) => dirSource(dir),
  );
  const run = async (request: WorkerRequest) => {
    await session.handle(request);
    await session.idle();
  };
  await run({ type: 'init', preferBackend: 'cpu' });
  return { store, session, run, seen };
}

describe('the numbers on screen belong to the model that produced the text (item 1)', () => {
  it('a load whose reply lost the race with a newer request still names the model the worker runs', async () => {
    const { store, run } = await startSession();
    store.getState().begin(1, 'loading');
    await run({ type: 'load', requestId: 1, modelId: 'mixtral', baseUrl: resolve(fixtures, 'mixtral_f32') });
    store.getState().begin(2, 'generating', 'native');
    await run({ type: 'generate', requestId: 2, prompt: 'The experts', sampling, routing: parsePlanText('native') });
    const mixtralRun = store.getState().run!;
    const mixtral = store.getState().model!;
    expect(mixtralRun.modelFacts).toEqual({
      parametersTotal: mixtral.parametersTotal,
      parametersNonExpert: mixtral.parametersNonExpert,
      parametersPerExpert: mixtral.parametersPerExpert,
      moeLayers: mixtral.moeLayers,
    });

    // The page starts loading the dense llama model, and before it is ready another request is begun
    // (what a routing change during a model switch used to do). The worker still installs llama.
    store.getState().begin(3, 'loading');
    const loading = run({ type: 'load', requestId: 3, modelId: 'llama', baseUrl: resolve(fixtures, 'llama_f32') });
    store.getState().begin(4, 'scoring', 'dense');
    await loading;
    expect(store.getState().model?.id).toBe('llama');
    expect(store.getState().model?.numExperts).toBe(0);
    // The text on screen is still mixtral's, and its "parameters active" is computed with mixtral's counts.
    const onScreen = store.getState().run!;
    expect(onScreen.modelLabel).toBe('mixtral');
    const share = activeShare(onScreen.modelFacts!, onScreen.trace);
    // Hand computation: native top-2 of 8 experts in both MoE layers.
    expect(share).toBeCloseTo(
      (mixtral.parametersNonExpert + 2 * 2 * mixtral.parametersPerExpert) / mixtral.parametersTotal,
      12,
    );
    expect(share).toBeLessThan(1);

    // llama's own text then carries llama's counts: all parameters active.
    store.getState().begin(5, 'generating', 'native');
    await run({ type: 'generate', requestId: 5, prompt: 'The experts', sampling, routing: parsePlanText('native') });
    const llamaRun = store.getState().run!;
    expect(llamaRun.modelLabel).toBe('llama');
    expect(activeShare(llamaRun.modelFacts!, llamaRun.trace)).toBe(1);
  });
});

describe('an ablated expert is never chosen nor counted (item 4)', () => {
  it('topk:8 with three experts of layer 1 ablated chooses the five live ones there, and counts 6.5 experts per layer', async () => {
    const { store, run } = await startSession();
    store.getState().begin(1, 'loading');
    await run({ type: 'load', requestId: 1, modelId: 'mixtral', baseUrl: resolve(fixtures, 'mixtral_f32') });
    const routing = 'topk:8|L1E0-,L1E5-,L1E7-';
    store.getState().begin(2, 'generating', routing);
    await run({ type: 'generate', requestId: 2, prompt: 'The experts', sampling, routing: parsePlanText(routing) });
    const result = store.getState().run!;
    const model = store.getState().model!;
    for (const r of result.trace.layers[0]) expect([...r.experts].sort()).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    for (const r of result.trace.layers[1]) {
      expect([...r.experts].sort()).toEqual([1, 2, 3, 4, 6]);
      expect(r.weights.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
    }
    expect(meanExpertsPerLayer(result.trace)).toBe(6.5);
    expect(activeShare(result.modelFacts!, result.trace)).toBeCloseTo(
      (model.parametersNonExpert + 13 * model.parametersPerExpert) / model.parametersTotal,
      12,
    );

    // Dense with an ablated expert runs the seven live ones.
    store.getState().begin(3, 'scoring', 'dense|L0E2-');
    await run({ type: 'score', requestId: 3, tokenIds: result.tokenIds, routing: parsePlanText('dense|L0E2-') });
    const dense = store.getState().run!;
    for (const r of dense.trace.layers[0]) expect(r.experts).not.toContain(2);
    expect(meanExpertsPerLayer(dense.trace)).toBe(7.5);
  });
});
