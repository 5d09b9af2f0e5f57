// The README's run command, run as a person runs it: `npm start` (scripts/start.sh, Vite's dev
// server), then Chromium on the URL it prints, with WebGPU and without. Vite's servers answer a
// missing file with the index page and status 200; the page must still load its first model.
// `vite preview` (the built app behind Vite's own static server) has the same fallback.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { distDir, launchBrowser, startCommand } from './harness.ts';

const root = resolve(import.meta.dirname, '../..');
const tour = JSON.parse(readFileSync(join(root, 'public/tour.json'), 'utf8')) as { steps: { models: string[] }[] };

/** Waits until the page's engine output is on screen and the status says ready, or an error shows. */
async function waitReady(page: Page): Promise<void> {
  await page.waitForFunction(
    () =>
      !!document.querySelector('[data-testid="error"]') ||
      (document.querySelector('[data-testid="stage"]')?.textContent?.startsWith('ready') === true &&
        !!document.querySelector('[data-testid="run-source"][data-source="engine"]')),
    undefined,
    { timeout: 280_000, polling: 250 },
  );
}

async function errorText(page: Page): Promise<string | null> {
  const error = await page.$('[data-testid="error"]');
  return error ? await error.textContent() : null;
}

describe('npm start (the README run command)', () => {
  let server: Awaited<ReturnType<typeof startCommand>>;
  beforeAll(async () => {
    server = await startCommand('npm', ['start', '--', '--port', '0']);
  });
  afterAll(async () => {
    await server?.close();
  });

  for (const webgpu of [true, false]) {
    it(`the printed URL gives a ready first model, no error (${webgpu ? 'WebGPU on SwiftShader' : 'no WebGPU: CPU fallback'})`, async () => {
      const browser: Browser = await launchBrowser({ webgpu });
      try {
        const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
        const pageErrors: string[] = [];
        page.on('pageerror', (e) => pageErrors.push(e.message));
        await page.goto(`${server.url}/`);
        await waitReady(page);
        expect(await errorText(page)).toBeNull();
        // The first screen is the tour's first step, started by itself, with its model loaded.
        expect(await page.getAttribute('[data-testid="tour"]', 'data-step')).toBe('0');
        expect(await page.textContent('[data-testid="model"]')).toContain(`${tour.steps[0].models[0]} — `);
        expect(await page.textContent('[data-testid="backend"]')).toMatch(webgpu ? /WebGPU/ : /CPU fallback: .*WebGPU/);
        // SwiftShader is a software adapter: the page measured both engines and says why it runs the one it does.
        expect(await page.getAttribute('[data-testid="backend-badge"]', 'data-chosen-by')).toBe(
          webgpu ? 'measured' : 'fallback',
        );
        expect(await page.$('[data-testid="backend-choice"]')).not.toBeNull();
        expect((await page.$$('[data-testid="token-text"] .token-body')).length).toBeGreaterThan(3);
        expect(pageErrors).toEqual([]);
      } finally {
        await browser.close();
      }
    });
  }

  it('a sharded checkpoint (index + shards) loads through the dev server', async () => {
    const browser = await launchBrowser({ webgpu: false });
    try {
      const page = await browser.newPage();
      await page.goto(`${server.url}/?model=/tests/fixtures/models/mixtral_sharded_f32/`);
      await waitReady(page);
      expect(await errorText(page)).toBeNull();
      expect(await page.textContent('[data-testid="model"]')).toMatch(/mixtral, 2 layers, 8 experts/);
    } finally {
      await browser.close();
    }
  });

  it('a model folder that does not exist gives one sentence, not a JSON error', async () => {
    const browser = await launchBrowser({ webgpu: false });
    try {
      const page = await browser.newPage();
      await page.goto(`${server.url}/?model=/tests/fixtures/models/no_such_model/`);
      await page.waitForSelector('[data-testid="error"]', { timeout: 120_000 });
      const text = (await errorText(page)) ?? '';
      expect(text).toMatch(/config\.json is missing from \/tests\/fixtures\/models\/no_such_model\//);
      expect(text).not.toMatch(/JSON|doctype/);
    } finally {
      await browser.close();
    }
  });
});

describe('vite preview (the built app behind Vite’s static server)', () => {
  it('loads the first model with no error', async () => {
    expect(
      existsSync(join(distDir, 'index.html')),
      'dist/ is missing: run `npx vite build` first (npm test does)',
    ).toBe(true);
    const server = await startCommand('npx', ['vite', 'preview', '--port', '0']);
    const browser = await launchBrowser({ webgpu: false });
    try {
      const page = await browser.newPage();
      await page.goto(`${server.url}/`);
      await waitReady(page);
      expect(await errorText(page)).toBeNull();
      expect(await page.textContent('[data-testid="model"]')).toContain(`${tour.steps[0].models[0]} — `);
    } finally {
      await browser.close();
      await server.close();
    }
  });
});
