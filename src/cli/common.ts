// Shared pieces of the `moe` command: errors, loading a checkpoint folder, picking a backend.
import type { Backend, BackendKind, ModelSpec, QuantScheme, RoutingPlan } from '../engine/types.ts';
import { parseQuantScheme } from '../engine/format/quant.ts';
import type { Checkpoint } from '../engine/format/index.ts';
import { createCpuBackend } from '../engine/backends/cpu/index.ts';
import { parseRoutingPlan, validateRoutingPlan } from '../engine/routing/index.ts';
import { loadTokenizer, type TextTokenizer } from '../engine/tokenizer.ts';
import { openSource, progressLine } from './sources.ts';
import { nodeGpu } from './nodeGpu.ts';
import { MoeError } from '../engine/errors.ts';

/** A mistake on the command line: printed as one line, exit status 1. */
export class CliError extends MoeError {
  /** Print the usage line after the message. */
  readonly showUsage: boolean;
  constructor(message: string, hint: string, showUsage = false) {
    super(message, hint);
    this.name = 'CliError';
    this.showUsage = showUsage;
  }
}

/** Open any SOURCE (folder, hf:ORG/NAME[@REV], URL, built-in id); download progress goes to stderr. */
export async function openCheckpoint(source: string): Promise<Checkpoint> {
  let last = 0;
  return openSource(source, {
    progress: (p) => {
      const now = Date.now();
      if (now - last < 500 && p.received < p.total) return;
      last = now;
      process.stderr.write(`${progressLine(p)}\n`);
    },
  });
}

export function openTokenizer(ckpt: Checkpoint): TextTokenizer {
  if (ckpt.tokenizerJson === undefined) {
    throw new CliError(
      'This checkpoint has no tokenizer.json, so text cannot be turned into tokens.',
      'Pass token ids with --tokens, or add the tokenizer.json of the model it was made from.',
    );
  }
  return loadTokenizer(ckpt.tokenizerJson, ckpt.tokenizerConfigJson, ckpt.generationConfigJson);
}

export function parseBackendKind(value: string | undefined): BackendKind {
  const kind = value ?? 'cpu';
  if (kind !== 'cpu' && kind !== 'webgpu')
    throw new CliError(`Unknown backend "${kind}".`, 'Use --backend cpu or --backend webgpu.');
  return kind;
}

/** --quantize none|q8|q4 (absent: none). */
export function parseQuantize(value: string | undefined): QuantScheme {
  const scheme = parseQuantScheme(value ?? 'none');
  if (!scheme)
    throw new CliError(
      `Unknown quantization "${value}".`,
      'Use --quantize none, q8 (int8, ~1.06 bytes per weight) or q4 (4-bit, ~0.56 bytes per weight).',
    );
  return scheme;
}

export async function createBackend(kind: BackendKind, quantize: QuantScheme = 'none'): Promise<Backend> {
  if (kind === 'cpu') return createCpuBackend({ quantize });
  // Dawn's globals (GPUBufferUsage...) must exist before the backend module is evaluated.
  const gpu = await nodeGpu();
  const { createWebGpuBackend } = await import('../engine/backends/webgpu/index.ts');
  return createWebGpuBackend(gpu, { quantize });
}

export function routingPlan(spec: ModelSpec, mode: string | undefined, interventions: string | undefined): RoutingPlan {
  const plan = parseRoutingPlan(mode ?? 'native', interventions ?? '');
  validateRoutingPlan(plan, spec);
  return plan;
}

/** "1,2,3" → [1, 2, 3], each checked against the vocabulary. */
export function parseTokenList(text: string, vocabSize: number): number[] {
  const parts = text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (parts.length === 0)
    throw new CliError('--tokens is empty.', 'Give comma-separated token ids, e.g. --tokens 1,2,3.');
  return parts.map((p) => {
    if (!/^\d+$/.test(p))
      throw new CliError(
        `Token id "${p}" is not a whole number.`,
        'Give comma-separated token ids, e.g. --tokens 1,2,3.',
      );
    const id = Number(p);
    if (id >= vocabSize)
      throw new CliError(
        `Token id ${id} is outside the vocabulary (0..${vocabSize - 1}).`,
        "Use ids smaller than the model's vocab_size.",
      );
    return id;
  });
}

/** A finite number flag, or the default when absent. */
export function numberFlag(
  name: string,
  value: string | undefined,
  fallback: number,
  check?: (n: number) => boolean,
  rule?: string,
): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || (check && !check(n))) {
    throw new CliError(
      `--${name} ${value} is not valid${rule ? `: it must be ${rule}` : ''}.`,
      `Example: --${name} ${fallback}.`,
    );
  }
  return n;
}

export const isCount = (n: number) => Number.isInteger(n) && n >= 1;
export const isNonNegativeInteger = (n: number) => Number.isInteger(n) && n >= 0;

export function formatCount(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)}B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)}K`;
  return String(n);
}

export function formatBytes(n: number): string {
  if (n >= 2 ** 30) return `${(n / 2 ** 30).toFixed(2)} GiB`;
  if (n >= 2 ** 20) return `${(n / 2 ** 20).toFixed(1)} MiB`;
  if (n >= 2 ** 10) return `${(n / 2 ** 10).toFixed(1)} KiB`;
  return `${n} B`;
}
