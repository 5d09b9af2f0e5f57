// The store driven by a real engine session (CPU backend, the mixtral_f32 PyTorch fixture) with the
// same messages the Web Worker sends: streamed generation must equal a re-score of the same tokens,
// routing changes must report loss changes and KL, and stale replies must be dropped.
import { describe, expect, it } from 'vitest';
import { formatPlanText, parsePlanText } from '../../src/engine/routing/index.ts';
import { resolve } from 'node:path';
import { readFileSync } from 'node:fs';
import { dirSource } from '../../src/cli/fsSource.ts';
import { countParameters, specFromConfig } from '../../src/engine/format/index.ts';
import { createPlaygroundStore } from '../../src/state/store.ts';
import { activeShare, expertLoad, meanLoss } from '../../src/state/derive.ts';
import { DEFAULT_SHARE_STATE, LIMITS, sanitizeShare } from '../../src/state/url.ts';
import { EngineSession } from '../../src/worker/session.ts';
import type { WorkerRequest } from '../../src/worker/protocol.ts';

const fixture = resolve(import.meta.dirname, '../fixtures/models/mixtral_f32');

async function startSession() {
  const store = createPlaygroundStore();
  const session = new EngineSession(
    (m) => store.getState().receive(m),
    (dir) => dirSource(dir),
  );
  let nextId = 1;
  const send = async (request: WorkerRequest) => {
    if ('requestId' in request) {
      const activity = request.type === 'generate' ? 'generating' : request.type === 'score' ? 'scoring' : 'loading';
      store
        .getState()
        .begin(request.requestId, activity, 'routing' in request ? formatPlanText(request.routing) : undefined);
    }
    await session.handle(request);
    await session.idle();
  };
  await send({ type: 'init', preferBackend: 'cpu' });
  await send({ type: 'load', requestId: nextId++, modelId: 'mixtral_f32', baseUrl: fixture });
  return { store, session, send, id: () => nextId++ };
}

// Seed 3 never draws the end-of-sequence token within 6 tokens for the prompts below (the fixture is a random model).
const sampling = { temperature: 0.9, topP: 0.95, seed: 3, maxTokens: 6 };

describe('playground store with a real engine session', () => {
  it('streams a generation whose trace and losses equal a re-score of the same tokens', async () => {
    const { store, send, id } = await startSession();
    expect(store.getState().model).toMatchObject({
      architecture: 'mixtral',
      numExperts: 8,
      topK: 2,
      moeLayers: [0, 1],
    });
    await send({
      type: 'generate',
      requestId: id(),
      prompt: 'The experts',
      sampling,
      routing: parsePlanText('native'),
    });
    const generated = store.getState().run!;
    expect(store.getState().error).toBeNull();
    expect(generated.tokenIds.length).toBe(generated.promptLength + 6);
    expect(generated.trace.positions).toEqual(generated.tokenIds.map((_, i) => i));
    expect(generated.logProbs[0]).toBeNull();
    expect(generated.top.every((t) => t !== null && t.length === 5)).toBe(true);

    // Same seed, same settings: the same tokens again.
    await send({
      type: 'generate',
      requestId: id(),
      prompt: 'The experts',
      sampling,
      routing: parsePlanText('native'),
    });
    expect(store.getState().run!.tokenIds).toEqual(generated.tokenIds);

    // Re-scoring under the same routing reproduces the streamed routing and losses (KV cache vs prefill).
    await send({ type: 'score', requestId: id(), tokenIds: generated.tokenIds, routing: parsePlanText('native') });
    const rescored = store.getState().run!;
    for (let m = 0; m < 2; m++) {
      for (let t = 0; t < generated.tokenIds.length; t++) {
        expect(rescored.trace.layers[m][t].experts).toEqual(generated.trace.layers[m][t].experts);
        for (let e = 0; e < 8; e++)
          expect(rescored.trace.layers[m][t].probs[e]).toBeCloseTo(generated.trace.layers[m][t].probs[e], 5);
      }
    }
    rescored.logProbs.forEach((lp, i) =>
      lp === null ? expect(generated.logProbs[i]).toBeNull() : expect(lp).toBeCloseTo(generated.logProbs[i]!, 4),
    );
    expect(rescored.generatedWith).toBe('native');
  });

  it('re-scores the text under dense routing: every expert active, losses change, KL against native', async () => {
    const { store, send, id } = await startSession();
    await send({ type: 'generate', requestId: id(), prompt: 'Mixture', sampling, routing: parsePlanText('native') });
    const native = store.getState().run!;
    const model = store.getState().model!;
    const spec = specFromConfig(JSON.parse(readFileSync(resolve(fixture, 'config.json'), 'utf8')), 'config.json');
    const counts = countParameters(spec);
    expect(activeShare(model, native.trace)).toBeCloseTo(counts.activeFor({ kind: 'native' }) / counts.total, 12);

    await send({ type: 'score', requestId: id(), tokenIds: native.tokenIds, routing: parsePlanText('dense') });
    const dense = store.getState().run!;
    expect(dense.routing).toBe('dense');
    expect(dense.previousRouting).toBe('native');
    expect(dense.previousLogProbs).toEqual(native.logProbs);
    expect(activeShare(model, dense.trace)).toBeCloseTo(1, 12);
    expect(dense.trace.layers[0][0].experts).toHaveLength(8);
    expect(dense.kl).toHaveLength(native.tokenIds.length);
    expect(dense.kl!.every((kl) => kl !== null && kl >= 0)).toBe(true);
    expect(Math.max(...dense.kl!.map(Number))).toBeGreaterThan(1e-6);
    expect(meanLoss(dense.logProbs)).not.toBeCloseTo(meanLoss(native.logProbs), 6);

    // top-1: the load shares of a layer count one expert per token and sum to 1.
    await send({ type: 'score', requestId: id(), tokenIds: native.tokenIds, routing: parsePlanText('topk:1') });
    const top1 = store.getState().run!;
    const load = expertLoad(top1.trace, 0, 8);
    expect(load.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
    const counted = top1.trace.layers[0].filter((r) => r.experts[0] === 3).length / native.tokenIds.length;
    expect(load[3]).toBeCloseTo(counted, 12);
    expect(top1.previousRouting).toBe('dense');
  });

  it('a newer request cancels a running generation; its late replies are dropped', async () => {
    const { store, session, id } = await startSession();
    const first = id();
    store.getState().begin(first, 'generating', 'native');
    await session.handle({
      type: 'generate',
      requestId: first,
      prompt: 'One',
      sampling: { ...sampling, maxTokens: 200 },
      routing: parsePlanText('native'),
    });
    const second = id();
    store.getState().begin(second, 'generating', 'dense');
    await session.handle({
      type: 'generate',
      requestId: second,
      prompt: 'Two words',
      sampling: { ...sampling, maxTokens: 3 },
      routing: parsePlanText('dense'),
    });
    await session.idle();
    const run = store.getState().run!;
    expect(run.generatedWith).toBe('dense');
    expect(run.tokenIds.length).toBe(run.promptLength + 3);
    expect(store.getState().activity).toBe('idle');
  });

  it('reports a routing the model cannot serve as an error and keeps the text', async () => {
    const { store, send, id } = await startSession();
    await send({ type: 'generate', requestId: id(), prompt: 'Keep me', sampling, routing: parsePlanText('native') });
    const before = store.getState().run!;
    await send({ type: 'score', requestId: id(), tokenIds: before.tokenIds, routing: parsePlanText('topk:9') });
    expect(store.getState().error?.message).toMatch(/9 experts/);
    expect(store.getState().run).toBe(before);
  });
});

describe('settings', () => {
  it('clamps and whitelists every setting, whatever the source', () => {
    const s = sanitizeShare(DEFAULT_SHARE_STATE, {
      temperature: 50,
      topP: -1,
      maxTokens: 1e9,
      seed: NaN,
      k: 2.6,
      mode: 'evil' as never,
      prompt: 'x'.repeat(5000),
    });
    expect(s.temperature).toBe(LIMITS.temperature[1]);
    expect(s.topP).toBe(LIMITS.topP[0]);
    expect(s.maxTokens).toBe(LIMITS.maxTokens[1]);
    expect(s.seed).toBe(DEFAULT_SHARE_STATE.seed);
    expect(s.k).toBe(3);
    expect(s.mode).toBe(DEFAULT_SHARE_STATE.mode);
    expect(s.prompt).toHaveLength(LIMITS.promptChars);
  });

  it('keeps selection inside the text and the layers', async () => {
    const { store, send, id } = await startSession();
    await send({
      type: 'generate',
      requestId: id(),
      prompt: 'abc',
      sampling: { ...sampling, maxTokens: 2 },
      routing: parsePlanText('native'),
    });
    const n = store.getState().run!.tokenIds.length;
    store.getState().selectToken(999);
    expect(store.getState().share.token).toBe(n - 1);
    store.getState().selectLayer(5);
    expect(store.getState().share.layer).toBe(1);
  });
});
