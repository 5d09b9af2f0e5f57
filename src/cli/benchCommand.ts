// `moe bench DIR`: prefill and decode speed per routing mode and backend, measured side by side in one
// process, next to what the active-parameter counts say the sparse/dense speed-up should be.
import { readFileSync } from 'node:fs';
import { availableParallelism, cpus } from 'node:os';
import type { Backend, BackendKind, LoadedModel, ModelSpec, RoutingMode, RoutingPlan } from '../engine/types.ts';
import { countParameters, type Checkpoint } from '../engine/format/index.ts';
import { formatRoutingMode, parseRoutingMode, validateRoutingPlan } from '../engine/routing/index.ts';
import { CpuModel } from '../engine/backends/cpu/index.ts';
import { CliError, createBackend, formatBytes, formatCount, isCount, numberFlag, openCheckpoint, parseBackendKind } from './common.ts';

export interface BenchFlags {
  routing?: string;
  backend?: string;
  promptTokens?: string;
  decodeTokens?: string;
  minSeconds?: string;
  json: boolean;
}

export interface BenchResult {
  routing: string;
  backend: BackendKind;
  prefillTokensPerSecond: number;
  decodeTokensPerSecond: number;
  /** countParameters(spec).activeFor(mode, avgExpertsPerLayer). */
  activeParameters: number;
  /** Weight bytes one decode step reads, from the backend's own counters (the CPU holds weights as f32). */
  weightBytesPerToken: number;
  /** Routed experts per token and MoE layer during decode (the chosen-set size; E for dense). */
  avgExpertsPerLayer: number;
  /** activeFor(dense) / activeParameters: the decode speed-up if time followed active parameters. */
  idealSpeedup: number;
  /** decode tok/s of this mode / decode tok/s of dense on the same backend. */
  measuredSpeedup: number;
}

export interface BenchMachine {
  cpu: string;
  cores: number;
  /** Backend kind → its description (WebGPU: the adapter). */
  backends: Partial<Record<BackendKind, string>>;
}

export interface BenchReport {
  machine: BenchMachine;
  model: { label: string; architecture: string; dtype: string; totalParameters: number; experts: number | null; topK: number | null };
  promptTokens: number;
  decodeTokens: number;
  minSeconds: number;
  results: BenchResult[];
}

export interface BenchOptions {
  modes: RoutingMode[];
  backends: BackendKind[];
  promptTokens: number;
  decodeTokens: number;
  /** Repeat the measured run until this much decode time is collected (fast backends: steadier figures). */
  minSeconds: number;
  /** Called after each measured row (progress on a slow backend). */
  onResult?: (r: BenchResult) => void;
}

/** The modes the bench measures by default: dense first (the baseline), then the sparse ones. */
export function defaultBenchModes(spec: ModelSpec): RoutingMode[] {
  if (!spec.moe) return [{ kind: 'native' }];
  const modes: RoutingMode[] = [{ kind: 'dense' }, { kind: 'topk', k: 1 }];
  if (spec.moe.numExperts >= 2) modes.push({ kind: 'topk', k: 2 });
  modes.push({ kind: 'native' }, { kind: 'threshold', t: 1.0 });
  return modes;
}

export function machineCpu(): { cpu: string; cores: number } {
  let cpu = cpus()[0]?.model ?? '';
  try {
    cpu = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim() ?? cpu;
  } catch {
    // Not Linux: os.cpus() already named it.
  }
  return { cpu: cpu || 'unknown CPU', cores: availableParallelism() };
}

function argmax(row: Float32Array): number {
  let best = 0;
  for (let i = 1; i < row.length; i++) if (row[i] > row[best]) best = i;
  return best;
}

interface Timing {
  prefillSeconds: number;
  decodeSeconds: number;
  /** Chosen experts summed over decode steps and MoE layers, and how many (step, layer) pairs. */
  chosen: number;
  routed: number;
  /** Weight bytes summed over decode steps (WebGPU: lastStats; CPU: from its expert counter). */
  weightBytes: number;
}

/** Per-token weight bytes the CPU reads outside routed experts: it holds everything as f32. */
function cpuNonExpertBytesPerToken(spec: ModelSpec): number {
  const counts = countParameters(spec);
  const d = spec.hiddenSize;
  // countParameters counts the whole embedding table; a token reads one row of it (plus the LM head).
  const embedTable = spec.vocabSize * d;
  return (counts.nonExpert - embedTable + d) * 4;
}

/** A prefill of `prompt`, then `decodeTokens` greedy single-token steps, each timed as a whole (incl. readback). */
async function timeRun(model: LoadedModel, prompt: number[], decodeTokens: number, routing: RoutingPlan): Promise<Timing> {
  const spec = model.spec;
  const perExpertCpuBytes = spec.moe ? countParameters(spec).perExpert * 4 : 0;
  const cpuFixed = cpuNonExpertBytesPerToken(spec);
  const cache = model.newCache(prompt.length + decodeTokens);
  const t: Timing = { prefillSeconds: 0, decodeSeconds: 0, chosen: 0, routed: 0, weightBytes: 0 };
  try {
    let start = performance.now();
    let out = await model.forward(prompt, cache, { routing, logits: 'last' });
    t.prefillSeconds = (performance.now() - start) / 1000;
    for (let i = 0; i < decodeTokens; i++) {
      const next = argmax(out.logits[out.logits.length - 1]);
      if (model instanceof CpuModel) model.resetStats();
      start = performance.now();
      out = await model.forward([next], cache, { routing, logits: 'last' });
      t.decodeSeconds += (performance.now() - start) / 1000;
      for (const layer of out.routing.layers) {
        t.chosen += layer[0].experts.length;
        t.routed++;
      }
      if (model instanceof CpuModel) {
        t.weightBytes += cpuFixed + model.stats.expertCalls * perExpertCpuBytes;
      } else {
        const stats = (model as { lastStats?: { weightBytesPerToken: number } | null }).lastStats;
        if (!stats) throw new Error(`the ${model.backend} backend reports no weight traffic (lastStats)`);
        t.weightBytes += stats.weightBytesPerToken;
      }
    }
    return t;
  } finally {
    cache.dispose();
  }
}

/** Runs every mode on every backend; dense is always measured (first) because every ratio is against it. */
export async function runBench(ckpt: Checkpoint, label: string, options: BenchOptions): Promise<BenchReport> {
  const { spec, weights } = ckpt;
  const { promptTokens, decodeTokens } = options;
  if (promptTokens + decodeTokens > spec.maxPositions) {
    throw new CliError(`--prompt-tokens plus --decode-tokens exceeds the model's ${spec.maxPositions} positions.`, 'Use fewer tokens.');
  }
  const dense: RoutingMode = spec.moe ? { kind: 'dense' } : { kind: 'native' };
  const modes = [dense, ...options.modes.filter((m) => formatRoutingMode(m) !== formatRoutingMode(dense))];
  for (const mode of modes) validateRoutingPlan({ mode, interventions: [] }, spec);
  const counts = countParameters(spec);
  // A fixed pseudo-random prompt: every mode and backend sees the same tokens.
  const prompt = Array.from({ length: promptTokens }, (_, i) => (i * 7919 + 13) % spec.vocabSize);
  const warmPrompt = prompt.slice(0, Math.min(8, promptTokens));

  const report: BenchReport = {
    machine: { ...machineCpu(), backends: {} },
    model: {
      label,
      architecture: spec.architecture,
      dtype: spec.dtype,
      totalParameters: counts.total,
      experts: spec.moe?.numExperts ?? null,
      topK: spec.moe?.topK ?? null,
    },
    promptTokens,
    decodeTokens,
    minSeconds: options.minSeconds,
    results: [],
  };
  for (const kind of options.backends) {
    const backend: Backend = await createBackend(kind);
    report.machine.backends[kind] = backend.description;
    let model: LoadedModel | null = null;
    try {
      model = await backend.load(spec, weights);
      let denseDecode = 0;
      for (const mode of modes) {
        const plan: RoutingPlan = { mode, interventions: [] };
        // Warm-up: pipelines and scratch buffers (WebGPU: a short run is enough); the CPU's JIT wants the full run.
        if (kind === 'cpu') await timeRun(model, prompt, decodeTokens, plan);
        else await timeRun(model, warmPrompt, 2, plan);
        const t = await timeRun(model, prompt, decodeTokens, plan);
        let rounds = 1;
        while (t.decodeSeconds < options.minSeconds && rounds < 1000) {
          const more = await timeRun(model, prompt, decodeTokens, plan);
          t.prefillSeconds += more.prefillSeconds;
          t.decodeSeconds += more.decodeSeconds;
          t.chosen += more.chosen;
          t.routed += more.routed;
          t.weightBytes += more.weightBytes;
          rounds++;
        }
        const decodeTokensPerSecond = (rounds * decodeTokens) / t.decodeSeconds;
        if (mode === dense) denseDecode = decodeTokensPerSecond;
        const avgExpertsPerLayer = t.routed > 0 ? t.chosen / t.routed : 0;
        const activeParameters = counts.activeFor(mode, avgExpertsPerLayer);
        const r: BenchResult = {
          routing: formatRoutingMode(mode),
          backend: kind,
          prefillTokensPerSecond: (rounds * promptTokens) / t.prefillSeconds,
          decodeTokensPerSecond,
          activeParameters,
          weightBytesPerToken: t.weightBytes / (rounds * decodeTokens),
          avgExpertsPerLayer,
          idealSpeedup: counts.activeFor(dense) / activeParameters,
          measuredSpeedup: decodeTokensPerSecond / denseDecode,
        };
        report.results.push(r);
        options.onResult?.(r);
      }
    } finally {
      model?.dispose();
      backend.dispose();
    }
  }
  return report;
}

const COLUMNS = ['backend', 'mode', 'prefill tok/s', 'decode tok/s', 'vs dense', 'ideal', 'experts/layer', 'weights/token', 'active params'];

function row(r: BenchResult): string[] {
  return [
    r.backend,
    r.routing,
    r.prefillTokensPerSecond.toFixed(r.prefillTokensPerSecond < 10 ? 2 : 1),
    r.decodeTokensPerSecond.toFixed(r.decodeTokensPerSecond < 10 ? 2 : 1),
    `${r.measuredSpeedup.toFixed(2)}×`,
    `${r.idealSpeedup.toFixed(2)}×`,
    r.avgExpertsPerLayer.toFixed(2),
    formatBytes(r.weightBytesPerToken),
    formatCount(r.activeParameters),
  ];
}

/** The results as a Markdown table (readable in a terminal, pasteable into a README). */
export function formatBenchTable(results: BenchResult[]): string {
  const body = [COLUMNS, ...results.map(row)];
  const widths = COLUMNS.map((_, i) => Math.max(...body.map((l) => l[i].length)));
  const line = (l: string[]) => `| ${l.map((cell, i) => (i < 2 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join(' | ')} |`;
  const rule = `|${widths.map((w, i) => (i < 2 ? ` ${'-'.repeat(w)} ` : ` ${'-'.repeat(w - 1)}: `)).join('|')}|`;
  return [line(COLUMNS), rule, ...body.slice(1).map(line)].join('\n');
}

export function formatBenchHeader(report: Pick<BenchReport, 'machine' | 'model' | 'promptTokens' | 'decodeTokens' | 'minSeconds'>): string {
  const m = report.model;
  const lines = [
    `machine: ${report.machine.cpu}, ${report.machine.cores} cores`,
    ...Object.entries(report.machine.backends).map(([kind, d]) => `${kind}: ${d}`),
    `model: ${m.label} (${m.architecture}, ${m.dtype}, ${formatCount(m.totalParameters)} parameters${m.experts ? `, ${m.experts} experts, top-${m.topK}` : ''})`,
    `${report.promptTokens} prompt tokens + ${report.decodeTokens} decode tokens per run, runs repeated until ≥ ${report.minSeconds} s of decode, after one warm-up run per mode`,
  ];
  return lines.join('\n');
}

/** "all" | "cpu" | "webgpu" | "cpu,webgpu" → backend kinds. */
export function parseBenchBackends(value: string | undefined): BackendKind[] {
  if (value === 'all') return ['cpu', 'webgpu'];
  const kinds = (value ?? 'cpu').split(',').map((s) => parseBackendKindOrAll(s.trim()));
  return [...new Set(kinds)];
}

function parseBackendKindOrAll(s: string): BackendKind {
  try {
    return parseBackendKind(s);
  } catch {
    throw new CliError(`Unknown backend "${s}".`, 'Use --backend cpu, webgpu or all.');
  }
}

/** "dense,topk:2" → modes (each checked); absent → the default list. */
export function parseBenchModes(spec: ModelSpec, value: string | undefined): RoutingMode[] {
  if (value === undefined) return defaultBenchModes(spec);
  return value.split(',').map((s) => parseRoutingMode(s.trim()));
}

export function benchOptionsFromFlags(spec: ModelSpec, flags: BenchFlags, defaults = { promptTokens: 16, decodeTokens: 8 }): BenchOptions {
  return {
    modes: parseBenchModes(spec, flags.routing),
    backends: parseBenchBackends(flags.backend),
    promptTokens: numberFlag('prompt-tokens', flags.promptTokens, defaults.promptTokens, isCount, 'a whole number ≥ 1'),
    decodeTokens: numberFlag('decode-tokens', flags.decodeTokens, defaults.decodeTokens, isCount, 'a whole number ≥ 1'),
    minSeconds: numberFlag('min-seconds', flags.minSeconds, 1, (n) => n >= 0 && n <= 3600, 'a number of seconds from 0 to 3600'),
  };
}

/** Runs the bench and prints either the table (progress on stderr while it runs) or one JSON object. */
export async function printBench(ckpt: Checkpoint, label: string, options: BenchOptions, json: boolean): Promise<BenchReport> {
  const report = await runBench(ckpt, label, {
    ...options,
    onResult: json
      ? undefined
      : (r) => process.stderr.write(`  ${r.backend} ${r.routing}: prefill ${r.prefillTokensPerSecond.toFixed(2)} tok/s, decode ${r.decodeTokensPerSecond.toFixed(2)} tok/s\n`),
  });
  if (json) process.stdout.write(JSON.stringify(report) + '\n');
  else process.stdout.write(`${formatBenchHeader(report)}\n\n${formatBenchTable(report.results)}\n`);
  return report;
}

export async function benchCommand(dir: string, flags: BenchFlags): Promise<void> {
  const ckpt = await openCheckpoint(dir);
  await printBench(ckpt, dir, benchOptionsFromFlags(ckpt.spec, flags), flags.json);
}
