// The engine session behind the page: owns the backend, the loaded model and the tokenizer, and
// answers protocol requests. It runs inside the Web Worker (engine.worker.ts) and, unchanged, in
// Node tests. GPU objects live here and never cross into React state.
import {
  adapterNature,
  chooseBackend,
  describeRace,
  measureDecode,
  probeAdapter,
  type AdapterNature,
} from '../engine/backends/select.ts';
import { createCpuBackend } from '../engine/backends/cpu/index.ts';
import { WASM_MAX_BYTES } from '../engine/backends/cpu/wasm/heap.ts';
import { formatGiB, weightBytesBySchemes } from '../engine/format/quant.ts';
import { quantizationCost, tokenWindows, type QuantCost } from '../engine/quant/cost.ts';
import { memoryNeeded } from '../engine/source/memory.ts';
import type { WebGpuBackend } from '../engine/backends/webgpu/index.ts';
import { loadCheckpoint, urlSource, countParameters } from '../engine/format/index.ts';
import { loadTokenizer, type TextTokenizer } from '../engine/tokenizer.ts';
import { formatPlanText, NATIVE_PLAN, validateRoutingPlan } from '../engine/routing/index.ts';
import { generate as generateTokens, klDivergence, logSoftmax, scoreTokens } from '../engine/run/index.ts';
import { upcycle } from '../engine/upcycle/index.ts';
import type {
  Backend,
  BackendKind,
  CheckpointSource,
  LoadedModel,
  ModelSpec,
  QuantScheme,
  RoutingPlan,
  WeightSet,
} from '../engine/types.ts';
import type { Checkpoint } from '../engine/format/index.ts';
import type { LoadOptions } from '../engine/format/load.ts';
import type {
  BackendPreference,
  BackendStatus,
  QuantChoice,
  TokenChoice,
  WorkerRequest,
  WorkerResponse,
} from './protocol.ts';
import { LensJobs } from './lensJobs.ts';

type Post = (message: WorkerResponse) => void;

function describe(error: unknown): { message: string; hint?: string } {
  if (error instanceof Error) {
    const hint = (error as Error & { hint?: unknown }).hint;
    return { message: error.message, hint: typeof hint === 'string' ? hint : undefined };
  }
  return { message: String(error) };
}

function userError(message: string, hint: string): Error {
  return Object.assign(new Error(message), { hint });
}

export function topChoices(logits: Float32Array, tok: TextTokenizer, n = 5): TokenChoice[] {
  const logProbs = logSoftmax(logits);
  const ids = Array.from(logProbs.keys())
    .sort((a, b) => logProbs[b] - logProbs[a] || a - b)
    .slice(0, n);
  return ids.map((id) => ({ id, text: tok.decodeToken(id), probability: Math.exp(logProbs[id]) }));
}

function megabytes(bytes: number): string {
  return (bytes / 1e6).toFixed(bytes < 1e7 ? 1 : 0);
}

/**
 * Progress of a checkpoint download as the page shows it: bytes of the file being read, mapped onto
 * [from, to] of the bar (the weights dominate; small JSON files pass quickly). Posts at most ~100 times per file.
 */
function downloadProgress(post: Post, requestId: number, from: number, to: number, what: string): LoadOptions {
  let lastShown = -1;
  let lastFile = '';
  return {
    onProgress: ({ file, received, total }) => {
      const share = total ? Math.min(received / total, 1) : 0;
      // A percent step, or (size unknown) every half megabyte.
      const step = total ? Math.floor(share * 100) : Math.floor(received / 500_000);
      if (file === lastFile && step === lastShown && received !== total) return;
      lastShown = step;
      lastFile = file;
      const size = total ? `${megabytes(received)} of ${megabytes(total)} MB` : `${megabytes(received)} MB`;
      post({
        type: 'progress',
        requestId,
        stage: `downloading ${what}: ${file}, ${size}`,
        fraction: from + (to - from) * share,
        received,
        total,
      });
    },
  };
}

/** FNV-1a (32-bit, twice with two seeds) of the tokenizer files' JSON: equal files give equal ids. */
export function tokenizerFingerprint(tokenizerJson: unknown, tokenizerConfigJson: unknown): string {
  const text = JSON.stringify([tokenizerJson ?? null, tokenizerConfigJson ?? null]);
  let a = 0x811c9dc5;
  let b = 0x01000193 ^ text.length;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x5bd1e995);
  }
  return `${(a >>> 0).toString(16).padStart(8, '0')}${(b >>> 0).toString(16).padStart(8, '0')}:${text.length}`;
}

/** Let queued messages (a cancel, a newer request) in between decode steps. */
function yieldToEvents(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

/** The quantization schemes each backend offers (both read packed Q8/Q4 today; a backend without one is refused by name). */
export const BACKEND_SCHEMES: Record<BackendKind, readonly QuantScheme[]> = {
  cpu: ['none', 'q8', 'q4'],
  webgpu: ['none', 'q8', 'q4'],
};

/** Room the CPU backend keeps in its 4 GiB WebAssembly memory for scratch (as in backends/cpu). */
const CPU_SCRATCH = 64 * 2 ** 20;

const BACKEND_NAME: Record<BackendKind, string> = { cpu: 'CPU', webgpu: 'WebGPU' };

/** Each scheme's memory on `kind` for these weights (memoryNeeded), and whether the backend can run it. */
export function quantChoices(
  spec: ModelSpec,
  weights: WeightSet,
  kind: BackendKind,
  wasmLimit = WASM_MAX_BYTES - CPU_SCRATCH,
): QuantChoice[] {
  const held = weightBytesBySchemes(weights);
  return (['none', 'q8', 'q4'] as const).map((scheme) => {
    const need = memoryNeeded(spec, held.none, kind, scheme);
    const choice: QuantChoice = { scheme, weightBytes: held[scheme], totalBytes: need.total, available: true };
    if (!BACKEND_SCHEMES[kind].includes(scheme)) {
      return { ...choice, available: false, why: `The ${BACKEND_NAME[kind]} backend cannot run ${scheme} weights.` };
    }
    if (kind === 'cpu' && held[scheme] > wasmLimit) {
      return {
        ...choice,
        available: false,
        why: `At ${scheme} the weights need ${formatGiB(held[scheme])}, more than the ${formatGiB(wasmLimit)} the CPU backend's WebAssembly memory can hold.`,
      };
    }
    return choice;
  });
}

export class EngineSession {
  private backend: Backend | null = null;
  /** Which backend runs the models, and the quantization of the one loaded. */
  private kind: BackendKind = 'cpu';
  private quantize: QuantScheme = 'none';
  /** The WebGPU device, when the platform has one (kept even while the CPU runs, for a later measurement). */
  private gpu: WebGpuBackend | null = null;
  private readonly backends = new Map<string, Backend>();
  /** A software (or unknown) adapter: measure both backends at the first load. */
  private raceAtLoad = false;
  private adapter: AdapterNature | null = null;
  /** The checkpoint of the loaded model, as stored (quantization costs are measured against it; a new scheme re-quantizes it). */
  private checkpoint: { baseUrl: string; modelId: string; checkpoint: Checkpoint; tokenizerId: string } | null = null;
  private model: LoadedModel | null = null;
  private tokenizer: TextTokenizer | null = null;
  /** The last scoring, kept so a re-score under another routing mode can report KL against it. */
  private lastScore: { tokenKey: string; routing: RoutingPlan; logits: Float32Array[] } | null = null;
  /** The generation or scoring that runs now; a newer one aborts it and waits for it to finish. */
  private current: { abort: AbortController; done: Promise<void> } | null = null;

  /** The Lenses view's jobs: their own models on this session's backend, once `init` has chosen it. */
  private backendChosen: (backend: Backend) => void = () => undefined;
  private readonly backendReady = new Promise<Backend>((resolve) => (this.backendChosen = resolve));
  private readonly lenses = new LensJobs(
    (m) => this.post(m),
    () => this.backendReady,
    (baseUrl) => this.sourceFor(baseUrl),
  );

  /** `sourceFor` turns a load request's baseUrl into files (fetch in the browser; a folder in tests). */
  constructor(
    private readonly post: Post,
    private readonly sourceFor: (baseUrl: string) => CheckpointSource = (baseUrl) => urlSource(baseUrl),
  ) {}

  /** Handles one request; errors become `error` messages. Resolves when the request is accepted (generation runs on). */
  async handle(request: WorkerRequest): Promise<void> {
    try {
      await this.dispatch(request);
    } catch (error) {
      this.post({
        type: 'error',
        requestId: 'requestId' in request ? request.requestId : undefined,
        ...describe(error),
      });
    }
  }

  /** Resolves when the running generation or scoring has finished. */
  async idle(): Promise<void> {
    while (this.current) await this.current.done;
  }

  /** Resolves when no lens job runs. */
  lensesIdle(): Promise<void> {
    return this.lenses.idle();
  }

  private async dispatch(request: WorkerRequest): Promise<void> {
    switch (request.type) {
      case 'init':
        return this.init(request.preferBackend);
      case 'load':
        return this.load(request);
      case 'upcycle':
        return this.upcycleAndLoad(request);
      case 'generate':
        this.runExclusive(request.requestId, (signal) => this.generate(request, signal));
        return;
      case 'score':
        this.runExclusive(request.requestId, (signal) => this.score(request, signal));
        return;
      case 'quantcost':
        this.runExclusive(request.requestId, (signal) => this.measureQuantCost(request, signal));
        return;
      case 'cancel':
        this.current?.abort.abort();
        return;
      case 'lens':
      case 'lensCancel':
        this.lenses.handle(request);
        return;
    }
  }

  /** The backend of `kind` whose models run at `scheme` (one per scheme; WebGPU ones share one device). */
  private backendFor(kind: BackendKind, scheme: QuantScheme): Backend {
    const key = `${kind}:${scheme}`;
    let backend = this.backends.get(key);
    if (backend) return backend;
    if (kind === 'cpu') backend = createCpuBackend({ quantize: scheme });
    else {
      const gpu = this.gpu;
      if (!gpu) throw userError('The WebGPU backend is not available here.', 'Use the CPU engine.');
      backend =
        scheme === 'none'
          ? gpu
          : new (gpu.constructor as typeof WebGpuBackend)(
              gpu.ctx,
              `${gpu.description}, weights quantized to ${scheme}`,
              scheme,
            );
    }
    this.backends.set(key, backend);
    return backend;
  }

  private status: BackendStatus | null = null;

  private postBackend(status: BackendStatus): void {
    this.status = status;
    this.post({ type: 'backend', status });
  }

  private runOn(kind: BackendKind, status: Omit<BackendStatus, 'kind' | 'description'>): void {
    this.kind = kind;
    this.backend = this.backendFor(kind, 'none');
    this.backendChosen(this.backend);
    this.postBackend({
      kind,
      description: this.backend.description,
      softwareAdapter: this.adapter?.software,
      ...status,
    });
  }

  /**
   * Picks the backend. Forced (`?backend=`, the engine menu) runs what was asked; otherwise a hardware
   * adapter runs WebGPU, and a software or unknown one is measured against the CPU at the first load.
   */
  private async init(preference: BackendPreference): Promise<void> {
    if (preference === 'cpu') {
      this.runOn('cpu', { reason: 'CPU: chosen in the engine menu (?backend=cpu)', chosenBy: 'forced' });
      return;
    }
    const choice = await chooseBackend('webgpu');
    if (choice.backend.kind === 'cpu') {
      this.runOn('cpu', {
        fallbackReason: choice.fallbackReason,
        reason: `CPU: ${choice.fallbackReason}`,
        chosenBy: 'fallback',
      });
      return;
    }
    this.gpu = choice.backend as WebGpuBackend;
    this.backends.set('webgpu:none', this.gpu);
    this.adapter = (await probeAdapter()) ?? adapterNature({ description: this.gpu.description });
    if (preference === 'webgpu') {
      this.runOn('webgpu', {
        reason: `WebGPU: chosen in the engine menu (?backend=webgpu)${this.adapter.software ? `, on a software adapter (${this.adapter.evidence})` : ''}`,
        chosenBy: 'forced',
      });
    } else if (this.adapter.software) {
      this.raceAtLoad = true;
      this.runOn('webgpu', {
        reason: `WebGPU for now: this adapter runs on the CPU (${this.adapter.evidence}); both backends are measured at the first load`,
        chosenBy: 'adapter',
      });
    } else {
      this.runOn('webgpu', { reason: `WebGPU: a hardware GPU adapter (${this.adapter.name})`, chosenBy: 'adapter' });
    }
  }

  /** Loads the model on both backends, decodes a few steps on each, and keeps the faster one. */
  private async race(
    requestId: number,
    checkpoint: Checkpoint,
    scheme: QuantScheme,
    tok: TextTokenizer,
  ): Promise<void> {
    const adapter = this.adapter ?? adapterNature({});
    this.post({
      type: 'progress',
      requestId,
      stage: 'measuring a few decode steps on the CPU and on WebGPU, to pick the faster',
      fraction: 0.6,
    });
    const prompt = tok.encode('The experts of this model');
    if (prompt.length === 0) prompt.push(0);
    const speeds: Partial<Record<BackendKind, number>> = {};
    for (const kind of ['cpu', 'webgpu'] as const) {
      let model: LoadedModel | null = null;
      try {
        model = await this.backendFor(kind, scheme).load(checkpoint.spec, checkpoint.weights);
        speeds[kind] = await measureDecode(model, prompt.slice(0, Math.max(1, checkpoint.spec.maxPositions - 40)));
      } catch (error) {
        speeds[kind] = 0;
        if (kind === 'webgpu') {
          this.runOn('cpu', {
            reason: `CPU: the WebGPU backend failed while measuring (${describe(error).message})`,
            chosenBy: 'fallback',
            fallbackReason: describe(error).message,
          });
          return;
        }
      } finally {
        model?.dispose();
      }
    }
    const cpu = speeds.cpu ?? 0;
    const webgpu = speeds.webgpu ?? 0;
    const verdict = describeRace(cpu, webgpu, adapter);
    this.runOn(verdict.kind, { reason: verdict.reason, chosenBy: 'measured', measured: { cpu, webgpu } });
  }

  private requireModel(): { model: LoadedModel; tokenizer: TextTokenizer } {
    if (!this.model || !this.tokenizer)
      throw userError('No model is loaded yet.', 'Wait for the model to finish loading, or pick one.');
    return { model: this.model, tokenizer: this.tokenizer };
  }

  /** Counts load requests: a load that a newer one overtook while it read its files is not installed. */
  private loadCount = 0;

  private async load(request: Extract<WorkerRequest, { type: 'load' }>): Promise<void> {
    if (!this.backend) throw new Error('The engine is not started yet.');
    const scheme = request.quantize ?? 'none';
    const mine = ++this.loadCount;
    this.current?.abort.abort();
    await this.idle();
    // The same checkpoint again (another quantization): re-quantize what is in memory, download nothing.
    const kept = this.checkpoint?.baseUrl === request.baseUrl ? this.checkpoint.checkpoint : null;
    let checkpoint: Checkpoint;
    if (kept) checkpoint = kept;
    else {
      this.post({ type: 'progress', requestId: request.requestId, stage: 'downloading the model', fraction: 0 });
      checkpoint = await loadCheckpoint(
        this.sourceFor(request.baseUrl),
        downloadProgress(this.post, request.requestId, 0, 0.6, 'the model'),
      );
    }
    const loadedTokenizer = loadTokenizer(
      checkpoint.tokenizerJson,
      checkpoint.tokenizerConfigJson,
      checkpoint.generationConfigJson,
    );
    if (this.raceAtLoad) {
      this.raceAtLoad = false;
      await this.race(request.requestId, checkpoint, scheme, loadedTokenizer);
    }
    const choice = quantChoices(checkpoint.spec, checkpoint.weights, this.kind).find((c) => c.scheme === scheme);
    if (choice && !choice.available) {
      throw userError(
        `${choice.why ?? `${scheme} cannot run here.`}`,
        'Pick another quantization, or the other engine in the engine menu.',
      );
    }
    const backend = this.backendFor(this.kind, scheme);
    this.post({
      type: 'progress',
      requestId: request.requestId,
      stage: `${scheme === 'none' ? 'uploading weights' : `quantizing the weights to ${scheme}`} on the ${this.kind === 'webgpu' ? 'GPU' : 'CPU engine'}`,
      fraction: 0.6,
    });
    if (mine !== this.loadCount) {
      // A newer load (another model picked, a download finished) started meanwhile: it decides what runs.
      this.post({ type: 'cancelled', requestId: request.requestId });
      return;
    }
    const loaded = await backend.load(checkpoint.spec, checkpoint.weights);
    if (mine !== this.loadCount) {
      loaded.dispose();
      this.post({ type: 'cancelled', requestId: request.requestId });
      return;
    }
    const tokenizerId = tokenizerFingerprint(checkpoint.tokenizerJson, checkpoint.tokenizerConfigJson);
    this.checkpoint = { baseUrl: request.baseUrl, modelId: request.modelId, checkpoint, tokenizerId };
    this.quantize = scheme;
    // The badge names the weights the engine now runs with (as stored, or quantized).
    if (this.status && this.status.description !== backend.description)
      this.postBackend({ ...this.status, description: backend.description });
    this.install(request.requestId, request.modelId, checkpoint.spec, loaded, loadedTokenizer, tokenizerId);
  }

  /** Quantization cost of the running model against its checkpoint as stored, window by window (progress; a newer request cancels). */
  private async measureQuantCost(
    request: Extract<WorkerRequest, { type: 'quantcost' }>,
    signal: AbortSignal,
  ): Promise<void> {
    const { model, tokenizer: tok } = this.requireModel();
    const kept = this.checkpoint;
    if (this.quantize === 'none' || !kept)
      throw userError(
        'The model runs with its weights as stored: there is no quantization to measure.',
        'Pick q8 or q4 first.',
      );
    const window = Math.min(model.spec.maxPositions, 256);
    const windows = request.texts.flatMap((text) => tokenWindows(tok.encode(text).slice(0, request.maxTokens), window));
    if (windows.length === 0)
      throw userError('The eval texts encode to fewer than two tokens.', 'Check that public/eval holds the texts.');
    const tokens = windows.reduce((n, w) => n + w.length, 0);
    const scheme = this.quantize;
    const modelId = kept.modelId;
    const reference = await this.backendFor(this.kind, 'none').load(kept.checkpoint.spec, kept.checkpoint.weights);
    try {
      let cost: QuantCost;
      try {
        cost = await quantizationCost(reference, model, scheme, windows, NATIVE_PLAN, {
          signal,
          onWindow: (done, total) => {
            this.post({
              type: 'progress',
              requestId: request.requestId,
              stage: `measuring what ${scheme} costs on the eval texts`,
              fraction: done / total,
            });
            return yieldToEvents();
          },
        });
      } catch (error) {
        if (signal.aborted) return;
        throw error;
      }
      if (signal.aborted) return;
      this.post({
        type: 'quantcost',
        requestId: request.requestId,
        modelId,
        cost,
        tokens,
        texts: request.texts.length,
        window,
      });
    } finally {
      reference.dispose();
    }
  }

  /** The parent checkpoint of the last upcycling, kept so trying another recipe does not download it again. */
  private parent: { baseUrl: string; checkpoint: Checkpoint } | null = null;

  private async upcycleAndLoad(request: Extract<WorkerRequest, { type: 'upcycle' }>): Promise<void> {
    const backend = this.backend;
    if (!backend) throw new Error('The engine is not started yet.');
    this.loadCount++; // an older plain load still reading its files must not install over this one
    this.current?.abort.abort();
    await this.idle();
    this.raceAtLoad = false;
    this.post({ type: 'progress', requestId: request.requestId, stage: 'downloading the dense parent', fraction: 0 });
    const parentCheckpoint =
      this.parent?.baseUrl === request.baseUrl
        ? this.parent.checkpoint
        : await loadCheckpoint(
            this.sourceFor(request.baseUrl),
            downloadProgress(this.post, request.requestId, 0, 0.3, 'the dense parent'),
          );
    this.parent = { baseUrl: request.baseUrl, checkpoint: parentCheckpoint };
    const { recipe } = request;
    this.post({
      type: 'progress',
      requestId: request.requestId,
      stage: `upcycling into ${recipe.experts} experts`,
      fraction: 0.3,
    });
    const child = upcycle(parentCheckpoint.spec, parentCheckpoint.weights, {
      experts: recipe.experts,
      granularity: recipe.granularity,
      topK: recipe.topK,
      router: { kind: 'random', seed: recipe.seed },
      seed: recipe.seed,
      drop: recipe.drop ?? 0,
      from: request.modelId,
    });
    const tok = loadTokenizer(
      parentCheckpoint.tokenizerJson,
      parentCheckpoint.tokenizerConfigJson,
      parentCheckpoint.generationConfigJson,
    );
    this.post({
      type: 'progress',
      requestId: request.requestId,
      stage: 'running parent and child on the same prompt',
      fraction: 0.5,
    });
    const parentModel = await backend.load(parentCheckpoint.spec, parentCheckpoint.weights);
    let childModel: LoadedModel | null = null;
    try {
      childModel = await backend.load(child.spec, child.weights);
      const promptIds = tok.encode(request.proof.prompt);
      if (promptIds.length === 0) throw userError('The prompt is empty.', 'Type a few words to start from.');
      const native = NATIVE_PLAN;
      const options = { ...request.proof.sampling, routing: native, stopTokens: tok.stopIds };
      const parentRun = await generateTokens(parentModel, promptIds, options);
      const childRun = await generateTokens(childModel, promptIds, options);
      const parentScore = await scoreTokens(parentModel, promptIds, native);
      const childScore = await scoreTokens(childModel, promptIds, native);
      let maxLogitDifference = 0;
      parentScore.logits.forEach((row, t) =>
        row.forEach(
          (v, i) => (maxLogitDifference = Math.max(maxLogitDifference, Math.abs(v - childScore.logits[t][i]))),
        ),
      );
      this.post({
        type: 'upcycled',
        requestId: request.requestId,
        recipe,
        parentId: request.modelId,
        parentText: tok.decode(parentRun.tokens),
        childText: tok.decode(childRun.tokens),
        parentTokenIds: parentRun.tokens,
        childTokenIds: childRun.tokens,
        maxLogitDifference,
        renormalised: child.spec.moe?.normTopkProb ?? false,
      });
    } catch (error) {
      childModel?.dispose();
      throw error;
    } finally {
      parentModel.dispose();
    }
    const dropTag = recipe.drop ? `d${Math.round(recipe.drop * 100)}` : '';
    const id = `${request.modelId}+up${recipe.experts}x${recipe.granularity}k${recipe.topK}s${recipe.seed}${dropTag}`;
    this.checkpoint = null;
    this.quantize = 'none';
    this.install(
      request.requestId,
      id,
      child.spec,
      childModel,
      tok,
      tokenizerFingerprint(parentCheckpoint.tokenizerJson, parentCheckpoint.tokenizerConfigJson),
    );
  }

  /** Makes a loaded model the current one. Only replaces the old model once the new one is ready: a failed load keeps what was there. */
  private install(
    requestId: number,
    modelId: string,
    spec: ModelSpec,
    loaded: LoadedModel,
    loadedTokenizer: TextTokenizer,
    tokenizerId: string,
  ): void {
    this.model?.dispose();
    this.model = loaded;
    this.tokenizer = loadedTokenizer;
    this.lastScore = null;
    const parameters = countParameters(spec);
    this.post({
      type: 'loaded',
      requestId,
      model: {
        id: modelId,
        architecture: spec.architecture,
        numLayers: spec.numLayers,
        numExperts: spec.moe?.numExperts ?? 0,
        topK: spec.moe?.topK ?? 0,
        moeLayers: spec.moe ? spec.moe.moeLayers.flatMap((isMoe, i) => (isMoe ? [i] : [])) : [],
        parametersTotal: parameters.total,
        parametersActiveNative: parameters.activeFor({ kind: 'native' }),
        parametersNonExpert: parameters.nonExpert,
        parametersPerExpert: parameters.perExpert,
        dtype: spec.dtype,
        maxPositions: spec.maxPositions,
        vocabSize: spec.vocabSize,
        tokenizerId,
        quantize: this.quantize,
        quantChoices:
          this.checkpoint && this.checkpoint.modelId === modelId
            ? quantChoices(spec, this.checkpoint.checkpoint.weights, this.kind)
            : [],
      },
    });
  }

  /** Runs `work` after aborting and awaiting whatever ran before, so the model only ever serves one request. */
  private runExclusive(requestId: number, work: (signal: AbortSignal) => Promise<void>): void {
    const previous = this.current;
    previous?.abort.abort();
    const abort = new AbortController();
    const entry: { abort: AbortController; done: Promise<void> } = { abort, done: Promise.resolve() };
    entry.done = (async () => {
      await previous?.done;
      try {
        if (!abort.signal.aborted) await work(abort.signal);
        if (abort.signal.aborted) this.post({ type: 'cancelled', requestId });
      } catch (error) {
        this.post({ type: 'error', requestId, ...describe(error) });
        if (error instanceof Error && error.name === 'WebGpuDeviceLostError')
          await this.recoverOnCpu(requestId, error.message);
      } finally {
        if (this.current === entry) this.current = null;
      }
    })();
    this.current = entry;
  }

  /** The GPU device was lost: the same model, at the same quantization, comes back on the CPU backend. */
  private async recoverOnCpu(requestId: number, why: string): Promise<void> {
    this.gpu = null;
    for (const key of [...this.backends.keys()]) if (key.startsWith('webgpu')) this.backends.delete(key);
    this.runOn('cpu', {
      reason: `CPU: the GPU device was lost (${why})`,
      chosenBy: 'fallback',
      fallbackReason: `the GPU device was lost (${why})`,
    });
    const kept = this.checkpoint;
    if (!kept) return;
    try {
      const loaded = await this.backendFor('cpu', this.quantize).load(kept.checkpoint.spec, kept.checkpoint.weights);
      this.install(
        requestId,
        kept.modelId,
        kept.checkpoint.spec,
        loaded,
        loadTokenizer(
          kept.checkpoint.tokenizerJson,
          kept.checkpoint.tokenizerConfigJson,
          kept.checkpoint.generationConfigJson,
        ),
        kept.tokenizerId,
      );
    } catch (error) {
      this.post({ type: 'error', requestId, ...describe(error) });
    }
  }

  private async generate(request: Extract<WorkerRequest, { type: 'generate' }>, signal: AbortSignal): Promise<void> {
    const { model, tokenizer: tok } = this.requireModel();
    const plan = request.routing;
    validateRoutingPlan(plan, model.spec);
    const promptIds = tok.encode(request.prompt);
    if (promptIds.length === 0) throw userError('The prompt is empty.', 'Type a few words to start from.');
    this.lastScore = null;
    // Every position's next-token logits, so a re-score under another mode can report KL against this run.
    const rows: Float32Array[] = [];
    let started = 0;
    // The same generate() as `moe generate`: one rng stream seeded once, one draw per token, so the
    // same seed and settings give the same tokens in the page and on the command line.
    const result = await generateTokens(
      model,
      promptIds,
      {
        ...request.sampling,
        routing: plan,
        stopTokens: tok.stopIds,
        signal,
        onPrefill: (prefill) => {
          rows.push(...prefill.logits);
          this.post({
            type: 'prompt',
            requestId: request.requestId,
            tokenIds: promptIds,
            tokenTexts: promptIds.map((id) => tok.decodeToken(id)),
            trace: prefill.trace,
            logProbs: prefill.logProbs,
            top: prefill.logits.map((row) => topChoices(row, tok)),
          });
          started = performance.now();
          // Let a cancel or a newer request in before the first token.
          return yieldToEvents();
        },
      },
      (token) => {
        rows.push(token.nextLogits);
        this.post({
          type: 'token',
          requestId: request.requestId,
          id: token.id,
          text: tok.decodeToken(token.id),
          position: token.position,
          logProb: logSoftmax(token.logits)[token.id],
          routing: token.routing,
          drawnFrom: topChoices(token.logits, tok),
        });
        return yieldToEvents();
      },
    );
    const seconds = (performance.now() - started) / 1000;
    const count = result.generated.length;
    this.lastScore = { tokenKey: result.tokens.join(','), routing: request.routing, logits: rows };
    this.post({
      type: 'generated',
      requestId: request.requestId,
      stopReason: result.stopReason,
      count,
      tokensPerSecond: count > 0 && seconds > 0 ? count / seconds : 0,
      nextTop: topChoices(rows[rows.length - 1], tok),
    });
  }

  private async score(request: Extract<WorkerRequest, { type: 'score' }>, signal: AbortSignal): Promise<void> {
    const { model, tokenizer: tok } = this.requireModel();
    const plan = request.routing;
    validateRoutingPlan(plan, model.spec);
    const ids = (request.text !== undefined ? tok.encode(request.text) : request.tokenIds).slice(
      0,
      model.spec.maxPositions,
    );
    const started = performance.now();
    const result = await scoreTokens(model, ids, plan);
    const seconds = (performance.now() - started) / 1000;
    if (signal.aborted) return;
    const tokenKey = ids.join(',');
    const last = this.lastScore;
    const previous =
      last && last.tokenKey === tokenKey && formatPlanText(last.routing) !== formatPlanText(plan) ? last : null;
    const klVsPrevious = previous ? result.logits.map((row, i) => klDivergence(previous.logits[i], row)) : null;
    this.lastScore = { tokenKey, routing: request.routing, logits: result.logits };
    this.post({
      type: 'scored',
      requestId: request.requestId,
      routing: request.routing,
      tokenIds: ids,
      tokenTexts: ids.map((id) => tok.decodeToken(id)),
      trace: result.trace,
      logProbs: result.logProbs,
      top: result.logits.map((row) => topChoices(row, tok)),
      klVsPrevious,
      previousRouting: previous?.routing ?? null,
      meanLoss: result.meanLoss,
      tokensPerSecond: seconds > 0 ? ids.length / seconds : 0,
    });
  }
}
