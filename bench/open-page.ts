// Opening a real-size hub model in the page: llm-jp 8x152M's exact config (0.42 B parameters, BF16,
// 3 shards, position-derived weights, sha256 ETags) served by the test suite's stand-in hub on
// loopback, opened in Debian's Chromium (CPU engine) through "Open a model": look up, download into
// the Cache API, load, first generated token. Then a reload with the hub stopped opens it from the
// device. Wall time of each step and the peak resident memory of Chromium's processes together.
// Needs dist/ (npx vite build).
//
//   npx tsx bench/open-page.ts

import { readFileSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { launchBrowser, startServer } from '../tests/e2e/harness.ts';
import { LLM_JP_8X152M_CONFIG, generatedRepo, sha256Of, startStandInHub } from '../tests/hub/standIn.ts';

const root = resolve(import.meta.dirname, '..');
const SOURCE = 'hf:llm-jp/FS-8x152M';

/** Resident memory (kB) of a process and all its descendants. */
function treeRssKb(rootPid: number): number {
  const children = new Map<number, number[]>();
  const rss = new Map<number, number>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const status = readFileSync(`/proc/${name}/status`, 'utf8');
      const ppid = Number(/PPid:\s+(\d+)/.exec(status)?.[1] ?? 0);
      rss.set(Number(name), Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0));
      children.set(ppid, [...(children.get(ppid) ?? []), Number(name)]);
    } catch {
      // gone
    }
  }
  let total = 0;
  const stack = [rootPid];
  while (stack.length) {
    const pid = stack.pop()!;
    total += rss.get(pid) ?? 0;
    stack.push(...(children.get(pid) ?? []));
  }
  return total;
}

const tokenizer = new Uint8Array(readFileSync(join(root, 'public/models/moe-top2/tokenizer.json')));
const repo = generatedRepo(
  { ...LLM_JP_8X152M_CONFIG },
  { dtype: 'BF16', shards: 3, seed: 1, commit: 'c0ffee0000000000000000000000000000000001', tokenizer },
);
for (const f of repo.files.values()) sha256Of(f);
const hub = await startStandInHub(new Map([['llm-jp/FS-8x152M', repo]]));
const server = await startServer();
const browser = await launchBrowser({ webgpu: false });
const browserPid = (browser as unknown as { process?: () => { pid?: number } }).process?.()?.pid;
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
  await page.goto(`${server.url}/?backend=cpu&hub=${encodeURIComponent(hub.endpoint)}#v=1&model=moe-top2&max=1`);
  const ready = (model: string) =>
    page.waitForFunction(
      (m) =>
        !!document.querySelector('[data-testid="error"]') ||
        (document.querySelector('[data-testid="stage"]')?.textContent?.startsWith('ready') === true &&
          document.querySelector('[data-testid="run-source"]')?.textContent?.startsWith(`${m} ·`) === true),
      model,
      { timeout: 1_800_000, polling: 100 },
    );
  await ready('moe-top2');
  let peak = 0;
  const pid = browserPid ?? 0;
  const baseline = pid ? treeRssKb(pid) : 0;
  const timer = setInterval(() => (peak = Math.max(peak, pid ? treeRssKb(pid) : 0)), 100);
  const bytes = [...repo.files.values()].reduce((a, f) => a + f.size, 0);
  console.log(
    `model: ${SOURCE} (llm-jp 8x152M config, 0.42 B parameters, BF16), ${(bytes / 2 ** 20).toFixed(0)} MiB in ${repo.files.size} files; page CPU engine; Chromium ${browser.version()}`,
  );
  const rows: Array<[string, number, number]> = [];

  let t = performance.now();
  await page.fill('[data-testid="source-input"]', SOURCE);
  await page.click('[data-testid="source-lookup"]');
  await page.waitForSelector(
    '[data-testid="source-download"], [data-testid="source-failure"], [data-testid="source-refusal"]',
    { timeout: 600_000 },
  );
  rows.push(['look up (configs + headers)', (performance.now() - t) / 1000, peak]);

  peak = 0;
  t = performance.now();
  await page.click('[data-testid="source-download"]');
  await ready(SOURCE);
  rows.push(['first open (download, sha256, Cache API, load, 1 token)', (performance.now() - t) / 1000, peak]);

  await hub.close();
  peak = 0;
  t = performance.now();
  await page.reload();
  await ready(SOURCE);
  rows.push(['reload, hub stopped (Cache API, load, 1 token)', (performance.now() - t) / 1000, peak]);
  clearInterval(timer);
  const error = await page.$('[data-testid="error"], [data-testid="download-failure"]');
  if (error) console.log(`error on the page: ${await error.textContent()}`);
  console.log(`\nChromium's processes before: ${(baseline / 1024).toFixed(0)} MiB resident\n`);
  console.log('| step | wall s | peak RSS of Chromium, MiB |\n| --- | ---: | ---: |');
  for (const [name, seconds, kb] of rows)
    console.log(`| ${name} | ${seconds.toFixed(1)} | ${(kb / 1024).toFixed(0)} |`);
} finally {
  await browser.close();
  await server.close();
  await hub.close().catch(() => undefined);
}
