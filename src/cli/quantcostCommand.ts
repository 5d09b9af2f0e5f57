// `moe quantcost DIR`: what q8 / q4 cost this model on text — routing decisions unchanged, top-1 agreement,
// KL and Δloss against the weights as stored, over the same windows (default: public/eval/*.txt).
import { readdirSync, readFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { parseRoutingPlan, validateRoutingPlan } from '../engine/routing/index.ts';
import { quantizationCosts, tokenWindows, type QuantCost } from '../engine/quant/cost.ts';
import { weightBytesBySchemes } from '../engine/format/quant.ts';
import type { QuantScheme } from '../engine/types.ts';
import {
  CliError,
  createBackend,
  formatBytes,
  isCount,
  numberFlag,
  openCheckpoint,
  openTokenizer,
  parseBackendKind,
  parseQuantize,
} from './common.ts';

export interface QuantcostFlags {
  schemes?: string;
  routing?: string;
  texts?: string;
  maxTokens?: string;
  backend?: string;
  json: boolean;
}

export const EVAL_DIR = resolve(import.meta.dirname, '../../public/eval');

export interface QuantcostReport {
  model: string;
  routing: string;
  texts: string[];
  tokens: number;
  window: number;
  /** Weight bytes under each scheme. */
  weightBytes: Record<QuantScheme, number>;
  results: QuantCost[];
}

export async function runQuantcost(dir: string, flags: QuantcostFlags): Promise<QuantcostReport> {
  const schemes = (flags.schemes ?? 'q8,q4').split(',').map((s) => parseQuantize(s.trim()));
  if (schemes.includes('none'))
    throw new CliError('--schemes lists "none", the reference itself.', 'Use --schemes q8,q4.');
  const kind = parseBackendKind(flags.backend);
  const maxTokens = numberFlag('max-tokens', flags.maxTokens, 512, isCount, 'a whole number ≥ 1');
  const files = flags.texts
    ? flags.texts.split(',').map((f) => f.trim())
    : readdirSync(EVAL_DIR)
        .filter((f) => f.endsWith('.txt'))
        .sort()
        .map((f) => join(EVAL_DIR, f));
  const ckpt = await openCheckpoint(dir);
  const tokenizer = openTokenizer(ckpt);
  const plan = parseRoutingPlan(flags.routing ?? 'native');
  validateRoutingPlan(plan, ckpt.spec);
  const window = Math.min(ckpt.spec.maxPositions, 256);
  const windows: number[][] = [];
  let tokens = 0;
  for (const file of files) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      throw new CliError(
        `Cannot read the text file ${file}.`,
        'Pass readable UTF-8 files to --texts, separated by commas.',
      );
    }
    const ids = tokenizer.encode(text).slice(0, maxTokens);
    tokens += ids.length;
    windows.push(...tokenWindows(ids, window));
  }
  if (windows.length === 0) throw new CliError('The texts encode to fewer than two tokens.', 'Give longer texts.');

  const results = await quantizationCosts(
    (scheme) => createBackend(kind, scheme),
    ckpt.spec,
    ckpt.weights,
    schemes,
    windows,
    plan,
  );
  return {
    model: dir,
    routing: flags.routing ?? 'native',
    texts: files.map((f) => basename(f)),
    tokens,
    window,
    weightBytes: weightBytesBySchemes(ckpt.weights),
    results,
  };
}

const pct = (x: number | null) => (x === null ? '—' : `${(100 * x).toFixed(1)}%`);

export function formatQuantcost(r: QuantcostReport): string {
  const head = `model: ${r.model}, routing ${r.routing}, ${r.tokens} tokens of ${r.texts.join(', ')} in windows of ${r.window}`;
  const rows = [
    ['scheme', 'weights', 'routing unchanged', 'top-1 agreement', 'KL (nats)', 'loss', 'Δloss'],
    ['none', formatBytes(r.weightBytes.none), '100%', '100%', '0', r.results[0]?.referenceLoss.toFixed(4) ?? '', '0'],
    ...r.results.map((c) => [
      c.scheme,
      formatBytes(r.weightBytes[c.scheme]),
      pct(c.routingUnchanged),
      pct(c.top1Agreement),
      c.meanKl.toFixed(5),
      c.quantizedLoss.toFixed(4),
      `${c.deltaLoss >= 0 ? '+' : ''}${c.deltaLoss.toFixed(4)}`,
    ]),
  ];
  const widths = rows[0].map((_, i) => Math.max(...rows.map((row) => row[i].length)));
  const line = (row: string[]) =>
    `| ${row.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join(' | ')} |`;
  const rule = `|${widths.map((w, i) => (i === 0 ? ` ${'-'.repeat(w)} ` : ` ${'-'.repeat(w - 1)}: `)).join('|')}|`;
  return [head, '', line(rows[0]), rule, ...rows.slice(1).map(line)].join('\n');
}

export async function quantcostCommand(dir: string, flags: QuantcostFlags): Promise<void> {
  const report = await runQuantcost(dir, flags);
  process.stdout.write(flags.json ? JSON.stringify(report) + '\n' : formatQuantcost(report) + '\n');
}
