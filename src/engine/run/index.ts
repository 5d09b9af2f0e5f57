// The run layer: scoring a text, generating from a prompt, sampling, and the small
// information-theory helpers the UI and the bench share. Backend-agnostic: it only talks
// to LoadedModel.

import { concatTraces, routingAt } from '../trace/index.ts';
import type { KvCache, LoadedModel, RoutingPlan, RoutingTrace, TokenRouting } from '../types.ts';
import { RunError } from './errors.ts';

export { RunError } from './errors.ts';

// ---------------------------------------------------------------------------------------------
// Distributions over the vocabulary (all in nats)

/** log softmax(logits / temperature), computed in f64. */
export function logSoftmax(logits: ArrayLike<number>, temperature = 1): Float64Array {
  const n = logits.length;
  let max = -Infinity;
  for (let i = 0; i < n; i++) max = Math.max(max, logits[i] / temperature);
  let sum = 0;
  for (let i = 0; i < n; i++) sum += Math.exp(logits[i] / temperature - max);
  const logZ = max + Math.log(sum);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = logits[i] / temperature - logZ;
  return out;
}

export function softmax(logits: ArrayLike<number>, temperature = 1): Float64Array {
  return logSoftmax(logits, temperature).map(Math.exp);
}

/** −log p(target) under softmax(logits): the per-token loss. */
export function tokenCrossEntropy(logits: ArrayLike<number>, target: number): number {
  return -logSoftmax(logits)[target];
}

/** KL(p ‖ q) between the next-token distributions softmax(pLogits) and softmax(qLogits). */
export function klDivergence(pLogits: ArrayLike<number>, qLogits: ArrayLike<number>): number {
  if (pLogits.length !== qLogits.length) throw new Error('klDivergence: distributions over different vocabularies');
  const lp = logSoftmax(pLogits);
  const lq = logSoftmax(qLogits);
  let kl = 0;
  for (let i = 0; i < lp.length; i++) {
    const p = Math.exp(lp[i]);
    if (p > 0) kl += p * (lp[i] - lq[i]);
  }
  return Math.max(kl, 0);
}

/** Shannon entropy −Σ p ln p of a probability vector (e.g. router probabilities; max ln E). */
export function entropy(probs: ArrayLike<number>): number {
  let h = 0;
  for (let i = 0; i < probs.length; i++) if (probs[i] > 0) h -= probs[i] * Math.log(probs[i]);
  return h;
}

// ---------------------------------------------------------------------------------------------
// Random numbers and sampling

/** A seeded uniform generator on [0, 1). */
export type Rng = () => number;

/**
 * xoshiro128** (Blackman & Vigna), state seeded from a 32-bit seed through splitmix32.
 * The same seed gives the same sequence on every JS engine: all arithmetic is 32-bit integer.
 */
export function createRng(seed: number): Rng {
  let z = seed >>> 0;
  const splitmix32 = (): number => {
    z = (z + 0x9e3779b9) >>> 0;
    let r = z;
    r = Math.imul(r ^ (r >>> 16), 0x85ebca6b);
    r = Math.imul(r ^ (r >>> 13), 0xc2b2ae35);
    return (r ^ (r >>> 16)) >>> 0;
  };
  let s0 = splitmix32(),
    s1 = splitmix32(),
    s2 = splitmix32(),
    s3 = splitmix32();
  return () => {
    const result = Math.imul(rotl(Math.imul(s1, 5), 7), 9) >>> 0;
    const t = s1 << 9;
    s2 ^= s0;
    s3 ^= s1;
    s1 ^= s2;
    s0 ^= s3;
    s2 ^= t;
    s3 = rotl(s3, 11);
    return result / 4294967296;
  };
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

export interface SamplingOptions {
  /** 0 = greedy (argmax). */
  temperature: number;
  /** Nucleus: sample only from the smallest set of most likely tokens whose mass reaches topP. 1 = no cut. */
  topP: number;
}

/** Index of the largest value; ties go to the lower index. */
export function argmax(values: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i] > values[best]) best = i;
  return best;
}

/** The tokens top-p sampling may draw, most likely first, with their renormalised probabilities. */
export function nucleus(
  logits: ArrayLike<number>,
  temperature: number,
  topP: number,
): { ids: number[]; probs: number[] } {
  const probs = softmax(logits, temperature);
  const order = Array.from(probs.keys()).sort((a, b) => probs[b] - probs[a] || a - b);
  const ids: number[] = [];
  let mass = 0;
  for (const id of order) {
    ids.push(id);
    mass += probs[id];
    if (mass >= topP) break;
  }
  return { ids, probs: ids.map((id) => probs[id] / mass) };
}

export function sampleToken(logits: ArrayLike<number>, options: SamplingOptions, rng: Rng): number {
  const { temperature, topP } = options;
  if (!(temperature >= 0))
    throw new RunError(
      `Temperature ${temperature} is not allowed.`,
      'Use 0 for greedy decoding or a positive number such as 0.8.',
    );
  if (!(topP > 0 && topP <= 1))
    throw new RunError(`top-p ${topP} is not allowed.`, 'Use a number in (0, 1], e.g. 0.9; 1 disables the cut.');
  if (temperature === 0) return argmax(logits);
  // With no cut, skip sorting the vocabulary: draw over ids in index order.
  const { ids, probs } =
    topP >= 1 ? { ids: null, probs: softmax(logits, temperature) } : nucleus(logits, temperature, topP);
  let u = rng();
  for (let i = 0; i < probs.length; i++) {
    u -= probs[i];
    if (u < 0) return ids ? ids[i] : i;
  }
  return ids ? ids[ids.length - 1] : argmax(probs); // rounding left a sliver of mass
}

// ---------------------------------------------------------------------------------------------
// Scoring a sequence

export interface ScoreResult {
  /** Next-token logits after each input position. */
  logits: Float32Array[];
  trace: RoutingTrace;
  /** logProbs[i] = log p(tokens[i+1] | tokens[..i]); length tokens.length − 1. */
  logProbs: number[];
  /** Mean of −logProbs in nats per token; NaN for a single token (nothing to predict). */
  meanLoss: number;
}

/**
 * Run `tokens` through the model in one prefill. With `cache`, the tokens are appended to
 * what it already holds (and stay there); without, a cache is made and dropped.
 */
export async function scoreTokens(
  model: LoadedModel,
  tokens: number[],
  plan: RoutingPlan,
  options: { cache?: KvCache } = {},
): Promise<ScoreResult> {
  if (tokens.length === 0)
    throw new RunError('There is nothing to score: the text has no tokens.', 'Type some text first.');
  const cache = options.cache ?? model.newCache(tokens.length);
  try {
    const { logits, routing } = await model.forward(tokens, cache, { routing: plan, logits: 'all' });
    const logProbs: number[] = [];
    for (let t = 0; t + 1 < tokens.length; t++) logProbs.push(-tokenCrossEntropy(logits[t], tokens[t + 1]));
    const meanLoss = logProbs.length > 0 ? -logProbs.reduce((a, b) => a + b, 0) / logProbs.length : NaN;
    return { logits, trace: routing, logProbs, meanLoss };
  } finally {
    if (!options.cache) cache.dispose();
  }
}

// ---------------------------------------------------------------------------------------------
// Generation

export interface GenerateOptions extends SamplingOptions {
  maxTokens: number;
  seed: number;
  routing: RoutingPlan;
  /** Generation ends after emitting one of these (it is included in the output). */
  stopTokens?: number[];
  signal?: AbortSignal;
  /** Called once with the prompt's scoring (every position's logits, losses and routing) before sampling starts. */
  onPrefill?: (prefill: ScoreResult) => void | Promise<void>;
}

export interface GeneratedToken {
  id: number;
  /** Absolute position of the token in the sequence (prompt starts at 0). */
  position: number;
  /** The logits the token was sampled from. */
  logits: Float32Array;
  /** The logits after this token: what the next token will be sampled from. */
  nextLogits: Float32Array;
  /** How this token was routed at each MoE layer (one entry per trace.moeLayers). */
  routing: TokenRouting[];
}

export type StopReason = 'maxTokens' | 'stopToken' | 'contextFull' | 'aborted';

export interface GenerateResult {
  /** Prompt followed by the generated tokens. */
  tokens: number[];
  generated: number[];
  /** Routing of every token in `tokens`, prompt and generated. */
  trace: RoutingTrace;
  stopReason: StopReason;
}

/**
 * Prefill the prompt, then sample one token at a time. Each sampled token is run through the
 * model before it is reported, so onToken carries the token's own routing and the final trace
 * covers every token. onToken may return a promise; generation waits for it, which is also
 * where a caller can yield to its event loop so an abort can arrive.
 */
export async function generate(
  model: LoadedModel,
  promptTokens: number[],
  options: GenerateOptions,
  onToken?: (token: GeneratedToken) => void | Promise<void>,
): Promise<GenerateResult> {
  const maxPositions = model.spec.maxPositions;
  if (promptTokens.length === 0) throw new RunError('The prompt has no tokens.', 'Type a prompt first.');
  if (promptTokens.length >= maxPositions) {
    throw new RunError(
      `The prompt has ${promptTokens.length} tokens, but this model handles at most ${maxPositions}.`,
      'Shorten the prompt.',
    );
  }
  if (!Number.isInteger(options.maxTokens) || options.maxTokens < 0) {
    throw new RunError(`Cannot generate ${options.maxTokens} tokens.`, 'Ask for a whole number of tokens, 0 or more.');
  }
  const capacity = Math.min(promptTokens.length + options.maxTokens, maxPositions);
  const budget = capacity - promptTokens.length;
  const stops = new Set(options.stopTokens ?? []);
  const rng = createRng(options.seed);
  const cache = model.newCache(capacity);
  const forwardOptions = { routing: options.routing, logits: 'last' } as const;
  try {
    const prefill = await scoreTokens(model, promptTokens, options.routing, { cache });
    await options.onPrefill?.(prefill);
    const traces = [prefill.trace];
    let logits = prefill.logits[prefill.logits.length - 1];
    const generated: number[] = [];
    let stopReason: StopReason = budget < options.maxTokens ? 'contextFull' : 'maxTokens';
    while (generated.length < budget) {
      if (options.signal?.aborted) {
        stopReason = 'aborted';
        break;
      }
      const id = sampleToken(logits, options, rng);
      const position = cache.length;
      const step = await model.forward([id], cache, forwardOptions);
      traces.push(step.routing);
      generated.push(id);
      await onToken?.({ id, position, logits, nextLogits: step.logits[0], routing: routingAt(step.routing, 0) });
      logits = step.logits[0];
      if (stops.has(id)) {
        stopReason = 'stopToken';
        break;
      }
    }
    return { tokens: [...promptTokens, ...generated], generated, trace: concatTraces(traces), stopReason };
  } finally {
    cache.dispose();
  }
}
