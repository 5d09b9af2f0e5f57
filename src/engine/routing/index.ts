// Routing: the whole routing vocabulary (modes, interventions and plans: parse, format, validate
// against a model, fit a list to a model) and how a router's logits become the experts a token
// visits and their gate weights. The semantics are docs/routing.md's. The CPU backend calls
// routeToken per token; the WebGPU backend routes on the GPU with the same rules (and is tested
// against this file). The page, the share link, the worker and the CLI all read routing through here.

import type { Intervention, ModelSpec, MoeSpec, RoutingMode, RoutingPlan, TokenRouting } from '../types.ts';
import { MoeError } from '../errors.ts';

/** A routing string, intervention string or plan the user wrote does not make sense. */
export class RoutingModeError extends MoeError {
  constructor(message: string, hint: string) {
    super(message, hint);
    this.name = 'RoutingModeError';
  }
}

const MODE_HINT = 'Use one of: native, dense, topk:K (K a whole number ≥ 1), threshold:T (T a number ≥ 0).';
const INTERVENTION_HINT =
  'Write interventions as comma-separated L<layer>E<expert>- (ablate) or L<layer>E<expert>+ (force), e.g. "L1E3-,L0E2+".';

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
    if (k < 1)
      throw new RoutingModeError(`Routing mode "${text}" asks for ${k} experts, but at least 1 is needed.`, MODE_HINT);
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
    if (!m)
      throw new RoutingModeError(
        `Intervention "${part}" is not of the form L<layer>E<expert>+ or L<layer>E<expert>-.`,
        INTERVENTION_HINT,
      );
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

/** Separates the mode from the interventions in a plan's one-string form: "topk:2|L1E3-,L0E2+". */
export const PLAN_SEPARATOR = '|';

/** "topk:2|L1E3-,L0E2+" (or just "topk:2") → a plan. Throws RoutingModeError on bad text. */
export function parsePlanText(text: string): RoutingPlan {
  const at = text.indexOf(PLAN_SEPARATOR);
  return at < 0 ? parseRoutingPlan(text) : parseRoutingPlan(text.slice(0, at), text.slice(at + 1));
}

/** A plan's one-string form, canonical: lower-case mode, then "|" and the interventions when there are any. */
export function formatPlanText(plan: RoutingPlan): string {
  const mode = formatRoutingMode(plan.mode);
  return plan.interventions.length > 0 ? `${mode}${PLAN_SEPARATOR}${formatInterventions(plan.interventions)}` : mode;
}

/** A plan with another mode and the same interventions. */
export function withMode(plan: RoutingPlan, mode: RoutingMode): RoutingPlan {
  return { ...plan, mode };
}

// ---------------------------------------------------------------------------------------------
// Validation against a model

/** What routing needs to know about a model: enough to check a plan without its weights (the page knows only this). */
export interface RouterShape {
  /** Layers of the model (all of them); omitted when only the MoE layers are known. */
  numLayers?: number;
  /** Experts per MoE layer; 0 for a dense model. */
  numExperts: number;
  /** Absolute indices of the layers that have a router. */
  moeLayers: readonly number[];
}

export function routerShapeOf(spec: ModelSpec): RouterShape {
  const moe = spec.moe;
  return {
    numLayers: spec.numLayers,
    numExperts: moe?.numExperts ?? 0,
    moeLayers: moe ? moe.moeLayers.flatMap((isMoe, i) => (isMoe ? [i] : [])) : [],
  };
}

/** The interventions accepted so far in a list, so each next one is checked against them. */
interface Accepted {
  actions: Map<string, Intervention['action']>;
  ablatedPerLayer: Map<number, number>;
}

/** Why an intervention cannot be applied: a clause ("layer 5 has no router …") and what to do instead. */
interface Refusal {
  reason: string;
  hint: string;
}

/**
 * The one rule for an intervention on an MoE model: a routed layer, an existing expert, not both
 * ablated and forced, and never every expert of a layer ablated. Returns null when it may be added
 * (and records it), 'repeat' when the same intervention is already there, or why it may not.
 */
function checkIntervention(iv: Intervention, shape: RouterShape, accepted: Accepted): Refusal | 'repeat' | null {
  const E = shape.numExperts;
  if (shape.numLayers !== undefined && (!Number.isInteger(iv.layer) || iv.layer < 0 || iv.layer >= shape.numLayers)) {
    return {
      reason: `layer ${iv.layer} does not exist (the model has layers 0..${shape.numLayers - 1})`,
      hint: INTERVENTION_HINT,
    };
  }
  if (!shape.moeLayers.includes(iv.layer)) {
    return {
      reason: `layer ${iv.layer} has no router in this model (MoE layers: ${shape.moeLayers.join(', ') || 'none'})`,
      hint: INTERVENTION_HINT,
    };
  }
  if (!Number.isInteger(iv.expert) || iv.expert < 0 || iv.expert >= E) {
    return {
      reason: `expert ${iv.expert} does not exist (this model has experts 0..${E - 1})`,
      hint: INTERVENTION_HINT,
    };
  }
  const key = `${iv.layer}:${iv.expert}`;
  const before = accepted.actions.get(key);
  if (before === iv.action) return 'repeat';
  if (before) {
    return {
      reason: `expert ${iv.expert} of layer ${iv.layer} would be both ablated and forced`,
      hint: 'Keep only one of L…E…- and L…E…+ for the same expert.',
    };
  }
  if (iv.action === 'ablate') {
    const n = (accepted.ablatedPerLayer.get(iv.layer) ?? 0) + 1;
    if (n >= E) {
      return {
        reason: `every expert of layer ${iv.layer} would be ablated, leaving the router nothing to choose`,
        hint: 'Leave at least one expert of each layer un-ablated.',
      };
    }
    accepted.ablatedPerLayer.set(iv.layer, n);
  }
  accepted.actions.set(key, iv.action);
  return null;
}

function checkMode(mode: RoutingMode, E: number): void {
  if (mode.kind === 'topk' && (mode.k < 1 || mode.k > E || !Number.isInteger(mode.k))) {
    throw new RoutingModeError(
      `${formatRoutingMode(mode)} asks for ${mode.k} experts but the model has ${E}.`,
      `Pick K between 1 and ${E}, or use "dense" to run all ${E}.`,
    );
  }
  if (mode.kind === 'threshold' && !(mode.t >= 0)) {
    throw new RoutingModeError(`${formatRoutingMode(mode)} has a negative threshold.`, MODE_HINT);
  }
}

/** Throws RoutingModeError when the plan cannot be applied to this model. Dense models accept only plans without interventions. */
export function validateRoutingPlan(plan: RoutingPlan, model: ModelSpec | RouterShape): void {
  const shape = 'architecture' in model ? routerShapeOf(model) : model;
  if (shape.numExperts === 0) {
    if (plan.interventions.length > 0) {
      const what = 'architecture' in model ? `this ${model.architecture} model` : 'this model';
      throw new RoutingModeError(
        `Interventions "${formatInterventions(plan.interventions)}" need a mixture-of-experts model, but ${what} is dense.`,
        'Remove the interventions, or load (or upcycle to) an MoE model.',
      );
    }
    return;
  }
  checkMode(plan.mode, shape.numExperts);
  const accepted: Accepted = { actions: new Map(), ablatedPerLayer: new Map() };
  for (const iv of plan.interventions) {
    const problem = checkIntervention(iv, shape, accepted);
    if (problem !== null && problem !== 'repeat') {
      throw new RoutingModeError(
        `Intervention ${formatInterventions([iv])} cannot be applied: ${problem.reason}.`,
        problem.hint,
      );
    }
  }
}

/**
 * Keeps the interventions this model can apply, in order, by validateRoutingPlan's rules; a later
 * one for an expert that already has one is dropped. One sentence per dropped intervention.
 */
export function fitInterventions(
  interventions: readonly Intervention[],
  shape: RouterShape,
): { kept: Intervention[]; notices: string[] } {
  const kept: Intervention[] = [];
  const notices: string[] = [];
  const accepted: Accepted = { actions: new Map(), ablatedPerLayer: new Map() };
  for (const iv of interventions) {
    const name = formatInterventions([iv]);
    if (shape.numExperts === 0) {
      notices.push(`Intervention ${name} was dropped: this model is dense, so it has no router to intervene on.`);
      continue;
    }
    const key = `${iv.layer}:${iv.expert}`;
    const before = accepted.actions.get(key);
    const problem = before ? 'repeat' : checkIntervention(iv, shape, accepted);
    if (problem === null) kept.push(iv);
    else if (problem === 'repeat')
      notices.push(`Intervention ${name} was dropped: L${iv.layer}E${iv.expert} already has an intervention.`);
    else notices.push(`Intervention ${name} was dropped: ${problem.reason}.`);
  }
  return { kept, notices };
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
    throw new RoutingModeError(
      'Every expert of a layer is ablated, so the router has nothing left to choose.',
      'Leave at least one expert of each layer un-ablated.',
    );
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
 * Route one token at one MoE layer (docs/routing.md). An ablated expert has p = 0. By default
 * (plan.ablation 'excluded') it is never chosen: topk:K with fewer than K live experts chooses the
 * live ones, and dense runs only the live ones. With plan.ablation 'zero-weight' (the PyTorch
 * reference, literally) it fills top-k slots no live expert can take and stays in dense, weight 0.
 */
export function routeToken(
  routerLogits: Float32Array,
  layer: number,
  moe: MoeSpec,
  plan: RoutingPlan,
  layerIv?: LayerInterventions,
): TokenRouting {
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
