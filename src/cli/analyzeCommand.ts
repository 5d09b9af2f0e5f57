// `moe analyze SOURCE --texts NAME=FILE,...`: the router lenses over a text set (docs/lenses.md).
// Each file is one domain, tokenized as one sequence and scored in one window when it fits the
// model's context (otherwise in consecutive context-sized windows, and the output says so).
import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import {
  analyzeCorpus,
  compareRuns,
  defaultTradeoffModes,
  type AgreementLens,
  type CorpusAnalysis,
  type LensProgress,
  type LensText,
} from '../engine/lens/index.ts';
import { formatRoutingMode, parseRoutingMode, validateRoutingPlan } from '../engine/routing/index.ts';
import type { LoadedModel, RoutingMode, RoutingPlan } from '../engine/types.ts';
import type { Checkpoint } from '../engine/format/index.ts';
import {
  CliError,
  createBackend,
  isCount,
  numberFlag,
  openCheckpoint,
  openTokenizer,
  parseBackendKind,
  routingPlan,
} from './common.ts';

export interface AnalyzeFlags {
  texts?: string;
  routing?: string;
  interventions?: string;
  maxTokens?: string;
  tradeoff?: string;
  compareModel?: string;
  compareRouting?: string;
  backend?: string;
  json: boolean;
}

const REPO = resolve(import.meta.dirname, '../..');
/** The built-in text set: one file per domain in public/eval. */
export const BUILT_IN_TEXTS = ['english', 'german', 'python', 'arithmetic'].map((name) => ({
  name,
  file: join(REPO, 'public/eval', `${name}.txt`),
}));
const DEFAULT_MAX_TOKENS = 1024;
const TEXTS_HINT =
  'Write --texts as comma-separated NAME=FILE pairs, e.g. --texts code=src.py,prose=essay.txt (each file is one domain).';

/** A folder, or the id of a built-in model (public/models/<id>). */
export function resolveModelSource(source: string): string {
  if (existsSync(source)) return source;
  const builtIn = join(REPO, 'public/models', source);
  if (/^[a-z0-9][a-z0-9._-]*$/i.test(source) && existsSync(join(builtIn, 'config.json'))) return builtIn;
  return source; // openCheckpoint says it does not exist
}

/** "a=x.txt,b=y.txt" → [{name, file}], every name unique and every file readable; absent → the built-in set. */
export function parseTextsFlag(value: string | undefined): { name: string; file: string }[] {
  if (value === undefined) return BUILT_IN_TEXTS;
  const out: { name: string; file: string }[] = [];
  for (const raw of value.split(',')) {
    const part = raw.trim();
    if (part === '') continue;
    const eq = part.indexOf('=');
    if (eq < 0) {
      // A bare file names its own domain: "python.txt" → python.
      out.push({ name: basename(part).replace(/\.[^.]*$/, ''), file: part });
    } else {
      const name = part.slice(0, eq).trim();
      const file = part.slice(eq + 1).trim();
      if (name === '' || file === '')
        throw new CliError(`--texts entry "${part}" needs both a name and a file.`, TEXTS_HINT);
      out.push({ name, file });
    }
  }
  if (out.length === 0) throw new CliError('--texts is empty.', TEXTS_HINT);
  const seen = new Set<string>();
  for (const t of out) {
    if (seen.has(t.name))
      throw new CliError(`Two texts are both called "${t.name}".`, 'Give every text (domain) its own name: NAME=FILE.');
    seen.add(t.name);
    if (!existsSync(t.file))
      throw new CliError(`The text file ${t.file} (domain "${t.name}") does not exist.`, TEXTS_HINT);
    if (!statSync(t.file).isFile()) throw new CliError(`${t.file} (domain "${t.name}") is not a file.`, TEXTS_HINT);
  }
  return out;
}

/** "topk:1,threshold:0.5,dense" → modes; "none" → []; absent → the default sweep. */
export function parseTradeoffFlag(ckpt: Checkpoint, value: string | undefined): RoutingMode[] {
  if (value === undefined) return defaultTradeoffModes(ckpt.spec);
  if (value.trim().toLowerCase() === 'none') return [];
  const modes = value
    .split(',')
    .filter((s) => s.trim() !== '')
    .map((s) => parseRoutingMode(s));
  for (const mode of modes) validateRoutingPlan({ mode, interventions: [] }, ckpt.spec);
  return modes;
}

export interface AnalyzeJson {
  numExperts: number;
  moeLayers: number[];
  mode: string;
  window: number;
  texts: { name: string; file: string; tokens: number; totalTokens: number; windows: number }[];
  notes: string[];
  domains: Record<string, { tokens: number; share: number[][]; tokenRate: number[][] }>;
  coactivation: number[][][];
  locality: number[];
  vocab: unknown;
  tradeoff: {
    mode: string;
    activeShare: number;
    loss: number;
    deltaLoss: number | null;
    expertsPerLayer: number;
    lossByDomain: Record<string, number>;
  }[];
  loss: number;
  activeShare: number;
  domainDivergence: number[];
  /** [layer][domain][domain]: total-variation distance between two domains' shares. */
  domainPairwise: number[][][];
  localityDetail: CorpusAnalysis['locality']['layers'];
  coactivationChance: number[];
  load: {
    layer: number;
    load: number[];
    meanProb: number[];
    cv: number;
    maxOverMean: number;
    auxLoss: number;
    expertsPerToken: number;
  }[];
  agreement?: Omit<AgreementLens, 'sentence'> & { against: string };
  sentences: Record<string, string>;
}

/** How many of the most frequent tokens each layer lists in the JSON (the engine keeps them all). */
const JSON_TOKENS_PER_LAYER = 20;

export function analysisJson(
  analysis: CorpusAnalysis,
  files: string[],
  agreement: (AgreementLens & { against: string }) | null,
): AnalyzeJson {
  const domains: AnalyzeJson['domains'] = {};
  for (const d of analysis.domain.domains)
    domains[d.name] = { tokens: d.tokens, share: d.share, tokenRate: d.tokenRate };
  const sentences: Record<string, string> = {
    domains: analysis.domain.sentence,
    vocab: analysis.vocab.sentence,
    coactivation: analysis.coactivation.sentence,
    locality: analysis.locality.sentence,
    load: analysis.load.sentence,
    tradeoff: analysis.tradeoff.sentence,
  };
  let agreementJson: AnalyzeJson['agreement'];
  if (agreement) {
    const { sentence, ...rest } = agreement;
    agreementJson = rest;
    sentences.agreement = sentence;
  }
  return {
    numExperts: analysis.numExperts,
    moeLayers: analysis.moeLayers,
    mode: analysis.mode,
    window: analysis.window,
    texts: analysis.texts.map((t, i) => ({
      name: t.name,
      file: files[i],
      tokens: t.tokens,
      totalTokens: t.totalTokens,
      windows: t.windows.length,
    })),
    notes: windowNotes(analysis),
    domains,
    coactivation: analysis.coactivation.matrix,
    locality: analysis.locality.layers.map((l) => l.sameFirst),
    vocab: {
      minCount: analysis.vocab.minCount,
      layers: analysis.vocab.layers.map((l) => ({
        layer: l.layer,
        meanConcentration: l.meanConcentration,
        chance: l.chance,
        experts: l.experts,
        tokens: l.tokens.slice(0, JSON_TOKENS_PER_LAYER),
      })),
    },
    tradeoff: analysis.tradeoff.points.map((p) => ({
      mode: p.mode,
      activeShare: p.activeShare,
      loss: p.loss,
      deltaLoss: p.deltaLoss,
      expertsPerLayer: p.expertsPerLayer,
      lossByDomain: p.lossByDomain,
    })),
    loss: analysis.point.loss,
    activeShare: analysis.point.activeShare,
    domainDivergence: analysis.domain.divergence,
    domainPairwise: analysis.domain.pairwise,
    localityDetail: analysis.locality.layers,
    coactivationChance: analysis.coactivation.chance,
    load: analysis.load.layers.map(({ tokens: _tokens, ...rest }) => rest),
    ...(agreementJson ? { agreement: agreementJson } : {}),
    sentences,
  };
}

function windowNotes(analysis: CorpusAnalysis): string[] {
  const notes: string[] = [];
  for (const t of analysis.texts) {
    if (t.tokens < t.totalTokens)
      notes.push(`${t.name}: only the first ${t.tokens} of ${t.totalTokens} tokens were analysed (--max-tokens).`);
    if (t.windows.length > 1) {
      notes.push(
        `${t.name}: ${t.tokens} tokens do not fit the ${analysis.window}-token context, so they were scored in ${t.windows.length} windows; ` +
          'each window starts without the text before it, and locality pairs do not cross a window edge.',
      );
    }
  }
  return notes;
}

async function loadModel(dir: string, backendKind: ReturnType<typeof parseBackendKind>) {
  const ckpt = await openCheckpoint(resolveModelSource(dir));
  const backend = await createBackend(backendKind);
  return { ckpt, backend, model: await backend.load(ckpt.spec, ckpt.weights) };
}

export async function analyzeCommand(source: string, flags: AnalyzeFlags): Promise<void> {
  const backendKind = parseBackendKind(flags.backend);
  const files = parseTextsFlag(flags.texts);
  const maxTokens = numberFlag('max-tokens', flags.maxTokens, DEFAULT_MAX_TOKENS, isCount, 'a whole number ≥ 1');
  const ckpt = await openCheckpoint(resolveModelSource(source));
  if (!ckpt.spec.moe) {
    throw new CliError(
      `${source} is a dense ${ckpt.spec.architecture} model: it has no router, so there is no routing to analyse.`,
      'Analyse a mixture-of-experts checkpoint, or make one with moe upcycle.',
    );
  }
  const plan = routingPlan(ckpt.spec, flags.routing, flags.interventions);
  const tradeoffModes = parseTradeoffFlag(ckpt, flags.tradeoff);
  const tokenizer = openTokenizer(ckpt);
  const texts: LensText[] = files.map(({ name, file }) => {
    const tokens = tokenizer.encode(readFileSync(file, 'utf8'));
    if (tokens.length === 0)
      throw new CliError(
        `The text file ${file} (domain "${name}") has no tokens.`,
        'Give a file with some text in it.',
      );
    const outside = tokens.find((t) => t >= ckpt.spec.vocabSize);
    if (outside !== undefined)
      throw new CliError(
        `The tokenizer produced token ${outside}, beyond the model's vocabulary of ${ckpt.spec.vocabSize}.`,
        'The tokenizer.json does not belong to this model.',
      );
    return { name, tokens };
  });

  const progress = flags.json
    ? undefined
    : (p: LensProgress) => {
        process.stderr.write(`\r  ${p.phase} ${p.mode}: ${p.tokensDone}/${p.tokensTotal} tokens   `);
      };
  const backend = await createBackend(backendKind);
  let model: LoadedModel | null = null;
  let other: { model: LoadedModel; dispose(): void } | null = null;
  try {
    model = await backend.load(ckpt.spec, ckpt.weights);
    const analysis = await analyzeCorpus(model, texts, {
      plan,
      maxTokens,
      tradeoffModes,
      vocab: { tokenText: (id) => tokenizer.decodeToken(id) },
      onProgress: progress,
    });
    let agreement: (AgreementLens & { against: string }) | null = null;
    if (flags.compareModel !== undefined || flags.compareRouting !== undefined) {
      let otherModel = model;
      let label = source;
      if (flags.compareModel !== undefined) {
        const loaded = await loadModel(flags.compareModel, backendKind);
        other = {
          model: loaded.model,
          dispose: () => {
            loaded.model.dispose();
            loaded.backend.dispose();
          },
        };
        otherModel = loaded.model;
        label = flags.compareModel;
      }
      const otherPlan: RoutingPlan = routingPlan(
        otherModel.spec,
        flags.compareRouting ?? flags.routing,
        flags.compareRouting !== undefined ? undefined : flags.interventions,
      );
      const a = `${source} (${formatRoutingMode(plan.mode)})`;
      const b = `${label} (${formatRoutingMode(otherPlan.mode)})`;
      const result = await compareRuns(
        { model, plan, label: a },
        { model: otherModel, plan: otherPlan, label: b },
        texts,
        { maxTokens, onProgress: progress },
      );
      agreement = { ...result, against: b };
    }
    if (progress) process.stderr.write('\n');
    const json = analysisJson(
      analysis,
      files.map((f) => f.file),
      agreement,
    );
    if (flags.json) process.stdout.write(JSON.stringify(json) + '\n');
    else process.stdout.write(formatAnalysis(json, source) + '\n');
  } finally {
    other?.dispose();
    model?.dispose();
    backend.dispose();
  }
}

/** The human-readable report: each lens's sentence, then the numbers behind it. */
export function formatAnalysis(json: AnalyzeJson, source: string): string {
  const pct = (x: number | null) => (x === null || !Number.isFinite(x) ? '—' : `${(100 * x).toFixed(1)}%`);
  const lines = [
    `${source}: ${json.numExperts} experts, MoE layers ${json.moeLayers.join(', ')}, routing ${json.mode}, context window ${json.window} tokens`,
    ...json.texts.map(
      (t) => `  ${t.name} (${t.file}): ${t.tokens} tokens${t.windows > 1 ? ` in ${t.windows} windows` : ''}`,
    ),
    ...json.notes.map((n) => `  note: ${n}`),
    '',
    `Domain specialisation: ${json.sentences.domains}`,
  ];
  json.moeLayers.forEach((layer, m) => {
    lines.push(
      `  layer ${layer} (share of assignments per expert; fair share ${pct(1 / json.numExperts)}; divergence ${pct(json.domainDivergence[m])})`,
    );
    for (const [name, d] of Object.entries(json.domains))
      lines.push(`    ${name.padEnd(12)} ${d.share[m].map((x) => pct(x).padStart(6)).join(' ')}`);
  });
  lines.push('', `Vocabulary: ${json.sentences.vocab}`);
  lines.push('', `Co-activation: ${json.sentences.coactivation}`);
  lines.push('', `Locality: ${json.sentences.locality}`);
  for (const l of json.localityDetail) {
    lines.push(
      `  layer ${l.layer}: same first choice ${pct(l.sameFirst)} (chance ${pct(l.chanceFirst)}, from load ${pct(l.chanceFirstFromLoad)}), overlap ${pct(l.overlap)} (chance ${pct(l.chanceOverlap)}), ${l.pairs} pairs`,
    );
  }
  lines.push('', `Load balance: ${json.sentences.load}`);
  for (const l of json.load)
    lines.push(
      `  layer ${l.layer}: CV ${l.cv.toFixed(3)}, max/mean ${l.maxOverMean.toFixed(2)}, Switch aux loss ${l.auxLoss.toFixed(3)}, ${l.expertsPerToken.toFixed(2)} experts/token`,
    );
  lines.push('', `Sparsity trade-off: ${json.sentences.tradeoff}`);
  for (const p of json.tradeoff) {
    const delta = p.deltaLoss === null ? '' : ` (${p.deltaLoss >= 0 ? '+' : ''}${p.deltaLoss.toFixed(4)})`;
    lines.push(
      `  ${p.mode.padEnd(15)} active ${pct(p.activeShare).padStart(6)}  ${p.expertsPerLayer.toFixed(2)} experts/layer  loss ${p.loss.toFixed(4)}${delta}`,
    );
  }
  if (json.agreement) lines.push('', `Agreement with ${json.agreement.against}: ${json.sentences.agreement}`);
  return lines.join('\n');
}
