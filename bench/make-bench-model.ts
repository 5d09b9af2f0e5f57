// Writes the synthetic models `moe bench` runs on, deterministically:
//   OUT_DIR/dense  a random llama in F16 (hidden 256, 4 layers, 8 heads, FFN 1024, vocab 512)
//   OUT_DIR/moe    its 8-expert top-2 upcycled Mixtral child (random router, noise 0.01 so routing varies)
// Usage: npx tsx bench/make-bench-model.ts OUT_DIR
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { exportCheckpoint } from '../src/engine/format/index.ts';
import { upcycle } from '../src/engine/upcycle/index.ts';
import { randomDenseLlama } from '../src/cli/randomModel.ts';
import { buildByteLevelBpe } from '../src/cli/byteBpe.ts';

const TRAINING_TEXT = `
A mixture of experts replaces one feed-forward block with several, and a small router picks a few of
them for every token. Upcycling starts the experts as copies of a dense model's block, so the new model
begins exactly where the dense one stopped. The router then learns which expert suits which token:
numbers, punctuation, names, the beginning of a sentence, the end of a line. Sparse routing reads only
the chosen experts' weights, which is why a model with many parameters can still answer quickly.
`.repeat(4);

function write(dir: string, files: Map<string, Uint8Array>): void {
  mkdirSync(dir, { recursive: true });
  for (const [name, bytes] of files) writeFileSync(join(dir, name), bytes);
}

const outDir = process.argv[2];
if (!outDir) {
  process.stderr.write('usage: npx tsx bench/make-bench-model.ts OUT_DIR\n');
  process.exit(1);
}

const tokenizerJson = buildByteLevelBpe(TRAINING_TEXT, 512);
const tokenizerConfigJson = { tokenizer_class: 'PreTrainedTokenizerFast', eos_token: '<|endoftext|>', add_bos_token: false, add_eos_token: false };
const dense = randomDenseLlama({
  vocabSize: 512,
  hiddenSize: 256,
  numLayers: 4,
  numHeads: 8,
  numKvHeads: 8,
  intermediateSize: 1024,
  dtype: 'F16',
  seed: 2024,
  maxPositions: 2048,
});
write(join(outDir, 'dense'), exportCheckpoint(dense.spec, dense.weights, tokenizerJson, tokenizerConfigJson));

const moe = upcycle(dense.spec, dense.weights, { experts: 8, topK: 2, router: { kind: 'random', scale: 0.5 }, noise: 0.01, seed: 1 });
write(join(outDir, 'moe'), exportCheckpoint(moe.spec, moe.weights, tokenizerJson, tokenizerConfigJson));
process.stdout.write(`wrote ${join(outDir, 'dense')} and ${join(outDir, 'moe')}\n`);
