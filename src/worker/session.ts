// The engine session behind the page: owns the backend, the loaded model and the tokenizer, and
// answers protocol requests. It runs inside the Web Worker (engine.worker.ts) and, unchanged, in
// Node tests. GPU objects live here and never cross into React state.
import { chooseBackend } from '../engine/backends/select.ts';
import { loadCheckpoint, urlSource, countParameters } from '../engine/format/index.ts';
import { loadTokenizer, type TextTokenizer } from '../engine/tokenizer.ts';
import { formatPlanText, NATIVE_PLAN, validateRoutingPlan } from '../engine/routing/index.ts';
import { generate as generateTokens, klDivergence, logSoftmax, scoreTokens } from '../engine/run/index.ts';
import { upcycle } from '../engine/upcycle/index.ts';
import type { Backend, CheckpointSource, LoadedModel, ModelSpec, RoutingPlan } from '../engine/types.ts';
import type { Checkpoint } from '../engine/format/index.ts';
import type { LoadOptions } from '../engine/format/load.ts';
import type { TokenChoice, WorkerRequest, WorkerResponse } from './protocol.ts';
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
      post({ type: 'progress', requestId, stage: `downloading ${what}: ${file}, ${size}`, fraction: from + (to - from) * share, received, total });
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

export class EngineSession {
  private backend: Backend | null = null;
  private model: LoadedModel | null = null;
  private tokenizer: TextTokenizer | null = null;
  /** The last scoring, kept so a re-score under another routing mode can report KL against it. */
  private lastScore: { tokenKey: string; routing: RoutingPlan; logits: Float32Array[] } | null = null;
  /** The generation or scoring that runs now; a newer one aborts it and waits for it to finish. */
  private current: { abort: AbortController; done: Promise<void> } | null = null;

  /** The Lenses view's jobs: their own models on this session's backend, once `init` has chosen it. */
  private backendChosen: (backend: Backend) => void = () => undefined;
  private readonly backendReady = new Promise<Backend>((resolve) => (this.backendChosen = resolve));
  private readonly lenses = new LensJobs((m) => this.post(m), () => this.backendReady, (baseUrl) => this.sourceFor(baseUrl));

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
      this.post({ type: 'error', requestId: 'requestId' in request ? request.requestId : undefined, ...describe(error) });
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
      case 'init': {
        const choice = await chooseBackend(request.preferBackend);
        this.backend = choice.backend;
        this.backendChosen(choice.backend);
        this.post({
          type: 'backend',
          status: { kind: this.backend.kind, description: this.backend.description, fallbackReason: choice.fallbackReason },
        });
        return;
      }
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
      case 'cancel':
        this.current?.abort.abort();
        return;
      case 'lens':
      case 'lensCancel':
        this.lenses.handle(request);
        return;
    }
  }

  private requireModel(): { model: LoadedModel; tokenizer: TextTokenizer } {
    if (!this.model || !this.tokenizer) throw userError('No model is loaded yet.', 'Wait for the model to finish loading, or pick one.');
    return { model: this.model, tokenizer: this.tokenizer };
  }

  /** Counts load requests: a load that a newer one overtook while it read its files is not installed. */
  private loadCount = 0;

  private async load(request: Extract<WorkerRequest, { type: 'load' }>): Promise<void> {
    const backend = this.backend;
    if (!backend) throw new Error('The engine is not started yet.');
    const mine = ++this.loadCount;
    this.current?.abort.abort();
    await this.idle();
    this.post({ type: 'progress', requestId: request.requestId, stage: 'downloading the model', fraction: 0 });
    const checkpoint = await loadCheckpoint(this.sourceFor(request.baseUrl), downloadProgress(this.post, request.requestId, 0, 0.6, 'the model'));
    this.post({ type: 'progress', requestId: request.requestId, stage: `uploading weights to the ${backend.kind === 'webgpu' ? 'GPU' : 'CPU engine'}`, fraction: 0.6 });
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
    const loadedTokenizer = loadTokenizer(checkpoint.tokenizerJson, checkpoint.tokenizerConfigJson);
    this.install(request.requestId, request.modelId, checkpoint.spec, loaded, loadedTokenizer, tokenizerFingerprint(checkpoint.tokenizerJson, checkpoint.tokenizerConfigJson));
  }

  /** The parent checkpoint of the last upcycling, kept so trying another recipe does not download it again. */
  private parent: { baseUrl: string; checkpoint: Checkpoint } | null = null;

  private async upcycleAndLoad(request: Extract<WorkerRequest, { type: 'upcycle' }>): Promise<void> {
    const backend = this.backend;
    if (!backend) throw new Error('The engine is not started yet.');
    this.loadCount++; // an older plain load still reading its files must not install over this one
    this.current?.abort.abort();
    await this.idle();
    this.post({ type: 'progress', requestId: request.requestId, stage: 'downloading the dense parent', fraction: 0 });
    const parentCheckpoint = this.parent?.baseUrl === request.baseUrl
      ? this.parent.checkpoint
      : await loadCheckpoint(this.sourceFor(request.baseUrl), downloadProgress(this.post, request.requestId, 0, 0.3, 'the dense parent'));
    this.parent = { baseUrl: request.baseUrl, checkpoint: parentCheckpoint };
    const { recipe } = request;
    this.post({ type: 'progress', requestId: request.requestId, stage: `upcycling into ${recipe.experts} experts`, fraction: 0.3 });
    const child = upcycle(parentCheckpoint.spec, parentCheckpoint.weights, {
      experts: recipe.experts,
      granularity: recipe.granularity,
      topK: recipe.topK,
      router: { kind: 'random', seed: recipe.seed },
      seed: recipe.seed,
      drop: recipe.drop ?? 0,
      from: request.modelId,
    });
    const tok = loadTokenizer(parentCheckpoint.tokenizerJson, parentCheckpoint.tokenizerConfigJson);
    this.post({ type: 'progress', requestId: request.requestId, stage: 'running parent and child on the same prompt', fraction: 0.5 });
    const parentModel = await backend.load(parentCheckpoint.spec, parentCheckpoint.weights);
    let childModel: LoadedModel | null = null;
    try {
      childModel = await backend.load(child.spec, child.weights);
      const promptIds = tok.encode(request.proof.prompt);
      if (promptIds.length === 0) throw userError('The prompt is empty.', 'Type a few words to start from.');
      const native = NATIVE_PLAN;
      const options = { ...request.proof.sampling, routing: native, stopTokens: tok.eosId === undefined ? [] : [tok.eosId] };
      const parentRun = await generateTokens(parentModel, promptIds, options);
      const childRun = await generateTokens(childModel, promptIds, options);
      const parentScore = await scoreTokens(parentModel, promptIds, native);
      const childScore = await scoreTokens(childModel, promptIds, native);
      let maxLogitDifference = 0;
      parentScore.logits.forEach((row, t) => row.forEach((v, i) => (maxLogitDifference = Math.max(maxLogitDifference, Math.abs(v - childScore.logits[t][i])))));
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
    this.install(request.requestId, id, child.spec, childModel, tok, tokenizerFingerprint(parentCheckpoint.tokenizerJson, parentCheckpoint.tokenizerConfigJson));
  }

  /** Makes a loaded model the current one. Only replaces the old model once the new one is ready: a failed load keeps what was there. */
  private install(requestId: number, modelId: string, spec: ModelSpec, loaded: LoadedModel, loadedTokenizer: TextTokenizer, tokenizerId: string): void {
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
      } finally {
        if (this.current === entry) this.current = null;
      }
    })();
    this.current = entry;
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
        stopTokens: tok.eosId === undefined ? [] : [tok.eosId],
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
    const ids = (request.text !== undefined ? tok.encode(request.text) : request.tokenIds).slice(0, model.spec.maxPositions);
    const started = performance.now();
    const result = await scoreTokens(model, ids, plan);
    const seconds = (performance.now() - started) / 1000;
    if (signal.aborted) return;
    const tokenKey = ids.join(',');
    const last = this.lastScore;
    const previous = last && last.tokenKey === tokenKey && formatPlanText(last.routing) !== formatPlanText(plan) ? last : null;
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
