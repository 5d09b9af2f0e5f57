// Quantization and the backend choice in a real Chromium, on the built-in moe-top2: the setting
// shows the memory each scheme needs on the running backend, switching q8 / q4 keeps the text and
// shows what quantization costs on the eval texts (numbers equal to the engine's, computed here in
// Node on the same windows), the choice goes in the share link; the backend badge says which
// engine runs and why, with WebGPU on (SwiftShader: both measured) and off (CPU fallback).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { launchBrowser, startServer, tokenTexts, waitIdle as waitIdleFor } from './harness.ts';
import { dirSource } from '../../src/cli/fsSource.ts';
import { createCpuBackend } from '../../src/engine/backends/cpu/index.ts';
import { loadCheckpoint, type Checkpoint } from '../../src/engine/format/index.ts';
import { quantizationCost, tokenWindows, type QuantCost } from '../../src/engine/quant/cost.ts';
import { NATIVE_PLAN } from '../../src/engine/routing/index.ts';
import { loadTokenizer } from '../../src/engine/tokenizer.ts';
import { EVAL_TEXTS, QUANT_COST_TOKENS } from '../../src/state/controller/quant.ts';
import { quantChoices } from '../../src/worker/session.ts';

const root = resolve(import.meta.dirname, '../..');
const shots = resolve(root, process.env.SCREENSHOT_DIR ?? 'test-results/screenshots');
const MODEL_DIR = resolve(root, 'public/models/moe-top2');
const LINK = '#v=1&model=moe-top2&prompt=The+experts&seed=42&max=8';

let server: Awaited<ReturnType<typeof startServer>>;
let ckpt: Checkpoint;
const truth: Partial<Record<'q8' | 'q4', QuantCost>> = {};

beforeAll(async () => {
  server = await startServer();
  mkdirSync(shots, { recursive: true });
  // The engine's own measurement, in Node: the page's texts, token budget and windows.
  ckpt = await loadCheckpoint(dirSource(MODEL_DIR));
  const tok = loadTokenizer(ckpt.tokenizerJson, ckpt.tokenizerConfigJson);
  expect([...EVAL_TEXTS]).toEqual(
    readdirSync(join(root, 'public/eval'))
      .filter((f) => f.endsWith('.txt'))
      .sort(),
  );
  const window = Math.min(ckpt.spec.maxPositions, 256);
  const windows = EVAL_TEXTS.flatMap((f) =>
    tokenWindows(tok.encode(readFileSync(join(root, 'public/eval', f), 'utf8')).slice(0, QUANT_COST_TOKENS), window),
  );
  const reference = await createCpuBackend().load(ckpt.spec, ckpt.weights);
  for (const scheme of ['q8', 'q4'] as const) {
    const model = await createCpuBackend({ quantize: scheme }).load(ckpt.spec, ckpt.weights);
    truth[scheme] = await quantizationCost(reference, model, scheme, windows, NATIVE_PLAN);
    model.dispose();
  }
  reference.dispose();
});
afterAll(async () => {
  await server?.close();
});

const waitIdle = (page: Page) => waitIdleFor(page);

async function costOf(page: Page, scheme: 'q8' | 'q4') {
  await page.waitForSelector('[data-testid="quant-cost-line"]', { timeout: 240_000 });
  const line = (await page.textContent('[data-testid="quant-cost-line"]')) ?? '';
  const attr = async (name: string) => Number(await page.getAttribute('[data-testid="quant-cost-line"]', name));
  expect(line.startsWith(`${scheme}: `)).toBe(true);
  return {
    line,
    routing: await attr('data-routing'),
    top1: await attr('data-top1'),
    deltaLoss: await attr('data-delta-loss'),
    kl: await attr('data-kl'),
  };
}

for (const webgpu of [false, true]) {
  describe(webgpu ? 'Chromium with WebGPU (SwiftShader)' : 'Chromium without WebGPU', () => {
    let browser: Browser;
    beforeAll(async () => {
      browser = await launchBrowser({ webgpu });
    });
    afterAll(async () => {
      await browser?.close();
    });

    it('says which engine runs and why, switches q8 and q4 keeping the text, and shows the memory and the cost', async () => {
      const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
      const pageErrors: string[] = [];
      page.on('pageerror', (e) => pageErrors.push(e.message));
      await page.goto(`${server.url}/${LINK}`);
      await waitIdle(page);
      expect(await page.$('[data-testid="error"]')).toBeNull();

      // The backend choice and its reason.
      const kind = (await page.getAttribute('[data-testid="backend-badge"]', 'data-kind')) as 'cpu' | 'webgpu';
      const chosenBy = await page.getAttribute('[data-testid="backend-badge"]', 'data-chosen-by');
      const backendText = (await page.textContent('[data-testid="backend"]')) ?? '';
      console.log(`backend choice (WebGPU ${webgpu ? 'on' : 'off'}): ${backendText}`);
      if (webgpu) {
        expect(chosenBy).toBe('measured');
        expect(backendText).toMatch(
          /(CPU: [\d.]+x faster than WebGPU|WebGPU: [\d.]+x faster than the CPU) on this software adapter \((swiftshader|swiftshader, a fallback adapter|isFallbackAdapter)\); measured [\d.]+ vs [\d.]+ tok\/s/i,
        );
        expect(await page.inputValue('[data-testid="backend-choice"]')).toBe('auto');
      } else {
        expect(kind).toBe('cpu');
        expect(chosenBy).toBe('fallback');
        expect(backendText).toMatch(/CPU fallback: .*WebGPU/);
      }

      // The memory each scheme needs on the running backend (the engine's memoryNeeded).
      const expected = quantChoices(ckpt.spec, ckpt.weights, kind);
      for (const c of expected) {
        expect(Number(await page.getAttribute(`[data-testid="quant-memory-${c.scheme}"]`, 'data-total'))).toBe(
          c.totalBytes,
        );
        expect(Number(await page.getAttribute(`[data-testid="quant-memory-${c.scheme}"]`, 'data-weights'))).toBe(
          c.weightBytes,
        );
      }
      expect(await page.isChecked('[data-testid="quant-none"]')).toBe(true);
      expect(await page.$('[data-testid="quant-cost"]')).toBeNull();
      const text = await tokenTexts(page);
      expect(text.length).toBeGreaterThan(8);

      for (const scheme of ['q8', 'q4'] as const) {
        await page.check(`[data-testid="quant-${scheme}"]`);
        await page.waitForFunction(
          (s) => document.querySelector('[data-testid="quant-cost-line"]')?.textContent?.startsWith(`${s}: `),
          scheme,
          { timeout: 240_000 },
        );
        const cost = await costOf(page, scheme);
        const t = truth[scheme]!;
        console.log(`moe-top2 ${kind}: ${cost.line}`);
        // The CPU in Chromium runs the same WebAssembly kernels as Node: the same numbers. WebGPU rounds differently.
        const digits = kind === 'cpu' ? 6 : 2;
        expect(cost.routing).toBeCloseTo(t.routingUnchanged!, digits);
        expect(cost.top1).toBeCloseTo(t.top1Agreement, digits);
        expect(cost.deltaLoss).toBeCloseTo(t.deltaLoss, kind === 'cpu' ? 6 : 2);
        expect(cost.kl).toBeCloseTo(t.meanKl, kind === 'cpu' ? 6 : 3);
        expect(cost.line).toContain(`${(100 * t.routingUnchanged!).toFixed(0)}% of routing decisions unchanged`);
        // Nothing typed or generated is lost; the choice is in the link.
        expect(await tokenTexts(page)).toEqual(text);
        expect(await page.inputValue('[data-testid="prompt"]')).toBe('The experts');
        expect(new URL(page.url()).hash).toContain(`quant=${scheme}`);
        expect(await page.textContent('[data-testid="backend"]')).toContain(kind === 'cpu' ? 'CPU' : 'WebGPU');
      }
      await page
        .locator('header')
        .screenshot({ path: resolve(shots, `quant-header-${webgpu ? 'webgpu' : 'cpu'}.png`) });
      await page
        .locator('[data-testid="quant-panel"]')
        .screenshot({ path: resolve(shots, `quant-panel-${webgpu ? 'webgpu' : 'cpu'}.png`) });

      // A link with quant=q4 opens the model at q4 in a fresh page.
      const fresh = await browser.newPage({ viewport: { width: 1280, height: 900 } });
      await fresh.goto(page.url());
      await waitIdle(fresh);
      expect(await fresh.isChecked('[data-testid="quant-q4"]')).toBe(true);
      await fresh.waitForSelector('[data-testid="quant-cost-line"]', { timeout: 240_000 });
      expect(await fresh.textContent('[data-testid="quant-cost-line"]')).toMatch(/^q4: /);
      await fresh.close();
      expect(pageErrors).toEqual([]);
      await page.close();
    });
  });
}
