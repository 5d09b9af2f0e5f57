// selftest.html in a real Chromium: every PyTorch fixture runs on WebGPU (SwiftShader) and on the CPU backend
// inside the browser and matches the reference; without WebGPU the page says it fell back to the CPU, and why.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readdirSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Browser } from 'playwright-core';
import { launchBrowser, startServer } from './harness.ts';
import type { SelfTestResult } from '../../src/selftest/main.ts';

const FIXTURES = readdirSync(resolve(import.meta.dirname, '../fixtures/models')).sort();

let server: Awaited<ReturnType<typeof startServer>>;
beforeAll(async () => {
  server = await startServer();
});
afterAll(async () => {
  await server?.close();
});

async function runSelfTest(
  browser: Browser,
  query: string,
): Promise<{ result: SelfTestResult; backendsText: string; pageErrors: string[] }> {
  const page = await browser.newPage();
  const pageErrors: string[] = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  await page.goto(`${server.url}/selftest.html?${query}`);
  await page.waitForSelector('#result[data-status="done"]', { timeout: 280_000 });
  const result = JSON.parse((await page.textContent('#result')) ?? '{}') as SelfTestResult;
  const backendsText = (await page.textContent('#backends')) ?? '';
  await page.close();
  return { result, backendsText, pageErrors };
}

function expectAllPass(result: SelfTestResult, backend: 'webgpu' | 'cpu'): void {
  const rows = result.fixtures.filter((r) => r.backend === backend);
  expect(rows.map((r) => r.fixture).sort()).toEqual(FIXTURES);
  for (const r of rows) {
    expect(r.error, `${r.fixture} on ${backend}`).toBeUndefined();
    expect(r.cases, r.fixture).toBeGreaterThan(0);
    expect(r.maxLogitDiff, `${r.fixture} on ${backend}: max |Δlogit|`).toBeLessThanOrEqual(1e-3);
    expect(r.decodeMaxLogitDiff, `${r.fixture} on ${backend}: decode max |Δlogit|`).toBeLessThanOrEqual(1e-3);
    expect(r.routingMismatches, `${r.fixture} on ${backend}: routing`).toBe(0);
    expect(r.pass, r.fixture).toBe(true);
  }
}

describe('engine self-test page, Chromium with WebGPU (SwiftShader)', () => {
  let browser: Browser;
  beforeAll(async () => {
    browser = await launchBrowser({ webgpu: true });
  });
  afterAll(async () => {
    await browser?.close();
  });

  it('every fixture matches the PyTorch reference on WebGPU and on the CPU backend', async () => {
    const { result, backendsText, pageErrors } = await runSelfTest(
      browser,
      `fixtures=/fixtures/&names=${FIXTURES.join(',')}`,
    );
    expect(pageErrors).toEqual([]);
    expect(result.webgpu.available).toBe(true);
    expect(result.cpuFallback).toBe(false);
    expect(result.backends).toEqual(['webgpu', 'cpu']);
    expect(backendsText).toMatch(/^WebGPU: /);
    expectAllPass(result, 'webgpu');
    expectAllPass(result, 'cpu');
    expect(result.pass).toBe(true);
    const worst = Math.max(...result.fixtures.filter((r) => r.backend === 'webgpu').map((r) => r.maxLogitDiff));
    console.log(
      `selftest (WebGPU): ${result.fixtures.length} runs in ${result.seconds.toFixed(1)} s, worst WebGPU max |Δlogit| ${worst.toExponential(2)}`,
    );
  });

  it('a fixture that is not there fails with a readable reason instead of passing', async () => {
    const { result } = await runSelfTest(browser, 'fixtures=/fixtures/&names=no_such_fixture&backends=cpu');
    expect(result.pass).toBe(false);
    expect(result.fixtures).toHaveLength(1);
    expect(result.fixtures[0].error).toMatch(/no_such_fixture.*expected\.json/);
  });
});

describe('engine self-test page, Chromium without WebGPU', () => {
  let browser: Browser;
  beforeAll(async () => {
    browser = await launchBrowser({ webgpu: false });
  });
  afterAll(async () => {
    await browser?.close();
  });

  it('reports the CPU fallback with a reason, and the CPU results pass', async () => {
    const { result, backendsText, pageErrors } = await runSelfTest(browser, `names=${FIXTURES.join(',')}`);
    expect(pageErrors).toEqual([]);
    expect(result.webgpu.available).toBe(false);
    expect(result.webgpu.reason).toMatch(/WebGPU/);
    expect(result.cpuFallback).toBe(true);
    expect(result.backends).toEqual(['cpu']);
    expect(backendsText).toMatch(/^CPU fallback: .*WebGPU/);
    expectAllPass(result, 'cpu');
    expect(result.pass).toBe(true);
  });
});
