// The page's controller and its engine client, outside the browser: the same EngineClient the page
// uses, talking to a real EngineSession (CPU backend, PyTorch fixtures) through a port that behaves
// like a Web Worker (asynchronous, structured-cloned messages). Checks the promise-returning calls,
// streamed tokens, cancellation and errors, and the controller's load → generate → re-score flow,
// interventions and the compare pane, against the engine's own results.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { dirSource } from '../../src/cli/fsSource.ts';
import { parsePlanText } from '../../src/engine/routing/index.ts';
import { loadTokenizer } from '../../src/engine/tokenizer.ts';
import { EngineClient, EngineError, type EnginePort } from '../../src/state/engineClient.ts';
import { createController, type Controller } from '../../src/state/controller/index.ts';
import type { PageEnv } from '../../src/state/controller/env.ts';
import { createPlaygroundStore } from '../../src/state/store.ts';
import { EngineSession } from '../../src/worker/session.ts';
import type { WorkerRequest, WorkerResponse } from '../../src/worker/protocol.ts';

const fixtures = resolve(import.meta.dirname, '../fixtures/models');

/** A Web Worker's behaviour in one process: requests and replies cross asynchronously, as copies. */
function sessionPort(
  folderFor: (baseUrl: string) => string = (url) => resolve(fixtures, url.replace(/^\/fixtures\//, '')),
): EnginePort {
  const port: EnginePort = {
    onmessage: null,
    onerror: null,
    postMessage(request: WorkerRequest) {
      const copy = structuredClone(request);
      setTimeout(() => void session.handle(copy), 0);
    },
    terminate() {},
  };
  const session = new EngineSession(
    (message: WorkerResponse) => {
      const copy = structuredClone(message);
      setTimeout(() => port.onmessage?.({ data: copy }), 0);
    },
    (baseUrl) => dirSource(folderFor(baseUrl)),
  );
  return port;
}

/** The page's surroundings for a test: the site's JSON files from public/, the address bar as a variable. */
function testEnv(queryModel: string, files: Record<string, unknown> = {}): PageEnv & { fragment: string } {
  const env = {
    fragment: '',
    base: '/',
    preferBackend: 'cpu' as const,
    queryModel,
    firstScreen: false,
    reducedMotion: true,
    fetchJson: async (path: string) => files[path] ?? null,
    fetchText: async (path: string) => (typeof files[path] === 'string' ? (files[path] as string) : null),
    replaceFragment: (fragment: string) => {
      env.fragment = fragment;
    },
    linkTo: (fragment: string) => `http://test/#${fragment}`,
    copyText: async () => false,
    offlineActive: () => false,
  };
  return env;
}

const sampling = { temperature: 0.9, topP: 0.95, seed: 3, maxTokens: 6 };
let controller: Controller | null = null;
afterEach(() => {
  controller?.dispose();
  controller = null;
});

describe('EngineClient', () => {
  it('answers each call with a promise, streams the tokens to its listener, and cancels the older generation', async () => {
    const client = new EngineClient(sessionPort());
    expect((await client.init('cpu')).kind).toBe('cpu');
    const progress: string[] = [];
    const model = await client.load(
      'mixtral',
      '/fixtures/mixtral_f32',
      (m) => m.type === 'progress' && progress.push(m.stage),
    );
    expect(model).toMatchObject({ id: 'mixtral', numExperts: 8, topK: 2, moeLayers: [0, 1] });
    expect(progress[0]).toBe('downloading the model');

    const streamed: number[] = [];
    const first = client.generate(
      'The experts',
      sampling,
      parsePlanText('native'),
      (m) => m.type === 'token' && streamed.push(m.id),
    );
    const reply = await first;
    expect(reply.type).toBe('generated');
    expect(streamed).toHaveLength(6);
    // The same tokens, re-scored: the scored reply carries the plan it ran under, as a structure.
    const scored = await client.score([...Array(3).keys()], parsePlanText('topk:1|L1E3-'));
    expect(scored.type === 'scored' && scored.routing).toEqual(parsePlanText('topk:1|L1E3-'));
    // A newer generation cancels the running one: the older call resolves 'cancelled'.
    const long = client.generate('One', { ...sampling, maxTokens: 200 }, parsePlanText('native'));
    const short = client.generate('Two words', { ...sampling, maxTokens: 2 }, parsePlanText('dense'));
    expect((await long).type).toBe('cancelled');
    expect((await short).type).toBe('generated');
    expect(short.requestId).toBeGreaterThan(long.requestId);
    client.terminate();
  });

  it('rejects a request the model cannot serve with the engine’s sentence and hint', async () => {
    const client = new EngineClient(sessionPort());
    await client.init('cpu');
    await client.load('mixtral', '/fixtures/mixtral_f32');
    const failed = client.score([1, 2, 3], parsePlanText('topk:9'));
    await expect(failed).rejects.toBeInstanceOf(EngineError);
    await expect(failed).rejects.toThrow(/9 experts/);
    await failed.catch((error: EngineError) => expect(error.hint).toMatch(/between 1 and 8/));
    client.terminate();
  });
});

describe('the controller', () => {
  it('loads the model, replays the link’s generation, re-scores on a routing change and applies interventions', async () => {
    const store = createPlaygroundStore();
    store.getState().setShare({ prompt: 'The experts', seed: 3, maxTokens: 6, temperature: 0.9 });
    const env = testEnv('/fixtures/mixtral_f32');
    controller = createController(store, env);
    controller.start({ linkSetModel: false, createClient: () => new EngineClient(sessionPort()) });

    await vi.waitFor(() => expect(store.getState().stage).toBe('ready'), { timeout: 30_000, interval: 20 });
    const generated = store.getState().run!;
    expect(generated.source).toBe('engine');
    expect(generated.modelLabel).toBe('/fixtures/mixtral_f32/');
    expect(generated.tokenIds.length).toBe(generated.promptLength + 6);
    expect(generated.generatedWith).toBe('native');
    // The address bar holds the experiment.
    await vi.waitFor(() => expect(env.fragment).toContain('model=%2Ffixtures%2Fmixtral_f32%2F'), {
      timeout: 2000,
      interval: 20,
    });

    // A routing change re-scores the text on screen: same tokens, every expert active, KL against native.
    store.getState().setShare({ mode: 'dense' });
    await vi.waitFor(() => expect(store.getState().run!.routing).toBe('dense'), { timeout: 30_000, interval: 20 });
    const dense = store.getState().run!;
    expect(dense.tokenIds).toEqual(generated.tokenIds);
    expect(dense.previousRouting).toBe('native');
    expect(dense.trace.layers[0].every((r) => r.experts.length === 8)).toBe(true);
    expect(dense.kl!.every((kl) => kl !== null && kl >= 0)).toBe(true);

    // An ablation (chips are the engine's vocabulary): expert 3 of layer 1 is never chosen, nor computed in dense.
    store.getState().setInterventions('L1E3-');
    await vi.waitFor(() => expect(store.getState().run!.routing).toBe('dense|L1E3-'), {
      timeout: 30_000,
      interval: 20,
    });
    const ablated = store.getState().run!;
    expect(ablated.trace.layers[1].every((r) => !r.experts.includes(3) && r.probs[3] === 0)).toBe(true);
    expect(ablated.trace.layers[0].every((r) => r.experts.length === 8)).toBe(true);

    // Generate under the settings: the link's generation routing follows.
    controller.engine.generate();
    expect(store.getState().share.gen).toBe('dense|L1E3-');
    expect(store.getState().activity).toBe('generating');
    await vi.waitFor(() => expect(store.getState().run!.generatedWith).toBe('dense|L1E3-'), {
      timeout: 30_000,
      interval: 20,
    });
    await vi.waitFor(() => expect(store.getState().stage).toBe('ready'), { timeout: 30_000, interval: 20 });
  });

  it('compares on the same text in a second engine; a tokenizer of the same size but other content tokenises the text itself', async () => {
    // A copy of the llama fixture whose tokenizer maps two tokens the other way round: same vocabulary size, other tokens.
    const folder = mkdtempSync(join(tmpdir(), 'moe-other-tokenizer-'));
    try {
      cpSync(resolve(fixtures, 'llama_f32'), folder, { recursive: true });
      const tokenizer = JSON.parse(readFileSync(join(folder, 'tokenizer.json'), 'utf8')) as {
        model: { vocab: Record<string, number> };
      };
      const vocab = tokenizer.model.vocab;
      [vocab.a, vocab.t] = [vocab.t, vocab.a];
      writeFileSync(join(folder, 'tokenizer.json'), JSON.stringify(tokenizer));
      const folderFor = (url: string) =>
        url.includes('other') ? folder : resolve(fixtures, url.replace(/^\/fixtures\//, ''));

      const store = createPlaygroundStore();
      store.getState().setShare({ prompt: 'the cat sat on a mat', seed: 3, maxTokens: 4, temperature: 0.9 });
      controller = createController(store, testEnv('/fixtures/mixtral_f32'));
      controller.start({ linkSetModel: false, createClient: () => new EngineClient(sessionPort(folderFor)) });
      await vi.waitFor(() => expect(store.getState().stage).toBe('ready'), { timeout: 30_000, interval: 20 });
      const pane = controller.compare.pane;

      // Pane B: the same tokenizer (llama fixture): it scores pane A's token ids under its own routing.
      store.getState().setShare({ compare: true, bModel: '/fixtures/llama_f32', bRouting: 'native' });
      await vi.waitFor(() => expect(store.getState().compareSettled).toBe(true), { timeout: 30_000, interval: 20 });
      expect(pane.getState().model!.tokenizerId).toBe(store.getState().model!.tokenizerId);
      expect(pane.getState().run!.tokenIds).toEqual(store.getState().run!.tokenIds);

      // Pane B with another tokenizer of the same size: it tokenises the text itself (the old vocab-size test called these the same).
      store.getState().setShare({ bModel: '/fixtures/other' });
      await vi.waitFor(() => expect(pane.getState().model?.id).toBe('/fixtures/other'), {
        timeout: 30_000,
        interval: 20,
      });
      await vi.waitFor(() => expect(store.getState().compareSettled).toBe(true), { timeout: 30_000, interval: 20 });
      expect(pane.getState().model!.vocabSize).toBe(store.getState().model!.vocabSize);
      expect(pane.getState().model!.tokenizerId).not.toBe(store.getState().model!.tokenizerId);
      // Pane B's tokens are its own tokenizer's reading of pane A's text (which has a and t in it, so the ids differ).
      const text = store.getState().run!.tokenTexts.join('');
      const own = loadTokenizer(
        tokenizer,
        JSON.parse(readFileSync(join(folder, 'tokenizer_config.json'), 'utf8')),
      ).encode(text);
      expect(pane.getState().run!.tokenIds).toEqual(own);
      expect(pane.getState().run!.tokenIds).not.toEqual(store.getState().run!.tokenIds);

      // Closing the comparison stops pane B.
      store.getState().setShare({ compare: false });
      expect(store.getState().compareSettled).toBe(false);
    } finally {
      rmSync(folder, { recursive: true, force: true });
    }
  });
});
