// Writes the synthetic models `moe bench` runs on, deterministically:
//   OUT_DIR/dense  a random llama in F16
//   OUT_DIR/moe    its 8-expert top-2 upcycled Mixtral child (random router, noise 0.01 so routing varies)
// Sizes (--size): default  hidden 256, 4 layers, 8 heads, FFN 1024, vocab 512 (26.5 M parameters as MoE)
//                 small    hidden 128, 2 layers, 4 heads, FFN 512,  vocab 512 (3.5 M; SwiftShader-friendly)
//                 tiny     hidden 32,  1 layer,  2 heads, FFN 64,   vocab 300 (tests)
//                 llmjp-8x152m  llm-jp 8x152M's shapes: hidden 512, 12 layers, 8 heads (MHA), FFN 2048 per expert,
//                          vocab 99,584, untied: 0.42 B parameters (0.83 GB in f16); only OUT_DIR/moe is written
//                 llmjp-mini    the same layout at test size: hidden 64, 2 layers, 8 heads, FFN 256, vocab 1,024
// The tokenizer is a byte-level BPE of at most 512 tokens (the ids above it exist in the model, not in the tokenizer).
// Usage: npx tsx bench/make-bench-model.ts OUT_DIR [--size default|small|tiny|llmjp-8x152m|llmjp-mini]
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { exportCheckpoint } from '../src/engine/format/index.ts';
import { upcycle } from '../src/engine/upcycle/index.ts';
import { randomDenseLlama, type RandomLlamaOptions } from '../src/cli/randomModel.ts';
import type { ModelSpec, WeightSet } from '../src/engine/types.ts';
import { buildByteLevelBpe } from '../src/cli/byteBpe.ts';

const TRAINING_TEXT = `
A mixture of experts replaces one feed-forward block with several, and a small router picks a few of
them for every token. Upcycling starts the experts as copies of a dense model's block, so the new model
begins exactly where the dense one stopped. The router then learns which expert suits which token:
numbers, punctuation, names, the beginning of a sentence, the end of a line. Sparse routing reads only
the chosen experts' weights, which is why a model with many parameters can still answer quickly.
`.repeat(4);

export type BenchModelSize = 'default' | 'small' | 'tiny' | 'llmjp-8x152m' | 'llmjp-mini';
export const BENCH_MODEL_SIZES: readonly BenchModelSize[] = ['default', 'small', 'tiny', 'llmjp-8x152m', 'llmjp-mini'];

const SIZES: Record<BenchModelSize, Omit<RandomLlamaOptions, 'dtype' | 'seed'>> = {
  default: {
    vocabSize: 512,
    hiddenSize: 256,
    numLayers: 4,
    numHeads: 8,
    numKvHeads: 8,
    intermediateSize: 1024,
    maxPositions: 2048,
  },
  small: {
    vocabSize: 512,
    hiddenSize: 128,
    numLayers: 2,
    numHeads: 4,
    numKvHeads: 4,
    intermediateSize: 512,
    maxPositions: 2048,
  },
  tiny: {
    vocabSize: 300,
    hiddenSize: 32,
    numLayers: 1,
    numHeads: 2,
    numKvHeads: 2,
    intermediateSize: 64,
    maxPositions: 256,
  },
  'llmjp-8x152m': {
    vocabSize: 99584,
    hiddenSize: 512,
    numLayers: 12,
    numHeads: 8,
    numKvHeads: 8,
    intermediateSize: 2048,
    maxPositions: 4096,
  },
  'llmjp-mini': {
    vocabSize: 1024,
    hiddenSize: 64,
    numLayers: 2,
    numHeads: 8,
    numKvHeads: 8,
    intermediateSize: 256,
    maxPositions: 512,
  },
};

function write(dir: string, files: Map<string, Uint8Array>): void {
  mkdirSync(dir, { recursive: true });
  for (const [name, bytes] of files) writeFileSync(join(dir, name), bytes);
}

/** Writes OUT_DIR/dense and OUT_DIR/moe; returns the MoE folder. */
/** The 8-expert top-2 model of a size, in memory (random dense parent, upcycled with noise 0.01 and a random router). */
export function makeBenchMoe(size: BenchModelSize): {
  spec: ModelSpec;
  weights: WeightSet;
  dense: { spec: ModelSpec; weights: WeightSet };
} {
  const shape = SIZES[size];
  const dense = randomDenseLlama({ ...shape, dtype: 'F16', seed: 2024 });
  const moe = upcycle(dense.spec, dense.weights, {
    experts: 8,
    topK: 2,
    router: { kind: 'random', scale: 0.5 },
    noise: 0.01,
    seed: 1,
  });
  return { ...moe, dense };
}

/** Writes OUT_DIR/moe (and OUT_DIR/dense, except for the llm-jp sizes); returns the MoE folder. */
export function makeBenchModels(outDir: string, size: BenchModelSize = 'default'): string {
  const shape = SIZES[size];
  const tokenizerJson = buildByteLevelBpe(TRAINING_TEXT, Math.min(shape.vocabSize, 512));
  const tokenizerConfigJson = {
    tokenizer_class: 'PreTrainedTokenizerFast',
    eos_token: '<|endoftext|>',
    add_bos_token: false,
    add_eos_token: false,
  };
  const { spec, weights, dense } = makeBenchMoe(size);
  if (!size.startsWith('llmjp'))
    write(join(outDir, 'dense'), exportCheckpoint(dense.spec, dense.weights, tokenizerJson, tokenizerConfigJson));
  write(join(outDir, 'moe'), exportCheckpoint(spec, weights, tokenizerJson, tokenizerConfigJson));
  return join(outDir, 'moe');
}

// Run as a script (not when imported by bench/run.ts or a test).
if (process.argv[1]?.endsWith('make-bench-model.ts')) {
  const args = process.argv.slice(2);
  const sizeAt = args.indexOf('--size');
  const size = (sizeAt >= 0 ? args.splice(sizeAt, 2)[1] : 'default') as BenchModelSize;
  const outDir = args[0];
  if (!outDir || !(size in SIZES)) {
    process.stderr.write(`usage: npx tsx bench/make-bench-model.ts OUT_DIR [--size ${BENCH_MODEL_SIZES.join('|')}]\n`);
    process.exit(1);
  }
  process.stdout.write(`wrote ${makeBenchModels(outDir, size)}\n`);
}
