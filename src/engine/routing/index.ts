// Routing: how a router's logits become the set of experts a token visits and their gate weights.
// This file is the single implementation of the contract in REFERENCE §2; every backend calls
// routeToken (the CPU backend directly, the WebGPU backend on read-back router logits).

import type { Intervention, ModelSpec, MoeSpec, RoutingMode, RoutingPlan, TokenRouting } from '../types.ts';

/** A routing string, intervention string or plan the user wrote does not make sense. */
export class RoutingModeError extends Error {
  readonly hint: string;
  constructor(message: string, hint: string) {
    super(message);
    this.name = 'RoutingModeError';
    this.hint = hint;
  }
}

const MODE_HINT = 'Use one of: native, dense, topk:K (K a whole number ≥ 1), threshold:T (T a number ≥ 0).';
const INTERVENTION_HINT = 'Write interventions as comma-separated L<layer>E<expert>- (ablate) or L<layer>E<expert>+ (force), e.g. "L1E3-,L0E2+".';

export const NATIVE_PLAN: RoutingPlan = { mode: { kind: 'native' }, interventions: [] };

// ---------------------------------------------------------------------------------------------
// Strings ⇄ modes

export function parseRoutingMode(text: string): RoutingMode {
  const s = text.trim().toLowerCase();
  if (s === 'native') return { kind: 'native' };
  if (s === 'dense') return { kind: 'dense' };
  const colon = s.indexOf(':');
  const head = colon < 0 ? s : s.slice(0, colon);
  const arg = colon < 0 ? '' : s.slice(colon + 1).trim();
  if (head === 'topk') {
    if (!/^\d+$/.test(arg)) {
      throw new RoutingModeError(`Routing mode "${text}" needs a whole number of experts after "topk:".`, MODE_HINT);
    }
    const k = Number(arg);
    if (k < 1) throw new RoutingModeError(`Routing mode "${text}" asks for ${k} experts, but at least 1 is needed.`, MODE_HINT);
    return { kind: 'topk', k };
  }
  if (head === 'threshold') {
    const t = arg === '' ? NaN : Number(arg);
    if (!Number.isFinite(t)) {
      throw new RoutingModeError(`Routing mode "${text}" needs a number after "threshold:".`, MODE_HINT);
    }
    if (t < 0) {
      throw new RoutingModeError(
        `Routing mode "${text}" has a negative threshold; E·p is never negative, so every expert would pass.`,
        MODE_HINT,
      );
    }
    return { kind: 'threshold', t };
  }
  throw new RoutingModeError(`Unknown routing mode "${text}".`, MODE_HINT);
}

export function formatRoutingMode(mode: RoutingMode): string {
  switch (mode.kind) {
    case 'native':
      return 'native';
    case 'dense':
      return 'dense';
    case 'topk':
      return `topk:${mode.k}`;
    case 'threshold':
      return `threshold:${mode.t}`;
  }
}

/** "L1E3-,L0E2+" → [{layer:1, expert:3, action:'ablate'}, {layer:0, expert:2, action:'force'}]. Empty string → []. */
export function parseInterventions(text: string): Intervention[] {
  const out: Intervention[] = [];
  for (const raw of text.split(',')) {
    const part = raw.trim();
    if (part === '') continue;
    const m = /^L(\d+)E(\d+)([+-])$/i.exec(part);
    if (!m) throw new RoutingModeError(`Intervention "${part}" is not of the form L<layer>E<expert>+ or L<layer>E<expert>-.`, INTERVENTION_HINT);
    out.push({ layer: Number(m[1]), expert: Number(m[2]), action: m[3] === '-' ? 'ablate' : 'force' });
  }
  return out;
}

export function formatInterventions(interventions: Intervention[]): string {
  return interventions.map((iv) => `L${iv.layer}E${iv.expert}${iv.action === 'ablate' ? '-' : '+'}`).join(',');
}

export function parseRoutingPlan(mode: string, interventions = ''): RoutingPlan {
  return { mode: parseRoutingMode(mode), interventions: parseInterventions(interventions) };
}

// ---------------------------------------------------------------------------------------------
// Validation against a model

/** Throws RoutingModeError when the plan cannot be applied to this model. Dense models accept only plans without interventions. */
export function validateRoutingPlan(plan: RoutingPlan, spec: ModelSpec): void {
  const moe = spec.moe;
  const mode = plan.mode;
  if (!moe) {
    if (plan.interventions.length > 0) {
      throw new RoutingModeError(
        `Interventions "${formatInterventions(plan.interventions)}" need a mixture-of-experts model, but this ${spec.architecture} model is dense.`,
        'Remove the interventions, or load (or upcycle to) an MoE model.',
      );
    }
    return;
  }
  const E = moe.numExperts;
  if (mode.kind === 'topk' && (mode.k < 1 || mode.k > E || !Number.isInteger(mode.k))) {
    throw new RoutingModeError(
      `${formatRoutingMode(mode)} asks for ${mode.k} experts but the model has ${E}.`,
      `Pick K between 1 and ${E}, or use "dense" to run all ${E}.`,
    );
  }
  if (mode.kind === 'threshold' && !(mode.t >= 0)) {
    throw new RoutingModeError(`${formatRoutingMode(mode)} has a negative threshold.`, MODE_HINT);
  }
  const seen = new Map<string, Intervention['action']>();
  const ablatedPerLayer = new Map<number, number>();
  for (const iv of plan.interventions) {
    const name = formatInterventions([iv]);
    if (!Number.isInteger(iv.layer) || iv.layer < 0 || iv.layer >= spec.numLayers) {
      throw new RoutingModeError(`Intervention ${name} names layer ${iv.layer}, but the model has layers 0..${spec.numLayers - 1}.`, INTERVENTION_HINT);
    }
    if (!moe.moeLayers[iv.layer]) {
      const moeList = moe.moeLayers.flatMap((isMoe, i) => (isMoe ? [i] : [])).join(', ');
      throw new RoutingModeError(`Intervention ${name} names layer ${iv.layer}, which has no router (MoE layers: ${moeList}).`, INTERVENTION_HINT);
    }
    if (!Number.isInteger(iv.expert) || iv.expert < 0 || iv.expert >= E) {
      throw new RoutingModeError(`Intervention ${name} names expert ${iv.expert}, but the model has experts 0..${E - 1}.`, INTERVENTION_HINT);
    }
    const key = `${iv.layer}:${iv.expert}`;
    const before = seen.get(key);
    if (before && before !== iv.action) {
      throw new RoutingModeError(`Expert ${iv.expert} of layer ${iv.layer} is both ablated and forced.`, 'Keep only one of L…E…- and L…E…+ for the same expert.');
    }
    if (!before && iv.action === 'ablate') {
      const n = (ablatedPerLayer.get(iv.layer) ?? 0) + 1;
      ablatedPerLayer.set(iv.layer, n);
      if (n >= E) {
        throw new RoutingModeError(`Every expert of layer ${iv.layer} is ablated, so the router has nothing left to choose.`, 'Leave at least one expert of each layer un-ablated.');
      }
    }
    seen.set(key, iv.action);
  }
}

// ---------------------------------------------------------------------------------------------
// The routing decision for one token

/** Interventions of one layer, precomputed so the hot loop does not scan the whole plan per token. */
export interface LayerInterventions {
  ablated: Set<number>;
  forced: Set<number>;
}

export function interventionsForLayer(plan: RoutingPlan, layer: number): LayerInterventions {
  const ablated = new Set<number>();
  const forced = new Set<number>();
  for (const iv of plan.interventions) {
    if (iv.layer !== layer) continue;
    (iv.action === 'ablate' ? ablated : forced).add(iv.expert);
  }
  return { ablated, forced };
}

/** Router probabilities after interventions: softmax over the logits with ablated experts at -inf. */
export function routerProbabilities(routerLogits: Float32Array, ablated: ReadonlySet<number>): Float32Array {
  const E = routerLogits.length;
  let max = -Infinity;
  for (let i = 0; i < E; i++) if (!ablated.has(i) && routerLogits[i] > max) max = routerLogits[i];
  const probs = new Float32Array(E);
  if (max === -Infinity) {
    throw new RoutingModeError('Every expert of a layer is ablated, so the router has nothing left to choose.', 'Leave at least one expert of each layer un-ablated.');
  }
  let sum = 0;
  const exps = new Float64Array(E);
  for (let i = 0; i < E; i++) {
    if (ablated.has(i)) continue;
    exps[i] = Math.exp(routerLogits[i] - max);
    sum += exps[i];
  }
  for (let i = 0; i < E; i++) probs[i] = exps[i] / sum;
  return probs;
}

/** Expert ids ordered by descending probability, ties to the lower index. */
function byDescendingProb(probs: Float32Array, ids: Iterable<number>): number[] {
  return [...ids].sort((a, b) => probs[b] - probs[a] || a - b);
}

/**
 * Route one token at one MoE layer, as REFERENCE §2 says. An ablated expert has p = 0. By default
 * (plan.ablation 'excluded') it is never chosen: topk:K with fewer than K live experts chooses the
 * live ones, and dense runs only the live ones. With plan.ablation 'zero-weight' (the PyTorch
 * reference, literally) it fills top-k slots no live expert can take and stays in dense, weight 0.
 */
export function routeToken(routerLogits: Float32Array, layer: number, moe: MoeSpec, plan: RoutingPlan, layerIv?: LayerInterventions): TokenRouting {
  const E = moe.numExperts;
  if (routerLogits.length !== E) throw new Error(`routeToken: ${routerLogits.length} router logits for ${E} experts`);
  const { ablated, forced } = layerIv ?? interventionsForLayer(plan, layer);
  const probs = routerProbabilities(routerLogits, ablated);
  const mode = plan.mode;
  const literal = plan.ablation === 'zero-weight';
  // The experts that may be chosen at all.
  const live = [...probs.keys()].filter((i) => literal || !ablated.has(i));

  if (mode.kind === 'dense') {
    const experts = byDescendingProb(probs, live);
    return { experts, weights: experts.map((e) => probs[e]), probs };
  }

  const chosen = new Set<number>(forced);
  if (mode.kind === 'threshold') {
    // E·p compared in f32, as PyTorch compares an f32 tensor with a Python scalar.
    const t = Math.fround(mode.t);
    const passed = [...probs.keys()].filter((i) => Math.fround(E * probs[i]) > t);
    // Never fewer than one routed expert: the argmax (ablated experts have p = 0, so never one of them).
    if (passed.length === 0) passed.push(byDescendingProb(probs, probs.keys())[0]);
    for (const i of passed) chosen.add(i);
  } else {
    const k = mode.kind === 'native' ? moe.topK : mode.k;
    const slots = Math.max(k - forced.size, 0);
    const candidates = byDescendingProb(probs, live).filter((i) => !forced.has(i));
    for (const i of candidates.slice(0, slots)) chosen.add(i);
  }

  const experts = byDescendingProb(probs, chosen);
  let weights = experts.map((e) => probs[e]);
  if (moe.normTopkProb) {
    const sum = weights.reduce((a, b) => a + b, 0);
    // A forced set made only of zero-probability experts cannot be renormalised; keep raw zeros.
    if (sum > 0) weights = weights.map((w) => Math.fround(w / sum));
  }
  return { experts, weights, probs };
}
