// `moe generate DIR --prompt TEXT`: sample a continuation, streaming text as tokens arrive.
import { generate } from '../engine/run/index.ts';
import {
  CliError,
  createBackend,
  isCount,
  isNonNegativeInteger,
  numberFlag,
  openCheckpoint,
  openTokenizer,
  parseBackendKind,
  parseQuantize,
  routingPlan,
} from './common.ts';
import { routingToJson } from './evalCommand.ts';

export interface GenerateFlags {
  prompt?: string;
  maxTokens?: string;
  temperature?: string;
  topP?: string;
  seed?: string;
  routing?: string;
  interventions?: string;
  backend?: string;
  quantize?: string;
  json: boolean;
}

export async function generateCommand(dir: string, flags: GenerateFlags): Promise<void> {
  if (flags.prompt === undefined)
    throw new CliError('generate needs --prompt.', 'Example: moe generate DIR --prompt "Once upon a time".', true);
  const maxTokens = numberFlag('max-tokens', flags.maxTokens, 32, isCount, 'a whole number ≥ 1');
  const temperature = numberFlag('temperature', flags.temperature, 0.8, (n) => n >= 0, 'a number ≥ 0 (0 = greedy)');
  const topP = numberFlag('top-p', flags.topP, 0.95, (n) => n > 0 && n <= 1, 'a number in (0, 1]');
  const seed = numberFlag('seed', flags.seed, 0, isNonNegativeInteger, 'a whole number ≥ 0');
  const backendKind = parseBackendKind(flags.backend);
  const quantize = parseQuantize(flags.quantize);

  const ckpt = await openCheckpoint(dir);
  const { spec } = ckpt;
  const plan = routingPlan(spec, flags.routing, flags.interventions);
  const tokenizer = openTokenizer(ckpt);
  const promptTokens =
    tokenizer.bosId !== undefined && flags.prompt === '' ? [tokenizer.bosId] : tokenizer.encode(flags.prompt);
  if (promptTokens.length === 0) throw new CliError('The prompt encodes to no tokens.', 'Give a non-empty --prompt.');
  if (promptTokens.length + maxTokens > spec.maxPositions) {
    throw new CliError(
      `The prompt (${promptTokens.length} tokens) plus --max-tokens ${maxTokens} exceeds the model's ${spec.maxPositions} positions.`,
      'Shorten the prompt or lower --max-tokens.',
    );
  }

  const backend = await createBackend(backendKind, quantize);
  const model = await backend.load(spec, ckpt.weights);
  const generated: number[] = [];
  let printed = '';
  try {
    const result = await generate(
      model,
      promptTokens,
      { maxTokens, temperature, topP, seed, routing: plan, stopTokens: tokenizer.stopIds },
      (token) => {
        generated.push(token.id);
        if (flags.json) return;
        // Decode the whole continuation and print what is new: a token may end mid-character.
        const text = tokenizer.decode(generated);
        if (text.startsWith(printed) && !text.endsWith('\uFFFD')) {
          process.stdout.write(text.slice(printed.length));
          printed = text;
        }
      },
    );
    const text = tokenizer.decode(generated);
    if (flags.json) {
      // Routing covers promptTokens followed by tokens, position by position.
      const routing = routingToJson(result.trace);
      process.stdout.write(JSON.stringify({ tokens: generated, promptTokens, text, routing }) + '\n');
    } else {
      if (text.startsWith(printed)) process.stdout.write(text.slice(printed.length));
      process.stdout.write('\n');
    }
  } finally {
    model.dispose();
    backend.dispose();
  }
}
