// The benchmark: prefill and decode tok/s for dense, topk:1, topk:2, native and threshold:1 on the CPU and
// the WebGPU backend, side by side in one process, with the ideal sparse/dense ratio from active parameters.
// Model: MODEL_DIR if given, else the built-in public/models/moe-top2, else a synthetic 8-expert f16 Mixtral
// written by bench/make-bench-model.ts into a temporary folder.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { benchOptionsFromFlags, printBench, runBench, torchAvailable } from '../src/cli/benchCommand.ts';
import { isNonNegativeInteger, numberFlag, openCheckpoint } from '../src/cli/common.ts';
import { resolveSource } from '../src/cli/sources.ts';
import { benchLenses, formatLensTable } from './lens.ts';
import { BENCH_MODEL_SIZES, makeBenchModels, type BenchModelSize } from './make-bench-model.ts';

const USAGE =
  'usage: node bench/run.mjs [MODEL_DIR] [--backend all|cpu|webgpu] [--quantize none,q8,q4] [--no-torch] [--routing MODE,...] [--prompt-tokens N] [--decode-tokens N] [--min-seconds S] [--size small|default|llmjp-8x152m|llmjp-mini] [--lens-tokens N (256; 0 skips the lens rows)] [--json]';
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
      'lens-tokens': { type: 'string' },
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
    if (!values.json)
      process.stderr.write(`wrote a synthetic ${size} 8-expert top-2 f16 Mixtral (random weights) to ${dir}\n`);
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
      const ref = resolveSource(dir); // PyTorch reads a folder (a built-in id names one too)
      if (torchAvailable() && ref.kind === 'local') options.torchModelDir = ref.path;
      else if (!values.json)
        process.stderr.write('PyTorch (/usr/bin/python3 with torch) not found: no PyTorch baseline in this run\n');
    }
    const json = values.json === true;
    const label = dir === BUILT_IN ? 'public/models/moe-top2' : dir;
    const lensTokens = numberFlag(
      'lens-tokens',
      values['lens-tokens'],
      256,
      isNonNegativeInteger,
      'a whole number ≥ 0',
    );
    const report = json ? await runBench(ckpt, label, options) : await printBench(ckpt, label, options, false);
    // Lens throughput (bench/lens.ts), printed under the speed table with each backend's native prefill alongside
    // (of the first weight format measured).
    const firstQuant = options.quantize?.[0] ?? 'none';
    const prefill = Object.fromEntries(
      report.results
        .filter((r) => r.routing === 'native' && r.quantization === firstQuant)
        .map((r) => [r.backend, r.prefillTokensPerSecond]),
    );
    const lenses =
      lensTokens > 0 && ckpt.spec.moe
        ? await benchLenses(ckpt, {
            backends: options.backends,
            tokens: lensTokens,
            minSeconds: options.minSeconds,
            prefill,
          })
        : null;
    if (json) process.stdout.write(JSON.stringify({ ...report, lenses }) + '\n');
    else if (lenses) process.stdout.write(`\n${formatLensTable(lenses)}\n`);
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
