// Loads and runs a checkpoint in Debian's Chromium (headless, WebGPU on SwiftShader): the engine's own modules,
// imported by the page from Vite's dev server, load the model over HTTP and run one prefill and one decode step
// per backend × quantization, then print what they held and how long it took. For models too large for the
// test suite (the 0.42 B llm-jp shapes).
// Usage: npx tsx bench/browser-run.ts MODEL_DIR [cpu:q8,cpu:q4,webgpu:q4]
import { resolve } from 'node:path';
import { createServer } from 'vite';
import { launchBrowser } from '../tests/e2e/harness.ts';

const modelDir = resolve(process.argv[2] ?? '');
const runs = process.argv[3] ?? 'cpu:q8,cpu:q4,webgpu:q4';
if (!process.argv[2]) {
  process.stderr.write('usage: npx tsx bench/browser-run.ts MODEL_DIR [cpu:q8,cpu:q4,webgpu:q4]\n');
  process.exit(1);
}
const root = resolve(import.meta.dirname, '..');
// appType 'mpa': a missing file is a 404 (as from a static host), not the app's index.html.
const server = await createServer({
  root,
  configFile: false,
  appType: 'mpa',
  logLevel: 'error',
  server: { port: 0, host: '127.0.0.1', fs: { allow: [root, modelDir] } },
});
await server.listen();
const url = server.resolvedUrls!.local[0];
const browser = await launchBrowser({ webgpu: true });
try {
  const page = await browser.newPage();
  await page.goto(`${url}README.md`); // any page of the origin
  const lines = await page.evaluate(
    async ({ modelUrl, runs }) => {
      // Paths on the dev server (the page's origin), typed as the modules they are.
      const fmt = (await import(
        '/src/engine/format/index.ts' as string
      )) as typeof import('../src/engine/format/index.ts');
      const cpu = (await import(
        '/src/engine/backends/cpu/index.ts' as string
      )) as typeof import('../src/engine/backends/cpu/index.ts');
      const gpu = (await import(
        '/src/engine/backends/webgpu/index.ts' as string
      )) as typeof import('../src/engine/backends/webgpu/index.ts');
      const routing = { mode: { kind: 'native' as const }, interventions: [] };
      let t = performance.now();
      const ckpt = await fmt.loadCheckpoint(fmt.urlSource(modelUrl));
      const out = [`fetched and parsed in ${((performance.now() - t) / 1000).toFixed(1)} s`];
      const prompt = [5, 17, 42, 3, 60, 9];
      const last: Record<string, Float32Array> = {};
      for (const item of runs.split(',')) {
        const [kind, quantize] = item.split(':') as ['cpu' | 'webgpu', 'none' | 'q8' | 'q4'];
        t = performance.now();
        const backend =
          kind === 'cpu' ? cpu.createCpuBackend({ quantize }) : await gpu.createWebGpuBackend(undefined, { quantize });
        const model = await backend.load(ckpt.spec, ckpt.weights);
        const load = (performance.now() - t) / 1000;
        const cache = model.newCache(8);
        t = performance.now();
        await model.forward(prompt, cache, { routing, logits: 'last' });
        const prefill = (performance.now() - t) / 1000;
        t = performance.now();
        const step = await model.forward([7], cache, { routing, logits: 'last' });
        const decode = (performance.now() - t) / 1000;
        last[item] = step.logits[0];
        const held =
          'memory' in model
            ? (model as { memory: { total: number } }).memory.total
            : (backend as { stats(): { liveBytes: number } }).stats().liveBytes;
        out.push(
          `${item}: ${backend.description}; weights held ${(held / 2 ** 20).toFixed(1)} MiB; load ${load.toFixed(1)} s, prefill ${prompt.length} tokens ${prefill.toFixed(1)} s, decode step ${decode.toFixed(2)} s`,
        );
        model.dispose();
        backend.dispose();
      }
      for (const q of ['q8', 'q4']) {
        const a = last[`cpu:${q}`];
        const b = last[`webgpu:${q}`];
        if (a && b)
          out.push(
            `${q}: WebGPU vs CPU max |Δlogit| ${Math.max(...a.map((v, i) => Math.abs(v - b[i]))).toExponential(2)}`,
          );
      }
      return out;
    },
    { modelUrl: `/@fs${modelDir}/`, runs },
  );
  process.stdout.write(lines.join('\n') + '\n');
} finally {
  await browser.close();
  await server.close();
}
