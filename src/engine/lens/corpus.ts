// Running a model over a text set for the lenses: each text is one sequence, scored in one window
// if it fits the context, otherwise in consecutive context-sized windows. Every step checks an
// AbortSignal and reports progress through a hook that may return a promise (a Web Worker yields
// there so a cancel message can arrive), as generate() does in run/index.ts.

import { countParameters } from '../format/params.ts';
import { formatRoutingMode } from '../routing/index.ts';
import { argmax, scoreTokens } from '../run/index.ts';
import type { LoadedModel, RoutingMode, RoutingPlan } from '../types.ts';
import { agreementShape, createAgreementLens, type AgreementLens } from './agreement.ts';
import type { LensShape } from './check.ts';
import { createCoactivationLens, type CoactivationLens } from './coactivation.ts';
import { createDomainLens, type DomainLens } from './domain.ts';
import { LensAbortedError, LensError } from './errors.ts';
import { createLoadLens, type LoadLens } from './load.ts';
import { createLocalityLens, type LocalityLens } from './locality.ts';
import {
  createTradeoffPoint,
  defaultTradeoffModes,
  tradeoffLens,
  type TradeoffLens,
  type TradeoffPoint,
} from './tradeoff.ts';
import type { LensAccumulator, LensWindow, LogitWindow } from './types.ts';
import { createVocabLens, type VocabLens, type VocabOptions } from './vocab.ts';

/** One text (domain) of the analysis, already tokenized as one sequence. */
export interface LensText {
  name: string;
  tokens: readonly number[];
}

export interface TextWindows {
  name: string;
  /** Tokens analysed (after --max-tokens). */
  tokens: number;
  /** Tokens the text has in all. */
  totalTokens: number;
  /** [start, end) of each scored window; more than one when the text is longer than the context. */
  windows: [number, number][];
}

export function planWindows(texts: readonly LensText[], window: number, maxTokens = Infinity): TextWindows[] {
  if (!(Number.isInteger(window) && window >= 1))
    throw new LensError(`A window of ${window} tokens cannot be scored.`, 'Use a whole number of tokens, at least 1.');
  if (texts.length === 0) throw new LensError('There are no texts to analyse.', 'Give at least one text (one domain).');
  const names = new Set<string>();
  return texts.map((text) => {
    if (names.has(text.name))
      throw new LensError(`Two texts are both called "${text.name}".`, 'Give every text (domain) its own name.');
    names.add(text.name);
    if (text.tokens.length === 0)
      throw new LensError(`The text "${text.name}" has no tokens.`, 'Remove the empty text or give it some content.');
    const n = Math.min(text.tokens.length, maxTokens);
    const windows: [number, number][] = [];
    for (let start = 0; start < n; start += window) windows.push([start, Math.min(start + window, n)]);
    return { name: text.name, tokens: n, totalTokens: text.tokens.length, windows };
  });
}

export interface LensProgress {
  phase: 'routing' | 'tradeoff' | 'agreement';
  /** The routing mode being run. */
  mode: string;
  tokensDone: number;
  tokensTotal: number;
}

export interface RunHooks {
  signal?: AbortSignal;
  /** Called after every scored window; may return a promise (the run waits for it). */
  onProgress?: (progress: LensProgress) => void | Promise<void>;
}

export interface AnalyzeOptions extends RunHooks {
  plan: RoutingPlan;
  /** Tokens per scored window; default (and at most) the model's context. */
  window?: number;
  /** Tokens analysed per text (the rest is ignored); default all. */
  maxTokens?: number;
  /** Routing modes of the sparsity trade-off; default defaultTradeoffModes(spec); [] skips it. */
  tradeoffModes?: readonly RoutingMode[];
  vocab?: VocabOptions;
}

export interface CorpusAnalysis {
  numExperts: number;
  moeLayers: number[];
  /** The routing mode the routing lenses read. */
  mode: string;
  window: number;
  texts: TextWindows[];
  domain: DomainLens;
  vocab: VocabLens;
  coactivation: CoactivationLens;
  locality: LocalityLens;
  load: LoadLens;
  /** Loss and active parameters of the analysed mode itself. */
  point: TradeoffPoint;
  tradeoff: TradeoffLens;
}

export function lensShape(model: LoadedModel): LensShape {
  const moe = model.spec.moe;
  if (!moe?.moeLayers.some(Boolean)) {
    throw new LensError(
      `This ${model.spec.architecture} model is dense: it has no router, so there is no routing to analyse.`,
      'Load a mixture-of-experts model, or upcycle this one first.',
    );
  }
  return { numExperts: moe.numExperts, moeLayers: moe.moeLayers.flatMap((isMoe, i) => (isMoe ? [i] : [])) };
}

function checkAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new LensAbortedError();
}

/** Score one window; keep the logits only when asked (agreement), otherwise only the top-1 predictions. */
export async function scoreWindow(
  model: LoadedModel,
  tokens: number[],
  domain: number,
  plan: RoutingPlan,
  keepLogits: true,
): Promise<LogitWindow>;
export async function scoreWindow(
  model: LoadedModel,
  tokens: number[],
  domain: number,
  plan: RoutingPlan,
  keepLogits?: false,
): Promise<LensWindow>;
export async function scoreWindow(
  model: LoadedModel,
  tokens: number[],
  domain: number,
  plan: RoutingPlan,
  keepLogits = false,
): Promise<LensWindow | LogitWindow> {
  const result = await scoreTokens(model, tokens, plan);
  const predicted = Int32Array.from(result.logits, (row) => argmax(row));
  const window: LensWindow = { domain, tokens, trace: result.trace, predicted, logProbs: result.logProbs };
  return keepLogits ? { ...window, logits: result.logits } : window;
}

/** Feed every window of every text, under one plan, to the accumulators. */
async function runWindows(
  model: LoadedModel,
  texts: readonly LensText[],
  plans: TextWindows[],
  plan: RoutingPlan,
  sinks: LensAccumulator<unknown>[],
  hooks: RunHooks,
  progress: LensProgress,
): Promise<void> {
  for (let d = 0; d < texts.length; d++) {
    for (const [start, end] of plans[d].windows) {
      checkAborted(hooks.signal);
      const window = await scoreWindow(model, texts[d].tokens.slice(start, end), d, plan);
      for (const sink of sinks) sink.add(window);
      progress.tokensDone += end - start;
      await hooks.onProgress?.({ ...progress });
    }
  }
  checkAborted(hooks.signal);
}

/** The mode as the model runs it: native is topk:K; two modes with the same key compute the same thing. */
function modeKey(mode: RoutingMode, model: LoadedModel): string {
  return mode.kind === 'native' ? `topk:${model.spec.moe?.topK}` : formatRoutingMode(mode);
}

/** Every routing lens under `options.plan`, then the sparsity trade-off sweep. */
export async function analyzeCorpus(
  model: LoadedModel,
  texts: readonly LensText[],
  options: AnalyzeOptions,
): Promise<CorpusAnalysis> {
  const shape = lensShape(model);
  const window = Math.min(options.window ?? model.spec.maxPositions, model.spec.maxPositions);
  const plans = planWindows(texts, window, options.maxTokens);
  const names = texts.map((t) => t.name);
  const counts = countParameters(model.spec);
  const sweep = (options.tradeoffModes ?? defaultTradeoffModes(model.spec)).filter(
    (mode) => options.plan.interventions.length > 0 || modeKey(mode, model) !== modeKey(options.plan.mode, model),
  );
  const analysed = plans.reduce((a, p) => a + p.tokens, 0);
  const progress: LensProgress = {
    phase: 'routing',
    mode: formatRoutingMode(options.plan.mode),
    tokensDone: 0,
    tokensTotal: analysed * (1 + sweep.length),
  };

  const domain = createDomainLens(shape, names);
  const vocab = createVocabLens(shape, options.vocab);
  const co = createCoactivationLens(shape);
  const loc = createLocalityLens(shape);
  const load = createLoadLens(shape);
  const main = createTradeoffPoint(shape, options.plan.mode, counts, names);
  await runWindows(model, texts, plans, options.plan, [domain, vocab, co, loc, load, main], options, progress);
  const point = main.result();

  const points: TradeoffPoint[] = [];
  const requested = options.tradeoffModes ?? defaultTradeoffModes(model.spec);
  for (const mode of requested) {
    if (!sweep.includes(mode)) {
      points.push({ ...point, mode: formatRoutingMode(mode) });
      continue;
    }
    const acc = createTradeoffPoint(shape, mode, counts, names);
    progress.phase = 'tradeoff';
    progress.mode = formatRoutingMode(mode);
    await runWindows(
      model,
      texts,
      plans,
      { mode, interventions: options.plan.interventions },
      [acc],
      options,
      progress,
    );
    points.push(acc.result());
  }
  return {
    numExperts: shape.numExperts,
    moeLayers: [...shape.moeLayers],
    mode: formatRoutingMode(options.plan.mode),
    window,
    texts: plans,
    domain: domain.result(),
    vocab: vocab.result(),
    coactivation: co.result(),
    locality: loc.result(),
    load: load.result(),
    point,
    tradeoff: tradeoffLens(points),
  };
}

export interface CompareSide {
  model: LoadedModel;
  plan: RoutingPlan;
  /** How the sentence names this run, e.g. "moe-top2 (native)". */
  label: string;
}

export interface CompareOptions extends RunHooks {
  window?: number;
  maxTokens?: number;
}

/** Agreement between two runs (two models, or two modes of one) over the same tokenized texts. */
export async function compareRuns(
  a: CompareSide,
  b: CompareSide,
  texts: readonly LensText[],
  options: CompareOptions = {},
): Promise<AgreementLens> {
  const shape = agreementShape(lensShape(a.model), lensShape(b.model));
  if (a.model.spec.vocabSize !== b.model.spec.vocabSize) {
    throw new LensError(
      `The two models have different vocabularies (${a.model.spec.vocabSize} and ${b.model.spec.vocabSize} tokens).`,
      'Compare models that share a tokenizer.',
    );
  }
  const context = Math.min(a.model.spec.maxPositions, b.model.spec.maxPositions);
  const window = Math.min(options.window ?? context, context);
  const plans = planWindows(texts, window, options.maxTokens);
  const acc = createAgreementLens(shape, { a: a.label, b: b.label });
  const progress: LensProgress = {
    phase: 'agreement',
    mode: `${a.label} vs ${b.label}`,
    tokensDone: 0,
    tokensTotal: plans.reduce((s, p) => s + p.tokens, 0),
  };
  for (let d = 0; d < texts.length; d++) {
    for (const [start, end] of plans[d].windows) {
      checkAborted(options.signal);
      const tokens = texts[d].tokens.slice(start, end);
      const x = await scoreWindow(a.model, tokens, d, a.plan, true);
      const y = await scoreWindow(b.model, tokens, d, b.plan, true);
      acc.add(x, y);
      progress.tokensDone += end - start;
      await options.onProgress?.({ ...progress });
    }
  }
  checkAborted(options.signal);
  return acc.result();
}
