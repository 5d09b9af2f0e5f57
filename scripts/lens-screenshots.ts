// The README's Lenses screenshots: the built app in Chromium, the Lenses view opened by a link on
// moe-top2 against ds-moe (native top-2, the four built-in texts, 256 tokens each, trade-off sweep),
// one PNG per lens card in docs/screenshots/lens-NAME.png.
//   npx vite build && npx tsx scripts/lens-screenshots.ts            (CPU engine; a few minutes)
//   LENS_WEBGPU=1 npx tsx scripts/lens-screenshots.ts                (WebGPU, when the browser has a GPU)
import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { launchBrowser, startServer } from '../tests/e2e/harness.ts';
import { LENS_NAMES } from '../src/state/lenses.ts';

const root = resolve(import.meta.dirname, '..');
const out = resolve(root, process.env.SCREENSHOT_DIR ?? 'docs/screenshots');
const webgpu = process.env.LENS_WEBGPU === '1';
const link =
  'v=1&model=moe-top2&lens=domain&lensmodel=moe-top2&lenscmp=1&lensbmodel=ds-moe&lensbmode=native&lenslayer=1';

mkdirSync(out, { recursive: true });
const server = await startServer();
const browser = await launchBrowser({ webgpu });
try {
  const page = await browser.newPage({ viewport: { width: 1500, height: 1000 } });
  page.on('pageerror', (e) => console.error('page error:', e.message));
  await page.goto(`${server.url}/${webgpu ? '' : '?backend=cpu'}#${link}`);
  const started = Date.now();
  let last = '';
  while (!(await page.$('[data-testid="lens-results"]')) || (await page.$('[data-testid="lens-progress"]'))) {
    const problem = await page.$('[data-testid="lens-problem"]');
    if (problem) throw new Error(`the lenses failed: ${await problem.textContent()}`);
    const stage = (await page.textContent('[data-testid="lens-stage"]').catch(() => null)) ?? '';
    if (stage !== last) process.stderr.write(`\r${Math.round((Date.now() - started) / 1000)} s: ${stage.padEnd(90)}`);
    last = stage;
    await page.waitForTimeout(1000);
  }
  process.stderr.write(`\ndone in ${Math.round((Date.now() - started) / 1000)} s\n`);
  for (const name of LENS_NAMES) {
    const card = await page.$(`[data-testid="lens-card-${name}"]`);
    if (!card) throw new Error(`no ${name} card`);
    await card.screenshot({ path: resolve(out, `lens-${name}.png`) });
    console.log(
      `lens-${name}.png: ${(await page.textContent(`[data-testid="lens-card-${name}"] figcaption`))?.slice(0, 300)}`,
    );
  }
} finally {
  await browser.close();
  await server.close();
}
