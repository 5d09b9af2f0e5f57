// Saves a real engine run as public/example-trace.json: the example the page paints before any
// model is ready. It uses the first built-in model when one is installed, else the mixtral_f32
// test fixture, and the CPU engine through the same session the Web Worker runs.
//   npx tsx scripts/make-example-trace.ts
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { dirSource } from '../src/cli/fsSource.ts';
import { createPlaygroundStore } from '../src/state/store.ts';
import { saveRun } from '../src/state/example.ts';
import { DEFAULT_PROMPT } from '../src/state/url.ts';
import { EngineSession } from '../src/worker/session.ts';
import { formatPlanText, parsePlanText } from '../src/engine/routing/index.ts';

const root = resolve(import.meta.dirname, '..');
const index = resolve(root, 'public/models/index.json');
const builtIn = existsSync(index)
  ? (JSON.parse(readFileSync(index, 'utf8')) as { models?: { id: string; path: string }[] }).models?.[0]
  : undefined;
const [label, folder] = builtIn
  ? [builtIn.id, resolve(root, 'public', builtIn.path)]
  : ['mixtral_f32 test model (random weights)', resolve(root, 'tests/fixtures/models/mixtral_f32')];

const store = createPlaygroundStore();
const session = new EngineSession(
  (m) => store.getState().receive(m),
  (dir) => dirSource(dir),
);
async function send(request: Parameters<EngineSession['handle']>[0]) {
  if ('requestId' in request)
    store
      .getState()
      .begin(
        request.requestId,
        request.type === 'load' ? 'loading' : 'generating',
        'routing' in request ? formatPlanText(request.routing) : undefined,
      );
  await session.handle(request);
  await session.idle();
}
await send({ type: 'init', preferBackend: 'cpu' });
await send({ type: 'load', requestId: 1, modelId: label, baseUrl: folder });
await send({
  type: 'generate',
  requestId: 2,
  prompt: DEFAULT_PROMPT,
  sampling: { temperature: 0.8, topP: 0.95, seed: 3, maxTokens: 20 },
  routing: parsePlanText('native'),
});
const { run, error } = store.getState();
if (error || !run) throw new Error(`generation failed: ${error?.message}`);
const out = resolve(root, 'public/example-trace.json');
writeFileSync(
  out,
  JSON.stringify(
    saveRun({ ...run, modelLabel: label, generateTokensPerSecond: null }, 'scripts/make-example-trace.ts'),
  ),
);
console.log(`wrote ${out}: ${run.tokenIds.length} tokens from ${label}`);
