// Issue 11 in a real Chromium: open a model by hf: id through a stand-in for the Hugging Face hub
// (tests/hub/standIn.ts), watch the progress move, reload with the hub stopped (the device's cache),
// a link that asks before downloading, every failure in its own sentence with the old model kept,
// and a checkpoint folder from the disk. The truth: the stand-in's own bytes, run by the engine in
// Node; parameter counts by hand from the config.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { launchBrowser, startServer, tokenTexts, waitIdle as waitIdleFor } from './harness.ts';
import { memorySource } from '../../src/engine/format/sources.ts';
import { createPlaygroundStore } from '../../src/state/store.ts';
import { EngineSession } from '../../src/worker/session.ts';
import { dirSource } from '../../src/cli/fsSource.ts';
import { showToken } from '../../src/viz/palette.ts';
import { parsePlanText } from '../../src/engine/routing/index.ts';
import {
  LLM_JP_8X152M_CONFIG,
  LLM_JP_SHAPED_SMALL_CONFIG,
  folderRepo,
  generatedRepo,
  startStandInHub,
  type StandInHub,
} from '../hub/standIn.ts';

const root = resolve(import.meta.dirname, '../..');
const shots = resolve(root, process.env.SCREENSHOT_DIR ?? 'test-results/screenshots');
const TOKENIZER = new Uint8Array(readFileSync(join(root, 'public/models/moe-top2/tokenizer.json')));
const COMMIT = 'c0ffee0000000000000000000000000000000002';
const REPO = 'test-org/llmjp-small';
const PROMPT = 'The experts';
const LINK = `v=1&model=moe-top2&prompt=The+experts&seed=5&max=4&temp=0.8`;
// Mixtral-8x7B's shape (46.7 B parameters, ~93 GB in bf16): headers only, never downloaded.
const MIXTRAL_8X7B = {
  ...LLM_JP_8X152M_CONFIG,
  hidden_size: 4096,
  intermediate_size: 14336,
  num_hidden_layers: 32,
  num_attention_heads: 32,
  num_key_value_heads: 8,
  vocab_size: 32000,
};

function repos() {
  return new Map([
    [
      REPO,
      generatedRepo(
        { ...LLM_JP_SHAPED_SMALL_CONFIG },
        { dtype: 'BF16', shards: 2, seed: 2, commit: COMMIT, tokenizer: TOKENIZER },
      ),
    ],
    [
      'test-org/llmjp-one',
      generatedRepo(
        { ...LLM_JP_SHAPED_SMALL_CONFIG },
        { dtype: 'BF16', shards: 1, seed: 3, commit: COMMIT, tokenizer: TOKENIZER },
      ),
    ],
    [
      'test-org/mixtral-8x7b-shaped',
      generatedRepo({ ...MIXTRAL_8X7B }, { dtype: 'BF16', shards: 19, seed: 4, commit: COMMIT, opaqueEtags: true }),
    ],
    ['test-org/gated', { ...folderRepo(join(root, 'tests/fixtures/models/mixtral_f32'), COMMIT), gated: true }],
    ['test-org/no-cors', { ...folderRepo(join(root, 'tests/fixtures/models/mixtral_f32'), COMMIT), noCors: true }],
  ]);
}

/** Hand count of the small llm-jp-shaped config: embeddings + head, per layer attention, norms, router, experts; final norm. */
function handCount() {
  const c = LLM_JP_SHAPED_SMALL_CONFIG;
  const d = c.hidden_size;
  const expert = 3 * d * c.intermediate_size;
  const perLayerShared = 4 * d * d + 2 * d + c.num_local_experts * d;
  const total = 2 * c.vocab_size * d + c.num_hidden_layers * (perLayerShared + c.num_local_experts * expert) + d;
  const active = 2 * c.vocab_size * d + c.num_hidden_layers * (perLayerShared + c.num_experts_per_tok * expert) + d;
  return { total, active };
}

/** The page's generation, run in Node on the stand-in's own bytes: what the page must show after the download. */
async function nodeTokens(hub: StandInHub, repo: string): Promise<string[]> {
  const files = new Map<string, Uint8Array>();
  for (const [name, f] of hub.repos.get(repo)!.files) files.set(name, f.read(0, f.size));
  const store = createPlaygroundStore();
  const session = new EngineSession(
    (m) => store.getState().receive(m),
    () => memorySource(files, repo),
  );
  await session.handle({ type: 'init', preferBackend: 'cpu' });
  store.getState().begin(1, 'loading');
  await session.handle({ type: 'load', requestId: 1, modelId: repo, baseUrl: 'x' });
  store.getState().begin(2, 'generating', 'native');
  await session.handle({
    type: 'generate',
    requestId: 2,
    prompt: PROMPT,
    sampling: { temperature: 0.8, topP: 0.95, seed: 5, maxTokens: 4 },
    routing: parsePlanText('native'),
  });
  await session.idle();
  return store.getState().run!.tokenTexts;
}

const waitIdle = (page: Page, model: string) => waitIdleFor(page, { model, ready: true, failOnError: true });

let server: Awaited<ReturnType<typeof startServer>>;
let browser: Browser;
let hub: StandInHub;
const pageErrors: string[] = [];

beforeAll(async () => {
  server = await startServer();
  browser = await launchBrowser({ webgpu: false });
  hub = await startStandInHub(repos());
  mkdirSync(shots, { recursive: true });
});
afterAll(async () => {
  await browser?.close();
  await server?.close();
  await hub?.close().catch(() => undefined);
  expect(pageErrors).toEqual([]);
});

async function open(path: string, page?: Page): Promise<Page> {
  const p = page ?? (await browser.newPage({ viewport: { width: 1280, height: 1000 } }));
  p.on('pageerror', (e) => pageErrors.push(e.message));
  await p.goto(`${server.url}${path}`);
  return p;
}

async function lookUp(page: Page, source: string): Promise<void> {
  await page.fill('[data-testid="source-input"]', source);
  await page.click('[data-testid="source-lookup"]');
  await page.waitForSelector('[data-testid="source-preview"], [data-testid="source-failure"]', { timeout: 60_000 });
}

/** The failure a page shows, and that the model loaded before is still loaded and usable. */
async function failureOf(page: Page, testId: string): Promise<{ reason: string; text: string }> {
  const el = await page.waitForSelector(`[data-testid="${testId}"]`, { timeout: 60_000 });
  return { reason: (await el.getAttribute('data-reason')) ?? '', text: (await el.textContent()) ?? '' };
}

async function stillRuns(page: Page): Promise<void> {
  expect(await page.textContent('[data-testid="model"]')).toMatch(/^moe-top2 — /);
  expect(await page.$('[data-testid="error"]')).toBeNull();
  await page.fill('[data-testid="prompt"]', 'Still here');
  await page.click('[data-testid="generate"]');
  await waitIdle(page, 'moe-top2');
  expect((await tokenTexts(page)).join('')).toMatch(/^Still·here/);
}

describe('open a model from the hub', () => {
  it('looks up, downloads with moving progress, opens by hf: id, and a reload with the hub stopped opens it from the device', async () => {
    const truth = await nodeTokens(hub, REPO);
    const page = await open(`/?backend=cpu&hub=${encodeURIComponent(hub.endpoint)}#${LINK}`);
    await waitIdle(page, 'moe-top2');

    hub.log.length = 0;
    await lookUp(page, `hf:${REPO}`);
    const { total, active } = handCount();
    const size = [...hub.repos.get(REPO)!.files.values()].reduce((a, f) => a + f.size, 0);
    expect(await page.textContent('[data-testid="preview-architecture"]')).toBe('mixtral, 3 layers, BF16');
    expect(await page.textContent('[data-testid="preview-experts"]')).toBe('8 experts per layer, top-2');
    expect(Number(await page.getAttribute('[data-testid="preview-parameters"]', 'data-total'))).toBe(total);
    expect(Number(await page.getAttribute('[data-testid="preview-parameters"]', 'data-active'))).toBe(active);
    expect(await page.textContent('[data-testid="preview-from"]')).toBe(
      `${new URL(hub.endpoint).host} · ${REPO} · revision main (commit ${COMMIT.slice(0, 10)})`,
    );
    expect(await page.textContent('[data-testid="source-download"]')).toBe(
      `Download and open (${(size / 1e6).toFixed(1)} MB)`,
    );
    expect(await page.textContent('[data-testid="preview-memory"]')).toMatch(/CPU engine: about .* \(fits\) · in use/);
    // Know before you download: the weights were touched only by small range requests.
    const weightReads = hub.log.filter((r) => r.path.endsWith('.safetensors'));
    expect(weightReads.length).toBeGreaterThan(0);
    for (const r of weightReads) expect(r.range).toMatch(/^bytes=\d+-\d+$/);

    // Slow the second shard so the progress can be watched.
    const shard = 'model-00002-of-00002.safetensors';
    hub.faults.slow!.set(shard, 400_000);
    await page.click('[data-testid="source-download"]');
    const seen: number[] = [];
    await page.waitForSelector('[data-testid="download-progress"]');
    for (let i = 0; i < 200 && seen.length < 4; i++) {
      const received = Number(
        await page.getAttribute('[data-testid="download-progress"]', 'data-received').catch(() => '0'),
      );
      if (received > 0 && received < size && !seen.includes(received)) seen.push(received);
      await page.waitForTimeout(50);
    }
    expect(seen.length).toBeGreaterThanOrEqual(3);
    for (let i = 1; i < seen.length; i++) expect(seen[i]).toBeGreaterThan(seen[i - 1]);
    expect(await page.textContent('[data-testid="download-total"]')).toMatch(
      /Downloading hf:test-org\/llmjp-small: .* of .* MB/,
    );
    expect(await page.$$(`[data-testid="file-progress"] li`)).toHaveLength(hub.repos.get(REPO)!.files.size);
    await page.screenshot({ path: resolve(shots, 'open-hub-model.png') });
    hub.faults.slow!.delete(shard);

    await waitIdle(page, `hf:${REPO}`);
    expect(await page.textContent('[data-testid="model"]')).toMatch(
      /^hf:test-org\/llmjp-small — mixtral, 3 layers, 8 experts \(top-2\)/,
    );
    expect(await tokenTexts(page)).toEqual(truth.map(showToken));
    // Kept on this device, listed with its size.
    await page.waitForSelector(`[data-testid="device-model"][data-source="hf:${REPO} via ${hub.endpoint}"]`);
    expect(await page.textContent('[data-testid="device-models"]')).toContain(`${(size / 1e6).toFixed(1)} MB`);
    await page.waitForFunction(() => location.hash.includes('model=hf%3Atest-org%2Fllmjp-small'));

    // The hub goes away; the link still opens the model, from the device.
    const stopped = hub;
    await stopped.close();
    hub = await startStandInHub(repos());
    await page.reload();
    await waitIdle(page, `hf:${REPO}`);
    expect(await tokenTexts(page)).toEqual(truth.map(showToken));
    expect(await page.textContent('[data-testid="download-done"]')).toMatch(/from this device \(no network\)/);
    expect(await page.$('[data-testid="link-ask"]')).toBeNull();

    // Delete it: the list says so, and the storage used goes down.
    await page.click(
      `[data-testid="device-model"][data-source="hf:${REPO} via ${stopped.endpoint}"] [data-testid="device-delete"]`,
    );
    await page.waitForSelector('[data-testid="device-empty"]');
    await page.close();
  });

  it('a link whose model is remote asks first: host, repository, revision and size, and downloads nothing by itself', async () => {
    const page = await open(
      `/?backend=cpu&hub=${encodeURIComponent(hub.endpoint)}#v=1&model=hf%3Atest-org%2Fllmjp-one&prompt=The+experts&seed=5&max=4&temp=0.8`,
    );
    await page.waitForSelector('[data-testid="link-ask"]');
    await waitIdle(page, 'moe-top2');
    const size = [...hub.repos.get('test-org/llmjp-one')!.files.values()].reduce((a, f) => a + f.size, 0);
    await page.waitForFunction(
      (s) => document.querySelector('[data-testid="link-ask"]')?.textContent?.includes(s),
      `${(size / 1e6).toFixed(1)} MB to download`,
    );
    expect(await page.textContent('[data-testid="link-ask"]')).toContain(
      `This link opens a model from ${new URL(hub.endpoint).host}: test-org/llmjp-one · revision main`,
    );
    // Only configs and headers were read.
    for (const r of hub.log.filter((x) => x.path.endsWith('.safetensors'))) expect(r.range).toMatch(/^bytes=\d+-\d+$/);
    expect(await page.textContent('[data-testid="model"]')).toMatch(/^moe-top2 — /);
    await page.click('[data-testid="source-download"]');
    await waitIdle(page, 'hf:test-org/llmjp-one');
    expect(await page.$('[data-testid="link-ask"]')).toBeNull();
    await page.close();
  });
});

describe('every failure has its own sentence, and the model already loaded stays usable', () => {
  it('gated (401), missing (404), CORS refusal, too large for this device, offline', async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 1000 } });
    const page = await open(`/?backend=cpu&hub=${encodeURIComponent(hub.endpoint)}#${LINK}`, await context.newPage());
    await waitIdle(page, 'moe-top2');
    const said: Record<string, string> = {};

    await lookUp(page, 'hf:test-org/gated');
    let f = await failureOf(page, 'source-failure');
    expect(f.reason).toBe('unauthorized');
    expect(f.text).toMatch(/refused config\.json \(HTTP 401\): the model is gated or private/);
    said.gated = f.text;

    await lookUp(page, 'hf:test-org/does-not-exist');
    f = await failureOf(page, 'source-failure');
    expect(f.reason).toBe('not-found');
    expect(f.text).toMatch(
      /has no config\.json: there is no model at this address, or the name or revision is misspelt/,
    );
    said.missing = f.text;

    await lookUp(page, 'hf:test-org/no-cors');
    f = await failureOf(page, 'source-failure');
    expect(f.reason).toBe('network');
    expect(f.text).toMatch(/could not be reached for model\.safetensors.*CORS/);
    said.cors = f.text;

    await lookUp(page, 'hf:test-org/mixtral-8x7b-shaped');
    const refusal = (await page.textContent('[data-testid="source-refusal"]')) ?? '';
    expect(refusal).toMatch(
      /needs about \d+\.\d GB on the CPU backend, more than the memory this browser reports for this device \(\d+\.\d GB\)/,
    );
    expect(refusal).toMatch(/Try the WebGPU backend, a quantized copy of the model, or a smaller model/);
    expect(await page.textContent('[data-testid="preview-parameters"]')).toMatch(/^46\.\d+ B total/);
    expect(await page.$('[data-testid="source-download"]')).toBeNull();
    said.tooLarge = refusal;

    await context.setOffline(true);
    await lookUp(page, `hf:${REPO}`);
    f = await failureOf(page, 'source-failure');
    await context.setOffline(false);
    expect(f.reason).toBe('network');
    expect(f.text).toMatch(/This device is offline/);
    said.offline = f.text;

    await stillRuns(page);
    console.log(JSON.stringify(said, null, 1));
    await context.close();
  });

  it('a cut download stops with its sentence and Retry continues from the bytes it has; a corrupted file; cancel', async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 1000 } });
    const page = await open(`/?backend=cpu&hub=${encodeURIComponent(hub.endpoint)}#${LINK}`, await context.newPage());
    await waitIdle(page, 'moe-top2');
    const said: Record<string, string> = {};

    // Corrupted: the sha256 the hub announced does not match.
    hub.faults.corrupt!.set('model.safetensors', 500_000);
    await lookUp(page, 'hf:test-org/llmjp-one');
    await page.click('[data-testid="source-download"]');
    let f = await failureOf(page, 'download-failure');
    hub.faults.corrupt!.delete('model.safetensors');
    expect(f.reason).toBe('truncated');
    expect(f.text).toMatch(/arrived corrupted: its checksum does not match/);
    said.corrupted = f.text;
    await stillRuns(page);

    // Cut three times (the worker's own two retries included): the page stops and says so.
    const shard = 'model-00001-of-00002.safetensors';
    hub.faults.cut!.set(shard, { afterBytes: 200_000, times: 3 });
    await lookUp(page, `hf:${REPO}`);
    await page.click('[data-testid="source-download"]');
    f = await failureOf(page, 'download-failure');
    expect(f.reason).toBe('network');
    expect(f.text).toMatch(/broke off after \d+ of \d+ bytes/);
    said.cut = f.text;
    const received = Number(
      await page.getAttribute(`[data-testid="file-progress"] li[data-file="${shard}"]`, 'data-received'),
    );
    expect(received).toBeGreaterThan(0);
    await stillRuns(page);
    hub.log.length = 0;
    await page.click('[data-testid="source-retry"]');
    await waitIdle(page, `hf:${REPO}`);
    // Retry asked only for the rest of the broken file, and nothing it already had.
    const shardReads = hub.log.filter((r) => r.path.endsWith(shard) && r.path.startsWith('file-host:'));
    const shardSize = hub.repos.get(REPO)!.files.get(shard)!.size;
    expect(shardReads).toHaveLength(1);
    // Chromium spells the open-ended range out to the file's end once it knows the size.
    expect([`bytes=${received}-`, `bytes=${received}-${shardSize - 1}`]).toContain(shardReads[0].range);
    expect(hub.log.some((r) => r.path.endsWith('config.json'))).toBe(false);

    // Cancel: the sentence, then Retry finishes the rest.
    hub.faults.slow!.set('model.safetensors', 100_000);
    await lookUp(page, 'hf:test-org/llmjp-one');
    await page.click('[data-testid="source-download"]');
    await page.waitForFunction(
      () =>
        Number(document.querySelector('[data-testid="download-progress"]')?.getAttribute('data-received')) > 100_000,
    );
    await page.click('[data-testid="source-cancel"]');
    f = await failureOf(page, 'download-failure');
    hub.faults.slow!.delete('model.safetensors');
    expect(f.reason).toBe('cancelled');
    said.cancelled = f.text;
    expect(await page.textContent('[data-testid="model"]')).toMatch(/^hf:test-org\/llmjp-small — /);
    await page.click('[data-testid="source-retry"]');
    await waitIdle(page, 'hf:test-org/llmjp-one');
    console.log(JSON.stringify(said, null, 1));
    await context.close();
  });

  it('a full quota: the model opens from memory and the page says it could not be kept', async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 1000 } });
    const page = await context.newPage();
    const cdp = await context.newCDPSession(page);
    await cdp.send('Storage.overrideQuotaForOrigin', { origin: server.url, quotaSize: 200_000 });
    await open(`/?backend=cpu&hub=${encodeURIComponent(hub.endpoint)}#${LINK}`, page);
    await waitIdle(page, 'moe-top2');
    await lookUp(page, `hf:${REPO}`);
    await page.click('[data-testid="source-download"]');
    const warning = await page.waitForSelector('[data-testid="download-warning"]', { timeout: 60_000 });
    const text = (await warning.textContent()) ?? '';
    expect(text).toMatch(/could not be kept on this device: This browser has no room left to store/);
    await waitIdle(page, `hf:${REPO}`);
    console.log(JSON.stringify({ quota: text }));
    await context.close();
  });
});

describe('open a checkpoint folder from the disk', () => {
  it('opens the picked folder; the page says a local model cannot travel in a link, and the link leaves it out', async () => {
    const page = await open(`/?backend=cpu#${LINK}`);
    await waitIdle(page, 'moe-top2');
    const folder = join(root, 'tests/fixtures/models/mixtral_f32');
    await page.setInputFiles('[data-testid="folder-input"]', folder);
    await waitIdle(page, 'local:mixtral_f32');
    // The truth: the same folder through the engine in Node.
    const store = createPlaygroundStore();
    const session = new EngineSession(
      (m) => store.getState().receive(m),
      (dir) => dirSource(dir),
    );
    await session.handle({ type: 'init', preferBackend: 'cpu' });
    store.getState().begin(1, 'loading');
    await session.handle({ type: 'load', requestId: 1, modelId: 'm', baseUrl: folder });
    store.getState().begin(2, 'generating', 'native');
    await session.handle({
      type: 'generate',
      requestId: 2,
      prompt: PROMPT,
      sampling: { temperature: 0.8, topP: 0.95, seed: 5, maxTokens: 4 },
      routing: parsePlanText('native'),
    });
    await session.idle();
    expect(await tokenTexts(page)).toEqual(store.getState().run!.tokenTexts.map(showToken));
    expect(await page.textContent('[data-testid="local-note"]')).toMatch(
      /comes from your disk: a link cannot carry it/,
    );
    // The address bar (written 150 ms after the last change) holds the experiment without the model.
    await page.waitForFunction(() => location.hash.includes('prompt=') && !location.hash.includes('model='), null, {
      timeout: 10_000,
    });
    await page.screenshot({ path: resolve(shots, 'open-local-folder.png') });

    // Dropped files (what a drop of the folder's files gives): the same model, under the drop's name.
    await page.evaluate(async () => {
      const data = new DataTransfer();
      for (const name of ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json']) {
        const bytes = await (await fetch(`/fixtures/mixtral_f32/${name}`)).arrayBuffer();
        data.items.add(new File([bytes], name));
      }
      const target = document.querySelector('[data-testid="open-model"]')!;
      target.dispatchEvent(new DragEvent('dragover', { dataTransfer: data, bubbles: true, cancelable: true }));
      target.dispatchEvent(new DragEvent('drop', { dataTransfer: data, bubbles: true, cancelable: true }));
    });
    await waitIdle(page, 'local:4 files');
    expect(await tokenTexts(page)).toEqual(store.getState().run!.tokenTexts.map(showToken));

    // A folder that is not a checkpoint: its sentence, the model stays.
    await page.setInputFiles('[data-testid="files-input"]', join(root, 'README.md'));
    const f = await failureOf(page, 'local-failure');
    expect(f.text).toMatch(/has no config\.json/);
    expect(await page.textContent('[data-testid="model"]')).toMatch(/^local:4 files — /);
    await page.close();
  });
});
