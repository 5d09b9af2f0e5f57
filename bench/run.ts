// The benchmark: prefill and decode tok/s for dense, topk:1, topk:2, native and threshold:1 on the CPU and
// the WebGPU backend, side by side in one process, with the ideal sparse/dense ratio from active parameters.
// Model: MODEL_DIR if given, else the built-in public/models/moe-top2, else a synthetic 8-expert f16 Mixtral
// written by bench/make-bench-model.ts into a temporary folder.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { benchOptionsFromFlags, printBench, torchAvailable } from '../src/cli/benchCommand.ts';
import { openCheckpoint } from '../src/cli/common.ts';
import { BENCH_MODEL_SIZES, makeBenchModels, type BenchModelSize } from './make-bench-model.ts';

const USAGE = 'usage: node bench/run.mjs [MODEL_DIR] [--backend all|cpu|webgpu] [--quantize none,q8,q4] [--no-torch] [--routing MODE,...] [--prompt-tokens N] [--decode-tokens N] [--min-seconds S] [--size small|default|llmjp-8x152m|llmjp-mini] [--json]';
const BUILT_IN = resolve(import.meta.dirname, '../public/models/moe-top2');

async function main(): Promise<number> {
  const { values, positionals } = parseArgs({
    options: {
      backend: { type: 'string' },
      routing: { type: 'string' },
      'prompt-tokens': { type: 'string' },
      'decode-tokens': { type: 'string' },
      'min-seconds': { type: 'string' },
      size: { type: 'string' },
      quantize: { type: 'string' },
      'no-torch': { type: 'boolean' },
      json: { type: 'boolean' },
      help: { type: 'boolean' },
    },
    allowPositionals: true,
  });
  if (values.help || positionals.length > 1) {
    process.stdout.write(`${USAGE}\n`);
    return values.help ? 0 : 1;
  }
  let dir = positionals[0];
  let temp: string | null = null;
  if (!dir && values.size === undefined && existsSync(join(BUILT_IN, 'config.json'))) dir = BUILT_IN;
  if (!dir) {
    const size = (values.size ?? 'small') as BenchModelSize;
    if (!BENCH_MODEL_SIZES.includes(size)) throw new Error(`--size ${size}: use ${BENCH_MODEL_SIZES.join(', ')}`);
    temp = mkdtempSync(join(tmpdir(), 'moe-bench-'));
    dir = makeBenchModels(temp, size);
    if (!values.json) process.stderr.write(`wrote a synthetic ${size} 8-expert top-2 f16 Mixtral (random weights) to ${dir}\n`);
  }
  // Dawn's GPU promises do not keep Node's event loop alive on their own.
  const keepAlive = setInterval(() => {}, 60_000);
  try {
    const ckpt = await openCheckpoint(dir);
    const options = benchOptionsFromFlags(ckpt.spec, {
      backend: values.backend ?? 'all',
      routing: values.routing,
      promptTokens: values['prompt-tokens'],
      decodeTokens: values['decode-tokens'],
      minSeconds: values['min-seconds'],
      quantize: values.quantize,
      json: values.json === true,
    });
    // The PyTorch eager loop on the same weights, in the same run, unless switched off or unavailable.
    if (!values['no-torch']) {
      if (torchAvailable()) options.torchModelDir = dir;
      else if (!values.json) process.stderr.write('PyTorch (/usr/bin/python3 with torch) not found: no PyTorch baseline in this run\n');
    }
    await printBench(ckpt, dir === BUILT_IN ? 'public/models/moe-top2' : dir, options, values.json === true);
    return 0;
  } finally {
    clearInterval(keepAlive);
    if (temp) rmSync(temp, { recursive: true, force: true });
  }
}

try {
  process.exitCode = await main();
} catch (e) {
  const err = e as { message?: string; hint?: string };
  process.stderr.write(`bench: ${err.message ?? String(e)}${err.hint ? ` Hint: ${err.hint}` : ''}\n`);
  process.exitCode = 1;
}
