// The minimal page boots in a real Chromium, starts the engine in its worker, loads a real
// checkpoint (the mixtral_f32 PyTorch fixture) and runs a forward pass — with WebGPU and without.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser } from 'playwright-core';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { launchBrowser, startServer } from './harness.ts';

let server: Awaited<ReturnType<typeof startServer>>;

beforeAll(async () => {
  server = await startServer();
});
afterAll(async () => {
  await server?.close();
});

for (const webgpu of [true, false]) {
  describe(webgpu ? 'Chromium with WebGPU (SwiftShader)' : 'Chromium without WebGPU', () => {
    let browser: Browser;
    beforeAll(async () => {
      browser = await launchBrowser({ webgpu });
    });
    afterAll(async () => {
      await browser?.close();
    });

    it('shows the engine, loads a checkpoint and scores text', async () => {
      const page = await browser.newPage();
      const pageErrors: string[] = [];
      page.on('pageerror', (e) => pageErrors.push(e.message));
      await page.goto(`${server.url}/?${webgpu ? 'backend=webgpu&' : ''}model=/fixtures/mixtral_f32/`);
      await expect.poll(() => page.textContent('h1')).toBe('MoE Playground');
      // The saved example shows at once; wait for the engine's own output (or an error).
      await page.waitForSelector('[data-testid="next-top5"][data-source="engine"], [data-testid="error"]', {
        timeout: 240_000,
      });
      const error = await page.$('[data-testid="error"]');
      expect(error ? await error.textContent() : null).toBeNull();
      const backendText = (await page.textContent('[data-testid="backend"]')) ?? '';
      if (webgpu) {
        expect(backendText).toMatch(/WebGPU/);
      } else {
        expect(backendText).toMatch(/CPU fallback: .*WebGPU/);
      }
      expect(await page.textContent('[data-testid="model"]')).toMatch(/mixtral, 2 layers, 8 experts \(top-2\)/);
      const items = await page.$$eval('[data-testid="next-top5"][data-source="engine"] li', (lis) =>
        lis.map((li) => li.textContent ?? ''),
      );
      expect(items).toHaveLength(5);
      expect(pageErrors).toEqual([]);
      await page.close();
    });
  });
}

describe('a view that fails to draw', () => {
  it('shows a sentence in its place; the rest of the page stays usable', async () => {
    const bare = await startServer({ withoutModels: true });
    const browser = await launchBrowser({ webgpu: false });
    try {
      const page = await browser.newPage();
      // A saved example whose routing records lack their experts: drawing it throws inside React.
      const saved = JSON.parse(readFileSync(join(import.meta.dirname, '../../public/example-trace.json'), 'utf8'));
      saved.trace.layers = saved.trace.layers.map((rows: unknown[]) =>
        rows.map(() => ({ experts: null, weights: null, probs: [] })),
      );
      await page.route('**/example-trace.json', (route) =>
        route.fulfill({ contentType: 'application/json', body: JSON.stringify(saved) }),
      );
      await page.goto(`${bare.url}/`);
      await page.waitForSelector('[data-testid="render-error"]');
      expect(await page.textContent('[data-testid="render-error"]')).toMatch(/Something went wrong while drawing/);
      expect(await page.textContent('h1')).toBe('MoE Playground');
      expect(await page.isVisible('textarea')).toBe(true);
    } finally {
      await browser.close();
      await bare.close();
    }
  });
});
