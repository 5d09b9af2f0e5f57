// The worker session's classroom requests and the store's intervention history: upcycling the dense
// llama fixture in memory writes exactly the parent's text (docs/upcycling.md: the identity); chips cycle and undo.
import { describe, expect, it } from 'vitest';
import { resolve } from 'node:path';
import { dirSource } from '../../src/cli/fsSource.ts';
import { chipAction, createPlaygroundStore, cycleChip } from '../../src/state/store.ts';
import { EngineSession } from '../../src/worker/session.ts';
import { formatRecipe, parseRecipe } from '../../src/state/url.ts';

const llama = resolve(import.meta.dirname, '../fixtures/models/llama_f32');

describe('upcycling in the session', () => {
  it('loads the child and proves it writes what its parent writes, for plain and granular recipes', async () => {
    const store = createPlaygroundStore();
    const session = new EngineSession(
      (m) => store.getState().receive(m),
      (dir) => dirSource(dir),
    );
    await session.handle({ type: 'init', preferBackend: 'cpu' });
    const sampling = { temperature: 0.9, topP: 0.95, seed: 11, maxTokens: 8 };
    for (const [requestId, recipe] of [
      [1, { experts: 8, granularity: 1, topK: 2, seed: 3 }],
      [2, { experts: 8, granularity: 4, topK: 8, seed: 1 }],
    ] as const) {
      store.getState().begin(requestId, 'loading');
      await session.handle({
        type: 'upcycle',
        requestId,
        modelId: 'dense-parent',
        baseUrl: llama,
        recipe,
        proof: { prompt: 'The experts', sampling },
      });
      const { proof, model, error } = store.getState();
      expect(error).toBeNull();
      expect(proof!.childTokenIds).toEqual(proof!.parentTokenIds);
      expect(proof!.childText).toBe(proof!.parentText);
      expect(proof!.childTokenIds.length).toBeGreaterThan(2);
      expect(proof!.maxLogitDifference).toBeLessThan(1e-4);
      expect(proof!.renormalised).toBe(true);
      expect(model).toMatchObject({ numExperts: 8, topK: recipe.topK, architecture: 'mixtral', moeLayers: [0, 1] });
    }
  });

  it('Drop-Upcycling in the page: the child starts different from its parent, and the recipe says so in its id and link', async () => {
    const store = createPlaygroundStore();
    const session = new EngineSession(
      (m) => store.getState().receive(m),
      (dir) => dirSource(dir),
    );
    await session.handle({ type: 'init', preferBackend: 'cpu' });
    store.getState().begin(1, 'loading');
    const recipe = { experts: 8, granularity: 1, topK: 2, seed: 3, drop: 0.5 };
    await session.handle({
      type: 'upcycle',
      requestId: 1,
      modelId: 'dense-parent',
      baseUrl: llama,
      recipe,
      proof: { prompt: 'The experts', sampling: { temperature: 0.9, topP: 0.95, seed: 11, maxTokens: 8 } },
    });
    const { proof, model, error } = store.getState();
    expect(error).toBeNull();
    expect(proof!.recipe.drop).toBe(0.5);
    // Half of every expert's units are new random weights: the logits move far beyond float rounding.
    expect(proof!.maxLogitDifference).toBeGreaterThan(1e-2);
    expect(model?.id).toMatch(/d50$/);
    expect(formatRecipe(recipe)).toBe('E8G1K2S3D50');
    expect(parseRecipe('E8G1K2S3D50')).toEqual(recipe);
  });

  it('reports an impossible recipe as an error and keeps the model that was loaded', async () => {
    const store = createPlaygroundStore();
    const session = new EngineSession(
      (m) => store.getState().receive(m),
      (dir) => dirSource(dir),
    );
    await session.handle({ type: 'init', preferBackend: 'cpu' });
    store.getState().begin(1, 'loading');
    await session.handle({ type: 'load', requestId: 1, modelId: 'dense', baseUrl: llama });
    store.getState().begin(2, 'loading');
    await session.handle({
      type: 'upcycle',
      requestId: 2,
      modelId: 'dense',
      baseUrl: llama,
      recipe: { experts: 6, granularity: 4, topK: 4, seed: 0 },
      proof: { prompt: 'x', sampling: { temperature: 1, topP: 1, seed: 0, maxTokens: 2 } },
    });
    expect(store.getState().error?.message).toMatch(/6 experts cannot be made from shards of granularity 4/);
    expect(store.getState().model?.id).toBe('dense');
  });
});

describe('intervention chips', () => {
  it('cycle none → ablate → force → none and undo step by step', () => {
    expect(cycleChip('', 1, 3)).toBe('L1E3-');
    expect(cycleChip('L1E3-', 1, 3)).toBe('L1E3+');
    expect(cycleChip('L0E2-,L1E3+', 1, 3)).toBe('L0E2-');
    expect(chipAction('L0E2-,L1E3+', 1, 3)).toBe('force');
    expect(chipAction('L0E2-,L1E3+', 1, 2)).toBeNull();
    const store = createPlaygroundStore();
    store.getState().cycleIntervention(1, 3);
    store.getState().cycleIntervention(0, 5);
    store.getState().cycleIntervention(1, 3);
    expect(store.getState().share.iv).toBe('L1E3+,L0E5-');
    store.getState().undoInterventions();
    expect(store.getState().share.iv).toBe('L1E3-,L0E5-');
    store.getState().undoInterventions();
    store.getState().undoInterventions();
    expect(store.getState().share.iv).toBe('');
    store.getState().undoInterventions();
    expect(store.getState().share.iv).toBe('');
  });
});
