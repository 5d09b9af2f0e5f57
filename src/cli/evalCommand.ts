// `moe eval DIR`: score a token sequence, print logits and routing (JSON) or losses and routing (text).
import type { RoutingTrace } from '../engine/types.ts';
import { scoreTokens } from '../engine/run/index.ts';
import { formatRoutingMode } from '../engine/routing/index.ts';
import {
  CliError,
  createBackend,
  openCheckpoint,
  openTokenizer,
  parseBackendKind,
  parseQuantize,
  parseTokenList,
  routingPlan,
} from './common.ts';

export interface EvalFlags {
  tokens?: string;
  text?: string;
  routing?: string;
  interventions?: string;
  backend?: string;
  quantize?: string;
  json: boolean;
}

/** routing[m][t] = {experts, weights, probs}: MoE layer m (dense layers left out), position t. */
export function routingToJson(trace: RoutingTrace): { experts: number[]; weights: number[]; probs: number[] }[][] {
  return trace.layers.map((perToken) =>
    perToken.map((r) => ({ experts: [...r.experts], weights: [...r.weights], probs: Array.from(r.probs) })),
  );
}

/** -log p(next token) for each position that has a next token, from one row of logits (log-sum-exp in f64). */
export function nextTokenLosses(logits: Float32Array[], tokens: number[]): number[] {
  const losses: number[] = [];
  for (let t = 0; t + 1 < tokens.length; t++) {
    const row = logits[t];
    let max = -Infinity;
    for (let i = 0; i < row.length; i++) if (row[i] > max) max = row[i];
    let sum = 0;
    for (let i = 0; i < row.length; i++) sum += Math.exp(row[i] - max);
    losses.push(max + Math.log(sum) - row[tokens[t + 1]]);
  }
  return losses;
}

export async function evalCommand(dir: string, flags: EvalFlags): Promise<void> {
  if ((flags.tokens === undefined) === (flags.text === undefined)) {
    throw new CliError(
      'eval needs exactly one of --tokens and --text.',
      'Example: moe eval DIR --text "Hello world" or --tokens 1,2,3.',
      true,
    );
  }
  const backendKind = parseBackendKind(flags.backend);
  const quantize = parseQuantize(flags.quantize);
  const ckpt = await openCheckpoint(dir);
  const { spec } = ckpt;
  const plan = routingPlan(spec, flags.routing, flags.interventions);
  const tokenizer = flags.text !== undefined || !flags.json ? openTokenizer(ckpt) : null;
  const tokens =
    flags.tokens !== undefined ? parseTokenList(flags.tokens, spec.vocabSize) : tokenizer!.encode(flags.text!);
  if (tokens.length === 0)
    throw new CliError('The text encodes to no tokens.', 'Give some text, or token ids with --tokens.');
  const outOfVocab = tokens.find((t) => t >= spec.vocabSize);
  if (outOfVocab !== undefined) {
    throw new CliError(
      `The tokenizer produced token ${outOfVocab}, beyond the model's vocabulary of ${spec.vocabSize}.`,
      'The tokenizer.json does not belong to this model.',
    );
  }

  const backend = await createBackend(backendKind, quantize);
  const model = await backend.load(spec, ckpt.weights);
  try {
    const result = await scoreTokens(model, tokens, plan);
    if (flags.json) {
      const out = { logits: result.logits.map((row) => Array.from(row)), routing: routingToJson(result.trace) };
      process.stdout.write(JSON.stringify(out) + '\n');
      return;
    }
    printSummary(
      tokens,
      result.logits,
      result.trace,
      (id) => tokenizer!.decodeToken(id),
      formatRoutingMode(plan.mode),
      backend.description,
    );
  } finally {
    model.dispose();
    backend.dispose();
  }
}

function printSummary(
  tokens: number[],
  logits: Float32Array[],
  routing: RoutingTrace,
  tokenText: (id: number) => string,
  mode: string,
  backend: string,
): void {
  const show = (id: number) => JSON.stringify(tokenText(id));
  const losses = nextTokenLosses(logits, tokens);
  const lines = [
    `${tokens.length} tokens, routing ${mode}, backend ${backend}`,
    '',
    'position  token              next-token loss',
  ];
  tokens.forEach((id, t) => {
    const loss = t < losses.length ? losses[t].toFixed(4) : '-';
    lines.push(`${String(t).padStart(8)}  ${`${id} ${show(id)}`.padEnd(18)} ${loss}`);
  });
  if (losses.length > 0) {
    const mean = losses.reduce((a, b) => a + b, 0) / losses.length;
    lines.push(
      '',
      `mean loss ${mean.toFixed(4)} (perplexity ${Math.exp(mean).toFixed(2)}) over ${losses.length} predictions`,
    );
  }
  routing.moeLayers.forEach((layer, m) => {
    lines.push('', `layer ${layer} routing (expert:weight, by descending probability)`);
    routing.layers[m].forEach((r, t) => {
      const chosen = r.experts.map((e, i) => `E${e}:${r.weights[i].toFixed(3)}`).join(' ');
      lines.push(`${String(routing.positions[t] ?? t).padStart(8)}  ${show(tokens[t]).padEnd(14)} ${chosen}`);
    });
  });
  process.stdout.write(lines.join('\n') + '\n');
}
