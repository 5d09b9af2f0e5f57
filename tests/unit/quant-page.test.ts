// The page's quantization setting and quantization-cost line, outside the browser: the controller
// and the real EngineSession (CPU backend, PyTorch fixture) through a worker-like port. The memory
// figures are memoryNeeded's; the cost equals quantizationCost run here independently on the same
// windows of the same texts; a refused or failed choice leaves the model loaded and the text as it was.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { cpSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { dirSource } from '../../src/cli/fsSource.ts';
import { adapterNature, describeRace } from '../../src/engine/backends/select.ts';
import { createCpuBackend } from '../../src/engine/backends/cpu/index.ts';
import { loadCheckpoint } from '../../src/engine/format/index.ts';
import { weightBytesBySchemes } from '../../src/engine/format/quant.ts';
import { quantizationCost, tokenWindows } from '../../src/engine/quant/cost.ts';
import { NATIVE_PLAN } from '../../src/engine/routing/index.ts';
import { memoryNeeded } from '../../src/engine/source/memory.ts';
import { loadTokenizer } from '../../src/engine/tokenizer.ts';
import { EngineClient, type EnginePort } from '../../src/state/engineClient.ts';
import { createController, type Controller } from '../../src/state/controller/index.ts';
import type { PageEnv } from '../../src/state/controller/env.ts';
import { costDecision, QUANT_COST_TOKENS, refusalOf } from '../../src/state/controller/quant.ts';
import { createPlaygroundStore } from '../../src/state/store.ts';
import { formatShareFragment, parseShareFragment } from '../../src/state/url.ts';
import { EngineSession, quantChoices } from '../../src/worker/session.ts';
import type { WorkerRequest, WorkerResponse } from '../../src/worker/protocol.ts';

const root = resolve(import.meta.dirname, '../..');
const fixtures = resolve(root, 'tests/fixtures/models');
const evalDir = resolve(root, 'public/eval');
const evalFiles = Object.fromEntries(
  readdirSync(evalDir)
    .filter((f) => f.endsWith('.txt'))
    .map((f) => [`eval/${f}`, readFileSync(join(evalDir, f), 'utf8')]),
);

function sessionPort(folderFor: (baseUrl: string) => string): EnginePort {
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

function testEnv(queryModel: string): PageEnv {
  return {
    base: '/',
    preferBackend: 'cpu',
    queryModel,
    firstScreen: false,
    reducedMotion: true,
    fetchJson: async () => null,
    fetchText: async (path) => evalFiles[path] ?? null,
    replaceFragment: () => {},
    linkTo: (fragment) => `http://test/#${fragment}`,
    copyText: async () => false,
    offlineActive: () => false,
  };
}

let controller: Controller | null = null;
afterEach(() => {
  controller?.dispose();
  controller = null;
});

describe('quantization choices and the cost decision (pure)', () => {
  it('gives each scheme memoryNeeded’s figures on the running backend, and refuses what the CPU cannot hold', async () => {
    const ckpt = await loadCheckpoint(dirSource(resolve(fixtures, 'mixtral_f32')));
    const held = weightBytesBySchemes(ckpt.weights);
    for (const kind of ['cpu', 'webgpu'] as const) {
      const choices = quantChoices(ckpt.spec, ckpt.weights, kind);
      expect(choices.map((c) => c.scheme)).toEqual(['none', 'q8', 'q4']);
      for (const c of choices) {
        expect(c.totalBytes).toBe(memoryNeeded(ckpt.spec, held.none, kind, c.scheme).total);
        expect(c.weightBytes).toBe(held[c.scheme]);
        expect(c.available).toBe(true);
      }
    }
    // f32 weights: q8 holds about 8.5/32 of them, q4 about 4.5/32 (routers stay as stored).
    expect(held.q8 / held.none).toBeGreaterThan(8.5 / 32);
    expect(held.q8).toBeLessThan(held.none * 0.3);
    expect(held.q4).toBeLessThan(held.q8);
    // A WebAssembly memory between the q4 and q8 sizes: only q4 fits, and the others say why.
    const limit = (held.q4 + held.q8) / 2;
    const tight = quantChoices(ckpt.spec, ckpt.weights, 'cpu', limit);
    expect(tight.map((c) => c.available)).toEqual([false, false, true]);
    expect(tight[1].why).toMatch(
      /At q8 the weights need .* more than the .* the CPU backend's WebAssembly memory can hold\./,
    );
  });

  it('measures only when a quantized model runs idle without a cost, and not after a cancel', () => {
    const model = { id: 'm', quantize: 'q4' as const };
    const base = { model, activity: 'idle', quantCost: null, quantMeasuring: null, quantCancelled: null };
    expect(costDecision(base)).toBe('measure');
    expect(costDecision({ ...base, model: { id: 'm', quantize: 'none' } })).toBe('wait');
    expect(costDecision({ ...base, activity: 'generating' })).toBe('wait');
    expect(costDecision({ ...base, quantMeasuring: { modelId: 'm', scheme: 'q4' } })).toBe('wait');
    expect(costDecision({ ...base, quantCancelled: 'm:q4' })).toBe('wait');
    expect(costDecision({ ...base, quantCost: { modelId: 'm', cost: { scheme: 'q4' } } })).toBe('wait');
    // A cost of another scheme does not count for this one.
    expect(costDecision({ ...base, quantCost: { modelId: 'm', cost: { scheme: 'q8' } } })).toBe('measure');
    const running = {
      id: 'm',
      quantize: 'none' as const,
      quantChoices: [
        { scheme: 'q4' as const, available: false, why: 'At q4 it does not fit.' },
        { scheme: 'q8' as const, available: true },
      ],
    };
    expect(refusalOf(running, 'q4')).toBe('At q4 it does not fit. m stays loaded at its stored precision.');
    expect(refusalOf(running, 'q8')).toBeNull();
  });

  it('says why the backend was chosen, from the adapter info and the measured speeds', () => {
    expect(
      adapterNature({ vendor: 'google', architecture: 'swiftshader', description: 'SwiftShader Device (Subzero)' }),
    ).toMatchObject({ software: true, evidence: 'swiftshader' });
    expect(adapterNature({ vendor: 'mesa', description: 'llvmpipe (LLVM 15.0.6, 256 bits)' }).software).toBe(true);
    expect(adapterNature({ vendor: 'nvidia', architecture: 'hopper' }, false)).toMatchObject({
      software: false,
      evidence: '',
    });
    expect(adapterNature({ vendor: 'x', isFallbackAdapter: true }).evidence).toBe('isFallbackAdapter');
    expect(adapterNature({ description: 'SwiftShader Device' }, true).evidence).toBe('SwiftShader, a fallback adapter');
    const sw = adapterNature({ architecture: 'swiftshader' });
    expect(describeRace(310, 100, sw)).toEqual({
      kind: 'cpu',
      reason:
        'CPU: 3.1x faster than WebGPU on this software adapter (swiftshader); measured 310 vs 100 tok/s decoding (CPU vs WebGPU)',
    });
    expect(describeRace(50, 200, sw).kind).toBe('webgpu');
    expect(describeRace(244, 0.32, sw).reason).toMatch(/762\.5x faster .* measured 244 vs 0\.3 tok\/s/);
  });

  it('writes the quantization into the share link once, and leaves it out at its default', () => {
    const state = parseShareFragment('v=1&model=moe-top2&quant=q4').state;
    expect(state.quant).toBe('q4');
    expect(formatShareFragment(state)).toContain('quant=q4');
    expect(formatShareFragment({ ...state, quant: 'none' })).not.toContain('quant');
    const bad = parseShareFragment('v=1&quant=q3');
    expect(bad.state.quant).toBe('none');
    expect(bad.notices.join(' ')).toMatch(/quantization/);
  });
});

describe('the quantization setting in the controller', () => {
  it('reloads at q8 keeping the text, and shows the cost the engine measures on the eval texts', async () => {
    const store = createPlaygroundStore();
    store.getState().setShare({ prompt: 'The experts', seed: 3, maxTokens: 6, temperature: 0.9 });
    controller = createController(store, testEnv('/fixtures/mixtral_f32'));
    controller.start({
      linkSetModel: false,
      createClient: () => new EngineClient(sessionPort((url) => resolve(fixtures, url.replace(/^\/fixtures\//, '')))),
    });
    await vi.waitFor(() => expect(store.getState().stage).toBe('ready'), { timeout: 30_000, interval: 20 });
    const before = store.getState().run!;
    expect(store.getState().model!.quantize).toBe('none');
    expect(store.getState().quantMeasuring).toBeNull();

    controller.quant.choose('q8');
    expect(store.getState().share.quant).toBe('q8');
    await vi.waitFor(() => expect(store.getState().model!.quantize).toBe('q8'), { timeout: 30_000, interval: 20 });
    await vi.waitFor(() => expect(store.getState().quantCost).not.toBeNull(), { timeout: 60_000, interval: 20 });
    // The text on screen is the same tokens, re-scored by the q8 weights.
    const after = store.getState().run!;
    expect(after.tokenIds).toEqual(before.tokenIds);
    expect(after.promptLength).toBe(before.promptLength);
    expect(after.logProbs).not.toEqual(before.logProbs);
    expect(store.getState().share.prompt).toBe('The experts');

    // The same measurement, run here on the engine directly: same texts, same token budget, same windows.
    const ckpt = await loadCheckpoint(dirSource(resolve(fixtures, 'mixtral_f32')));
    const tok = loadTokenizer(ckpt.tokenizerJson, ckpt.tokenizerConfigJson);
    const texts = Object.keys(evalFiles)
      .sort()
      .map((k) => evalFiles[k]);
    const window = Math.min(ckpt.spec.maxPositions, 256);
    const windows = texts.flatMap((t) => tokenWindows(tok.encode(t).slice(0, QUANT_COST_TOKENS), window));
    const reference = await createCpuBackend().load(ckpt.spec, ckpt.weights);
    const q8 = await createCpuBackend({ quantize: 'q8' }).load(ckpt.spec, ckpt.weights);
    const truth = await quantizationCost(reference, q8, 'q8', windows, NATIVE_PLAN);
    const shown = store.getState().quantCost!;
    expect(shown.modelId).toBe('/fixtures/mixtral_f32/');
    expect(shown.tokens).toBe(windows.reduce((n, w) => n + w.length, 0));
    expect(shown.cost.positions).toBe(truth.positions);
    expect(shown.cost.routingDecisions).toBe(truth.routingDecisions);
    expect(shown.cost.routingUnchanged).toBeCloseTo(truth.routingUnchanged!, 12);
    expect(shown.cost.top1Agreement).toBeCloseTo(truth.top1Agreement, 12);
    expect(shown.cost.meanKl).toBeCloseTo(truth.meanKl, 10);
    expect(shown.cost.deltaLoss).toBeCloseTo(truth.deltaLoss, 10);
    expect(truth.meanKl).toBeGreaterThan(0);

    // Back to the weights as stored: no cost line, the text still the same tokens.
    controller.quant.choose('none');
    await vi.waitFor(() => expect(store.getState().model!.quantize).toBe('none'), { timeout: 30_000, interval: 20 });
    await vi.waitFor(() => expect(store.getState().stage).toBe('ready'), { timeout: 30_000, interval: 20 });
    expect(store.getState().quantCost).toBeNull();
    expect(store.getState().run!.tokenIds).toEqual(before.tokenIds);
    expect(store.getState().run!.logProbs).toEqual(before.logProbs);
  });

  it('refuses a choice that cannot run with a sentence; a failed quantization keeps the model and the text', async () => {
    // A copy of the fixture with one huge (finite) weight in an expert matrix: it runs as stored, but no f16 scale can express it.
    const folder = mkdtempSync(join(tmpdir(), 'moe-huge-weight-'));
    try {
      cpSync(resolve(fixtures, 'mixtral_f32'), folder, { recursive: true });
      const file = join(folder, 'model.safetensors');
      const bytes = readFileSync(file);
      const headerLength = Number(bytes.readBigUInt64LE(0));
      const header = JSON.parse(bytes.subarray(8, 8 + headerLength).toString('utf8')) as Record<
        string,
        { dtype: string; shape: number[]; data_offsets: [number, number] }
      >;
      const name = Object.keys(header).find((k) => /experts\.0\.w1\.weight$/.test(k))!;
      expect(header[name].dtype).toBe('F32');
      bytes.writeFloatLE(1e9, 8 + headerLength + header[name].data_offsets[0]);
      writeFileSync(file, bytes);

      const store = createPlaygroundStore();
      store.getState().setShare({ prompt: 'The experts', seed: 3, maxTokens: 4, temperature: 0 });
      controller = createController(store, testEnv('/fixtures/inf'));
      controller.start({ linkSetModel: false, createClient: () => new EngineClient(sessionPort(() => folder)) });
      await vi.waitFor(() => expect(store.getState().stage).toBe('ready'), { timeout: 30_000, interval: 20 });
      const before = store.getState().run!;

      // The store says q4 cannot fit (as a small WebAssembly memory would): refused before anything loads.
      const model = store.getState().model!;
      store.setState({
        model: {
          ...model,
          quantChoices: model.quantChoices.map((c) =>
            c.scheme === 'q4' ? { ...c, available: false, why: 'At q4 the weights need 9 GB.' } : c,
          ),
        },
      });
      controller.quant.choose('q4');
      expect(store.getState().quantRefusal).toBe(
        'At q4 the weights need 9 GB. /fixtures/inf/ stays loaded at its stored precision.',
      );
      expect(store.getState().share.quant).toBe('none');
      expect(store.getState().activity).toBe('idle');

      // q8 is offered but fails in the engine: the sentence, the setting back at none, the model and text unchanged.
      controller.quant.choose('q8');
      await vi.waitFor(
        () =>
          expect(store.getState().quantRefusal).toMatch(
            /beyond what an f16 scale can express; these weights cannot be quantized\. \/fixtures\/inf\/ stays loaded at its stored precision\./,
          ),
        { timeout: 30_000, interval: 20 },
      );
      expect(store.getState().share.quant).toBe('none');
      expect(store.getState().model!.quantize).toBe('none');
      expect(store.getState().run!.tokenIds).toEqual(before.tokenIds);
      expect(store.getState().activity).toBe('idle');
      // The page stays usable: the model still generates.
      controller.engine.generate();
      await vi.waitFor(() => expect(store.getState().stage).toBe('ready'), { timeout: 30_000, interval: 20 });
    } finally {
      rmSync(folder, { recursive: true, force: true });
    }
  });
});
