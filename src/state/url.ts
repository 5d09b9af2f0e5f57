// The share link: the whole experiment in the URL fragment, with a schema version.
// Every key is whitelisted, typed (zod) and clamped; a bad, oversized or stale value falls back
// to its default and leaves a notice the page shows. Nothing here touches the DOM.
import { z } from 'zod';
import { isLocalModel, isRemoteSource } from './sources.ts';

export const SCHEMA_VERSION = 1;

export const VIEWS = ['paths', 'probs', 'load'] as const;
export type ViewName = (typeof VIEWS)[number];

export const MODE_KINDS = ['native', 'dense', 'topk', 'threshold'] as const;
export type ModeKind = (typeof MODE_KINDS)[number];

/** Everything a link reproduces. `gen` is the routing the text was generated under; `mode` (+k, t) the one it is viewed under. */
export interface ShareState {
  model: string;
  prompt: string;
  mode: ModeKind;
  k: number;
  t: number;
  gen: string;
  temperature: number;
  topP: number;
  seed: number;
  maxTokens: number;
  layer: number;
  token: number;
  view: ViewName;
  /** Interventions on the router, canonical "L1E3-,L0E2+" (ablate -, force +); '' for none. */
  iv: string;
  /** Two panes on the same text. */
  compare: boolean;
  /** The second pane's model ('' = the same as the first) and routing string (may carry interventions). */
  bModel: string;
  bRouting: string;
  /** Upcycle the model in the browser first: "E8G1K2S0" = 8 experts, granularity 1, top-2, router seed 0; '' = no. */
  upcycle: string;
  /** Large type and high contrast for a projector. */
  presenter: boolean;
  /** No chrome (for an iframe). */
  embed: boolean;
  /** Teacher controls: control groups hidden, or shown but locked. */
  hide: ControlName[];
  lock: ControlName[];
  /** Guided tour step shown (-1: none). */
  step: number;
}

/** Control groups a teacher can hide or lock through the link. */
export const CONTROL_NAMES = ['model', 'prompt', 'generate', 'sampling', 'routing', 'interventions', 'upcycle', 'compare', 'views', 'export', 'share', 'tour'] as const;
export type ControlName = (typeof CONTROL_NAMES)[number];

export const LIMITS = {
  promptChars: 2000,
  modelChars: 200,
  /** A fragment longer than this is not read at all (a 100 kB link is an attack or an accident). */
  fragmentChars: 12_000,
  k: [1, 256],
  t: [0, 256],
  temperature: [0, 2],
  topP: [0.01, 1],
  seed: [0, 4294967295],
  maxTokens: [1, 512],
  layer: [0, 255],
  token: [0, 8191],
  step: [-1, 99],
  interventions: 64,
} as const;

export const DEFAULT_PROMPT = 'The experts of a mixture';

export const DEFAULT_SHARE_STATE: ShareState = {
  model: '',
  prompt: DEFAULT_PROMPT,
  mode: 'native',
  k: 2,
  t: 1,
  gen: 'native',
  temperature: 0.8,
  topP: 0.95,
  seed: 42,
  maxTokens: 24,
  layer: 0,
  token: 0,
  view: 'paths',
  iv: '',
  compare: false,
  bModel: '',
  bRouting: 'native',
  upcycle: '',
  presenter: false,
  embed: false,
  hide: [],
  lock: [],
  step: -1,
};

/** Keys left out of a link while they hold their default, so classroom settings do not lengthen every link. */
const OMIT_WHEN_DEFAULT: readonly (keyof ShareState)[] = ['iv', 'compare', 'bModel', 'bRouting', 'upcycle', 'presenter', 'embed', 'hide', 'lock', 'step'];

/** Short names in the fragment; the whitelist. */
const KEYS = {
  model: 'model',
  prompt: 'prompt',
  mode: 'mode',
  k: 'k',
  t: 't',
  gen: 'gen',
  temperature: 'temp',
  topP: 'topp',
  seed: 'seed',
  maxTokens: 'max',
  layer: 'layer',
  token: 'tok',
  view: 'view',
  iv: 'iv',
  compare: 'cmp',
  bModel: 'bmodel',
  bRouting: 'bmode',
  upcycle: 'up',
  presenter: 'pres',
  embed: 'embed',
  hide: 'hide',
  lock: 'lock',
  step: 'step',
} as const satisfies Record<keyof ShareState, string>;

const decimal = z.string().trim().regex(/^-?\d+(\.\d+)?$/, 'not a number').transform(Number);
const integer = z.string().trim().regex(/^-?\d+$/, 'not a whole number').transform(Number);
const MODE_PATTERN = '(native|dense|topk:[1-9]\\d{0,2}|threshold:\\d{1,3}(\\.\\d{1,4})?)';
const IV_PATTERN = 'L\\d{1,3}E\\d{1,3}[+-]';
/** "L1E3-,L0E2+": at most LIMITS.interventions chips. */
const interventionList = z
  .string()
  .trim()
  .toUpperCase()
  .regex(new RegExp(`^(${IV_PATTERN}(,${IV_PATTERN}){0,${LIMITS.interventions - 1}})?$`), 'not a list of interventions such as L1E3-,L0E2+');
/** A routing mode, optionally with interventions after '|': "topk:1|L1E3-". */
const routingString = z
  .string()
  .trim()
  .regex(new RegExp(`^${MODE_PATTERN}(\\|${IV_PATTERN}(,${IV_PATTERN}){0,${LIMITS.interventions - 1}})?$`, 'i'), 'not a routing mode')
  .transform((s) => {
    const [mode, iv] = s.split('|');
    return iv ? `${mode.toLowerCase()}|${iv.toUpperCase()}` : mode.toLowerCase();
  });
const flag = z.enum(['0', '1']).transform((v) => v === '1');
const controlList = z
  .string()
  .transform((s) => s.split(',').map((x) => x.trim()).filter((x) => x !== ''))
  .refine((names) => names.every((n) => (CONTROL_NAMES as readonly string[]).includes(n)), `names a control that does not exist (known: ${CONTROL_NAMES.join(', ')})`)
  .transform((names) => [...new Set(names)] as ControlName[]);
/** A built-in id, a same-site path (/fixtures/...), or a remote source (hf:ORG/NAME[@REV], an https:// address); never a local file. */
const modelId = z
  .string()
  .max(LIMITS.modelChars, 'too long')
  .refine((s) => isRemoteSource(s) || /^[A-Za-z0-9._/-]*$/.test(s), 'has characters a model id never has')
  .refine((s) => isRemoteSource(s) || !s.includes('..'), 'climbs out of the site');

const FIELDS = {
  // Model ids are built-in ids or same-site paths (/fixtures/...): letters, digits, . _ - /
  model: modelId,
  prompt: z.string().max(LIMITS.promptChars, `longer than ${LIMITS.promptChars} characters`),
  mode: z.enum(MODE_KINDS),
  k: integer,
  t: decimal,
  gen: routingString,
  temperature: decimal,
  topP: decimal,
  seed: integer,
  maxTokens: integer,
  layer: integer,
  token: integer,
  view: z.enum(VIEWS),
  iv: interventionList,
  compare: flag,
  bModel: modelId,
  bRouting: routingString,
  upcycle: z.string().trim().toUpperCase().regex(/^(E[1-9]\d{0,2}G[1-9]\d?K[1-9]\d{0,2}S\d{1,9})?$/, 'not an upcycling recipe such as E8G1K2S0'),
  presenter: flag,
  embed: flag,
  hide: controlList,
  lock: controlList,
  step: integer,
} satisfies Record<keyof ShareState, z.ZodType>;

const NUMERIC_KEYS = ['k', 't', 'temperature', 'topP', 'seed', 'maxTokens', 'layer', 'token', 'step'] as const;

const LABEL: Record<keyof ShareState, string> = {
  model: 'model',
  prompt: 'prompt',
  mode: 'routing mode',
  k: 'top-k',
  t: 'threshold',
  gen: 'generation routing',
  temperature: 'temperature',
  topP: 'top-p',
  seed: 'seed',
  maxTokens: 'maximum tokens',
  layer: 'layer',
  token: 'selected token',
  view: 'view',
  iv: 'interventions',
  compare: 'compare switch',
  bModel: 'second pane model',
  bRouting: 'second pane routing',
  upcycle: 'upcycling recipe',
  presenter: 'presenter switch',
  embed: 'embed switch',
  hide: 'hidden controls',
  lock: 'locked controls',
  step: 'tour step',
};

export interface ParsedShare {
  state: ShareState;
  /** Which keys the link actually set (others are defaults). */
  present: Set<keyof ShareState>;
  /** One sentence per value that was refused, clamped or ignored. */
  notices: string[];
}

/** Shows a refused value in a notice without letting a huge or odd value flood the page. */
function quote(value: string): string {
  const short = value.length > 40 ? `${value.slice(0, 40)}…` : value;
  return JSON.stringify(short);
}

export function clamp(value: number, [min, max]: readonly [number, number]): number {
  return Math.min(max, Math.max(min, value));
}

/** Reads a fragment ("#v=1&prompt=..." or without the '#'). Never throws. */
export function parseShareFragment(fragment: string): ParsedShare {
  const state: ShareState = { ...DEFAULT_SHARE_STATE };
  const present = new Set<keyof ShareState>();
  const notices: string[] = [];
  const raw = fragment.startsWith('#') ? fragment.slice(1) : fragment;
  if (raw === '') return { state, present, notices };
  if (raw.length > LIMITS.fragmentChars) {
    notices.push(`The link is ${raw.length} characters long, more than the ${LIMITS.fragmentChars} a share link can be, so it was ignored and the defaults are used.`);
    return { state, present, notices };
  }
  let params: URLSearchParams;
  try {
    params = new URLSearchParams(raw);
  } catch {
    notices.push('The link could not be read, so the defaults are used.');
    return { state, present, notices };
  }
  const version = params.get('v');
  if (version !== String(SCHEMA_VERSION)) {
    notices.push(
      version === null
        ? 'The link has no schema version (v=1), so its settings were ignored and the defaults are used.'
        : `The link uses schema version ${quote(version)}, but this page reads version ${SCHEMA_VERSION}; its settings were ignored and the defaults are used.`,
    );
    return { state, present, notices };
  }
  const known = new Set<string>(['v', ...Object.values(KEYS)]);
  for (const key of new Set(params.keys())) {
    if (!known.has(key)) notices.push(`The link parameter ${quote(key)} is unknown and was ignored.`);
  }
  for (const field of Object.keys(KEYS) as (keyof ShareState)[]) {
    const value = params.get(KEYS[field]);
    if (value === null) continue;
    const result = FIELDS[field].safeParse(value);
    if (!result.success) {
      const reason = result.error.issues[0]?.message ?? 'invalid';
      notices.push(`The link's ${LABEL[field]} ${quote(value)} was refused (${reason}); the default is used.`);
      continue;
    }
    let parsed = result.data as ShareState[typeof field];
    if ((NUMERIC_KEYS as readonly string[]).includes(field)) {
      const numeric = parsed as number;
      const limited = clamp(numeric, LIMITS[field as (typeof NUMERIC_KEYS)[number]]);
      if (limited !== numeric) notices.push(`The link's ${LABEL[field]} ${quote(value)} is out of range and was clamped to ${limited}.`);
      parsed = limited as ShareState[typeof field];
    }
    (state as unknown as Record<string, unknown>)[field] = parsed;
    present.add(field);
  }
  return { state, present, notices };
}

/** The fragment for a state (without '#'); keys in a fixed order so equal states give equal links. */
export function formatShareFragment(state: ShareState): string {
  const params = new URLSearchParams();
  params.set('v', String(SCHEMA_VERSION));
  for (const field of Object.keys(KEYS) as (keyof ShareState)[]) {
    const value = state[field];
    if (OMIT_WHEN_DEFAULT.includes(field) && String(value) === String(DEFAULT_SHARE_STATE[field])) continue;
    // A model from the reader's disk cannot travel: the link opens without it.
    if ((field === 'model' || field === 'bModel') && isLocalModel(String(value))) continue;
    params.set(KEYS[field], typeof value === 'boolean' ? (value ? '1' : '0') : String(value));
  }
  return params.toString();
}

/** The routing string the engine reads for the mode fields of a state. */
export function routingOf(state: Pick<ShareState, 'mode' | 'k' | 't'>): string {
  switch (state.mode) {
    case 'topk':
      return `topk:${state.k}`;
    case 'threshold':
      return `threshold:${state.t}`;
    default:
      return state.mode;
  }
}

/** The routing string with the interventions, as the worker reads it: "topk:2|L1E3-". */
export function planOf(state: Pick<ShareState, 'mode' | 'k' | 't' | 'iv'>): string {
  return withInterventions(routingOf(state), state.iv);
}

export function withInterventions(routing: string, iv: string): string {
  return iv ? `${routing}|${iv}` : routing;
}

/** Splits "topk:2|L1E3-" into its mode and interventions. */
export function splitPlan(plan: string): { mode: string; iv: string } {
  const [mode, iv = ''] = plan.split('|');
  return { mode, iv };
}

/** Upcycling recipe "E8G1K2S0" ⇄ numbers. */
export interface UpcycleRecipe {
  experts: number;
  granularity: number;
  topK: number;
  seed: number;
}

export function parseRecipe(recipe: string): UpcycleRecipe | null {
  const m = /^E(\d+)G(\d+)K(\d+)S(\d+)$/i.exec(recipe);
  return m ? { experts: Number(m[1]), granularity: Number(m[2]), topK: Number(m[3]), seed: Number(m[4]) } : null;
}

export function formatRecipe(r: UpcycleRecipe): string {
  return `E${r.experts}G${r.granularity}K${r.topK}S${r.seed}`;
}

/**
 * Clamps the model-dependent fields once the model is known (k ≤ E, layer < MoE layers, token < tokens),
 * returning the fixed state and a notice per change.
 */
export function fitToModel(state: ShareState, model: { numExperts: number; numMoeLayers: number; moeLayers?: number[] }): { state: ShareState; notices: string[] } {
  const notices: string[] = [];
  const next = { ...state };
  if (next.iv && model.moeLayers) {
    const fitted = fitInterventions(next.iv, model.numExperts, model.moeLayers);
    notices.push(...fitted.notices);
    next.iv = fitted.iv;
  }
  // A dense model has no router: routing settings do not apply to it, so they are kept as they are
  // (for the MoE model picked next) and nothing is reported.
  if (model.numExperts === 0) return { state: next, notices };
  const E = model.numExperts;
  if (next.k > E) {
    notices.push(`Top-k ${next.k} is more than the model's ${E} experts; it was set to ${E}.`);
    next.k = E;
  }
  if (next.t > E) {
    notices.push(`Threshold ${next.t} is above E = ${E}, where no expert can pass; it was set to ${E}.`);
    next.t = E;
  }
  const genMatch = /^(topk|threshold):(.+)$/.exec(next.gen);
  if (genMatch && Number(genMatch[2]) > E) {
    notices.push(`The generation routing ${next.gen} does not fit a model with ${E} experts; native routing is used.`);
    next.gen = 'native';
  }
  const maxLayer = Math.max(model.numMoeLayers - 1, 0);
  if (next.layer > maxLayer) {
    notices.push(`Layer ${next.layer} does not exist (the model has ${model.numMoeLayers} MoE layers); layer ${maxLayer} is shown.`);
    next.layer = maxLayer;
  }
  return { state: next, notices };
}

/** Keeps the chips this model can apply (an MoE layer, an existing expert, one action per expert); a notice per dropped chip. */
export function fitInterventions(iv: string, numExperts: number, moeLayers: number[]): { iv: string; notices: string[] } {
  const notices: string[] = [];
  const kept = new Map<string, string>();
  const ablatedPerLayer = new Map<number, number>();
  for (const chip of iv.split(',').filter((c) => c !== '')) {
    const m = /^L(\d+)E(\d+)([+-])$/.exec(chip);
    if (!m) continue;
    const layer = Number(m[1]);
    const expert = Number(m[2]);
    const key = `L${layer}E${expert}`;
    if (!moeLayers.includes(layer)) {
      notices.push(`Intervention ${chip} was dropped: layer ${layer} has no router in this model (MoE layers: ${moeLayers.join(', ') || 'none'}).`);
    } else if (expert >= numExperts) {
      notices.push(`Intervention ${chip} was dropped: this model has experts 0..${numExperts - 1}.`);
    } else if (kept.has(key)) {
      notices.push(`Intervention ${chip} was dropped: ${key} already has an intervention.`);
    } else if (m[3] === '-' && (ablatedPerLayer.get(layer) ?? 0) + 1 >= numExperts) {
      notices.push(`Intervention ${chip} was dropped: it would ablate every expert of layer ${layer}.`);
    } else {
      if (m[3] === '-') ablatedPerLayer.set(layer, (ablatedPerLayer.get(layer) ?? 0) + 1);
      kept.set(key, chip);
    }
  }
  return { iv: [...kept.values()].join(','), notices };
}
