// The share link: the whole experiment in the URL fragment, with a schema version.
// Every field is declared once, in SHARE_FIELDS (key in the link, schema, default, label, whether a
// default is left out); the state type, the defaults, the whitelist, the notices, the clamping and
// the store's sanitising are all derived from that table. A bad, oversized or stale value falls back
// to its default and leaves a notice the page shows. Routing text is read and checked by the engine's
// routing vocabulary (src/engine/routing). Nothing here touches the DOM.
import { z } from 'zod';
import { isLensKey } from './lenses.ts';
import { isLocalModel, isRemoteSource } from './sources.ts';
import type { QuantScheme } from '../engine/types.ts';
import {
  fitInterventions as fitInterventionList,
  formatInterventions,
  formatPlanText,
  formatRoutingMode,
  parseInterventions,
  parsePlanText,
  type RouterShape,
} from '../engine/routing/index.ts';
import type { RoutingMode, RoutingPlan } from '../engine/types.ts';
import type { UpcycleRecipe } from '../worker/protocol.ts';

export type { UpcycleRecipe };

export const SCHEMA_VERSION = 1;

export const VIEWS = ['paths', 'probs', 'load'] as const;
export type ViewName = (typeof VIEWS)[number];

export const MODE_KINDS = ['native', 'dense', 'topk', 'threshold'] as const;
export type ModeKind = (typeof MODE_KINDS)[number];

/** Control groups a teacher can hide or lock through the link. */
export const CONTROL_NAMES = [
  'model',
  'prompt',
  'generate',
  'sampling',
  'routing',
  'interventions',
  'upcycle',
  'compare',
  'views',
  'export',
  'share',
  'tour',
  'lenses',
] as const;
export type ControlName = (typeof CONTROL_NAMES)[number];

/** Limits that are not one field's range. */
const TEXT_LIMITS = {
  promptChars: 2000,
  modelChars: 200,
  /** A fragment longer than this is not read at all (a 100 kB link is an attack or an accident). */
  fragmentChars: 12_000,
  /** Interventions in one list. */
  interventions: 64,
  /** Characters of one routing text ("topk:2|L1E3-,…"). */
  routingChars: 64 * 12 + 24,
} as const;

export const DEFAULT_PROMPT = 'The experts of a mixture';

// ---------------------------------------------------------------------------------------------
// Field kinds: each gives the schema that reads the link's text, how a value is written back, and
// how any value (from the UI, the link or a test) is made safe for the store.

interface Field<T> {
  /** The name in the fragment. */
  key: string;
  /** Reads the fragment's text; a failure is refused with its message. */
  schema: z.ZodType<T, string>;
  default: T;
  /** How a notice names it. */
  label: string;
  /** Left out of a link while it holds its default, so classroom settings do not lengthen every link. */
  omitWhenDefault: boolean;
  /** Numbers: the range a value is clamped to (with a notice when a link's value is out of it). */
  range?: readonly [number, number];
  /** Any value → a safe one; `current` is kept when the value is of the wrong kind. */
  sanitize(value: unknown, current: T): T;
  write(value: T): string;
}

interface Common<T> {
  key: string;
  label: string;
  default: T;
  omitWhenDefault?: boolean;
}

const decimalText = z
  .string()
  .trim()
  .regex(/^-?\d+(\.\d+)?$/, 'not a number')
  .transform(Number);
const integerText = z
  .string()
  .trim()
  .regex(/^-?\d+$/, 'not a whole number')
  .transform(Number);

export function clamp(value: number, [min, max]: readonly [number, number]): number {
  return Math.min(max, Math.max(min, value));
}

function numberField(
  o: Common<number> & { range: readonly [number, number]; integer: boolean },
): Field<number> & { range: readonly [number, number] } {
  return {
    ...o,
    omitWhenDefault: o.omitWhenDefault ?? false,
    schema: o.integer ? integerText : decimalText,
    sanitize: (v, current) => {
      const n = clamp(typeof v === 'number' && Number.isFinite(v) ? v : current, o.range);
      return o.integer ? Math.round(n) : n;
    },
    write: String,
  };
}

function flagField(o: Common<boolean>): Field<boolean> {
  return {
    ...o,
    omitWhenDefault: o.omitWhenDefault ?? false,
    schema: z.enum(['0', '1']).transform((v) => v === '1'),
    sanitize: (v, current) => (typeof v === 'boolean' ? v : current),
    write: (v) => (v ? '1' : '0'),
  };
}

function choiceField<T extends string>(o: Common<T> & { choices: readonly [T, ...T[]] }): Field<T> {
  return {
    ...o,
    omitWhenDefault: o.omitWhenDefault ?? false,
    schema: z.enum(o.choices) as unknown as z.ZodType<T, string>,
    sanitize: (v, current) => ((o.choices as readonly unknown[]).includes(v) ? (v as T) : current),
    write: String,
  };
}

/** A text field; `tidy` makes any string safe (e.g. cuts it to length). */
function textField(
  o: Common<string> & { schema: z.ZodType<string, string>; tidy?: (s: string) => string },
): Field<string> {
  const tidy = o.tidy ?? ((s: string) => s);
  return {
    ...o,
    omitWhenDefault: o.omitWhenDefault ?? false,
    sanitize: (v, current) => (typeof v === 'string' ? tidy(v) : current),
    write: String,
  };
}

function controlListField(o: Common<ControlName[]>): Field<ControlName[]> {
  const known = CONTROL_NAMES as readonly string[];
  return {
    ...o,
    omitWhenDefault: o.omitWhenDefault ?? false,
    schema: z
      .string()
      .transform((s) =>
        s
          .split(',')
          .map((x) => x.trim())
          .filter((x) => x !== ''),
      )
      .refine(
        (names) => names.every((n) => known.includes(n)),
        `names a control that does not exist (known: ${CONTROL_NAMES.join(', ')})`,
      )
      .transform((names) => [...new Set(names)] as ControlName[]),
    sanitize: (v, current) => (Array.isArray(v) ? (v.filter((n) => known.includes(n)) as ControlName[]) : current),
    write: String,
  };
}

/** Routing text ("topk:1|L1E3-"), read by the engine's parser and written back in its canonical form. */
const routingText = z
  .string()
  .trim()
  .max(TEXT_LIMITS.routingChars, 'too long')
  .transform((text, ctx) => {
    try {
      const plan = parsePlanText(text);
      if (plan.interventions.length > TEXT_LIMITS.interventions)
        throw new Error(`more than ${TEXT_LIMITS.interventions} interventions`);
      return formatPlanText(plan);
    } catch (error) {
      ctx.addIssue({
        code: 'custom',
        message: `not a routing mode: ${error instanceof Error ? error.message : String(error)}`,
      });
      return z.NEVER;
    }
  });

/** "L1E3-,L0E2+": the engine's intervention list, canonical, at most TEXT_LIMITS.interventions. */
const interventionText = z
  .string()
  .trim()
  .max(TEXT_LIMITS.interventions * 12, 'too long')
  .transform((text, ctx) => {
    try {
      const list = parseInterventions(text);
      if (list.length > TEXT_LIMITS.interventions) throw new Error(`more than ${TEXT_LIMITS.interventions} of them`);
      return formatInterventions(list);
    } catch (error) {
      ctx.addIssue({
        code: 'custom',
        message: `not a list of interventions such as L1E3-,L0E2+: ${error instanceof Error ? error.message : String(error)}`,
      });
      return z.NEVER;
    }
  });

/** A built-in id, a same-site path (/fixtures/...), or a remote source (hf:ORG/NAME[@REV], an https:// address); never a local file. */
const modelIdText = z
  .string()
  .max(TEXT_LIMITS.modelChars, 'too long')
  .refine((s) => isRemoteSource(s) || /^[A-Za-z0-9._/-]*$/.test(s), 'has characters a model id never has')
  .refine((s) => isRemoteSource(s) || !s.includes('..'), 'climbs out of the site');

const RECIPE = /^E([1-9]\d{0,2})G([1-9]\d?)K([1-9]\d{0,2})S(\d{1,9})(?:D(100|[1-9]?\d))?$/;

// ---------------------------------------------------------------------------------------------
// The table: every field of a link, once. Order = order in the link.

export const SHARE_FIELDS = {
  /** Built-in model id or same-site checkpoint path (/fixtures/...): letters, digits, . _ - / */
  model: textField({ key: 'model', label: 'model', default: '', schema: modelIdText }),
  prompt: textField({
    key: 'prompt',
    label: 'prompt',
    default: DEFAULT_PROMPT,
    schema: z.string().max(TEXT_LIMITS.promptChars, `longer than ${TEXT_LIMITS.promptChars} characters`),
    tidy: (s) => s.slice(0, TEXT_LIMITS.promptChars),
  }),
  /** The routing the text is viewed (scored) under: mode + k or t. */
  mode: choiceField<ModeKind>({ key: 'mode', label: 'routing mode', default: 'native', choices: MODE_KINDS }),
  k: numberField({ key: 'k', label: 'top-k', default: 2, range: [1, 256], integer: true }),
  t: numberField({ key: 't', label: 'threshold', default: 1, range: [0, 256], integer: false }),
  /** The routing the text was generated under (what a link replays), as routing text. */
  gen: textField({ key: 'gen', label: 'generation routing', default: 'native', schema: routingText }),
  temperature: numberField({ key: 'temp', label: 'temperature', default: 0.8, range: [0, 2], integer: false }),
  topP: numberField({ key: 'topp', label: 'top-p', default: 0.95, range: [0.01, 1], integer: false }),
  seed: numberField({ key: 'seed', label: 'seed', default: 42, range: [0, 4294967295], integer: true }),
  maxTokens: numberField({ key: 'max', label: 'maximum tokens', default: 24, range: [1, 512], integer: true }),
  layer: numberField({ key: 'layer', label: 'layer', default: 0, range: [0, 255], integer: true }),
  token: numberField({ key: 'tok', label: 'selected token', default: 0, range: [0, 8191], integer: true }),
  view: choiceField<ViewName>({ key: 'view', label: 'view', default: 'paths', choices: VIEWS }),
  /** Interventions on the router, canonical "L1E3-,L0E2+" (ablate -, force +); '' for none. */
  iv: textField({ key: 'iv', label: 'interventions', default: '', omitWhenDefault: true, schema: interventionText }),
  /** Two panes on the same text. */
  compare: flagField({ key: 'cmp', label: 'compare switch', default: false, omitWhenDefault: true }),
  /** The second pane's model ('' = the same as the first). */
  bModel: textField({
    key: 'bmodel',
    label: 'second pane model',
    default: '',
    omitWhenDefault: true,
    schema: modelIdText,
  }),
  /** The second pane's routing text (may carry interventions). */
  bRouting: textField({
    key: 'bmode',
    label: 'second pane routing',
    default: 'native',
    omitWhenDefault: true,
    schema: routingText,
  }),
  /** Quantization of the main pane's weights on load: as stored, int8 or 4-bit group-wise (src/engine/format/quant.ts). */
  quant: choiceField<QuantScheme>({
    key: 'quant',
    label: 'quantization',
    default: 'none',
    omitWhenDefault: true,
    choices: ['none', 'q8', 'q4'],
  }),
  /** Upcycle the model in the browser first: "E8G1K2S0" = 8 experts, granularity 1, top-2, router seed 0; '' = no. */
  upcycle: textField({
    key: 'up',
    label: 'upcycling recipe',
    default: '',
    omitWhenDefault: true,
    schema: z
      .string()
      .trim()
      .toUpperCase()
      .refine((s) => s === '' || RECIPE.test(s), 'not an upcycling recipe such as E8G1K2S0 or E8G1K2S0D50'),
  }),
  /** Large type and high contrast for a projector. */
  presenter: flagField({ key: 'pres', label: 'presenter switch', default: false, omitWhenDefault: true }),
  /** No chrome (for an iframe). */
  embed: flagField({ key: 'embed', label: 'embed switch', default: false, omitWhenDefault: true }),
  /** Teacher controls: control groups hidden, or shown but locked. */
  hide: controlListField({ key: 'hide', label: 'hidden controls', default: [], omitWhenDefault: true }),
  lock: controlListField({ key: 'lock', label: 'locked controls', default: [], omitWhenDefault: true }),
  /** Guided tour step shown (-1: none). */
  step: numberField({
    key: 'step',
    label: 'tour step',
    default: -1,
    range: [-1, 99],
    integer: true,
    omitWhenDefault: true,
  }),
};

type Fields = typeof SHARE_FIELDS;
type FieldName = keyof Fields;
type ValueOf<F> = F extends Field<infer T> ? T : never;

/** Everything a link reproduces, derived from SHARE_FIELDS. */
export type ShareState = { [K in FieldName]: ValueOf<Fields[K]> };

const FIELD_NAMES = Object.keys(SHARE_FIELDS) as FieldName[];
/** Loosely typed view of the table, for the loops below. */
const field = (name: FieldName): Field<unknown> => SHARE_FIELDS[name] as unknown as Field<unknown>;

export const DEFAULT_SHARE_STATE: ShareState = Object.fromEntries(
  FIELD_NAMES.map((name) => [name, field(name).default]),
) as ShareState;

type RangedName = { [K in FieldName]: Fields[K] extends { range: readonly [number, number] } ? K : never }[FieldName];
/** Every limit: the text limits, and each numeric field's range (derived from the table). */
export const LIMITS = {
  ...TEXT_LIMITS,
  ...(Object.fromEntries(FIELD_NAMES.filter((n) => field(n).range).map((n) => [n, field(n).range])) as Record<
    RangedName,
    readonly [number, number]
  >),
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

/** Settings from any source (UI, link, test) pass through the same whitelist and limits. */
export function sanitizeShare(current: ShareState, patch: Partial<ShareState>): ShareState {
  const next = { ...current };
  const out = next as Record<FieldName, unknown>;
  for (const name of FIELD_NAMES) {
    if (!(name in patch)) continue;
    out[name] = field(name).sanitize((patch as Record<string, unknown>)[name], current[name]);
  }
  return next;
}

/** Reads a fragment ("#v=1&prompt=..." or without the '#'). Never throws. */
export function parseShareFragment(fragment: string): ParsedShare {
  const state: ShareState = { ...DEFAULT_SHARE_STATE };
  const present = new Set<keyof ShareState>();
  const notices: string[] = [];
  const raw = fragment.startsWith('#') ? fragment.slice(1) : fragment;
  if (raw === '') return { state, present, notices };
  if (raw.length > LIMITS.fragmentChars) {
    notices.push(
      `The link is ${raw.length} characters long, more than the ${LIMITS.fragmentChars} a share link can be, so it was ignored and the defaults are used.`,
    );
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
  const known = new Set<string>(['v', ...FIELD_NAMES.map((n) => field(n).key)]);
  for (const key of new Set(params.keys())) {
    // The Lenses view reads its own keys (src/state/lenses.ts).
    if (!known.has(key) && !isLensKey(key))
      notices.push(`The link parameter ${quote(key)} is unknown and was ignored.`);
  }
  for (const name of FIELD_NAMES) {
    const spec = field(name);
    const value = params.get(spec.key);
    if (value === null) continue;
    const result = spec.schema.safeParse(value);
    if (!result.success) {
      const reason = result.error.issues[0]?.message ?? 'invalid';
      notices.push(`The link's ${spec.label} ${quote(value)} was refused (${reason}); the default is used.`);
      continue;
    }
    let parsed = result.data;
    if (spec.range) {
      const limited = clamp(parsed as number, spec.range);
      if (limited !== parsed)
        notices.push(`The link's ${spec.label} ${quote(value)} is out of range and was clamped to ${limited}.`);
      parsed = limited;
    }
    (state as Record<FieldName, unknown>)[name] = parsed;
    present.add(name);
  }
  return { state, present, notices };
}

/** The fragment for a state (without '#'); keys in a fixed order so equal states give equal links. */
export function formatShareFragment(state: ShareState): string {
  const params = new URLSearchParams();
  params.set('v', String(SCHEMA_VERSION));
  for (const name of FIELD_NAMES) {
    const spec = field(name);
    const value = state[name];
    if (spec.omitWhenDefault && String(value) === String(spec.default)) continue;
    // A model from the reader's disk cannot travel: the link opens without it.
    if ((name === 'model' || name === 'bModel') && isLocalModel(String(value))) continue;
    params.set(spec.key, spec.write(value));
  }
  return params.toString();
}

// ---------------------------------------------------------------------------------------------
// Share state ⇄ the engine's routing plan

/** The routing mode the mode fields of a state ask for. */
export function modeOf(state: Pick<ShareState, 'mode' | 'k' | 't'>): RoutingMode {
  switch (state.mode) {
    case 'topk':
      return { kind: 'topk', k: state.k };
    case 'threshold':
      return { kind: 'threshold', t: state.t };
    default:
      return { kind: state.mode };
  }
}

/** The mode as text ("topk:3"). */
export function routingOf(state: Pick<ShareState, 'mode' | 'k' | 't'>): string {
  return formatRoutingMode(modeOf(state));
}

/** The plan the engine runs for a state: its mode and its interventions. */
export function planOf(state: Pick<ShareState, 'mode' | 'k' | 't' | 'iv'>): RoutingPlan {
  return { mode: modeOf(state), interventions: parseInterventions(state.iv) };
}

/** The plan as routing text ("topk:2|L1E3-"): how the page shows it and the link stores `gen`. */
export function planTextOf(state: Pick<ShareState, 'mode' | 'k' | 't' | 'iv'>): string {
  return formatPlanText(planOf(state));
}

/** Upcycling recipe "E8G1K2S0" ⇄ numbers. */
export function parseRecipe(recipe: string): UpcycleRecipe | null {
  const m = RECIPE.exec(recipe.toUpperCase());
  if (!m) return null;
  const parsed: UpcycleRecipe = {
    experts: Number(m[1]),
    granularity: Number(m[2]),
    topK: Number(m[3]),
    seed: Number(m[4]),
  };
  const dropPercent = m[5] === undefined ? 0 : Number(m[5]);
  if (dropPercent > 0) parsed.drop = dropPercent / 100;
  return parsed;
}

export function formatRecipe(r: UpcycleRecipe): string {
  const dropPercent = Math.round((r.drop ?? 0) * 100);
  return `E${r.experts}G${r.granularity}K${r.topK}S${r.seed}${dropPercent > 0 ? `D${dropPercent}` : ''}`;
}

/**
 * Clamps the model-dependent fields once the model is known (k ≤ E, layer < MoE layers, interventions
 * the model can apply), returning the fixed state and a notice per change.
 */
export function fitToModel(
  state: ShareState,
  model: { numExperts: number; numMoeLayers: number; moeLayers?: number[] },
): { state: ShareState; notices: string[] } {
  const notices: string[] = [];
  const next = { ...state };
  if (next.iv && model.moeLayers) {
    const fitted = fitInterventions(next.iv, { numExperts: model.numExperts, moeLayers: model.moeLayers });
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
  const genMode = parsePlanText(next.gen).mode;
  if ((genMode.kind === 'topk' && genMode.k > E) || (genMode.kind === 'threshold' && genMode.t > E)) {
    notices.push(`The generation routing ${next.gen} does not fit a model with ${E} experts; native routing is used.`);
    next.gen = 'native';
  }
  const maxLayer = Math.max(model.numMoeLayers - 1, 0);
  if (next.layer > maxLayer) {
    notices.push(
      `Layer ${next.layer} does not exist (the model has ${model.numMoeLayers} MoE layers); layer ${maxLayer} is shown.`,
    );
    next.layer = maxLayer;
  }
  return { state: next, notices };
}

/** An intervention list (text) fitted to a model by the engine's rules: what is kept, and a notice per dropped one. */
export function fitInterventions(iv: string, shape: RouterShape): { iv: string; notices: string[] } {
  const { kept, notices } = fitInterventionList(parseInterventions(iv), shape);
  return { iv: formatInterventions(kept), notices };
}
