// Model cards for the built-in models, measured with the playground's own engine (the CPU
// reference backend, the same code `moe eval` runs): held-out loss per domain for every routing
// mode, the upcycled-at-initialisation model next to its parent, and expert specialisation by
// domain, how far the experts are apart, how decided the routers are, what ablating an expert does,
// and the trade-off between loss and the share of parameters active. Writes public/models/<id>/README.md, public/models/<id>/card.json and
// public/models/index.json (what the playground's model picker reads).
//
//   npx tsx training/cards.ts [--max-tokens 512] [--models public/models] [--only ds-moe,fine-grained]
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { dirSource } from '../src/cli/fsSource.ts';
import { createCpuBackend } from '../src/engine/backends/cpu/index.ts';
import { countParameters, loadCheckpoint, type Checkpoint } from '../src/engine/format/index.ts';
import { parseRoutingMode } from '../src/engine/routing/index.ts';
import { scoreTokens } from '../src/engine/run/index.ts';
import { loadTokenizer } from '../src/engine/tokenizer.ts';
import { upcycle } from '../src/engine/upcycle/index.ts';
import { toFloat32 } from '../src/engine/format/index.ts';
import { weightBytesBySchemes } from '../src/engine/format/quant.ts';
import { quantizationCosts, tokenWindows, type QuantCost } from '../src/engine/quant/cost.ts';
import type { Intervention, LoadedModel, ModelSpec, RoutingTrace, WeightSet } from '../src/engine/types.ts';

const REPO = resolve(import.meta.dirname, '..');
const DOMAINS = ['english', 'german', 'python', 'arithmetic'] as const;
type Domain = (typeof DOMAINS)[number];
const MODES = ['native', 'dense', 'topk:1', 'topk:2', 'topk:4', 'threshold:0.5', 'threshold:1'] as const;

interface ModelEntry {
  id: string;
  name: string;
  stage: string; // training/runs/<stage>
  training: string;
  /** How the start was made (training/build.py): rebuilt in memory for the "at initialisation" rows. */
  start?: { granularity: number; topK: number; drop: number; scratch?: boolean };
  /** Runs tried before this one and what each changed (for the DS-MoE claim). */
  tried?: string;
  /** How the run in `stage` was run, when not one thread (the card's training row). */
  howRun?: string;
  /** The training text, when more than the corpus and the first extra text (the card's data row). */
  data?: string;
}

const RECIPE =
  'trained 700 steps with top-k routing and renormalised weights, LR 1e-3 (cosine), a Switch load-balancing loss (1e-2), the mutual-information loss (5e-2: low entropy per token, high entropy of the mean) and a router learning rate 10× the rest, so that routers commit';
const MODELS: ModelEntry[] = [
  {
    id: 'moe-top2',
    name: 'MoE top-2 (Drop-Upcycling)',
    stage: 'moe-top2',
    start: { granularity: 1, topK: 2, drop: 0.5 },
    training: `Upcycled from dense-parent with \`moe upcycle --experts 8 --top-k 2 --drop 0.5\` (Drop-Upcycling: half of each expert's units re-initialised, a different half per expert), then ${RECIPE}.`,
  },
  {
    id: 'fine-grained',
    name: 'Fine-grained MoE (2 copies × 4 shards, Drop-Upcycling)',
    stage: 'fine-grained',
    start: { granularity: 4, topK: 4, drop: 0.25 },
    training: `Granular upcycling of dense-parent with Drop-Upcycling: 2 copies × 4 shards = 8 experts of a quarter width, top-4, a quarter of each expert's units re-initialised (\`moe upcycle --experts 8 --granularity 4 --top-k 4 --drop 0.25\`), then ${RECIPE}. The drop-upcycled member of the zoo.`,
  },
  {
    id: 'ds-moe',
    name: 'DS-MoE (dense training)',
    stage: 'ds-moe',
    start: { granularity: 1, topK: 2, drop: 0.5 },
    training:
      'The same drop-upcycled start as moe-top2 trained DS-MoE style: every expert computed and weighted by its raw probability, with the mutual-information loss (α = 5e-2), LR 1e-3 and a router learning rate 10× the rest, 700 steps; served sparsely with raw (not renormalised) weights.',
    tried:
      'Before this: the same recipe from a plain (not drop-) upcycled start with α = 1e-2 and the router at the common learning rate (the previous built-in: top-2 0.84 nats above dense; within 0.05 nats of dense only at 75% of parameters active). This run changed four things: Drop-Upcycling (experts differ from the start), α 1e-2 → 5e-2, LR 4e-4 → 1e-3, and the router learning rate ×10. The same model was measured again later with a finer threshold sweep (0.6, 0.7 and 0.8 added between 0.5 and 1, where the share of parameters active crosses 50%); the sweep of the first measurement had no point between 36% and 52% active.',
  },
  {
    id: 'fine-grained-naive',
    name: 'Zoo: fine-grained, naive upcycling',
    stage: 'fine-grained-naive',
    start: { granularity: 4, topK: 4, drop: 0 },
    training: `The zoo's naive member: the fine-grained shape upcycled without Drop-Upcycling (every copy exact, \`moe upcycle --experts 8 --granularity 4 --top-k 4\`), then ${RECIPE}, for the same steps and tokens as fine-grained.`,
  },
  {
    id: 'fine-grained-scratch',
    name: 'Zoo: fine-grained, from scratch',
    stage: 'fine-grained-scratch',
    start: { granularity: 4, topK: 4, drop: 0, scratch: true },
    training:
      "The zoo's from-scratch member: the fine-grained shape with every weight random (nothing from the parent), trained for the same steps and tokens as fine-grained, with a pretraining learning rate (2e-3, warmup 100).",
  },
  // The first dense run (training/build.py's "dense" stage). Its continuation on more text ("parent" stage)
  // replaces it once finished and measured better: then stage 'parent' and a training text that says so.
  {
    id: 'dense-parent',
    name: 'Dense parent (llama)',
    stage: 'dense',
    training:
      'A dense Llama-style model trained from scratch on the four-domain corpus; the parent every MoE here was upcycled from.',
  },
  // training/build.py's "parent", "parent2" and "parent3" stages: dense-parent trained further on more text.
  {
    id: 'dense-long',
    name: 'Dense parent, trained longer (more text)',
    stage: 'parent3-half-anneal',
    howRun: '1 thread; the last stage only, the ones before it are in the text above',
    data: ', and in the third stage a second round of training-only text (German man pages and the Debian reference, fortune-like English and English man pages, third-party Python, fresh arithmetic)',
    training:
      "dense-parent (3500 steps) trained further in four stages, each re-warmed then cosine: 6000 steps at LR 1e-3 on the corpus plus training-only extra text (the King James Bible, the Python documentation, the GNU manuals, more of the Python standard library; 68 min on 1 thread); 7000 steps at 5e-4 on the same (two processes under torchrun, 38 min); 6000 steps at 4e-4 with half of every domain's rows from a second round of new text (German man pages and the Debian reference, fortune-like English and English man pages, third-party Python, fresh arithmetic; 1 thread beside another run, 73 min); and 1200 steps at 2e-4 down to 0 on the base corpus alone (the kind of text public/eval is drawn from). 23700 steps and 48.5 M tokens in all, against 3500 and 7.2 M. The better parent for the next children (the MoEs here were upcycled from dense-parent).",
  },
];
// Models trained before recipe.json existed (the first built-ins): described as they were made.
const LEGACY: Record<string, Pick<ModelEntry, 'name' | 'training' | 'start' | 'tried'>> = {
  'moe-top2': {
    name: 'MoE top-2 (Llama 3 recipe)',
    start: { granularity: 1, topK: 2, drop: 0 },
    training:
      'Upcycled from dense-parent with `moe upcycle` (8 experts, top-2), then trained with top-2 routing, renormalised weights and a Switch load-balancing loss (1000 steps, LR 4e-4).',
  },
  'ds-moe': {
    name: 'DS-MoE (dense training)',
    start: { granularity: 1, topK: 2, drop: 0 },
    training:
      'The same upcycled start trained DS-MoE style: every expert computed and weighted by its raw probability, with a mutual-information load-balancing loss (α = 1e-2, 1000 steps); served with raw (not renormalised) weights.',
    tried:
      "This is the first DS-MoE run: plain upcycled start, α = 1e-2, LR 4e-4, router at the common learning rate, 1000 steps. The next run (`training/runs/ds-moe`, resumable: `sh training/session.sh`) changes four things: Drop-Upcycling (r = 0.5), α 1e-2 → 5e-2, LR 4e-4 → 1e-3 and the router learning rate ×10 (the recipe that took the top-2 child's router entropy to 0.19–0.64 nats).",
  },
  'fine-grained': {
    name: 'Fine-grained MoE (2 copies × 4 shards)',
    start: { granularity: 4, topK: 4, drop: 0 },
    training:
      'Granular upcycling of dense-parent: 2 copies × 4 shards = 8 experts of a quarter width, top-4 (one whole copy at initialisation), trained with top-4 routing and a Switch loss (1000 steps).',
  },
};

/** The entry as built: the recipe's description when the folder has recipe.json, else the legacy one. */
function asBuilt(entry: ModelEntry, folder: string): ModelEntry {
  if (entry.id === 'dense-parent' || existsSync(join(folder, 'recipe.json')) || !LEGACY[entry.id]) return entry;
  // stage: no run folder, so the card keeps the folder's saved training.json (the run that made it).
  return { ...entry, tried: undefined, ...LEGACY[entry.id], stage: `legacy-${entry.id}` };
}

const ZOO = ['fine-grained-naive', 'fine-grained', 'fine-grained-scratch'];
const ZOO_LABEL: Record<string, string> = {
  'fine-grained-naive': 'naive upcycling',
  'fine-grained': 'Drop-Upcycling (r = 0.25)',
  'fine-grained-scratch': 'from scratch',
};

interface TrainingFacts {
  steps: number;
  seconds: number;
  tokensPerStep: number | null;
  parameters: number | null;
  finalHeldoutLoss: Record<string, number> | null;
}

function trainingFacts(stage: string, folder: string): TrainingFacts | null {
  const log = join(REPO, 'training/runs', stage, 'log.jsonl');
  const saved = join(folder, 'training.json');
  if (!existsSync(log)) return existsSync(saved) ? (JSON.parse(readFileSync(saved, 'utf8')) as TrainingFacts) : null;
  let steps = 0;
  let seconds = 0;
  let previousStep = 0;
  let tokensPerStep: number | null = null;
  let parameters: number | null = null;
  let finalHeldoutLoss: Record<string, number> | null = null;
  for (const line of readFileSync(log, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    const entry = JSON.parse(line) as Record<string, unknown>;
    if (entry.start) {
      parameters = (entry.params as number) ?? parameters;
      const tc = entry.train_config as Record<string, number> | undefined;
      if (tc?.batch_size && tc.seq_len) tokensPerStep = tc.batch_size * tc.seq_len;
      continue;
    }
    const step = entry.step as number | undefined;
    if (typeof step !== 'number') continue;
    if (typeof entry.sec_per_step === 'number') {
      // Resumed runs restart logging at their checkpoint; count each step interval once.
      if (step > previousStep) seconds += (entry.sec_per_step as number) * (step - previousStep);
      previousStep = Math.max(previousStep, step);
    }
    const evaluation = entry.eval as { loss?: Record<string, number> } | undefined;
    if (evaluation?.loss) finalHeldoutLoss = evaluation.loss;
    steps = Math.max(steps, step);
  }
  const facts = { steps, seconds: Math.round(seconds), tokensPerStep, parameters, finalHeldoutLoss };
  writeFileSync(saved, JSON.stringify(facts, null, 2) + '\n');
  return facts;
}

interface DomainText {
  domain: Domain;
  tokens: number[];
}

/** Held-out loss (nats/token) over windows of the model's context, plus the routing traces. */
async function evaluate(
  model: LoadedModel,
  texts: DomainText[],
  mode: string,
  window: number,
  interventions: Intervention[] = [],
) {
  const losses: Record<string, number> = {};
  const traces: Record<string, RoutingTrace[]> = {};
  for (const { domain, tokens } of texts) {
    let sum = 0;
    let count = 0;
    traces[domain] = [];
    for (let start = 0; start < tokens.length; start += window) {
      const chunk = tokens.slice(start, start + window);
      if (chunk.length < 2) continue;
      const result = await scoreTokens(model, chunk, { mode: parseRoutingMode(mode), interventions });
      for (const lp of result.logProbs) {
        if (lp === null || lp === undefined || Number.isNaN(lp)) continue;
        sum -= lp;
        count++;
      }
      traces[domain].push(result.trace);
    }
    losses[domain] = sum / count;
  }
  return { losses, traces };
}

/** Mean entropy (nats) of the router's probabilities over every token and MoE layer. */
function meanRouterEntropy(traces: Record<string, RoutingTrace[]>): number {
  let sum = 0;
  let cells = 0;
  for (const list of Object.values(traces))
    for (const trace of list)
      for (const layer of trace.layers)
        for (const token of layer) {
          for (const p of token.probs) if (p > 0) sum -= p * Math.log(p);
          cells++;
        }
  return cells ? sum / cells : 0;
}

/** Mean router entropy (nats) per MoE layer, over every token of every domain. */
function routerEntropyPerLayer(traces: Record<string, RoutingTrace[]>): number[] {
  const sums: number[] = [];
  const cells: number[] = [];
  for (const list of Object.values(traces))
    for (const trace of list)
      trace.layers.forEach((layer, m) => {
        for (const token of layer) {
          for (const p of token.probs) if (p > 0) sums[m] = (sums[m] ?? 0) - p * Math.log(p);
          cells[m] = (cells[m] ?? 0) + 1;
        }
      });
  return sums.map((x, m) => x / cells[m]);
}

/**
 * Per MoE layer: the mean over experts of |W_e − W̄| / |W̄| (Frobenius norms) on the gate projection,
 * W̄ the experts' mean. 0: identical copies; independent random experts give about √E.
 */
function expertDistance(weights: WeightSet): number[] {
  const out: number[] = [];
  for (const layer of weights.layers) {
    if (!layer.moe) continue;
    const gates = layer.moe.experts.map((e) => toFloat32(e.gate));
    const n = gates[0].length;
    const mean = new Float64Array(n);
    for (const g of gates) for (let i = 0; i < n; i++) mean[i] += g[i] / gates.length;
    let meanNorm = 0;
    for (let i = 0; i < n; i++) meanNorm += mean[i] * mean[i];
    meanNorm = Math.sqrt(meanNorm);
    let total = 0;
    for (const g of gates) {
      let d = 0;
      for (let i = 0; i < n; i++) d += (g[i] - mean[i]) ** 2;
      total += Math.sqrt(d) / meanNorm;
    }
    out.push(total / gates.length);
  }
  return out;
}

function meanExpertsPerLayer(traces: Record<string, RoutingTrace[]>): number {
  let chosen = 0;
  let cells = 0;
  for (const list of Object.values(traces))
    for (const trace of list)
      for (const layer of trace.layers)
        for (const token of layer) {
          chosen += token.experts.length;
          cells++;
        }
  return cells ? chosen / cells : 0;
}

/** share[layer][domain][expert]: share of (token, chosen expert) assignments, native routing. */
function specialisation(traces: Record<string, RoutingTrace[]>, numExperts: number) {
  const result: { layer: number; shares: Record<string, number[]> }[] = [];
  const first = Object.values(traces)[0]?.[0];
  if (!first) return result;
  first.moeLayers.forEach((layer, m) => {
    const shares: Record<string, number[]> = {};
    for (const [domain, list] of Object.entries(traces)) {
      const counts = new Array<number>(numExperts).fill(0);
      let total = 0;
      for (const trace of list)
        for (const token of trace.layers[m]) {
          for (const e of token.experts) counts[e]++;
          total += token.experts.length;
        }
      shares[domain] = counts.map((c) => c / total);
    }
    result.push({ layer, shares });
  });
  return result;
}

const fmt = (x: number, digits = 3) => (Number.isFinite(x) ? x.toFixed(digits) : '—');
const meanOf = (losses: Record<string, number>) => DOMAINS.reduce((s, d) => s + losses[d], 0) / DOMAINS.length;

interface Ablation {
  layer: number;
  expert: number;
  domain: Domain;
  /** The domain's loss increase (nats) when the expert is ablated, and the other domains' mean increase. */
  rise: number;
  others: number;
}

/**
 * For every MoE layer and domain: ablate the expert that domain's tokens are routed to most (native
 * routing) and measure every domain's loss. Each (layer, expert) is evaluated once for all domains.
 */
async function ablations(
  model: LoadedModel,
  texts: DomainText[],
  window: number,
  base: Record<string, number>,
  specRows: { layer: number; shares: Record<string, number[]> }[],
): Promise<Ablation[]> {
  const out: Ablation[] = [];
  const cache = new Map<string, Record<string, number>>();
  for (const { layer, shares } of specRows) {
    for (const domain of DOMAINS) {
      const s = shares[domain];
      const expert = s.indexOf(Math.max(...s));
      const key = `${layer}:${expert}`;
      if (!cache.has(key))
        cache.set(key, (await evaluate(model, texts, 'native', window, [{ layer, expert, action: 'ablate' }])).losses);
      const losses = cache.get(key)!;
      const others =
        DOMAINS.filter((d) => d !== domain).reduce((acc, d) => acc + (losses[d] - base[d]), 0) / (DOMAINS.length - 1);
      out.push({ layer, expert, domain, rise: losses[domain] - base[domain], others });
    }
  }
  return out;
}

/** The ablation whose own-domain rise is largest relative to the others' (own rise at least 0.02 nats). */
function strongestAblation(list: Ablation[]): Ablation | null {
  const ratio = (a: Ablation) => (a.others > 1e-6 ? a.rise / a.others : a.rise > 0 ? Infinity : 0);
  return list.filter((a) => a.rise >= 0.02).sort((a, b) => ratio(b) - ratio(a))[0] ?? null;
}
const ablationRatio = (a: Ablation) => (a.others > 1e-6 ? a.rise / a.others : Infinity);

// 0.6-0.8 between 0.5 and 1: where the share of parameters active crosses 50% for the 8-expert models.
const THRESHOLDS = [0.25, 0.5, 0.6, 0.7, 0.8, 1, 2, 4];

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      'max-tokens': { type: 'string', default: '512' },
      models: { type: 'string', default: 'public/models' },
      'index-only': { type: 'boolean', default: false },
      // Comma-separated ids: measure and rewrite only these cards (and the index); the others are left
      // as they are. Naming one member of the zoo measures the whole zoo (each zoo card has its table).
      only: { type: 'string' },
    },
  });
  const modelsDir = resolve(REPO, values.models!);
  if (values['index-only']) {
    await writeIndex(modelsDir);
    return;
  }
  const maxTokens = Number(values['max-tokens']);
  const only = values.only ? new Set(values.only.split(',').map((id) => id.trim())) : null;
  if (only && ZOO.some((id) => only.has(id))) for (const id of ZOO) only.add(id);
  const unknown = only ? [...only].filter((id) => !MODELS.some((m) => m.id === id)) : [];
  if (unknown.length) throw new Error(`--only: no built-in model called ${unknown.join(', ')}`);
  const backend = createCpuBackend();
  const parentDir = join(modelsDir, 'dense-parent');
  const parent = await loadCheckpoint(dirSource(parentDir));
  const tokenizer = loadTokenizer(parent.tokenizerJson, parent.tokenizerConfigJson);
  const texts: DomainText[] = DOMAINS.map((domain) => ({
    domain,
    tokens: tokenizer.encode(readFileSync(join(REPO, 'public/eval', `${domain}.txt`), 'utf8')).slice(0, maxTokens),
  }));
  const window = Math.min(parent.spec.maxPositions, 256);

  type Row = {
    mode: string;
    losses: Record<string, number>;
    experts: number;
    active: number;
    traces: Record<string, RoutingTrace[]>;
  };
  async function table(spec: ModelSpec, weights: WeightSet, modes: readonly string[], withAblation = false) {
    const model = await backend.load(spec, weights);
    const rows: Row[] = [];
    for (const mode of spec.moe ? modes : (['native'] as const)) {
      const { losses, traces } = await evaluate(model, texts, mode, window);
      const experts = meanExpertsPerLayer(traces);
      const active = countParameters(spec).activeFor(parseRoutingMode(mode), experts) / countParameters(spec).total;
      rows.push({ mode, losses, experts, active, traces });
      console.error(`  ${mode}: ${DOMAINS.map((d) => `${d} ${fmt(losses[d])}`).join(', ')}`);
    }
    let ablation: Ablation[] = [];
    if (withAblation && spec.moe) {
      const native = rows.find((r) => r.mode === 'native')!;
      ablation = await ablations(
        model,
        texts,
        window,
        native.losses,
        specialisation(native.traces, spec.moe.numExperts),
      );
      console.error(`  ablations: ${ablation.length}`);
    }
    model.dispose();
    return { rows, ablation };
  }
  const curveModes = (e: number) => [
    ...Array.from({ length: e }, (_, i) => `topk:${i + 1}`),
    ...THRESHOLDS.map((t) => `threshold:${t}`),
  ];
  const allModes = (e: number) => [...new Set([...MODES, ...curveModes(e)])];

  console.error('dense-parent');
  const parentRows = (await table(parent.spec, parent.weights, ['native'])).rows;
  const parentLoss = parentRows[0].losses;
  // Each child's start, rebuilt in memory with the pipeline's options (training/build.py, seed 1234).
  const initCache = new Map<string, Row[]>();
  async function initRowsFor(start: NonNullable<ModelEntry['start']>): Promise<Row[] | null> {
    if (start.scratch) return null;
    const key = `${start.granularity}/${start.topK}/${start.drop}`;
    if (!initCache.has(key)) {
      console.error(`upcycled at initialisation (${key})`);
      const init = upcycle(parent.spec, parent.weights, {
        experts: 8,
        granularity: start.granularity,
        topK: start.topK,
        router: { kind: 'random', seed: 1234 },
        seed: 1234,
        drop: start.drop,
      });
      initCache.set(key, (await table(init.spec, init.weights, MODES)).rows);
    }
    return initCache.get(key)!;
  }
  const plainInit = (await initRowsFor({ granularity: 1, topK: 2, drop: 0 }))!;
  const initMaxDiff = Math.max(...plainInit.flatMap((r) => DOMAINS.map((d) => Math.abs(r.losses[d] - parentLoss[d]))));

  const summaries: Record<
    string,
    {
      rows: Row[];
      ablation: Ablation[];
      ckpt: Checkpoint;
      init: Row[] | null;
      distance: number[];
      quant: QuantCost[];
    }
  > = {};
  // What q8/q4 on load cost each model (the same measurement as `moe quantcost` and the page's panel).
  const quantWindows = texts.flatMap((t) => tokenWindows(t.tokens, window));
  async function quantCosts(ckpt: Checkpoint): Promise<QuantCost[]> {
    const out = await quantizationCosts(
      (quantize) => createCpuBackend({ quantize }),
      ckpt.spec,
      ckpt.weights,
      ['q8', 'q4'],
      quantWindows,
      { mode: { kind: 'native' }, interventions: [] },
    );
    console.error(`  quantization: ${out.map((c) => `${c.scheme} ${fmt(c.deltaLoss)}`).join(', ')}`);
    return out;
  }
  for (let entry of MODELS) {
    if (only && !only.has(entry.id)) continue;
    const folder = join(modelsDir, entry.id);
    if (!existsSync(join(folder, 'config.json'))) {
      console.error(`${entry.id}: not built yet, skipped`);
      continue;
    }
    console.error(entry.id);
    entry = asBuilt(entry, folder);
    const ckpt = entry.id === 'dense-parent' ? parent : await loadCheckpoint(dirSource(folder));
    const { rows, ablation } =
      entry.id === 'dense-parent'
        ? { rows: parentRows, ablation: [] }
        : await table(ckpt.spec, ckpt.weights, allModes(ckpt.spec.moe?.numExperts ?? 1), true);
    const init = entry.start ? await initRowsFor(entry.start) : null;
    summaries[entry.id] = {
      rows,
      ablation,
      ckpt,
      init,
      distance: ckpt.spec.moe ? expertDistance(ckpt.weights) : [],
      quant: await quantCosts(ckpt),
    };
  }

  for (let entry of MODELS) {
    const summary = summaries[entry.id];
    if (!summary) continue;
    entry = asBuilt(entry, join(modelsDir, entry.id));
    const { rows, ckpt, ablation, init, distance, quant } = summary;
    const spec = ckpt.spec;
    const folder = join(modelsDir, entry.id);
    const facts = trainingFacts(entry.stage, folder);
    const params = countParameters(spec);
    const lines: string[] = [];
    const extra: Record<string, unknown> = {};
    lines.push(`# ${entry.id}: ${entry.name}`, '', entry.training, '');
    lines.push('## Configuration', '');
    lines.push(`| | |`, `|---|---|`);
    lines.push(
      `| architecture | ${spec.architecture}, ${spec.numLayers} layers, hidden ${spec.hiddenSize}, ${spec.numHeads} query / ${spec.numKvHeads} KV heads of ${spec.headDim} |`,
    );
    if (spec.moe)
      lines.push(
        `| experts | ${spec.moe.numExperts} per layer of width ${spec.moe.expertIntermediateSize}, native top-${spec.moe.topK}, weights ${spec.moe.normTopkProb ? 'renormalised over the chosen experts' : 'raw router probabilities (not renormalised)'} |`,
      );
    else lines.push(`| feed-forward | SwiGLU, width ${spec.intermediateSize} |`);
    lines.push(
      `| vocabulary | ${spec.vocabSize} (byte-level BPE trained on the corpus), context ${spec.maxPositions} |`,
    );
    lines.push(
      `| parameters | ${(params.total / 1e6).toFixed(2)} M total, ${(params.activeFor({ kind: 'native' }) / 1e6).toFixed(2)} M active per token (native) |`,
    );
    lines.push(`| storage | ${spec.dtype}, ${(ckpt.bytesOnDisk / 1e6).toFixed(1)} MB on disk |`);
    if (facts) {
      lines.push(
        `| training | ${facts.steps} steps${facts.tokensPerStep ? ` × ${facts.tokensPerStep} tokens = ${((facts.steps * facts.tokensPerStep) / 1e6).toFixed(1)} M tokens` : ''}, ${(facts.seconds / 60).toFixed(0)} min wall-clock on this project's 2-core CPU machine (${entry.howRun ?? '1 thread, shared with other work'})${entry.id === 'dense-parent' && entry.stage === 'parent' ? ', after the first 3500 steps (7.2 M tokens, 40 min)' : ''} |`,
      );
    }
    const extraText = entry.id !== 'dense-parent' || entry.stage === 'parent';
    lines.push(
      `| data | four domains from Debian packages (English and German fortunes, the Python standard library, generated arithmetic)${extraText ? ' plus training-only extra English (King James Bible, Python documentation, GNU manuals) and Python (standard-library packages)' : ''}${entry.data ?? ''}: see training/README.md |`,
      '',
    );

    lines.push('## Held-out loss per domain and routing mode', '');
    lines.push(
      `Measured with the playground's engine (CPU reference backend, the code behind \`moe eval\`) on the first ${maxTokens} tokens of each \`public/eval/<domain>.txt\`, in windows of ${window} tokens. Nats per token; lower is better. "experts/layer" is the mean number of experts computed per token and layer; "active" the share of parameters used per token.`,
      '',
    );
    lines.push(`| model | mode | ${DOMAINS.join(' | ')} | mean | experts/layer | active |`);
    lines.push(`|---|---|${DOMAINS.map(() => '---|').join('')}---|---|---|`);
    const row = (label: string, r: Row) => {
      lines.push(
        `| ${label} | ${r.mode} | ${DOMAINS.map((d) => fmt(r.losses[d])).join(' | ')} | ${fmt(meanOf(r.losses))} | ${r.experts > 0 ? fmt(r.experts, 2) : '— (dense FFN)'} | ${(r.active * 100).toFixed(0)}% |`,
      );
    };
    const shown = rows.filter((r) => (MODES as readonly string[]).includes(r.mode));
    for (const r of shown) row(entry.id, r);
    if (entry.id !== 'dense-parent') {
      for (const r of parentRows) row('dense-parent', r);
      if (init) for (const r of init) row('its start (at init)', r);
    }
    lines.push('');
    if (entry.start && entry.start.drop > 0) {
      lines.push(
        `Its start is not its parent: Drop-Upcycling re-initialised ${entry.start.drop * 100}% of every expert's units, so at initialisation the child is worse than the parent (the "its start" rows) and training has to recover that. Plain upcycling (no drop) would equal the parent: rebuilt by the engine, the largest difference from the parent's loss over every domain and mode is ${initMaxDiff.toExponential(1)} nats.`,
        '',
      );
    } else if (entry.start && !entry.start.scratch) {
      lines.push(
        `The upcycled start equals its parent: the largest difference from the parent's loss over every domain and mode is ${initMaxDiff.toExponential(1)} nats.`,
        '',
      );
    } else if (entry.start?.scratch) {
      lines.push('Its start is random (nothing from the parent), so there is no "at init" row to compare.', '');
    }

    lines.push('## Quantized weights', '');
    lines.push(
      "What quantizing the matrices on load costs (the page's quantization panel, `moe quantcost`): native routing, the same eval tokens, each position's next-token distribution against the weights as stored; routers stay as stored.",
      '',
    );
    const bytes = weightBytesBySchemes(ckpt.weights);
    lines.push(
      '| scheme | weights | routing decisions unchanged | top-1 next token the same | KL (nats) | mean loss | Δloss |',
      '|---|---|---|---|---|---|---|',
      `| as stored (${spec.dtype}) | ${(bytes.none / 1e6).toFixed(1)} MB | — | — | — | ${fmt(quant[0].referenceLoss)} | — |`,
    );
    for (const c of quant)
      lines.push(
        `| ${c.scheme} | ${(bytes[c.scheme] / 1e6).toFixed(1)} MB | ${c.routingUnchanged === null ? '— (no router)' : `${(100 * c.routingUnchanged).toFixed(1)}%`} | ${(100 * c.top1Agreement).toFixed(1)}% | ${c.meanKl.toFixed(5)} | ${fmt(c.quantizedLoss)} | ${c.deltaLoss >= 0 ? '+' : '−'}${Math.abs(c.deltaLoss).toFixed(4)} |`,
      );
    lines.push('');
    extra.quantization = quant.map((c) => ({ ...c, weightBytes: bytes[c.scheme] }));

    if (spec.moe) {
      const byMode = Object.fromEntries(rows.map((r) => [r.mode, r]));
      const mean = (m: string) => meanOf(byMode[m].losses);
      const E = spec.moe.numExperts;
      const entropy = routerEntropyPerLayer(byMode.native.traces);
      const limit = 0.7 * Math.log(E);
      const decided = entropy.filter((h) => h <= limit).length;
      const meanDistance = distance.reduce((a, b) => a + b, 0) / distance.length;
      lines.push('## Experts and routers', '');
      lines.push(
        `Expert distance: per layer, the mean over experts of |W_e − W̄| / |W̄| on the gate projection (W̄ the experts' mean; 0 for identical copies). Router entropy: the mean entropy of the router's probabilities over the eval tokens (native routing), against ln E = ${fmt(Math.log(E))} for a router that cannot decide.`,
        '',
      );
      lines.push('| layer | expert distance | router entropy (nats) | entropy / ln E |', '|---|---|---|---|');
      const moeLayers = byMode.native.traces.english[0].moeLayers;
      moeLayers.forEach((layer, m) =>
        lines.push(
          `| ${layer} | ${fmt(distance[m])} | ${fmt(entropy[m])} | ${((entropy[m] / Math.log(E)) * 100).toFixed(0)}% |`,
        ),
      );
      lines.push('');
      lines.push(
        `Targets (issue 14): mean expert distance ≥ 0.3: ${fmt(meanDistance)}, ${meanDistance >= 0.3 ? 'reached' : 'missed'}; router entropy ≤ 0.7·ln E = ${fmt(limit)} in at least half the MoE layers: ${decided} of ${entropy.length} layers, ${decided * 2 >= entropy.length ? 'reached' : 'missed'}.`,
        '',
      );
      extra.expertDistance = distance;
      extra.routerEntropy = entropy;

      lines.push('## Ablating the expert a domain uses most', '');
      lines.push(
        'For each layer and domain: the expert that domain\'s tokens are routed to most (native routing) is ablated (the router may not choose it) and every domain\'s loss measured again. "own rise" is that domain\'s loss increase, "others" the mean increase of the other three domains.',
        '',
      );
      lines.push('| layer | domain | expert | own rise | others | ratio |', '|---|---|---|---|---|---|');
      const ratioText = (a: Ablation) =>
        a.others > 1e-6 ? fmt(ablationRatio(a), 1) : a.rise > 0 ? '∞ (others ≤ 0)' : '—';
      for (const a of ablation)
        lines.push(`| ${a.layer} | ${a.domain} | E${a.expert} | ${fmt(a.rise)} | ${fmt(a.others)} | ${ratioText(a)} |`);
      const best = strongestAblation(ablation);
      // The largest own rise among the specific ones (at least 2x the others): the clearest to show a class.
      const largest = ablation
        .filter((a) => a.rise >= 0.02 && ablationRatio(a) >= 2)
        .sort((a, b) => b.rise - a.rise)[0];
      lines.push('');
      lines.push(
        best
          ? `Most specific effect: ablating expert ${best.expert} of layer ${best.layer} raises the ${best.domain} loss by ${fmt(best.rise)} nats against ${fmt(best.others)} for the other domains (${ratioText(best)}×)${largest && largest !== best ? `; largest specific effect: expert ${largest.expert} of layer ${largest.layer}, ${largest.domain} +${fmt(largest.rise)} nats against ${fmt(largest.others)} (${ratioText(largest)}×)` : ''}. Target (issue 14): at least 2×: ${ablationRatio(best) >= 2 ? 'reached' : 'missed'}.`
          : "No ablation raised its own domain's loss by 0.02 nats or more: the experts are interchangeable. Target (issue 14, at least 2× the other domains): missed.",
        '',
      );
      extra.ablation = {
        rows: ablation,
        strongest: best,
        ratio: best ? ablationRatio(best) : null,
        largest: largest ?? null,
      };

      lines.push('## Trade-off: loss against the share of parameters active', '');
      lines.push(
        `Every top-k from 1 to ${E} and the thresholds E·p > t for t in ${THRESHOLDS.join(', ')} (weights ${spec.moe.normTopkProb ? 'renormalised' : 'raw probabilities, as served'}), sorted by the share of parameters active; Δ is the mean loss minus the dense (every expert, raw weights) loss.`,
        '',
      );
      lines.push('| mode | experts/layer | active | mean loss | Δ vs dense |', '|---|---|---|---|---|');
      const curve = rows
        .filter((r) => r.mode.startsWith('topk:') || r.mode.startsWith('threshold:'))
        .sort((a, b) => a.active - b.active);
      for (const r of curve)
        lines.push(
          `| ${r.mode} | ${fmt(r.experts, 2)} | ${(r.active * 100).toFixed(0)}% | ${fmt(meanOf(r.losses))} | ${fmt(meanOf(r.losses) - mean('dense'))} |`,
        );
      lines.push('');
      const half = curve.filter((r) => r.active <= 0.5).sort((a, b) => meanOf(a.losses) - meanOf(b.losses))[0];
      extra.curve = curve.map((r) => ({
        mode: r.mode,
        experts: r.experts,
        active: r.active,
        mean: meanOf(r.losses),
        gap: meanOf(r.losses) - mean('dense'),
      }));
      if (half) {
        const gap = meanOf(half.losses) - mean('dense');
        lines.push(
          `Best with at most 50% of parameters active: ${half.mode} (${(half.active * 100).toFixed(0)}% active), ${fmt(gap)} nats from dense${entry.id === 'ds-moe' ? `. DS-MoE's claim (issue 14: within 0.05 nats of its dense loss at ≤ 50% of parameters active): ${gap <= 0.05 ? 'reached' : 'missed'}.` : '.'}`,
          '',
        );
        extra.bestAtHalf = { mode: half.mode, active: half.active, gap };
      }
      if (entry.tried) lines.push(`Runs tried: ${entry.tried}`, '');
      lines.push(
        `Router sharpness overall: mean entropy ${fmt(meanRouterEntropy(byMode.native.traces))} nats (uniform over ${E} experts: ${fmt(Math.log(E))}). Mean loss: dense ${fmt(mean('dense'))}, top-2 ${fmt(mean('topk:2'))} (${fmt(mean('topk:2') - mean('dense'), 3)} vs dense), top-1 ${fmt(mean('topk:1'))} (${fmt(mean('topk:1') - mean('dense'), 3)}), threshold:1.0 ${fmt(mean('threshold:1'))} with ${fmt(byMode['threshold:1'].experts, 2)} experts/layer.`,
        '',
      );

      if (ZOO.includes(entry.id)) {
        lines.push('## The zoo: what upcycling buys', '');
        lines.push(
          "One shape (8 experts of width 128, top-4), one parent, the same training steps and tokens; only the start differs (llm-jp's comparison, scaled down).",
          '',
        );
        lines.push(
          '| model | start | mean loss at init (native) | mean loss trained (native) | mean expert distance | mean router entropy | strongest ablation ratio |',
          '|---|---|---|---|---|---|---|',
        );
        for (const id of ZOO) {
          const z = summaries[id];
          if (!z) {
            lines.push(`| ${id} | ${ZOO_LABEL[id]} | not built yet | | | | |`);
            continue;
          }
          const zn = z.rows.find((r) => r.mode === 'native')!;
          const zi = z.init?.find((r) => r.mode === 'native');
          const zb = strongestAblation(z.ablation);
          const ze = routerEntropyPerLayer(zn.traces);
          lines.push(
            `| ${id} | ${ZOO_LABEL[id]} | ${zi ? fmt(meanOf(zi.losses)) : 'random'} | ${fmt(meanOf(zn.losses))} | ${fmt(z.distance.reduce((a, b) => a + b, 0) / z.distance.length)} | ${fmt(ze.reduce((a, b) => a + b, 0) / ze.length)} | ${zb ? fmt(ablationRatio(zb), 1) : '—'} |`,
          );
        }
        lines.push('');
      }

      const specRows = specialisation(byMode.native.traces, E);
      const uniform = 1 / E;
      let worst = { dev: 0, layer: 0, domain: '', expert: 0, share: 0 };
      lines.push('## Specialisation: share of routed tokens per expert, by domain (native routing)', '');
      lines.push(
        `Each cell is the share of (token, chosen expert) assignments that went to the expert; uniform is 1/E = ${fmt(uniform)}. Layers are counted separately (expert e of layer 0 and expert e of layer 1 are different experts).`,
        '',
      );
      for (const { layer, shares } of specRows) {
        lines.push(
          `Layer ${layer}:`,
          '',
          `| domain | ${Array.from({ length: E }, (_, e) => `E${e}`).join(' | ')} |`,
          `|---|${'---|'.repeat(E)}`,
        );
        for (const domain of DOMAINS) {
          const sh = shares[domain];
          sh.forEach((v, e) => {
            if (Math.abs(v - uniform) > worst.dev)
              worst = { dev: Math.abs(v - uniform), layer, domain, expert: e, share: v };
          });
          lines.push(`| ${domain} | ${sh.map((v) => fmt(v, 2)).join(' | ')} |`);
        }
        lines.push('');
      }
      lines.push(
        `Largest deviation from uniform: layer ${worst.layer}, expert ${worst.expert}, ${worst.domain}: ${fmt(worst.share)} of the assignments against ${fmt(uniform)} uniform (${(worst.share / uniform).toFixed(1)}×).`,
        '',
      );
    }
    lines.push('---', '', 'Generated by `npx tsx training/cards.ts` from the checkpoint in this folder.', '');
    writeFileSync(join(folder, 'README.md'), lines.join('\n'));
    writeFileSync(
      join(folder, 'card.json'),
      JSON.stringify(
        {
          id: entry.id,
          losses: rows.map((r) => ({
            mode: r.mode,
            losses: r.losses,
            expertsPerLayer: r.experts,
            activeShare: r.active,
          })),
          training: facts,
          ...extra,
        },
        null,
        2,
      ) + '\n',
    );
  }
  await writeIndex(modelsDir);
}

/**
 * The page suggests a sparse routing when the card found one far better than native: within 0.05 nats
 * of every expert at ≤ 50% of the parameters while native costs at least 0.1 nats more (ds-moe, whose
 * native top-2 with raw probabilities is DS-MoE's worst case). Read from the card written above.
 */
function suggestedRouting(folder: string): { suggestedRouting?: Record<string, number | string> } {
  const file = join(folder, 'card.json');
  if (!existsSync(file)) return {};
  const card = JSON.parse(readFileSync(file, 'utf8')) as {
    losses: { mode: string; losses: Record<string, number> }[];
    bestAtHalf?: { mode: string; active: number; gap: number };
  };
  const mean = (mode: string) => {
    const row = card.losses.find((r) => r.mode === mode);
    return row ? meanOf(row.losses) : Number.NaN;
  };
  const best = card.bestAtHalf;
  const nativeGap = mean('native') - mean('dense');
  if (!best || !(best.gap <= 0.05) || !(nativeGap - best.gap >= 0.1)) return {};
  return { suggestedRouting: { mode: best.mode, active: best.active, gap: best.gap, nativeGap } };
}

/** The model picker's list. Order: the MoE children first (the default is the first), the parent last. */
async function writeIndex(modelsDir: string): Promise<void> {
  const models = [];
  for (const entry of MODELS) {
    const folder = join(modelsDir, entry.id);
    if (!existsSync(join(folder, 'config.json'))) continue;
    const { spec } = await loadCheckpoint(dirSource(folder));
    const params = countParameters(spec);
    const built = asBuilt(entry, folder);
    models.push({
      id: entry.id,
      name: built.name,
      path: `models/${entry.id}/`,
      description: built.training,
      training: built.training,
      parametersTotal: params.total,
      parametersActive: params.activeFor({ kind: 'native' }),
      ...suggestedRouting(folder),
    });
  }
  writeFileSync(join(modelsDir, 'index.json'), JSON.stringify({ models }, null, 2) + '\n');
  console.error(`wrote ${join(modelsDir, 'index.json')} (${models.map((m) => m.id).join(', ')})`);
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
