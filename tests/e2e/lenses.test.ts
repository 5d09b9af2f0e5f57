// The Lenses view in a real Chromium (CPU engine, so the numbers can be held to the Node run exactly):
// a link runs the lenses on a fixture model against a second model over two built-in texts; the
// tables on screen and every export equal the lenses computed here in Node straight from
// src/engine/lens on the same checkpoints and texts; Cancel stops a run and keeps what was typed;
// a lens's own link restores it; bad input and bad link values give sentences, not a broken page.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Browser, Download, Page } from 'playwright-core';
import { launchBrowser, startServer } from './harness.ts';
import { dirSource } from '../../src/cli/fsSource.ts';
import { createCpuBackend } from '../../src/engine/backends/cpu/index.ts';
import { loadCheckpoint } from '../../src/engine/format/index.ts';
import { loadTokenizer } from '../../src/engine/tokenizer.ts';
import { parseRoutingPlan } from '../../src/engine/routing/index.ts';
import {
  agreementTable,
  analyzeCorpus,
  compareRuns,
  domainTable,
  localityTable,
  loadTable,
  coactivationTable,
  tradeoffTable,
  vocabTable,
  type AgreementLens,
  type Cell,
  type CorpusAnalysis,
  type LensTable,
  type LensText,
} from '../../src/engine/lens/index.ts';
import { formatCell } from '../../src/viz/lenses/LensFigure.tsx';

const root = resolve(import.meta.dirname, '../..');
const shots = resolve(root, process.env.SCREENSHOT_DIR ?? 'test-results/screenshots');
const A = '/fixtures/mixtral_f32/';
const B = '/fixtures/mixtral_f16/';
const TEXTS = ['english', 'python'];
const MAX_TOKENS = 40;
const LINK = `v=1&model=${A}&lens=domain&lensmodel=${A}&lenstexts=${TEXTS.join(',')}&lensmax=${MAX_TOKENS}&lenscmp=1&lensbmodel=${B}&lensbmode=native&lenslayer=1`;

interface Truth {
  a: CorpusAnalysis;
  b: CorpusAnalysis;
  agreement: AgreementLens;
}

/** The lenses computed in Node, from the engine's lens functions on the CPU backend: what the page must show. */
async function nodeTruth(): Promise<Truth> {
  const load = async (id: string) => {
    const ckpt = await loadCheckpoint(dirSource(resolve(root, 'tests/fixtures/models', id.split('/')[2])));
    const backend = createCpuBackend();
    return {
      model: await backend.load(ckpt.spec, ckpt.weights),
      tokenizer: loadTokenizer(ckpt.tokenizerJson, ckpt.tokenizerConfigJson),
    };
  };
  const a = await load(A);
  const b = await load(B);
  const texts: LensText[] = TEXTS.map((name) => ({
    name,
    tokens: a.tokenizer.encode(readFileSync(resolve(root, 'public/eval', `${name}.txt`), 'utf8')),
  }));
  const plan = parseRoutingPlan('native', '');
  const run = (m: typeof a, sweep: boolean) =>
    analyzeCorpus(m.model, texts, {
      plan,
      maxTokens: MAX_TOKENS,
      tradeoffModes: sweep ? undefined : [],
      vocab: { tokenText: (id) => m.tokenizer.decodeToken(id) },
    });
  return {
    a: await run(a, true),
    b: await run(b, true),
    agreement: await compareRuns({ model: a.model, plan, label: 'a' }, { model: b.model, plan, label: 'b' }, texts, {
      maxTokens: MAX_TOKENS,
    }),
  };
}

/** The rows of the table twin inside `scope` (formatted as on screen). */
async function screenTable(page: Page, scope: string): Promise<string[][]> {
  return page.$$eval(`${scope} [data-testid="lens-table"] tbody tr`, (rows) =>
    rows.map((r) => Array.from(r.children, (c) => c.textContent ?? '')),
  );
}

const formatted = (table: LensTable, where?: (row: Cell[]) => boolean) =>
  table.rows.filter((r) => !where || where(r)).map((r) => r.map(formatCell));

/** RFC 4180 lines without quoted line breaks (the exports here have none inside fields). */
function parseCsv(text: string): string[][] {
  return text
    .trimEnd()
    .split('\r\n')
    .map((line) => {
      const out: string[] = [];
      let field = '';
      let quoted = false;
      for (let i = 0; i < line.length; i++) {
        const c = line[i];
        if (quoted) {
          if (c === '"' && line[i + 1] === '"') {
            field += '"';
            i++;
          } else if (c === '"') quoted = false;
          else field += c;
        } else if (c === '"') quoted = true;
        else if (c === ',') {
          out.push(field);
          field = '';
        } else field += c;
      }
      out.push(field);
      return out;
    });
}

/** The CSV rows hold the engine's numbers (to 1e-12: the page and Node run the same CPU code, JSON round trip aside). */
function expectRowsEqual(csv: string[][], table: LensTable, prefix: Cell[] = []): void {
  expect(csv.length).toBe(table.rows.length);
  csv.forEach((row, i) => {
    const want = [...prefix, ...table.rows[i]];
    expect(row.length).toBe(want.length);
    row.forEach((cell, j) => {
      const w = want[j];
      if (typeof w === 'number' && Number.isFinite(w))
        expect(Math.abs(Number(cell) - w)).toBeLessThanOrEqual(1e-12 * Math.max(1, Math.abs(w)));
      else expect(cell).toBe(w === null || typeof w === 'number' ? '' : w);
    });
  });
}

async function downloadText(page: Page, testid: string): Promise<{ name: string; bytes: Buffer }> {
  const [download] = (await Promise.all([page.waitForEvent('download'), page.click(`[data-testid="${testid}"]`)])) as [
    Download,
    unknown,
  ];
  const path = await download.path();
  return { name: download.suggestedFilename(), bytes: readFileSync(path!) };
}

async function waitResults(page: Page): Promise<void> {
  await page.waitForSelector('[data-testid="lens-results"]', { timeout: 240_000 });
  await page.waitForFunction(() => !document.querySelector('[data-testid="lens-progress"]'), undefined, {
    timeout: 240_000,
  });
}

let server: Awaited<ReturnType<typeof startServer>>;
let truth: Truth;
let browser: Browser;

beforeAll(async () => {
  server = await startServer();
  truth = await nodeTruth();
  browser = await launchBrowser({ webgpu: false });
  mkdirSync(shots, { recursive: true });
});
afterAll(async () => {
  await browser?.close();
  await server?.close();
});

describe('the Lenses view', () => {
  it('runs from a link, shows the engine’s numbers for both runs, exports them and restores a lens from its own link', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 }, acceptDownloads: true });
    const pageErrors: string[] = [];
    page.on('pageerror', (e) => pageErrors.push(e.message));
    await page.goto(`${server.url}/?backend=cpu#${LINK}`);
    await waitResults(page);
    // The link set layer position 1: the second MoE layer.
    const layer = truth.a.moeLayers[1];
    expect(await page.textContent('[data-testid="lens-layer-value"]')).toBe(`L${layer}`);

    // Numbers on screen (the table twins) equal the Node run, for both runs.
    for (const [side, analysis] of [
      ['a', truth.a],
      ['b', truth.b],
    ] as const) {
      const scope = `[data-testid="lens-card-domain"] [data-testid="lens-run-${side}"]`;
      expect(await screenTable(page, scope)).toEqual(formatted(domainTable(analysis.domain), (r) => r[0] === layer));
      expect(await page.textContent(`${scope} figcaption`)).toContain(analysis.domain.sentence);
      const loc = `[data-testid="lens-card-locality"] [data-testid="lens-run-${side}"]`;
      expect(await screenTable(page, loc)).toEqual(formatted(localityTable(analysis.locality)));
      const load = `[data-testid="lens-card-load"] [data-testid="lens-run-${side}"]`;
      expect(await screenTable(page, load)).toEqual(formatted(loadTable(analysis.load)));
      const co = `[data-testid="lens-card-coactivation"] [data-testid="lens-run-${side}"]`;
      expect(await screenTable(page, co)).toEqual(
        formatted(coactivationTable(analysis.coactivation), (r) => r[0] === layer),
      );
    }
    expect(await screenTable(page, '[data-testid="lens-card-agreement"]')).toEqual(
      formatted(agreementTable(truth.agreement)),
    );
    const tradeoffRows = [...tradeoffTable(truth.a.tradeoff, A).rows, ...tradeoffTable(truth.b.tradeoff, B).rows];
    expect(await screenTable(page, '[data-testid="lens-card-tradeoff"]')).toEqual(
      tradeoffRows.map((r) => r.map(formatCell)),
    );
    // Dense is on both curves, marked.
    expect(tradeoffRows.filter((r) => r[1] === 'dense').length).toBe(2);

    // As Chromium draws them: every footnote line and trade-off label lies inside its figure's SVG
    // (so the SVG/PNG export shows it whole), and no two trade-off labels overlap.
    const fit = await page.evaluate(() => {
      const problems: string[] = [];
      const texts = document.querySelectorAll<SVGTextElement>(
        '[data-testid="lens-footnote"], [data-testid="tradeoff-label"]',
      );
      for (const text of texts) {
        const svg = text.ownerSVGElement!;
        const b = text.getBBox();
        const [w, h] = [svg.width.baseVal.value, svg.height.baseVal.value];
        if (b.x < 0 || b.y < 0 || b.x + b.width > w + 0.5 || b.y + b.height > h + 0.5)
          problems.push(`"${text.textContent}" (${b.x.toFixed(1)}…${(b.x + b.width).toFixed(1)}) outside ${w}×${h}`);
      }
      const labels = [...document.querySelectorAll<SVGTextElement>('[data-testid="tradeoff-label"]')].map((t) => ({
        id: t.dataset.point,
        b: t.getBBox(),
      }));
      for (const [i, p] of labels.entries())
        for (const q of labels.slice(i + 1))
          if (
            p.b.x < q.b.x + q.b.width - 0.5 &&
            q.b.x < p.b.x + p.b.width - 0.5 &&
            p.b.y < q.b.y + q.b.height - 0.5 &&
            q.b.y < p.b.y + p.b.height - 0.5
          )
            problems.push(`labels ${p.id} and ${q.id} overlap`);
      return { problems, texts: texts.length, labels: labels.length };
    });
    expect(fit.problems).toEqual([]);
    expect(fit.labels).toBeGreaterThanOrEqual(4);
    // Footnotes: domain, co-activation, locality and load (one per layer) of both runs, and agreement.
    expect(fit.texts - fit.labels).toBeGreaterThanOrEqual(2 * 4 + 1);

    // Exports: CSV and JSON rows are the engine's rows; the SVG and PNG parse.
    const csv = await downloadText(page, 'lens-domain-csv');
    expect(csv.name).toMatch(/\.csv$/);
    const rows = parseCsv(csv.bytes.toString('utf8'));
    expect(rows[0]).toEqual(['run', ...domainTable(truth.a.domain).columns]);
    const half = domainTable(truth.a.domain).rows.length;
    expectRowsEqual(rows.slice(1, 1 + half), domainTable(truth.a.domain), [`${A} (native)`]);
    expectRowsEqual(rows.slice(1 + half), domainTable(truth.b.domain), [`${B} (native)`]);
    const agreementCsv = parseCsv((await downloadText(page, 'lens-agreement-csv')).bytes.toString('utf8'));
    expect(agreementCsv[0]).toEqual(agreementTable(truth.agreement).columns);
    expectRowsEqual(agreementCsv.slice(1), agreementTable(truth.agreement));
    const tradeoffCsv = parseCsv((await downloadText(page, 'lens-tradeoff-csv')).bytes.toString('utf8'));
    expectRowsEqual(tradeoffCsv.slice(1), { columns: [], rows: tradeoffRows });
    const json = JSON.parse((await downloadText(page, 'lens-vocab-json')).bytes.toString('utf8')) as {
      lens: string;
      sentence: string;
      rows: Record<string, Cell>[];
    };
    expect(json.lens).toBe('vocab');
    expect(json.sentence).toContain(truth.a.vocab.sentence);
    const vocabRows = vocabTable(truth.a.vocab);
    expect(json.rows.slice(0, vocabRows.rows.length)).toEqual(
      vocabRows.rows.map((r) =>
        Object.fromEntries([['run', `${A} (native)`], ...vocabRows.columns.map((c, i) => [c, r[i]])]),
      ),
    );
    const svg = (await downloadText(page, 'lens-coactivation-svg')).bytes.toString('utf8');
    const parsed = await page.evaluate((text) => {
      const doc = new DOMParser().parseFromString(text, 'image/svg+xml');
      return {
        error: doc.querySelector('parsererror')?.textContent ?? null,
        root: doc.documentElement.nodeName,
        svgs: doc.querySelectorAll('svg').length,
      };
    }, svg);
    expect(parsed).toEqual({ error: null, root: 'svg', svgs: 3 }); // one per run, inside one
    const png = (await downloadText(page, 'lens-load-png')).bytes;
    expect(png.subarray(1, 4).toString('latin1')).toBe('PNG');
    expect(png.readUInt32BE(16)).toBeGreaterThan(100); // IHDR width, drawn at 2×

    // The lens's own link restores it in a fresh page.
    await page.click('[data-testid="lens-locality-link"]');
    const link = await page.inputValue('[data-testid="lens-link-locality"]');
    expect(link).toContain('lens=locality');
    await page.screenshot({ path: resolve(shots, 'lenses-e2e.png'), fullPage: true });
    const restored = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    await restored.goto(link);
    await waitResults(restored);
    expect(await screenTable(restored, '[data-testid="lens-card-locality"] [data-testid="lens-run-b"]')).toEqual(
      formatted(localityTable(truth.b.locality)),
    );
    expect(await screenTable(restored, '[data-testid="lens-card-domain"] [data-testid="lens-run-a"]')).toEqual(
      formatted(domainTable(truth.a.domain), (r) => r[0] === layer),
    );
    expect(await restored.getAttribute('[data-testid="lens-card-locality"]', 'class')).toContain('lens-focus');
    await restored.close();
    expect(pageErrors).toEqual([]);
    await page.close();
  });

  it('cancels a run, keeps what was typed, and says why bad input cannot run', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    await page.goto(`${server.url}/?backend=cpu&model=${A}`);
    await page.click('[data-testid="lenses-toggle"]');
    await page.waitForFunction(() => document.querySelector('[data-testid="backend"]')?.textContent?.includes('CPU'));
    // A built-in model (10 M parameters) over all four texts with the sweep: minutes on the CPU, so Cancel lands in the middle.
    await page.waitForFunction(() => !!document.querySelector('[data-testid="lens-model"] option[value="moe-top2"]'));
    await page.selectOption('[data-testid="lens-model"]', 'moe-top2');
    await page.fill('[data-testid="lens-max-tokens"]', '1024');
    await page.click('[data-testid="lens-run"]');
    await page.waitForSelector('[data-testid="lens-progress"]');
    // The rest of the page answers while the lenses run: the page's own text view switches.
    await page.click('[data-testid="text-as-plain"]');
    expect(await page.isVisible('[data-testid="plain-text"]')).toBe(true);
    await page.click('[data-testid="lens-cancel"]');
    await page.waitForSelector('[data-testid="lens-problem"]');
    expect(await page.textContent('[data-testid="lens-problem"]')).toMatch(/cancelled/);
    expect(await page.isVisible('[data-testid="lens-results"]')).toBe(false);
    expect(await page.inputValue('[data-testid="lens-max-tokens"]')).toBe('1024');
    expect(await page.inputValue('[data-testid="lens-model"]')).toBe('moe-top2');
    expect(await page.isEnabled('[data-testid="lens-run"]')).toBe(true);

    // Your own texts: an empty one is refused with a sentence; the name typed stays.
    await page.click('[data-testid="lens-source-pasted"]');
    await page.fill('[data-testid="lens-pasted-name-0"]', 'my notes');
    await page.click('[data-testid="lens-run"]');
    expect(await page.textContent('[data-testid="lens-problem"]')).toMatch(/"my notes" is empty/);
    expect(await page.inputValue('[data-testid="lens-pasted-name-0"]')).toBe('my notes');
    // A dropped file becomes a domain named after it; with a pasted one, the two run.
    await page.setInputFiles('[data-testid="lens-files"]', {
      name: 'recipes.txt',
      mimeType: 'text/plain',
      buffer: Buffer.from('Mix the flour and the water, then bake the bread for an hour.'),
    });
    expect(await page.inputValue('[data-testid="lens-pasted-name-1"]')).toBe('recipes');
    await page.selectOption('[data-testid="lens-model"]', A);
    await page.fill('[data-testid="lens-pasted-0"]', 'The experts of a mixture route every token to two of eight.');
    await page.uncheck('[data-testid="lens-sweep"]');
    await page.click('[data-testid="lens-run"]');
    await waitResults(page);
    expect(await page.textContent('[data-testid="lens-summary"]')).toMatch(
      /my notes \(\d+ tokens\), recipes \(\d+ tokens\)/,
    );
    // Their link carries the texts.
    await page.click('[data-testid="lens-domain-link"]');
    expect(await page.inputValue('[data-testid="lens-link-domain"]')).toContain('lenstext=recipes%3DMix+the+flour');
    // The address bar carries the lens too: a reload reruns it on the same texts.
    await page.waitForFunction(() => location.hash.includes('lenstext=recipes'));
    const summary = await page.textContent('[data-testid="lens-summary"]');
    await page.reload();
    await waitResults(page);
    expect(await page.textContent('[data-testid="lens-summary"]')).toBe(summary);
    expect(await page.inputValue('[data-testid="lens-pasted-name-0"]')).toBe('my notes');

    await page.close();
  });

  it('runs on WebGPU too (SwiftShader): the same texts, losses within the f32 tolerance of the CPU run', async () => {
    const gpu = await launchBrowser({ webgpu: true });
    try {
      const page = await gpu.newPage({ viewport: { width: 1280, height: 900 } });
      const pageErrors: string[] = [];
      page.on('pageerror', (e) => pageErrors.push(e.message));
      await page.goto(`${server.url}/#${LINK.replace('&lenscmp=1', '&lenscmp=0')}`);
      await waitResults(page);
      expect(await page.textContent('[data-testid="backend"]')).toMatch(/WebGPU/);
      const rows = parseCsv((await downloadText(page, 'lens-tradeoff-csv')).bytes.toString('utf8')).slice(1);
      const want = tradeoffTable(truth.a.tradeoff, A).rows;
      expect(rows.map((r) => r[1])).toEqual(want.map((r) => r[1]));
      rows.forEach((r, i) => expect(Math.abs(Number(r[5]) - (want[i][5] as number))).toBeLessThan(1e-3));
      expect(pageErrors).toEqual([]);
    } finally {
      await gpu.close();
    }
  });

  it('a link with bad lens values falls back with a visible notice; a dense model gets a sentence', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    await page.goto(
      `${server.url}/?backend=cpu#v=1&model=${A}&lens=nonsense&lensmodel=/fixtures/llama_f32/&lensmode=topk:0&lenstexts=english,klingon&lensmax=2&lenssweep=0`,
    );
    await page.waitForSelector('[data-testid="notices"]');
    const notices = await page.textContent('[data-testid="notices"]');
    expect(notices).toMatch(/lens "nonsense" was refused/);
    expect(notices).toMatch(/lens routing "topk:0" was refused/);
    expect(notices).toMatch(/"klingon" are not built-in texts/);
    expect(notices).toMatch(/tokens per text 2 is out of range and was clamped to 8/);
    expect(notices).not.toMatch(/unknown/);
    await page.waitForSelector('[data-testid="lens-problem"]', { timeout: 120_000 });
    expect(await page.textContent('[data-testid="lens-problem"]')).toMatch(/dense: it has no router/);
    await page.close();
  });
});
