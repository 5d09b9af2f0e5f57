// `moe bench DIR`: prefill and decode speed per routing mode, measured side by side in one process.
import type { LoadedModel, RoutingMode, RoutingPlan } from '../engine/types.ts';
import { countParameters } from '../engine/format/index.ts';
import { formatRoutingMode } from '../engine/routing/index.ts';
import { CliError, createBackend, formatCount, isCount, numberFlag, openCheckpoint, parseBackendKind, routingPlan } from './common.ts';
import { modesOfInterest } from './inspect.ts';

export interface BenchFlags {
  routing?: string;
  backend?: string;
  promptTokens?: string;
  decodeTokens?: string;
  json: boolean;
}

export interface BenchResult {
  routing: string;
  backend: string;
  prefillTokensPerSecond: number;
  decodeTokensPerSecond: number;
  activeParameters: number;
}

function argmax(row: Float32Array): number {
  let best = 0;
  for (let i = 1; i < row.length; i++) if (row[i] > row[best]) best = i;
  return best;
}

/** Seconds for a prefill of `prompt` and for `decodeTokens` greedy single-token steps after it. */
async function timeRun(model: LoadedModel, prompt: number[], decodeTokens: number, routing: RoutingPlan): Promise<{ prefill: number; decode: number }> {
  const cache = model.newCache(prompt.length + decodeTokens);
  try {
    let start = performance.now();
    let out = await model.forward(prompt, cache, { routing, logits: 'last' });
    const prefill = (performance.now() - start) / 1000;
    start = performance.now();
    for (let i = 0; i < decodeTokens; i++) {
      out = await model.forward([argmax(out.logits[out.logits.length - 1])], cache, { routing, logits: 'last' });
    }
    return { prefill, decode: (performance.now() - start) / 1000 };
  } finally {
    cache.dispose();
  }
}

export async function benchCommand(dir: string, flags: BenchFlags): Promise<void> {
  const promptTokens = numberFlag('prompt-tokens', flags.promptTokens, 64, isCount, 'a whole number ≥ 1');
  const decodeTokens = numberFlag('decode-tokens', flags.decodeTokens, 16, isCount, 'a whole number ≥ 1');
  const backendKind = parseBackendKind(flags.backend);
  const ckpt = await openCheckpoint(dir);
  const { spec } = ckpt;
  const modes: RoutingMode[] = flags.routing !== undefined ? [routingPlan(spec, flags.routing, '').mode] : modesOfInterest(spec);
  if (promptTokens + decodeTokens > spec.maxPositions) {
    throw new CliError(`--prompt-tokens plus --decode-tokens exceeds the model's ${spec.maxPositions} positions.`, 'Use fewer tokens.');
  }
  // A fixed pseudo-random prompt: every mode sees the same tokens.
  const prompt = Array.from({ length: promptTokens }, (_, i) => (i * 7919 + 13) % spec.vocabSize);

  const backend = await createBackend(backendKind);
  const model = await backend.load(spec, ckpt.weights);
  const counts = countParameters(spec);
  const results: BenchResult[] = [];
  try {
    for (const mode of modes) {
      const plan: RoutingPlan = { mode, interventions: [] };
      await timeRun(model, prompt.slice(0, Math.min(8, promptTokens)), 2, plan); // warm-up: caches, pipelines, JIT
      const t = await timeRun(model, prompt, decodeTokens, plan);
      const r: BenchResult = {
        routing: formatRoutingMode(mode),
        backend: backend.kind,
        prefillTokensPerSecond: promptTokens / t.prefill,
        decodeTokensPerSecond: decodeTokens / t.decode,
        activeParameters: counts.activeFor(mode),
      };
      results.push(r);
      if (!flags.json) {
        process.stdout.write(
          `${r.routing.padEnd(12)} prefill ${r.prefillTokensPerSecond.toFixed(1).padStart(9)} tok/s   decode ${r.decodeTokensPerSecond.toFixed(1).padStart(8)} tok/s   active ${formatCount(r.activeParameters)}\n`,
        );
      }
    }
  } finally {
    model.dispose();
    backend.dispose();
  }
  if (flags.json) process.stdout.write(JSON.stringify({ results }) + '\n');
  else process.stdout.write(`(${backend.description}; ${promptTokens} prompt tokens, ${decodeTokens} decode tokens, total ${formatCount(counts.total)} parameters)\n`);
}
