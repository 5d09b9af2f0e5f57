// The Lenses view's side of the worker: runs the router lenses (src/engine/lens) over a text set for
// one model, optionally a second run (another model, or another mode of the same one), with progress
// and cancel. Lens jobs own their models (a cache keyed by URL), so the page's model, and the
// generation running on it, are never touched: the page stays usable while a lens job runs.
import { loadCheckpoint, urlSource } from '../engine/format/index.ts';
import {
  analyzeCorpus,
  compareRuns,
  LensAbortedError,
  LensError,
  type AgreementLens,
  type CorpusAnalysis,
  type LensProgress,
  type LensText,
} from '../engine/lens/index.ts';
import { formatPlanText, validateRoutingPlan } from '../engine/routing/index.ts';
import { loadTokenizer, type TextTokenizer } from '../engine/tokenizer.ts';
import type { Backend, CheckpointSource, LoadedModel, RoutingPlan } from '../engine/types.ts';

/** A model the job reads: its id (how the page names it) and where its files are. */
export interface LensModelRef {
  id: string;
  baseUrl: string;
}

/** One run of the lenses: a model under a routing plan. */
export interface LensRunSpec {
  model: LensModelRef;
  routing: RoutingPlan;
}

export interface LensJobSpec {
  a: LensRunSpec;
  /** The second run: every lens for it too, its trade-off curve when it is another model, and the agreement of the two. */
  b?: LensRunSpec;
  /** One text per domain, as typed, dropped or fetched (public/eval). */
  texts: { name: string; text: string }[];
  /** Tokens analysed per text. */
  maxTokens: number;
  /** Sweep top-k 1…E−1, the thresholds and dense for the trade-off (the costly part). */
  tradeoff: boolean;
}

export interface LensSide {
  label: string;
  modelId: string;
  /** The plan as routing text, e.g. "topk:2|L1E3-". */
  routing: string;
  analysis: CorpusAnalysis;
}

export interface LensJobResult {
  a: LensSide;
  b: LensSide | null;
  /** The two runs on A's tokens; null without a second run. */
  agreement: LensAgreement | null;
  /** The texts as tokenized by A's tokenizer: domain name → token count (before maxTokens). */
  tokens: Record<string, number>;
}

export type LensAgreement = AgreementLens & { a: string; b: string };

export type LensRequest =
  | { type: 'lens'; requestId: number; job: LensJobSpec }
  /** Stops the lens job `requestId` (between two scored windows). */
  | { type: 'lensCancel'; requestId: number };

export type LensResponse =
  | { type: 'lensProgress'; requestId: number; stage: string; fraction: number }
  | { type: 'lensDone'; requestId: number; result: LensJobResult }
  | { type: 'lensFailed'; requestId: number; message: string; hint?: string; cancelled: boolean };

interface Loaded {
  model: LoadedModel;
  tokenizer: TextTokenizer;
}

/** Models kept loaded between jobs: the two of a comparison. */
const CACHE_SIZE = 2;

function yieldToEvents(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

function labelOf(run: LensRunSpec): string {
  return `${run.model.id} (${formatPlanText(run.routing)})`;
}

export class LensJobs {
  private readonly cache = new Map<string, Promise<Loaded>>();
  private current: { requestId: number; abort: AbortController; done: Promise<void> } | null = null;

  constructor(
    private readonly post: (message: LensResponse) => void,
    /** The session's backend, once `init` has chosen it. */
    private readonly backend: () => Promise<Backend>,
    private readonly sourceFor: (baseUrl: string) => CheckpointSource = (baseUrl) => urlSource(baseUrl),
  ) {}

  handle(request: LensRequest): void {
    if (request.type === 'lensCancel') {
      if (this.current?.requestId === request.requestId) this.current.abort.abort();
      return;
    }
    // A newer job replaces the running one; it starts once the old one has stopped.
    const previous = this.current;
    previous?.abort.abort();
    const abort = new AbortController();
    const entry = { requestId: request.requestId, abort, done: Promise.resolve() };
    entry.done = (async () => {
      await previous?.done;
      try {
        const result = await this.run(request.requestId, request.job, abort.signal);
        this.post({ type: 'lensDone', requestId: request.requestId, result });
      } catch (error) {
        const cancelled = error instanceof LensAbortedError || abort.signal.aborted;
        const hint = (error as { hint?: unknown }).hint;
        this.post({
          type: 'lensFailed',
          requestId: request.requestId,
          message: cancelled
            ? 'The analysis was cancelled; nothing was measured.'
            : error instanceof Error
              ? error.message
              : String(error),
          hint: cancelled ? 'Press Run to start it again.' : typeof hint === 'string' ? hint : undefined,
          cancelled,
        });
      } finally {
        if (this.current === entry) this.current = null;
      }
    })();
    this.current = entry;
  }

  /** Resolves when no job runs (tests). */
  async idle(): Promise<void> {
    while (this.current) await this.current.done;
  }

  private load(ref: LensModelRef, progress: (stage: string) => void): Promise<Loaded> {
    const hit = this.cache.get(ref.baseUrl);
    if (hit) {
      // Most recently used last.
      this.cache.delete(ref.baseUrl);
      this.cache.set(ref.baseUrl, hit);
      return hit;
    }
    const loading = (async () => {
      progress(`loading ${ref.id}`);
      const checkpoint = await loadCheckpoint(this.sourceFor(ref.baseUrl));
      const tokenizer = loadTokenizer(checkpoint.tokenizerJson, checkpoint.tokenizerConfigJson);
      const model = await (await this.backend()).load(checkpoint.spec, checkpoint.weights);
      return { model, tokenizer };
    })();
    this.cache.set(ref.baseUrl, loading);
    loading.catch(() => this.cache.delete(ref.baseUrl));
    while (this.cache.size > CACHE_SIZE) {
      const [oldest, old] = this.cache.entries().next().value as [string, Promise<Loaded>];
      this.cache.delete(oldest);
      void old.then(
        (l) => l.model.dispose(),
        () => undefined,
      );
    }
    return loading;
  }

  private async run(requestId: number, job: LensJobSpec, signal: AbortSignal): Promise<LensJobResult> {
    const stages = 1 + (job.b ? 2 : 0);
    let stage = 0;
    const report = (text: string, within = 0) =>
      this.post({ type: 'lensProgress', requestId, stage: text, fraction: Math.min((stage + within) / stages, 1) });
    const onProgress = (label: string) => async (p: LensProgress) => {
      const what =
        p.phase === 'tradeoff'
          ? `trade-off sweep, ${p.mode}`
          : p.phase === 'agreement'
            ? 'agreement'
            : `routing ${p.mode}`;
      report(
        `${label}: ${what}, ${p.tokensDone} of ${p.tokensTotal} tokens`,
        p.tokensTotal > 0 ? p.tokensDone / p.tokensTotal : 0,
      );
      // Let a cancel (or a newer job) in between two windows.
      await yieldToEvents();
    };
    if (job.texts.length === 0)
      throw new LensError('There are no texts to analyse.', 'Pick a built-in text or paste one.');
    const empty = job.texts.find((t) => t.text.trim() === '');
    if (empty) throw new LensError(`The text "${empty.name}" is empty.`, 'Remove it or give it some content.');

    const a = await this.load(job.a.model, (s) => report(s));
    if (signal.aborted) throw new LensAbortedError();
    const planA = job.a.routing;
    validateRoutingPlan(planA, a.model.spec);
    const texts: LensText[] = job.texts.map(({ name, text }) => {
      const tokens = a.tokenizer.encode(text);
      const outside = tokens.find((t) => t >= a.model.spec.vocabSize);
      if (outside !== undefined)
        throw new LensError(
          `The tokenizer produced token ${outside}, beyond the model's vocabulary of ${a.model.spec.vocabSize}.`,
          'The tokenizer.json does not belong to this model.',
        );
      return { name, tokens };
    });
    const tokens = Object.fromEntries(texts.map((t) => [t.name, t.tokens.length]));
    const labelA = labelOf(job.a);
    const analysisA = await analyzeCorpus(a.model, texts, {
      plan: planA,
      maxTokens: job.maxTokens,
      tradeoffModes: job.tradeoff ? undefined : [],
      vocab: { tokenText: (id) => a.tokenizer.decodeToken(id) },
      signal,
      onProgress: onProgress(labelA),
    });
    const sideA: LensSide = {
      label: labelA,
      modelId: job.a.model.id,
      routing: formatPlanText(planA),
      analysis: analysisA,
    };
    if (!job.b) return { a: sideA, b: null, agreement: null, tokens };

    stage = 1;
    const sameModel = job.b.model.baseUrl === job.a.model.baseUrl;
    const b = sameModel ? a : await this.load(job.b.model, (s) => report(s));
    if (signal.aborted) throw new LensAbortedError();
    const planB = job.b.routing;
    validateRoutingPlan(planB, b.model.spec);
    const labelB = labelOf(job.b);
    // B reads A's tokens, so that the agreement compares the same positions (compareRuns checks the vocabularies match).
    const analysisB = await analyzeCorpus(b.model, texts, {
      plan: planB,
      maxTokens: job.maxTokens,
      // Another mode of the same model lies on the same trade-off curve: sweep it once.
      tradeoffModes: job.tradeoff && !sameModel ? undefined : [],
      vocab: { tokenText: (id) => b.tokenizer.decodeToken(id) },
      signal,
      onProgress: onProgress(labelB),
    });
    stage = 2;
    const agreement = await compareRuns(
      { model: a.model, plan: planA, label: labelA },
      { model: b.model, plan: planB, label: labelB },
      texts,
      { maxTokens: job.maxTokens, signal, onProgress: onProgress(`${labelA} vs ${labelB}`) },
    );
    return {
      a: sideA,
      b: { label: labelB, modelId: job.b.model.id, routing: formatPlanText(planB), analysis: analysisB },
      agreement: { ...agreement, a: labelA, b: labelB },
      tokens,
    };
  }
}
