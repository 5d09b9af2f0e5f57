// What quantization costs, measured on text: the same token windows through a reference model (weights
// as stored) and a quantized one, compared position by position. Works with any two LoadedModels
// (CPU or WebGPU); plain data in, plain data out, so the page, the model cards and `moe quantcost` share it.

import { argmax, logSoftmax, scoreTokens } from '../run/index.ts';
import type { Backend, LoadedModel, ModelSpec, QuantScheme, RoutingPlan, WeightSet } from '../types.ts';

export interface QuantCost {
  scheme: QuantScheme;
  /** Positions whose next-token distributions were compared (every scored position). */
  positions: number;
  /** (token, MoE layer) pairs compared; 0 for a model without MoE layers. */
  routingDecisions: number;
  /** Share of those whose chosen expert set is exactly the reference's (order ignored); null without MoE layers. */
  routingUnchanged: number | null;
  /** Share of positions whose most likely next token is the reference's. */
  top1Agreement: number;
  /** Mean KL(reference ‖ quantized) of the next-token distributions, nats. */
  meanKl: number;
  /** Mean next-token loss (nats) of the reference and of the quantized model over the same targets. */
  referenceLoss: number;
  quantizedLoss: number;
  /** quantizedLoss − referenceLoss. */
  deltaLoss: number;
}

/** Splits a long token sequence into windows of at most `size` tokens (the last one shorter; single tokens dropped). */
export function tokenWindows(tokens: readonly number[], size: number): number[][] {
  const out: number[][] = [];
  for (let start = 0; start < tokens.length; start += size) {
    const w = tokens.slice(start, start + size);
    if (w.length >= 2) out.push(w);
  }
  return out;
}

export interface QuantCostOptions {
  /** Checked before each window; an aborted signal throws its reason (an AbortError). */
  signal?: AbortSignal;
  /** Called before each window with the windows done so far (progress; a worker yields here). */
  onWindow?: (done: number, total: number) => void | Promise<void>;
}

/** Runs every window through both models under `plan` and compares them. */
export async function quantizationCost(
  reference: LoadedModel,
  quantized: LoadedModel,
  scheme: QuantScheme,
  windows: readonly number[][],
  plan: RoutingPlan,
  options: QuantCostOptions = {},
): Promise<QuantCost> {
  let positions = 0,
    decisions = 0,
    unchanged = 0,
    agree = 0,
    kl = 0,
    refLoss = 0,
    qLoss = 0,
    targets = 0;
  for (const [done, tokens] of windows.entries()) {
    options.signal?.throwIfAborted();
    await options.onWindow?.(done, windows.length);
    options.signal?.throwIfAborted();
    const a = await scoreTokens(reference, tokens, plan);
    const b = await scoreTokens(quantized, tokens, plan);
    for (let t = 0; t < tokens.length; t++) {
      const la = logSoftmax(a.logits[t]);
      const lb = logSoftmax(b.logits[t]);
      let k = 0;
      for (let i = 0; i < la.length; i++) k += Math.exp(la[i]) * (la[i] - lb[i]);
      kl += k;
      if (argmax(la) === argmax(lb)) agree++;
      positions++;
      if (t + 1 < tokens.length) {
        refLoss -= la[tokens[t + 1]];
        qLoss -= lb[tokens[t + 1]];
        targets++;
      }
    }
    a.trace.layers.forEach((layer, m) =>
      layer.forEach((r, t) => {
        const other = b.trace.layers[m][t].experts;
        decisions++;
        if (r.experts.length === other.length && r.experts.every((e) => other.includes(e))) unchanged++;
      }),
    );
  }
  return {
    scheme,
    positions,
    routingDecisions: decisions,
    routingUnchanged: decisions > 0 ? unchanged / decisions : null,
    top1Agreement: agree / positions,
    meanKl: kl / positions,
    referenceLoss: refLoss / targets,
    quantizedLoss: qLoss / targets,
    deltaLoss: (qLoss - refLoss) / targets,
  };
}

/**
 * quantizationCost for each scheme against the weights as stored: the reference and each quantized
 * model are loaded on `backendFor(scheme)` ('none' for the reference), and every backend and model is
 * disposed again. What `moe quantcost` and the model cards measure.
 */
export async function quantizationCosts(
  backendFor: (scheme: QuantScheme) => Backend | Promise<Backend>,
  spec: ModelSpec,
  weights: WeightSet,
  schemes: readonly QuantScheme[],
  windows: readonly number[][],
  plan: RoutingPlan,
): Promise<QuantCost[]> {
  const refBackend = await backendFor('none');
  const reference = await refBackend.load(spec, weights);
  const results: QuantCost[] = [];
  try {
    for (const scheme of schemes) {
      const backend = await backendFor(scheme);
      const model = await backend.load(spec, weights);
      try {
        results.push(await quantizationCost(reference, model, scheme, windows, plan));
      } finally {
        model.dispose();
        backend.dispose();
      }
    }
  } finally {
    reference.dispose();
    refBackend.dispose();
  }
  return results;
}

/** One sentence for a badge or a card: "q4: 96% of routing decisions unchanged, top-1 token 91% the same, Δloss +0.031 nats". */
export function describeQuantCost(c: QuantCost, where = 'on the eval texts'): string {
  const pct = (x: number) => `${(100 * x).toFixed(x > 0.995 && x < 1 ? 1 : 0)}%`;
  const routing = c.routingUnchanged === null ? '' : `${pct(c.routingUnchanged)} of routing decisions unchanged, `;
  const sign = c.deltaLoss >= 0 ? '+' : '−';
  return `${c.scheme}: ${routing}top-1 token the same at ${pct(c.top1Agreement)} of positions, Δloss ${sign}${Math.abs(c.deltaLoss).toFixed(3)} nats ${where}`;
}
