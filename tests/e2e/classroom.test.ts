// Classroom, comparison and export in a real Chromium (CPU fallback: the fastest engine for the tiny
// fixtures on this machine): interventions change the routing they should and survive a link round
// trip; exports parse and match the engine's trace (computed again in Node); compare shows both panes'
// numbers; upcycling writes the parent's exact text; presenter/embed render; axe passes; offline reload.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parsePlanText } from '../../src/engine/routing/index.ts';
import { mkdirSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { launchBrowser, startServer, numberAt, tokenTexts, waitIdle as waitIdleFor } from './harness.ts';
import { dirSource } from '../../src/cli/fsSource.ts';
import { createPlaygroundStore, type RunState } from '../../src/state/store.ts';
import { EngineSession } from '../../src/worker/session.ts';
import { parseTraceCsv, traceRows } from '../../src/state/exportTrace.ts';
import { showToken } from '../../src/viz/palette.ts';

const root = resolve(import.meta.dirname, '../..');
// README screenshots: SCREENSHOT_DIR=docs/screenshots npx vitest run --project e2e (default: git-ignored test-results/).
const shots = resolve(root, process.env.SCREENSHOT_DIR ?? 'test-results/screenshots');
const fixtures = resolve(root, 'tests/fixtures/models');
const settings = { prompt: 'The experts', temperature: 0.9, topP: 0.95, seed: 3, maxTokens: 4 };
const base = `v=1&model=/fixtures/mixtral_f32/&prompt=The+experts&temp=0.9&topp=0.95&seed=3&max=4`;

/** Generate under native routing in Node, then score the same tokens under `plan`: what the page must show. */
async function nodeTruth(model: string, plan: string, maxTokens = settings.maxTokens): Promise<RunState> {
  const store = createPlaygroundStore();
  const session = new EngineSession(
    (m) => store.getState().receive(m),
    (dir) => dirSource(dir),
  );
  await session.handle({ type: 'init', preferBackend: 'cpu' });
  store.getState().begin(1, 'loading');
  await session.handle({ type: 'load', requestId: 1, modelId: model, baseUrl: resolve(fixtures, model) });
  store.getState().begin(2, 'generating', 'native');
  const { prompt, ...sampling } = settings;
  await session.handle({
    type: 'generate',
    requestId: 2,
    prompt,
    sampling: { ...sampling, maxTokens },
    routing: parsePlanText('native'),
  });
  await session.idle();
  if (plan !== 'native') {
    store.getState().begin(3, 'scoring', plan);
    await session.handle({
      type: 'score',
      requestId: 3,
      tokenIds: store.getState().run!.tokenIds,
      routing: parsePlanText(plan),
    });
    await session.idle();
  }
  return store.getState().run!;
}

const waitIdle = (page: Page, routing: string) => waitIdleFor(page, { routing });

async function downloadText(page: Page, selector: string): Promise<{ name: string; text: string; bytes: Buffer }> {
  const [download] = await Promise.all([page.waitForEvent('download'), page.click(selector)]);
  const path = await download.path();
  const bytes = readFileSync(path!);
  return { name: download.suggestedFilename(), text: bytes.toString('utf8'), bytes };
}

let server: Awaited<ReturnType<typeof startServer>>;
let browser: Browser;
const pageErrors: string[] = [];

beforeAll(async () => {
  server = await startServer();
  browser = await launchBrowser({ webgpu: false });
  mkdirSync(shots, { recursive: true });
});
afterAll(async () => {
  await browser?.close();
  await server?.close();
});

async function open(hash: string, viewport = { width: 1280, height: 800 }): Promise<Page> {
  const page = await browser.newPage({ viewport, acceptDownloads: true });
  page.on('pageerror', (e) => pageErrors.push(e.message));
  await page.goto(`${server.url}/?backend=cpu#${hash}`);
  return page;
}

describe('classroom features in Chromium', () => {
  it('an intervention clicked on the heatmap changes the routing it should, exports match the trace, and the link reproduces it', async () => {
    const page = await open(`${base}&view=probs`);
    await waitIdle(page, 'native');
    // Token 0's first choice in layer 1: ablate it by clicking its cell.
    const chosen = await page.$$eval('[data-testid="prob-cell"][data-layer="1"][data-chosen="true"]', (els) =>
      els.map((e) => Number(e.getAttribute('data-expert'))),
    );
    const native = await nodeTruth('mixtral_f32', 'native');
    const target = native.trace.layers[1][0].experts[0];
    expect(chosen).toContain(target);
    await page.click(`[data-testid="prob-cell"][data-layer="1"][data-expert="${target}"]`);
    const plan = `native|L1E${target}-`;
    await waitIdle(page, plan);
    const truth = await nodeTruth('mixtral_f32', plan);
    expect(await tokenTexts(page)).toEqual(truth.tokenTexts.map(showToken));
    const cell = await page.$eval(`[data-testid="prob-cell"][data-layer="1"][data-expert="${target}"]`, (e) => ({
      p: Number(e.getAttribute('data-prob')),
      chosen: e.getAttribute('data-chosen'),
      action: e.getAttribute('data-action'),
    }));
    expect(cell).toEqual({ p: 0, chosen: 'false', action: 'ablate' });
    expect(await numberAt(page, '[data-testid="mean-loss"]')).toBeCloseTo(
      -truth.logProbs.slice(1).reduce((a: number, b) => a + (b ?? 0), 0) / (truth.logProbs.length - 1),
      4,
    );
    expect(await numberAt(page, '[data-testid="kl"]')).toBeGreaterThan(0);

    // Exports: CSV and JSON hold the engine's trace (same rows as Node's), with the header fields.
    const csv = await downloadText(page, '[data-testid="export-trace-csv"]');
    expect(csv.name).toMatch(/\.csv$/);
    const rows = parseTraceCsv(csv.text);
    const expected = traceRows(truth);
    expect(rows.map((r) => [r.position, r.layer, r.expert, r.rank])).toEqual(
      expected.map((r) => [r.position, r.layer, r.expert, r.rank]),
    );
    rows.forEach((r, i) => expect(r.probability).toBeCloseTo(expected[i].probability, 4));
    expect(rows.some((r) => r.layer === 1 && r.expert === target)).toBe(false);
    const json = JSON.parse((await downloadText(page, '[data-testid="export-trace-json"]')).text);
    expect(json.header).toMatchObject({
      model: '/fixtures/mixtral_f32/',
      routing: plan,
      interventions: `L1E${target}-`,
      seed: 3,
    });
    expect(json.rows).toHaveLength(expected.length);
    json.rows.forEach((r: { weight: number }, i: number) => expect(r.weight).toBeCloseTo(expected[i].weight, 4));
    // Every token with its loss and the router's full probabilities over all experts.
    expect(json.tokens).toHaveLength(truth.tokenIds.length);
    json.tokens.forEach((tok: { loss: number | null; routerProbs: number[][] }, t: number) => {
      expect(tok.loss === null ? null : tok.loss).toEqual(t === 0 ? null : expect.closeTo(-truth.logProbs[t]!, 4));
      tok.routerProbs.forEach((probs, m) =>
        probs.forEach((p, e) => expect(p).toBeCloseTo(truth.trace.layers[m][t].probs[e], 4)),
      );
    });

    // SVG export is well-formed XML and renders as an image; the PNG is twice its size.
    const svg = await downloadText(page, '[data-testid="export-view-svg"]');
    const checked = await page.evaluate(async (text) => {
      const doc = new DOMParser().parseFromString(text, 'image/svg+xml');
      const img = new Image();
      img.src = URL.createObjectURL(new Blob([text], { type: 'image/svg+xml' }));
      await img.decode();
      return {
        parseError: doc.querySelector('parsererror') !== null,
        root: doc.documentElement.nodeName,
        width: img.naturalWidth,
        height: img.naturalHeight,
        inline: doc.querySelector('rect[style*="fill"]') !== null,
      };
    }, svg.text);
    expect(checked).toMatchObject({ parseError: false, root: 'svg', inline: true });
    expect(checked.width).toBeGreaterThan(100);
    const png = await downloadText(page, '[data-testid="export-view-png"]');
    expect(png.bytes.subarray(1, 4).toString('ascii')).toBe('PNG');
    expect(png.bytes.readUInt32BE(16)).toBe(checked.width * 2);
    const textSvg = await downloadText(page, '[data-testid="export-text-svg"]');
    expect(
      await page.evaluate(
        (t) => new DOMParser().parseFromString(t, 'image/svg+xml').querySelector('parsererror') === null,
        textSvg.text,
      ),
    ).toBe(true);

    // The link carries the intervention; a fresh page applies it.
    await page.waitForFunction((iv) => decodeURIComponent(location.hash).includes(`iv=${iv}`), `L1E${target}-`);
    const fresh = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    fresh.on('pageerror', (e) => pageErrors.push(e.message));
    await fresh.goto(page.url());
    await waitIdle(fresh, plan);
    expect(
      await fresh.$$eval('[data-testid="iv-chips"] [data-chip]', (els) => els.map((e) => e.getAttribute('data-chip'))),
    ).toEqual([`L1E${target}-`]);
    expect(await numberAt(fresh, '[data-testid="mean-loss"]')).toBeCloseTo(
      await numberAt(page, '[data-testid="mean-loss"]'),
      5,
    );
    await fresh.close();

    // Typed chip (force), then undo twice back to plain native routing.
    await page.fill('[data-testid="iv-input"]', 'l0e1+');
    await page.click('[data-testid="iv-add"]');
    await waitIdle(page, `native|L1E${target}-,L0E1+`);
    const layer0 = await nodeTruth('mixtral_f32', `native|L1E${target}-,L0E1+`);
    expect(layer0.trace.layers[0].every((r) => r.experts.includes(1))).toBe(true);
    await page.click('[data-testid="view-paths"]');
    await page.click('[data-testid="iv-undo"]');
    await waitIdle(page, plan);
    await page.click('[data-testid="iv-undo"]');
    await waitIdle(page, 'native');
    expect(pageErrors).toEqual([]);
    await page.close();
  });

  it('compare shows both panes’ numbers and highlights tokens routed differently', async () => {
    const page = await open(`${base}&mode=topk&k=1&gen=native&cmp=1&bmode=dense&view=load`);
    await waitIdle(page, 'topk:1');
    await page.waitForFunction(
      () =>
        Number.isFinite(Number(document.querySelector('[data-testid="compare-b-loss"]')?.getAttribute('data-value'))) &&
        !document.querySelector('[data-testid="compare-activity"]'),
      null,
      { timeout: 240_000 },
    );
    const dense = await nodeTruth('mixtral_f32', 'dense');
    const top1 = await nodeTruth('mixtral_f32', 'topk:1');
    const lossOf = (run: RunState) =>
      -run.logProbs.slice(1).reduce((a: number, b) => a + (b ?? 0), 0) / (run.logProbs.length - 1);
    expect(await numberAt(page, '[data-testid="compare-a-loss"]')).toBeCloseTo(lossOf(top1), 4);
    expect(await numberAt(page, '[data-testid="compare-b-loss"]')).toBeCloseTo(lossOf(dense), 4);
    expect(await numberAt(page, '[data-testid="compare-b-active"]')).toBeCloseTo(1, 6);
    expect(await numberAt(page, '[data-testid="compare-a-active"]')).toBeLessThan(1);
    expect(await page.textContent('[data-testid="compare-b-speed"]')).toMatch(/\d/);
    // Under top-1 vs dense every token's chosen set differs (1 expert vs 8).
    expect(await numberAt(page, '[data-testid="compare-diff-count"]')).toBe(top1.tokenIds.length);
    expect(await page.$$('[data-testid="compare-tokens-b"] .ctoken-diff')).toHaveLength(top1.tokenIds.length);
    await page.screenshot({ path: resolve(shots, 'compare-desktop.png'), fullPage: true });
    await page.setViewportSize({ width: 390, height: 844 });
    await page.screenshot({ path: resolve(shots, 'compare-phone.png'), fullPage: true });
    expect(pageErrors).toEqual([]);
    await page.close();
  });

  it('upcycles the dense parent in the browser: at initialisation it writes exactly its parent’s text', async () => {
    const page = await open(
      'v=1&model=/fixtures/llama_f32/&prompt=The+experts&temp=0.9&topp=0.95&seed=3&max=6&up=E8G2K4S5',
    );
    await page.waitForSelector('[data-testid="upcycle-proof"]', { timeout: 240_000 });
    await waitIdle(page, 'native');
    const parent = await nodeTruth('llama_f32', 'native', 6);
    expect(await page.getAttribute('[data-testid="upcycle-proof"]', 'data-identical')).toBe('true');
    expect(await page.textContent('[data-testid="proof-child"]')).toBe(
      await page.textContent('[data-testid="proof-parent"]'),
    );
    expect(await page.textContent('[data-testid="upcycle-proof"]')).toMatch(/renormalised to sum to 1/);
    // The main view runs the child: its text is the parent's text, token for token.
    expect(await tokenTexts(page)).toEqual(parent.tokenTexts.map(showToken));
    expect(await page.textContent('[data-testid="model"]')).toMatch(/mixtral, 2 layers, 8 experts \(top-4\)/);
    expect(pageErrors).toEqual([]);
    await page.close();
  });

  it('presenter and embed modes render; shortcuts and the help sheet work; axe finds nothing', async () => {
    const page = await open(`${base}&pres=1&view=probs`);
    await waitIdle(page, 'native');
    await page.keyboard.press('?');
    await page.waitForSelector('[data-testid="help-sheet"][open]');
    await page.keyboard.press('Escape');
    await page.waitForSelector('[data-testid="help-sheet"]:not([open])', { state: 'attached' });
    await page.keyboard.press('d');
    await waitIdle(page, 'dense');
    await page.keyboard.press('n');
    await waitIdle(page, 'native');
    await page.screenshot({ path: resolve(shots, 'presenter-desktop.png'), fullPage: true });
    await page.setViewportSize({ width: 390, height: 844 });
    await page.screenshot({ path: resolve(shots, 'presenter-phone.png'), fullPage: true });
    await page.setViewportSize({ width: 1280, height: 800 });
    for (const view of ['probs', 'paths', 'load']) {
      await page.click(`[data-testid="view-${view}"]`);
      await page.addScriptTag({ path: resolve(root, 'node_modules/axe-core/axe.min.js') });
      const violations = await page.evaluate(async () => {
        const result = await (
          window as unknown as {
            axe: { run(): Promise<{ violations: { id: string; nodes: { target: string[] }[] }[] }> };
          }
        ).axe.run();
        return result.violations.map(
          (v) =>
            `${v.id}: ${v.nodes
              .map((n) => n.target.join(' '))
              .slice(0, 3)
              .join(' | ')}`,
        );
      });
      expect(violations, view).toEqual([]);
    }
    expect(await page.inputValue('[data-testid="embed-code"]')).toMatch(
      /^<iframe src="http:.*embed=1.*" title="MoE Playground"/,
    );
    await page.close();

    const embed = await open(`${base}&embed=1&hide=sampling,prompt,share,interventions`);
    await waitIdle(embed, 'native');
    expect(await embed.$('h1')).toBeNull();
    expect(await embed.$('[data-testid="prompt"]')).toBeNull();
    expect(await embed.$('[data-testid="temperature"]')).toBeNull();
    expect(await embed.$('[data-testid="mode-dense"]')).not.toBeNull();
    await embed.screenshot({ path: resolve(shots, 'embed-desktop.png'), fullPage: true });
    await embed.setViewportSize({ width: 390, height: 844 });
    await embed.screenshot({ path: resolve(shots, 'embed-phone.png'), fullPage: true });
    await embed.close();

    // Locked routing: shown, not changeable (by mouse or keyboard).
    const lockedPage = await open(`${base}&lock=routing`);
    await waitIdle(lockedPage, 'native');
    expect(await lockedPage.isDisabled('[data-testid="mode-dense"]')).toBe(true);
    await lockedPage.keyboard.press('d');
    await lockedPage.waitForTimeout(300);
    expect(await lockedPage.textContent('[data-testid="metric-routing"]')).toBe('native');
    // A class link with locks is the students' view: no teacher tools to untick the lock with.
    expect(await lockedPage.$('[data-testid="teacher-tools"]')).toBeNull();
    expect(await lockedPage.$('[data-testid="lenses"]')).not.toBeNull();
    await lockedPage.close();

    // The Lenses view: hidden by hide=lenses; with lock=lenses its settings are fixed but Run still runs them.
    const noLenses = await open(`${base}&hide=lenses`);
    await waitIdle(noLenses, 'native');
    expect(await noLenses.$('[data-testid="lenses"]')).toBeNull();
    await noLenses.close();
    const lockedLenses = await open(`${base}&lock=lenses`);
    await waitIdle(lockedLenses, 'native');
    await lockedLenses.click('[data-testid="lenses-toggle"]');
    await lockedLenses.waitForSelector('[data-testid="lens-locked"]');
    expect(await lockedLenses.isDisabled('[data-testid="lens-model"]')).toBe(true);
    expect(await lockedLenses.isDisabled('[data-testid="lens-source-builtin"]')).toBe(true);
    expect(await lockedLenses.isDisabled('[data-testid="lens-run"]')).toBe(false);
    await lockedLenses.close();
    expect(pageErrors).toEqual([]);
  });

  it('the tour says clearly when its built-in models are missing', async () => {
    const bare = await startServer({ withoutModels: true });
    const page = await browser.newPage();
    await page.goto(`${bare.url}/`);
    await page.waitForSelector('[data-testid="tour-missing"]');
    expect(await page.textContent('[data-testid="tour-missing"]')).toMatch(/dense-parent, which is not installed/);
    expect(await page.textContent('[data-testid="tour-title"]')).toMatch(/A dense model/);
    await page.close();
    await bare.close();
  });

  it('reloads with the network off once the app has been visited', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    page.on('pageerror', (e) => pageErrors.push(e.message));
    await page.goto(`${server.url}/?backend=cpu#${base}`);
    await waitIdle(page, 'native');
    // Nothing is stored until the reader agrees: the button says how much it will store.
    expect(await page.evaluate(() => navigator.serviceWorker.getRegistrations().then((r) => r.length))).toBe(0);
    expect(await page.textContent('[data-testid="offline-keep"]')).toMatch(/stores about \d+ MB on this device/);
    await page.click('[data-testid="offline-keep"]');
    await page.waitForSelector('[data-testid="offline-status"][data-state="ready"]', { timeout: 60_000 });
    expect(await page.textContent('[data-testid="offline-status"]')).toMatch(/Works offline/);
    await context.setOffline(true);
    await page.reload();
    await waitIdle(page, 'native');
    expect(await page.textContent('h1')).toBe('MoE Playground');
    expect(await page.$('[data-testid="error"]')).toBeNull();
    await context.close();
    expect(pageErrors).toEqual([]);
  });
});
