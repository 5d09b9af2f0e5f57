// The `moe` command: inspect, eval, generate, upcycle and bench Hugging Face MoE checkpoints from a terminal.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { CliError } from './common.ts';
import { inspectCommand } from './inspect.ts';
import { evalCommand } from './evalCommand.ts';
import { generateCommand } from './generateCommand.ts';
import { upcycleCommand } from './upcycleCommand.ts';
import { benchCommand } from './benchCommand.ts';
import { quantcostCommand } from './quantcostCommand.ts';
import { analyzeCommand } from './analyzeCommand.ts';

type Options = NonNullable<ParseArgsConfig['options']>;
const str = { type: 'string' } as const;
const flag = { type: 'boolean' } as const;

interface CommandDef {
  usage: string;
  positionals: number;
  options: Options;
  run(positionals: string[], values: Record<string, string | boolean | undefined>): Promise<void>;
}

const s = (v: string | boolean | undefined) => (typeof v === 'string' ? v : undefined);

const COMMANDS: Record<string, CommandDef> = {
  inspect: {
    usage: 'moe inspect SOURCE [--json] [--offline]',
    positionals: 1,
    options: { json: flag },
    run: ([dir], v) => inspectCommand(dir, v.json === true),
  },
  eval: {
    usage:
      'moe eval SOURCE --tokens 1,2,3 | --text "..." [--routing MODE] [--interventions L1E3-,...] [--backend cpu|webgpu] [--quantize none|q8|q4] [--json]',
    positionals: 1,
    options: { tokens: str, text: str, routing: str, interventions: str, backend: str, quantize: str, json: flag },
    run: ([dir], v) =>
      evalCommand(dir, {
        tokens: s(v.tokens),
        text: s(v.text),
        routing: s(v.routing),
        interventions: s(v.interventions),
        backend: s(v.backend),
        quantize: s(v.quantize),
        json: v.json === true,
      }),
  },
  generate: {
    usage:
      'moe generate SOURCE --prompt TEXT [--max-tokens N] [--temperature T] [--top-p P] [--seed S] [--routing MODE] [--interventions ...] [--backend cpu|webgpu] [--quantize none|q8|q4] [--json]',
    positionals: 1,
    options: {
      prompt: str,
      'max-tokens': str,
      temperature: str,
      'top-p': str,
      seed: str,
      routing: str,
      interventions: str,
      backend: str,
      quantize: str,
      json: flag,
    },
    run: ([dir], v) =>
      generateCommand(dir, {
        prompt: s(v.prompt),
        maxTokens: s(v['max-tokens']),
        temperature: s(v.temperature),
        topP: s(v['top-p']),
        seed: s(v.seed),
        routing: s(v.routing),
        interventions: s(v.interventions),
        backend: s(v.backend),
        quantize: s(v.quantize),
        json: v.json === true,
      }),
  },
  upcycle: {
    usage:
      "moe upcycle DENSE_SOURCE OUT_DIR --experts N [--granularity G] [--top-k K] [--router random|zero] [--router-scale S] [--seed S] [--noise X] [--scaling exact|megatron-cuberoot] [--drop R]  (--drop: Drop-Upcycling, re-initialise a share R of each expert's units; the child then differs from its parent)",
    positionals: 2,
    options: {
      experts: str,
      granularity: str,
      'top-k': str,
      router: str,
      'router-scale': str,
      seed: str,
      noise: str,
      scaling: str,
      drop: str,
    },
    run: ([dense, out], v) =>
      upcycleCommand(dense, out, {
        experts: s(v.experts),
        granularity: s(v.granularity),
        topK: s(v['top-k']),
        router: s(v.router),
        routerScale: s(v['router-scale']),
        seed: s(v.seed),
        noise: s(v.noise),
        scaling: s(v.scaling),
        drop: s(v.drop),
      }),
  },
  bench: {
    usage:
      'moe bench SOURCE [--routing MODE,MODE...] [--backend cpu|webgpu|all] [--quantize none,q8,q4] [--torch] [--prompt-tokens N] [--decode-tokens N] [--min-seconds S] [--json]  (defaults: dense,topk:1,topk:2,native,threshold:1; weights as stored; 16 prompt + 8 decode tokens per run, runs repeated until 1 s of decode; --torch adds the PyTorch eager loop, 1 thread, same run)',
    positionals: 1,
    options: {
      routing: str,
      backend: str,
      quantize: str,
      torch: flag,
      'prompt-tokens': str,
      'decode-tokens': str,
      'min-seconds': str,
      json: flag,
    },
    run: ([dir], v) =>
      benchCommand(dir, {
        routing: s(v.routing),
        backend: s(v.backend),
        promptTokens: s(v['prompt-tokens']),
        decodeTokens: s(v['decode-tokens']),
        minSeconds: s(v['min-seconds']),
        quantize: s(v.quantize),
        torch: v.torch === true,
        json: v.json === true,
      }),
  },
  quantcost: {
    usage:
      'moe quantcost SOURCE [--schemes q8,q4] [--routing MODE] [--texts FILE,...] [--max-tokens N] [--backend cpu|webgpu] [--json]  (defaults: native routing, the first 512 tokens of each public/eval/*.txt)',
    positionals: 1,
    options: { schemes: str, routing: str, texts: str, 'max-tokens': str, backend: str, json: flag },
    run: ([dir], v) =>
      quantcostCommand(dir, {
        schemes: s(v.schemes),
        routing: s(v.routing),
        texts: s(v.texts),
        maxTokens: s(v['max-tokens']),
        backend: s(v.backend),
        json: v.json === true,
      }),
  },
  analyze: {
    usage:
      'moe analyze SOURCE [--texts NAME=FILE,...] [--routing MODE] [--interventions L1E3-,...] [--max-tokens N] [--tradeoff MODE,...|none] [--compare-model DIR] [--compare-routing MODE] [--backend cpu|webgpu] [--json]  (defaults: the four public/eval texts, native, 1024 tokens per text, topk:1..E-1 + thresholds + dense)',
    positionals: 1,
    options: {
      texts: str,
      routing: str,
      interventions: str,
      'max-tokens': str,
      tradeoff: str,
      'compare-model': str,
      'compare-routing': str,
      backend: str,
      json: flag,
    },
    run: ([source], v) =>
      analyzeCommand(source, {
        texts: s(v.texts),
        routing: s(v.routing),
        interventions: s(v.interventions),
        maxTokens: s(v['max-tokens']),
        tradeoff: s(v.tradeoff),
        compareModel: s(v['compare-model']),
        compareRouting: s(v['compare-routing']),
        backend: s(v.backend),
        json: v.json === true,
      }),
  },
};

const GENERAL_USAGE = `usage: moe <${Object.keys(COMMANDS).join('|')}> ... (moe <command> --help for its flags). SOURCE: a folder, hf:ORG/NAME[@REVISION] (HF_ENDPOINT), an https:// address or a built-in id; --offline uses only the model cache (HF_HUB_CACHE)`;

/** One line on stderr, whatever went wrong; the stack only with --debug. */
function report(error: unknown, usage: string, debug: boolean): void {
  const e = error as { message?: unknown; hint?: unknown; code?: unknown };
  const oneLine = (x: string) => x.replace(/\s*\n\s*/g, ' ').trim();
  let line: string;
  if (typeof e?.code === 'string' && e.code.startsWith('ERR_PARSE_ARGS')) {
    // Node's own messages are long and mention '--' tricks; name the option and show the usage instead.
    const option = /'(-[^' ]*)/.exec(String(e.message))?.[1];
    const what =
      e.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION'
        ? `unknown option ${option}`
        : e.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE'
          ? String(e.message).includes('does not take')
            ? `option ${option} takes no value`
            : `option ${option} needs a value`
          : undefined;
    line = option && what ? `${what}. ${usage}` : `${oneLine(String(e.message))} ${usage}`;
  } else {
    const message = oneLine(String(e?.message ?? error));
    const hint =
      typeof e?.hint === 'string'
        ? e.hint
          ? ` Hint: ${oneLine(e.hint)}`
          : ''
        : debug
          ? ''
          : ' (run with --debug for details)';
    line = message + hint + (error instanceof CliError && error.showUsage ? ` ${usage}` : '');
  }
  process.stderr.write(`moe: ${line}\n`);
  if (debug && error instanceof Error && error.stack) process.stderr.write(error.stack + '\n');
}

export async function main(argv: string[]): Promise<number> {
  const debug = argv.includes('--debug');
  // --offline works with every command: the ecosystem's HF_HUB_OFFLINE, set for this process.
  if (argv.includes('--offline')) process.env.HF_HUB_OFFLINE = '1';
  const args = argv.filter((a) => a !== '--debug' && a !== '--offline');
  const name = args[0];
  const command = name !== undefined ? COMMANDS[name] : undefined;
  if (!command) {
    if (name === '--help' || name === '-h' || name === 'help') {
      process.stdout.write(
        `${GENERAL_USAGE}\n${Object.values(COMMANDS)
          .map((c) => `  ${c.usage}`)
          .join('\n')}\n`,
      );
      return 0;
    }
    if (name === undefined) {
      process.stderr.write(`moe: no command given. ${GENERAL_USAGE}\n`);
      return 1;
    }
    process.stderr.write(`moe: unknown command "${name}". ${GENERAL_USAGE}\n`);
    return 1;
  }
  const usage = `usage: ${command.usage}`;
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(`${usage}\n`);
    return 0;
  }
  try {
    const { values, positionals } = parseArgs({
      args: args.slice(1),
      options: command.options,
      allowPositionals: true,
      strict: true,
    });
    if (positionals.length !== command.positionals) {
      const what =
        positionals.length < command.positionals
          ? 'is missing an argument'
          : `got unexpected arguments: ${positionals.slice(command.positionals).join(' ')}`;
      throw new CliError(`${name} ${what}.`, usage);
    }
    // Dawn's GPU promises do not keep Node's event loop alive; without this the process could exit mid-command.
    const keepAlive = setInterval(() => {}, 60_000);
    try {
      await command.run(positionals, values as Record<string, string | boolean | undefined>);
    } finally {
      clearInterval(keepAlive);
    }
    return 0;
  } catch (error) {
    report(error, usage, debug);
    return 1;
  }
}

// bin/moe.mjs imports this module to run the command; exitCode (not exit()) lets stdout drain first.
const exitCode = await main(process.argv.slice(2));
process.exitCode = exitCode;
