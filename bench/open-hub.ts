// Opening a real-size hub model: llm-jp 8x152M's exact config (0.42 B parameters, BF16, 3 shards,
// position-derived weights, sha256 ETags) served by the test suite's stand-in hub on loopback.
// Measures, for the `moe` command: the preview (headers only), the first open (download + checksum +
// load + one forward), and the second open from the Hugging Face cache with the hub stopped.
// Wall time and peak resident memory (VmHWM) of each child process.
//
//   npx tsx bench/open-hub.ts [--backend cpu|webgpu]

import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { LLM_JP_8X152M_CONFIG, generatedRepo, sha256Of, startStandInHub } from '../tests/hub/standIn.ts';

const root = resolve(import.meta.dirname, '..');
const backend = process.argv.includes('--backend') ? process.argv[process.argv.indexOf('--backend') + 1] : 'cpu';

function peakKb(pid: number): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

async function measure(
  args: string[],
  env: Record<string, string>,
): Promise<{ seconds: number; peakMiB: number; status: number; stderr: string }> {
  const started = performance.now();
  const child = spawn(process.execPath, ['bin/moe.mjs', ...args], { cwd: root, env: { ...process.env, ...env } });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  child.stdout.on('data', () => {});
  let peak = 0;
  const timer = setInterval(() => (peak = Math.max(peak, peakKb(child.pid!))), 50);
  const status = await new Promise<number>((done) => child.on('exit', (code) => done(code ?? 1)));
  clearInterval(timer);
  return { seconds: (performance.now() - started) / 1000, peakMiB: peak / 1024, status, stderr };
}

const tokenizer = new Uint8Array(readFileSync(join(root, 'public/models/moe-top2/tokenizer.json')));
const repo = generatedRepo(
  { ...LLM_JP_8X152M_CONFIG },
  { dtype: 'BF16', shards: 3, seed: 1, commit: 'c0ffee0000000000000000000000000000000001', tokenizer },
);
// The stand-in hashes each file once for its ETag; do it before the clock starts.
for (const f of repo.files.values()) sha256Of(f);
const hub = await startStandInHub(new Map([['llm-jp/FS-8x152M', repo]]));
const cache = mkdtempSync(join(tmpdir(), 'moe-open-bench-'));
const env = { HF_ENDPOINT: hub.endpoint, HF_HUB_CACHE: cache, HF_HUB_OFFLINE: '' };
const source = 'hf:llm-jp/FS-8x152M';
const evalArgs = ['eval', source, '--tokens', '1,2,3,4', '--json', '--backend', backend];
try {
  const bytes = [...repo.files.values()].reduce((a, f) => a + f.size, 0);
  console.log(
    `model: ${source} (llm-jp 8x152M config, 0.42 B parameters, BF16), ${(bytes / 2 ** 20).toFixed(0)} MiB in ${repo.files.size} files; backend ${backend}`,
  );
  const rows: Array<[string, Awaited<ReturnType<typeof measure>>]> = [];
  rows.push(['preview (moe inspect: configs + headers)', await measure(['inspect', source, '--json'], env)]);
  rows.push(['first open (download, sha256, load, forward)', await measure(evalArgs, env)]);
  hub.faults.down = true;
  rows.push(['second open (cache, hub stopped, --offline)', await measure([...evalArgs, '--offline'], env)]);
  console.log('\n| step | wall s | peak RSS MiB | ok |\n| --- | ---: | ---: | --- |');
  for (const [name, r] of rows) {
    console.log(
      `| ${name} | ${r.seconds.toFixed(1)} | ${r.peakMiB.toFixed(0)} | ${r.status === 0 ? 'yes' : `no: ${r.stderr.trim().split('\n').at(-1)}`} |`,
    );
  }
} finally {
  await hub.close();
  rmSync(cache, { recursive: true, force: true });
}
