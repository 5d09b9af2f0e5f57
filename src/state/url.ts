// The share link: the whole experiment in the URL fragment, with a schema version.
// Every key is whitelisted, typed (zod) and clamped; a bad, oversized or stale value falls back
// to its default and leaves a notice the page shows. Nothing here touches the DOM.
import { z } from 'zod';

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
}

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
};

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
} as const satisfies Record<keyof ShareState, string>;

const decimal = z.string().trim().regex(/^-?\d+(\.\d+)?$/, 'not a number').transform(Number);
const integer = z.string().trim().regex(/^-?\d+$/, 'not a whole number').transform(Number);
const routingString = z
  .string()
  .trim()
  .toLowerCase()
  .regex(/^(native|dense|topk:[1-9]\d{0,2}|threshold:\d{1,3}(\.\d{1,4})?)$/, 'not a routing mode');

const FIELDS = {
  // Model ids are built-in ids or same-site paths (/fixtures/...): letters, digits, . _ - /
  model: z.string().max(LIMITS.modelChars, 'too long').regex(/^[A-Za-z0-9._/-]*$/, 'has characters a model id never has').refine((s) => !s.includes('..'), 'climbs out of the site'),
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
} satisfies Record<keyof ShareState, z.ZodType>;

const NUMERIC_KEYS = ['k', 't', 'temperature', 'topP', 'seed', 'maxTokens', 'layer', 'token'] as const;

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
    params.set(KEYS[field], String(state[field]));
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

/**
 * Clamps the model-dependent fields once the model is known (k ≤ E, layer < MoE layers, token < tokens),
 * returning the fixed state and a notice per change.
 */
export function fitToModel(state: ShareState, model: { numExperts: number; numMoeLayers: number }): { state: ShareState; notices: string[] } {
  const notices: string[] = [];
  const next = { ...state };
  const E = Math.max(model.numExperts, 1);
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
