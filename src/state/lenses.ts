// The Lenses view's state: its settings (what the share link carries), the job running in the
// worker, and its result; the link schema of its fields; the rows each lens exports. Plain data,
// no DOM: the view (src/ui/LensesPanel.tsx) and tests read it the same way.
import { z } from 'zod';
import { formatPlanText, parsePlanText } from '../engine/routing/index.ts';
import { createStore } from 'zustand/vanilla';
import {
  agreementTable,
  coactivationTable,
  concentrationTable,
  domainTable,
  loadTable,
  localityTable,
  tableToCsv,
  tableToObjects,
  tradeoffTable,
  vocabTable,
  type LensTable,
} from '../engine/lens/index.ts';
import type { LensJobResult, LensJobSpec, LensResponse, LensSide } from '../worker/lensJobs.ts';

export const LENS_NAMES = ['domain', 'vocab', 'coactivation', 'locality', 'load', 'tradeoff', 'agreement'] as const;
export type LensName = (typeof LENS_NAMES)[number];

export const LENS_TITLE: Record<LensName, string> = {
  domain: 'Domain specialisation',
  vocab: 'Vocabulary specialisation',
  coactivation: 'Co-activation',
  locality: 'Locality',
  load: 'Load balance',
  tradeoff: 'Sparsity trade-off',
  agreement: 'Agreement of two runs',
};

/** The built-in text set (public/eval/NAME.txt), one domain per file. */
export const BUILT_IN_TEXTS = ['english', 'german', 'python', 'arithmetic'] as const;

export interface PastedText {
  name: string;
  text: string;
}

export interface LensSettings {
  /** Model id (built-in id or same-site fixture path); '' = the page's model. */
  model: string;
  /** Routing plan string of the first run: "native", "topk:1", "threshold:1|L1E3-". */
  routing: string;
  /** Run a second time and compare. */
  compare: boolean;
  /** The second run's model ('' = the same model) and routing. */
  compareModel: string;
  compareRouting: string;
  /** Which texts: the built-in set (by name) or texts the person pasted or dropped. */
  source: 'builtin' | 'pasted';
  builtin: string[];
  pasted: PastedText[];
  /** Tokens analysed per text. */
  maxTokens: number;
  /** Run the sparsity trade-off sweep (top-k 1…E−1, thresholds, dense). */
  tradeoff: boolean;
  /** Position in the MoE layers of the layer the per-layer lenses show. */
  layer: number;
  /** The lens a link points at ('' none). */
  focus: LensName | '';
}

export const DEFAULT_LENS_SETTINGS: LensSettings = {
  model: '',
  routing: 'native',
  compare: false,
  compareModel: '',
  compareRouting: 'native',
  source: 'builtin',
  builtin: [...BUILT_IN_TEXTS],
  pasted: [],
  maxTokens: 256,
  tradeoff: true,
  layer: 0,
  focus: '',
};

export const LENS_LIMITS = {
  maxTokens: [8, 4096],
  layer: [0, 255],
  texts: 8,
  nameChars: 40,
  /** Pasted text a link may carry, all texts together (the whole link stays under 12 000 characters). */
  linkTextChars: 4000,
  /** The same after URL encoding. */
  linkEncodedChars: 8000,
} as const;

/** Short names in the fragment; every one starts with "lens" so the page's parser leaves them to this one. */
const KEYS = {
  focus: 'lens',
  model: 'lensmodel',
  routing: 'lensmode',
  compare: 'lenscmp',
  compareModel: 'lensbmodel',
  compareRouting: 'lensbmode',
  builtin: 'lenstexts',
  pasted: 'lenstext',
  maxTokens: 'lensmax',
  tradeoff: 'lenssweep',
  layer: 'lenslayer',
} as const;

const KEY_SET = new Set<string>(Object.values(KEYS));

/** Whether a fragment key belongs to the Lenses view (the page's share-link parser skips these). */
export function isLensKey(key: string): boolean {
  return KEY_SET.has(key);
}

const LABEL: Record<keyof typeof KEYS, string> = {
  focus: 'lens',
  model: 'lens model',
  routing: 'lens routing',
  compare: 'lens comparison switch',
  compareModel: 'lens second model',
  compareRouting: 'lens second routing',
  builtin: 'lens texts',
  pasted: 'lens pasted text',
  maxTokens: 'lens tokens per text',
  tradeoff: 'lens trade-off switch',
  layer: 'lens layer',
};

/** A routing plan in the engine's one vocabulary (parsePlanText), written back in its canonical form. */
const routing = z
  .string()
  .trim()
  .max(2000, 'too long')
  .transform((text, ctx) => {
    try {
      return formatPlanText(parsePlanText(text));
    } catch {
      ctx.addIssue({ code: 'custom', message: 'not a routing mode such as native, topk:1, threshold:1 or dense' });
      return z.NEVER;
    }
  });
const modelId = z
  .string()
  .max(200, 'too long')
  .regex(/^[A-Za-z0-9._/-]*$/, 'has characters a model id never has')
  .refine((s) => !s.includes('..'), 'climbs out of the site');
const integer = z
  .string()
  .trim()
  .regex(/^-?\d+$/, 'not a whole number')
  .transform(Number);
const flag = z.enum(['0', '1']).transform((v) => v === '1');
const textName = z
  .string()
  .trim()
  .min(1, 'has no name')
  .max(LENS_LIMITS.nameChars, `a name longer than ${LENS_LIMITS.nameChars} characters`)
  .regex(/^[\p{L}\p{N} _.-]+$/u, 'a name with characters other than letters, digits, space, _ . -');

/** A text's name made fit for a link and the tables: a file name without its extension, odd characters replaced. */
export function textNameOf(raw: string): string {
  const name = raw
    .replace(/\.[^.]*$/, '')
    .replace(/[^\p{L}\p{N} _.-]+/gu, '-')
    .replace(/^[-\s]+|[-\s]+$/g, '')
    .slice(0, LENS_LIMITS.nameChars);
  return name || 'text';
}

function quote(value: string): string {
  return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
}

export interface ParsedLensLink {
  settings: LensSettings;
  /** Whether the link names the Lenses view at all (then the page opens it and runs it). */
  present: boolean;
  notices: string[];
}

/** Reads the Lenses view's keys of a share fragment. Never throws; a bad value keeps its default and leaves a notice. */
export function parseLensFragment(fragment: string): ParsedLensLink {
  const settings: LensSettings = { ...DEFAULT_LENS_SETTINGS, builtin: [...DEFAULT_LENS_SETTINGS.builtin] };
  const notices: string[] = [];
  const raw = fragment.startsWith('#') ? fragment.slice(1) : fragment;
  let params: URLSearchParams;
  try {
    params = new URLSearchParams(raw);
  } catch {
    return { settings, present: false, notices };
  }
  const present = [...params.keys()].some(isLensKey);
  // The page's parser already says why a link without v=1 is ignored.
  if (!present || params.get('v') !== '1') return { settings, present: false, notices };
  const refuse = (field: keyof typeof KEYS, value: string, reason: string) =>
    notices.push(`The link's ${LABEL[field]} ${quote(value)} was refused (${reason}); the default is used.`);
  const read = <T>(field: keyof typeof KEYS, schema: z.ZodType<T>, apply: (v: T) => void) => {
    const value = params.get(KEYS[field]);
    if (value === null) return;
    const result = schema.safeParse(value);
    if (result.success) apply(result.data);
    else refuse(field, value, result.error.issues[0]?.message ?? 'invalid');
  };
  read(
    'focus',
    z.enum(['', ...LENS_NAMES], { message: `not one of ${LENS_NAMES.join(', ')}` }),
    (v) => (settings.focus = v),
  );
  read('model', modelId, (v) => (settings.model = v));
  read('routing', routing, (v) => (settings.routing = v));
  read('compare', flag, (v) => (settings.compare = v));
  read('compareModel', modelId, (v) => (settings.compareModel = v));
  read('compareRouting', routing, (v) => (settings.compareRouting = v));
  read('tradeoff', flag, (v) => (settings.tradeoff = v));
  for (const field of ['maxTokens', 'layer'] as const) {
    read(field, integer, (v) => {
      const [lo, hi] = LENS_LIMITS[field];
      const clamped = Math.min(hi, Math.max(lo, v));
      if (clamped !== v) notices.push(`The link's ${LABEL[field]} ${v} is out of range and was clamped to ${clamped}.`);
      settings[field] = clamped;
    });
  }
  const names = params.get(KEYS.builtin);
  if (names !== null) {
    const list = names
      .split(',')
      .map((n) => n.trim())
      .filter((n) => n !== '');
    const unknown = list.filter((n) => !(BUILT_IN_TEXTS as readonly string[]).includes(n));
    const known = [...new Set(list.filter((n) => (BUILT_IN_TEXTS as readonly string[]).includes(n)))];
    if (unknown.length > 0)
      notices.push(
        `The link's lens texts ${unknown.map(quote).join(', ')} are not built-in texts (${BUILT_IN_TEXTS.join(', ')}) and were left out.`,
      );
    if (known.length > 0) settings.builtin = known;
    else if (list.length > 0 || unknown.length > 0) notices.push('No built-in text was left, so all four are used.');
  }
  const pasted = params.getAll(KEYS.pasted);
  if (pasted.length > 0) {
    const texts: PastedText[] = [];
    let chars = 0;
    for (const entry of pasted) {
      const eq = entry.indexOf('=');
      const name = textName.safeParse(eq < 0 ? '' : entry.slice(0, eq));
      const text = eq < 0 ? '' : entry.slice(eq + 1);
      if (!name.success) {
        refuse('pasted', entry, `${name.error.issues[0]?.message ?? 'no name'}; write NAME=TEXT`);
        continue;
      }
      if (texts.some((t) => t.name === name.data)) {
        refuse('pasted', entry, `a second text called ${quote(name.data)}`);
        continue;
      }
      if (texts.length >= LENS_LIMITS.texts) {
        refuse('pasted', entry, `more than ${LENS_LIMITS.texts} texts`);
        continue;
      }
      if (chars + text.length > LENS_LIMITS.linkTextChars) {
        refuse('pasted', entry, `more than ${LENS_LIMITS.linkTextChars} characters of text in one link`);
        continue;
      }
      chars += text.length;
      texts.push({ name: name.data, text });
    }
    if (texts.length > 0) {
      settings.pasted = texts;
      settings.source = 'pasted';
    }
  }
  return { settings, present: true, notices };
}

export interface LensLink {
  /** The lens keys as "k=v&k=v" (no leading '&'), to append to the page's fragment. */
  params: string;
  /** Why part of the settings could not go into the link (pasted text past the limits), or null. */
  problem: string | null;
}

/** The lens keys for `settings`; the pasted texts only while they fit the link's limits. */
export function formatLensParams(settings: LensSettings): LensLink {
  const params = new URLSearchParams();
  const d = DEFAULT_LENS_SETTINGS;
  params.set(KEYS.focus, settings.focus);
  if (settings.model) params.set(KEYS.model, settings.model);
  if (settings.routing !== d.routing) params.set(KEYS.routing, settings.routing);
  if (settings.compare) {
    params.set(KEYS.compare, '1');
    if (settings.compareModel) params.set(KEYS.compareModel, settings.compareModel);
    params.set(KEYS.compareRouting, settings.compareRouting);
  }
  if (settings.maxTokens !== d.maxTokens) params.set(KEYS.maxTokens, String(settings.maxTokens));
  if (settings.tradeoff !== d.tradeoff) params.set(KEYS.tradeoff, settings.tradeoff ? '1' : '0');
  if (settings.layer !== d.layer) params.set(KEYS.layer, String(settings.layer));
  let problem: string | null = null;
  if (settings.source === 'builtin') {
    if (settings.builtin.join(',') !== d.builtin.join(',')) params.set(KEYS.builtin, settings.builtin.join(','));
  } else {
    const chars = settings.pasted.reduce((a, t) => a + t.text.length, 0);
    const encoded = new URLSearchParams(settings.pasted.map((t) => [KEYS.pasted, `${t.name}=${t.text}`])).toString()
      .length;
    const badName = settings.pasted.find((t) => !textName.safeParse(t.name).success);
    if (settings.pasted.length > LENS_LIMITS.texts)
      problem = `A link holds at most ${LENS_LIMITS.texts} texts; this set has ${settings.pasted.length}.`;
    else if (chars > LENS_LIMITS.linkTextChars)
      problem = `The pasted texts are ${chars} characters long; a link holds at most ${LENS_LIMITS.linkTextChars}.`;
    else if (encoded > LENS_LIMITS.linkEncodedChars)
      problem = `The pasted texts take ${encoded} characters once encoded for a link; it holds at most ${LENS_LIMITS.linkEncodedChars}.`;
    else if (badName)
      problem = `The text name ${quote(badName.name)} cannot go into a link (letters, digits, space, _ . - only).`;
    if (problem) problem += ' The link opens the view with the built-in texts instead; share the texts as files.';
    else for (const t of settings.pasted) params.append(KEYS.pasted, `${t.name}=${t.text}`);
  }
  return { params: params.toString(), problem };
}

/** The settings a result was made with, as its link carries them: the models named explicitly, the lens in focus. */
export function linkSettings(ran: NonNullable<LensesState['resultSettings']>, focus: LensName): LensSettings {
  const { ranModel, ranCompareModel, ...settings } = ran;
  return { ...settings, model: ranModel, compareModel: ran.compare ? ranCompareModel : '', focus };
}

/** Texts of a job from the settings: the fetched built-in texts by name, or the pasted ones. A sentence when there is nothing to run. */
export function jobTexts(
  settings: LensSettings,
  builtIn: Record<string, string>,
): { texts: { name: string; text: string }[] } | { problem: string; hint: string } {
  if (settings.source === 'builtin') {
    if (settings.builtin.length === 0)
      return { problem: 'No text is selected.', hint: 'Tick at least one of the built-in texts.' };
    const missing = settings.builtin.find((n) => builtIn[n] === undefined);
    if (missing)
      return {
        problem: `The built-in text "${missing}" could not be read from this site.`,
        hint: 'Reload the page, or paste your own texts.',
      };
    return { texts: settings.builtin.map((name) => ({ name, text: builtIn[name] })) };
  }
  if (settings.pasted.length === 0)
    return {
      problem: 'There is no text to analyse.',
      hint: 'Paste a text or drop text files (each file is one domain).',
    };
  const empty = settings.pasted.find((t) => t.text.trim() === '');
  if (empty)
    return { problem: `The text "${empty.name}" is empty.`, hint: 'Type or paste some text into it, or remove it.' };
  const names = new Set<string>();
  for (const t of settings.pasted) {
    const name = t.name.trim();
    if (name === '') return { problem: 'A text has no name.', hint: 'Give every text (domain) a name.' };
    if (names.has(name))
      return { problem: `Two texts are both called "${name}".`, hint: 'Give every text (domain) its own name.' };
    names.add(name);
  }
  return { texts: settings.pasted.map((t) => ({ name: t.name.trim(), text: t.text })) };
}

// ---- The rows each lens exports (CSV and JSON), the same as its table twin on screen.

/** The run(s) a lens reads: both sides when the second run has its own lenses. */
function sides(result: LensJobResult): LensSide[] {
  return result.b ? [result.a, result.b] : [result.a];
}

/** One table for a lens; with two runs, a "run" column first. Per-layer lenses give every layer. */
export function lensTable(name: LensName, result: LensJobResult): LensTable | null {
  if (name === 'agreement') return result.agreement ? agreementTable(result.agreement) : null;
  if (name === 'tradeoff') {
    const curves = tradeoffCurves(result);
    if (curves.length === 0) return null;
    return {
      columns: tradeoffTable(curves[0].lens).columns,
      rows: curves.flatMap((c) => tradeoffTable(c.lens, c.label).rows),
    };
  }
  const tableOf = (side: LensSide): LensTable => {
    const a = side.analysis;
    switch (name) {
      case 'domain':
        return domainTable(a.domain);
      case 'vocab':
        return vocabTable(a.vocab);
      case 'coactivation':
        return coactivationTable(a.coactivation);
      case 'locality':
        return localityTable(a.locality);
      case 'load':
        return loadTable(a.load);
    }
  };
  const all = sides(result);
  if (all.length === 1) return tableOf(all[0]);
  const tables = all.map(tableOf);
  return {
    columns: ['run', ...tables[0].columns],
    rows: all.flatMap((s, i) => tables[i].rows.map((r) => [s.label, ...r])),
  };
}

/** The curves of the trade-off plot: one per model that was swept (another mode of one model lies on its curve). */
export function tradeoffCurves(result: LensJobResult): { label: string; lens: LensSide['analysis']['tradeoff'] }[] {
  return sides(result)
    .filter((s) => s.analysis.tradeoff.points.length > 0)
    .map((s) => ({ label: s.modelId, lens: s.analysis.tradeoff }));
}

/** The lens's sentence(s): what the figure says, per run. */
export function lensSentence(name: LensName, result: LensJobResult): string {
  if (name === 'agreement') return result.agreement?.sentence ?? '';
  if (name === 'tradeoff') {
    const curves = tradeoffCurves(result);
    return curves.map((c) => (curves.length > 1 ? `${c.label}: ${c.lens.sentence}` : c.lens.sentence)).join(' ');
  }
  const key = name === 'domain' ? 'domain' : name;
  const all = sides(result);
  return all
    .map((s) => (all.length > 1 ? `${s.label}: ${s.analysis[key].sentence}` : s.analysis[key].sentence))
    .join(' ');
}

export function lensCsv(name: LensName, result: LensJobResult): string | null {
  const table = lensTable(name, result);
  return table ? tableToCsv(table) : null;
}

/** The JSON export: the lens's sentence, its rows and (vocabulary) the per-token concentration. */
export function lensJson(name: LensName, result: LensJobResult): string | null {
  const table = lensTable(name, result);
  if (!table) return null;
  const out: Record<string, unknown> = {
    lens: name,
    runs: name === 'tradeoff' ? tradeoffCurves(result).map((c) => c.label) : sides(result).map((s) => s.label),
    texts: result.a.analysis.texts.map((t) => ({
      name: t.name,
      tokens: t.tokens,
      totalTokens: t.totalTokens,
      windows: t.windows.length,
    })),
    sentence: lensSentence(name, result),
    rows: tableToObjects(table),
  };
  if (name === 'vocab')
    out.concentration = sides(result).map((s) => ({
      run: s.label,
      rows: tableToObjects(concentrationTable(s.analysis.vocab)),
    }));
  return JSON.stringify(out, null, 1);
}

// ---- The store.

export interface LensJobState {
  requestId: number;
  stage: string;
  fraction: number;
}

export interface LensesState {
  open: boolean;
  settings: LensSettings;
  job: LensJobState | null;
  result: LensJobResult | null;
  /** The settings and model ids the result was made with (its links reproduce these). */
  resultSettings: (LensSettings & { ranModel: string; ranCompareModel: string }) | null;
  /** What went wrong last (a bad text, a dense model, a cancelled run): a sentence and a hint. */
  problem: { message: string; hint?: string; cancelled?: boolean } | null;
  /** A link asked for a run; it starts once the page knows its models. */
  pendingRun: boolean;
  setOpen(open: boolean): void;
  setSettings(patch: Partial<LensSettings>): void;
  setProblem(problem: LensesState['problem']): void;
  begin(requestId: number, spec: LensJobSpec, ranWith: { model: string; compareModel: string }): void;
  receive(message: LensResponse): void;
  setPendingRun(pending: boolean): void;
}

export function createLensStore(initial: Partial<Pick<LensesState, 'open' | 'settings' | 'pendingRun'>> = {}) {
  let ranWith: { model: string; compareModel: string; settings: LensSettings } | null = null;
  return createStore<LensesState>()((set, get) => ({
    open: initial.open ?? false,
    settings: initial.settings ?? { ...DEFAULT_LENS_SETTINGS },
    job: null,
    result: null,
    resultSettings: null,
    problem: null,
    pendingRun: initial.pendingRun ?? false,
    setOpen(open) {
      set({ open });
    },
    setSettings(patch) {
      set({ settings: { ...get().settings, ...patch } });
    },
    setProblem(problem) {
      set({ problem });
    },
    setPendingRun(pending) {
      set({ pendingRun: pending });
    },
    begin(requestId, _spec, ran) {
      ranWith = { ...ran, settings: { ...get().settings } };
      set({ job: { requestId, stage: 'starting', fraction: 0 }, problem: null, pendingRun: false });
    },
    receive(message) {
      const job = get().job;
      if (!job || message.requestId !== job.requestId) return;
      switch (message.type) {
        case 'lensProgress':
          set({ job: { ...job, stage: message.stage, fraction: message.fraction } });
          return;
        case 'lensDone': {
          const ran = ranWith!;
          const layers = message.result.a.analysis.moeLayers.length;
          set({
            job: null,
            result: message.result,
            resultSettings: { ...ran.settings, ranModel: ran.model, ranCompareModel: ran.compareModel },
            settings: { ...get().settings, layer: Math.min(get().settings.layer, Math.max(layers - 1, 0)) },
          });
          return;
        }
        case 'lensFailed':
          // The result on screen and everything typed stay; only the sentence is new.
          set({ job: null, problem: { message: message.message, hint: message.hint, cancelled: message.cancelled } });
          return;
      }
    },
  }));
}

export type LensStore = ReturnType<typeof createLensStore>;
