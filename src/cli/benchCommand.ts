// `moe bench DIR`: prefill and decode speed per routing mode and backend, measured side by side in one
// process, next to what the active-parameter counts say the sparse/dense speed-up should be.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { availableParallelism, cpus } from 'node:os';
import type {
  Backend,
  BackendKind,
  LoadedModel,
  ModelSpec,
  QuantScheme,
  RoutingMode,
  RoutingPlan,
} from '../engine/types.ts';
import { QuantizationError } from '../engine/format/quant.ts';
import { countParameters, type Checkpoint } from '../engine/format/index.ts';
import { formatRoutingMode, parseRoutingMode, validateRoutingPlan } from '../engine/routing/index.ts';
import { CpuModel } from '../engine/backends/cpu/index.ts';
import { resolveSource } from './sources.ts';
import {
  CliError,
  createBackend,
  formatBytes,
  formatCount,
  isCount,
  numberFlag,
  openCheckpoint,
  parseBackendKind,
  parseQuantize,
} from './common.ts';

export interface BenchFlags {
  routing?: string;
  backend?: string;
  promptTokens?: string;
  decodeTokens?: string;
  minSeconds?: string;
  /** Comma-separated schemes: none,q8,q4 (default none). */
  quantize?: string;
  /** Run the PyTorch eager baseline (bench/torch_decode.py) in the same run. */
  torch?: boolean;
  json: boolean;
}

export interface BenchResult {
  routing: string;
  backend: BackendKind;
  /** How the weights were held: as stored ('none') or quantized on load. */
  quantization: QuantScheme;
  prefillTokensPerSecond: number;
  decodeTokensPerSecond: number;
  /** countParameters(spec).activeFor(mode, avgExpertsPerLayer). */
  activeParameters: number;
  /** Weight bytes one decode step reads, from the backend's own counters. */
  weightBytesPerToken: number;
  /** Parameters one decode step reads: activeParameters with the embedding table counted as the one row a token reads. */
  parametersReadPerToken: number;
  /** weightBytesPerToken / parametersReadPerToken: ≈ 2 for f16, ≈ 1.06 for q8, ≈ 0.56 for q4; more means reading more than needed. */
  bytesPerActiveParameter: number;
  /** WebGPU: compute dispatches per decode step; null on the CPU. */
  gpuDispatchesPerToken: number | null;
  /** The PyTorch eager loop's decode tok/s for this routing mode, same run (null when not run or not supported). */
  torchDecodeTokensPerSecond: number | null;
  /** decodeTokensPerSecond / torchDecodeTokensPerSecond. */
  vsTorch: number | null;
  /** Whether the engine's greedy tokens equal PyTorch's for this mode (the same model, computed twice); null when not compared. */
  torchTokensAgree: boolean | null;
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
  model: {
    label: string;
    architecture: string;
    dtype: string;
    totalParameters: number;
    experts: number | null;
    topK: number | null;
  };
  promptTokens: number;
  decodeTokens: number;
  minSeconds: number;
  /** Measurements per row (best kept). */
  repeats: number;
  results: BenchResult[];
  /** The PyTorch eager baseline, when run: its version, thread count, compute dtype and per-mode figures. */
  torch: TorchBaseline | null;
  /** Backend × quantization pairs that could not run, with the reason. */
  skipped: string[];
}

export interface TorchBaseline {
  torch: string;
  threads: number;
  dtype: string;
  /** Every PyTorch measurement, in order; each CPU row pairs with the best of its `repeats` interleaved ones. */
  results: TorchRun[];
}

export interface BenchOptions {
  modes: RoutingMode[];
  backends: BackendKind[];
  promptTokens: number;
  decodeTokens: number;
  /** Repeat the measured run until this much decode time is collected (fast backends: steadier figures). */
  minSeconds: number;
  /** Weight formats to measure, each a separate load (default ['none']). */
  quantize?: QuantScheme[];
  /** Run bench/torch_decode.py (PyTorch eager, same weights, 1 thread) on the checkpoint folder. */
  torchModelDir?: string;
  /** Measurements per row, best kept (default 3 with the PyTorch baseline, else 1); engine and PyTorch alternate. */
  repeats?: number;
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
  /** Weight bytes summed over decode steps (WebGPU: lastStats; CPU: its own counter). */
  weightBytes: number;
  /** Dispatches summed over decode steps (WebGPU only). */
  dispatches: number;
  /** The greedy tokens decoded. */
  tokens: number[];
}

/** Parameters a decode step reads: activeFor(mode) counts whole embedding tables, but a token reads one row of the embedding (the LM head it reads whole). */
export function parametersReadPerToken(spec: ModelSpec, active: number): number {
  const table = spec.vocabSize * spec.hiddenSize;
  return spec.tieWordEmbeddings ? active + spec.hiddenSize : active - table + spec.hiddenSize;
}

/** A prefill of `prompt`, then `decodeTokens` greedy single-token steps, each timed as a whole (incl. readback). */
async function timeRun(
  model: LoadedModel,
  prompt: number[],
  decodeTokens: number,
  routing: RoutingPlan,
): Promise<Timing> {
  const cache = model.newCache(prompt.length + decodeTokens);
  const t: Timing = {
    prefillSeconds: 0,
    decodeSeconds: 0,
    chosen: 0,
    routed: 0,
    weightBytes: 0,
    dispatches: 0,
    tokens: [],
  };
  try {
    let start = performance.now();
    let out = await model.forward(prompt, cache, { routing, logits: 'last' });
    t.prefillSeconds = (performance.now() - start) / 1000;
    for (let i = 0; i < decodeTokens; i++) {
      const next = argmax(out.logits[out.logits.length - 1]);
      t.tokens.push(next);
      if (model instanceof CpuModel) model.resetStats();
      start = performance.now();
      out = await model.forward([next], cache, { routing, logits: 'last' });
      t.decodeSeconds += (performance.now() - start) / 1000;
      for (const layer of out.routing.layers) {
        t.chosen += layer[0].experts.length;
        t.routed++;
      }
      if (model instanceof CpuModel) {
        t.weightBytes += model.stats.weightBytes;
      } else {
        const stats = (model as { lastStats?: { weightBytesPerToken: number; dispatches: number } | null }).lastStats;
        if (!stats) throw new Error(`the ${model.backend} backend reports no weight traffic (lastStats)`);
        t.weightBytes += stats.weightBytesPerToken;
        t.dispatches += stats.dispatches;
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
    throw new CliError(
      `--prompt-tokens plus --decode-tokens exceeds the model's ${spec.maxPositions} positions.`,
      'Use fewer tokens.',
    );
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
    repeats: 1,
    results: [],
    torch: null,
    skipped: [],
  };
  // The PyTorch loop runs in a process of its own, loaded once; each CPU row's measurement alternates with a
  // PyTorch one of the same mode, `repeats` times, and each side keeps its best: both see the same machine load.
  const torch = options.torchModelDir ? await TorchServer.start(options.torchModelDir, prompt, decodeTokens) : null;
  if (torch) report.torch = { ...torch.header, results: [] };
  const repeats = options.repeats ?? (torch ? 3 : 1);
  report.repeats = repeats;
  try {
    for (const kind of options.backends) {
      for (const quantization of options.quantize ?? ['none']) {
        const backend: Backend = await createBackend(kind, quantization);
        let model: LoadedModel | null = null;
        try {
          try {
            model = await backend.load(spec, weights);
          } catch (e) {
            if (!(e instanceof QuantizationError)) throw e;
            report.skipped.push(`${kind} ${quantization}: ${e.message}`);
            continue;
          }
          report.machine.backends[kind] ??= backend.description;
          let denseDecode = 0;
          for (const mode of modes) {
            const plan: RoutingPlan = { mode, interventions: [] };
            const routing = formatRoutingMode(mode);
            const paired = torch !== null && kind === 'cpu' && TorchServer.supports(routing);
            // Warm-up: pipelines and scratch buffers (WebGPU: a short run is enough); the CPU's JIT wants the full run.
            if (kind === 'cpu') await timeRun(model, prompt, decodeTokens, plan);
            else await timeRun(model, warmPrompt, 2, plan);
            let best: { t: Timing; rounds: number; decode: number } | null = null;
            let bestTorch: TorchRun | null = null;
            for (let rep = 0; rep < repeats; rep++) {
              if (paired) {
                const tr = await torch.run(routing, options.minSeconds);
                report.torch!.results.push(tr);
                if (!bestTorch || tr.decodeTokensPerSecond > bestTorch.decodeTokensPerSecond) bestTorch = tr;
              }
              const t = await timeRun(model, prompt, decodeTokens, plan);
              let rounds = 1;
              while (t.decodeSeconds < options.minSeconds && rounds < 1000) {
                const more = await timeRun(model, prompt, decodeTokens, plan);
                t.prefillSeconds += more.prefillSeconds;
                t.decodeSeconds += more.decodeSeconds;
                t.chosen += more.chosen;
                t.routed += more.routed;
                t.weightBytes += more.weightBytes;
                t.dispatches += more.dispatches;
                rounds++;
              }
              const decode = (rounds * decodeTokens) / t.decodeSeconds;
              if (!best || decode > best.decode) best = { t, rounds, decode };
            }
            const { t, rounds, decode: decodeTokensPerSecond } = best!;
            if (mode === dense) denseDecode = decodeTokensPerSecond;
            const avgExpertsPerLayer = t.routed > 0 ? t.chosen / t.routed : 0;
            const activeParameters = counts.activeFor(mode, avgExpertsPerLayer);
            const weightBytesPerToken = t.weightBytes / (rounds * decodeTokens);
            const read = parametersReadPerToken(spec, activeParameters);
            const r: BenchResult = {
              routing,
              backend: kind,
              quantization,
              prefillTokensPerSecond: (rounds * promptTokens) / t.prefillSeconds,
              decodeTokensPerSecond,
              activeParameters,
              weightBytesPerToken,
              parametersReadPerToken: read,
              bytesPerActiveParameter: weightBytesPerToken / read,
              gpuDispatchesPerToken: kind === 'cpu' ? null : t.dispatches / (rounds * decodeTokens),
              avgExpertsPerLayer,
              idealSpeedup: counts.activeFor(dense) / activeParameters,
              measuredSpeedup: decodeTokensPerSecond / denseDecode,
              torchDecodeTokensPerSecond: bestTorch?.decodeTokensPerSecond ?? null,
              vsTorch: bestTorch ? decodeTokensPerSecond / bestTorch.decodeTokensPerSecond : null,
              torchTokensAgree:
                bestTorch && quantization === 'none' ? bestTorch.tokens.join() === t.tokens.join() : null,
            };
            report.results.push(r);
            options.onResult?.(r);
          }
        } finally {
          model?.dispose();
          backend.dispose();
        }
      }
    }
  } finally {
    torch?.close();
  }
  return report;
}

const TORCH_SCRIPT = resolve(import.meta.dirname, '../../bench/torch_decode.py');
const PYTHON = '/usr/bin/python3';

/** Whether the PyTorch baseline can run here (Debian's python3 with torch). */
export function torchAvailable(): boolean {
  if (!existsSync(PYTHON) || !existsSync(TORCH_SCRIPT)) return false;
  return spawnSync(PYTHON, ['-c', 'import torch'], { encoding: 'utf8' }).status === 0;
}

export interface TorchRun {
  routing: string;
  prefillTokensPerSecond: number;
  decodeTokensPerSecond: number;
  /** The greedy tokens it decoded. */
  tokens: number[];
}

/** bench/torch_decode.py --serve: the checkpoint loaded once in PyTorch (1 thread), measured on request. */
class TorchServer {
  private lines: string[] = [];
  private waiting: ((line: string) => void) | null = null;
  private stderr = '';
  header!: Omit<TorchBaseline, 'results'>;

  private constructor(private readonly child: ChildProcess) {
    let buffered = '';
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      buffered += chunk;
      for (let nl = buffered.indexOf('\n'); nl >= 0; nl = buffered.indexOf('\n')) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        if (this.waiting) {
          const w = this.waiting;
          this.waiting = null;
          w(line);
        } else this.lines.push(line);
      }
    });
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (this.stderr += chunk));
    child.on('exit', () => this.waiting?.(''));
  }

  /** The script knows dense, native and topk:K (Mixtral/Llama semantics); threshold modes get no PyTorch row. */
  static supports(routing: string): boolean {
    return routing === 'dense' || routing === 'native' || routing.startsWith('topk:');
  }

  static async start(dir: string, prompt: number[], decodeTokens: number): Promise<TorchServer> {
    const child = spawn(
      PYTHON,
      [TORCH_SCRIPT, dir, '--prompt', prompt.join(','), '--decode', String(decodeTokens), '--threads', '1', '--serve'],
      {
        env: { ...process.env, OMP_NUM_THREADS: '1' },
        stdio: ['pipe', 'pipe', 'pipe'],
      },
    );
    const server = new TorchServer(child);
    server.header = JSON.parse(await server.next()) as Omit<TorchBaseline, 'results'>;
    return server;
  }

  private next(): Promise<string> {
    const line = this.lines.shift();
    if (line !== undefined) return Promise.resolve(line);
    return new Promise((resolve, reject) => {
      this.waiting = (l) => {
        if (l === '') {
          reject(
            new CliError(
              `The PyTorch baseline stopped: ${this.stderr.trim().split('\n').pop() ?? 'no message'}`,
              'Run without the PyTorch baseline, or check /usr/bin/python3 and its torch.',
            ),
          );
        } else resolve(l);
      };
    });
  }

  async run(routing: string, minSeconds: number): Promise<TorchRun> {
    this.child.stdin!.write(JSON.stringify({ mode: routing, minSeconds }) + '\n');
    return JSON.parse(await this.next()) as TorchRun;
  }

  close(): void {
    this.child.stdin!.end();
    this.child.kill();
  }
}

const COLUMNS = [
  'backend',
  'quant',
  'mode',
  'prefill tok/s',
  'decode tok/s',
  'vs dense',
  'ideal',
  'experts/layer',
  'weights/token',
  'B/param',
  'dispatches',
  'torch tok/s',
  'vs torch',
];

function row(r: BenchResult): string[] {
  const fix = (n: number) => n.toFixed(n < 10 ? 2 : 1);
  return [
    r.backend,
    r.quantization,
    r.routing,
    r.prefillTokensPerSecond.toFixed(r.prefillTokensPerSecond < 10 ? 2 : 1),
    r.decodeTokensPerSecond.toFixed(r.decodeTokensPerSecond < 10 ? 2 : 1),
    `${r.measuredSpeedup.toFixed(2)}×`,
    `${r.idealSpeedup.toFixed(2)}×`,
    r.avgExpertsPerLayer.toFixed(2),
    formatBytes(r.weightBytesPerToken),
    r.bytesPerActiveParameter.toFixed(2),
    r.gpuDispatchesPerToken === null ? '—' : r.gpuDispatchesPerToken.toFixed(0),
    r.torchDecodeTokensPerSecond === null ? '—' : fix(r.torchDecodeTokensPerSecond),
    r.vsTorch === null ? '—' : `${r.vsTorch.toFixed(2)}×${r.torchTokensAgree === false ? ' (tokens differ)' : ''}`,
  ];
}

/** The results as a Markdown table (readable in a terminal, pasteable into a README). */
export function formatBenchTable(results: BenchResult[]): string {
  const body = [COLUMNS, ...results.map(row)];
  const widths = COLUMNS.map((_, i) => Math.max(...body.map((l) => l[i].length)));
  const line = (l: string[]) =>
    `| ${l.map((cell, i) => (i < 3 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join(' | ')} |`;
  const rule = `|${widths.map((w, i) => (i < 3 ? ` ${'-'.repeat(w)} ` : ` ${'-'.repeat(w - 1)}: `)).join('|')}|`;
  return [line(COLUMNS), rule, ...body.slice(1).map(line)].join('\n');
}

export function formatBenchHeader(
  report: Pick<
    BenchReport,
    'machine' | 'model' | 'promptTokens' | 'decodeTokens' | 'minSeconds' | 'torch' | 'skipped' | 'repeats'
  >,
): string {
  const m = report.model;
  const lines = [
    `machine: ${report.machine.cpu}, ${report.machine.cores} cores`,
    ...Object.entries(report.machine.backends).map(([kind, d]) => `${kind}: ${d}`),
    `model: ${m.label} (${m.architecture}, ${m.dtype}, ${formatCount(m.totalParameters)} parameters${m.experts ? `, ${m.experts} experts, top-${m.topK}` : ''})`,
    `${report.promptTokens} prompt tokens + ${report.decodeTokens} decode tokens per run, runs repeated until ≥ ${report.minSeconds} s of decode, after one warm-up run per mode${report.repeats > 1 ? `; best of ${report.repeats} such measurements` : ''}`,
    ...(report.torch
      ? [
          `PyTorch eager baseline: torch ${report.torch.torch}, ${report.torch.threads} thread, ${report.torch.dtype} weights, same prompt and greedy decode (bench/torch_decode.py); each CPU row alternates with it ${report.repeats} times, best of each kept`,
        ]
      : []),
    ...report.skipped.map((s) => `skipped ${s}`),
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

export function benchOptionsFromFlags(
  spec: ModelSpec,
  flags: BenchFlags,
  defaults = { promptTokens: 16, decodeTokens: 8 },
): BenchOptions {
  return {
    quantize: [...new Set((flags.quantize ?? 'none').split(',').map((q) => parseQuantize(q.trim())))],
    modes: parseBenchModes(spec, flags.routing),
    backends: parseBenchBackends(flags.backend),
    promptTokens: numberFlag('prompt-tokens', flags.promptTokens, defaults.promptTokens, isCount, 'a whole number ≥ 1'),
    decodeTokens: numberFlag('decode-tokens', flags.decodeTokens, defaults.decodeTokens, isCount, 'a whole number ≥ 1'),
    minSeconds: numberFlag(
      'min-seconds',
      flags.minSeconds,
      1,
      (n) => n >= 0 && n <= 3600,
      'a number of seconds from 0 to 3600',
    ),
  };
}

/** Runs the bench and prints either the table (progress on stderr while it runs) or one JSON object. */
export async function printBench(
  ckpt: Checkpoint,
  label: string,
  options: BenchOptions,
  json: boolean,
): Promise<BenchReport> {
  const report = await runBench(ckpt, label, {
    ...options,
    onResult: json
      ? undefined
      : (r) =>
          process.stderr.write(
            `  ${r.backend} ${r.quantization} ${r.routing}: prefill ${r.prefillTokensPerSecond.toFixed(2)} tok/s, decode ${r.decodeTokensPerSecond.toFixed(2)} tok/s\n`,
          ),
  });
  if (json) process.stdout.write(JSON.stringify(report) + '\n');
  else process.stdout.write(`${formatBenchHeader(report)}\n\n${formatBenchTable(report.results)}\n`);
  return report;
}

export async function benchCommand(dir: string, flags: BenchFlags): Promise<void> {
  const ckpt = await openCheckpoint(dir);
  const options = benchOptionsFromFlags(ckpt.spec, flags);
  if (flags.torch) {
    if (!torchAvailable())
      throw new CliError(
        '--torch needs /usr/bin/python3 with PyTorch.',
        "Install Debian's python3-torch (scripts/ensure-deps.sh), or drop --torch.",
      );
    // The PyTorch script reads a folder: a local folder or a built-in id (a remote model is in the cache, not a folder).
    const ref = resolveSource(dir);
    if (ref.kind !== 'local')
      throw new CliError(
        '--torch needs a checkpoint folder or a built-in model id.',
        'Download the model into a folder and pass that folder.',
      );
    options.torchModelDir = ref.path;
  }
  await printBench(ckpt, dir, options, flags.json);
}
