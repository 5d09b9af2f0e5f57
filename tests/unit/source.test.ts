// Model sources against a stand-in for the Hugging Face hub (tests/hub/standIn.ts): preview from
// headers only, download with progress and resume, the cache, and every failure in its own words.
import { mkdtempSync, readFileSync, readlinkSync, rmSync, existsSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCpuBackend } from '../../src/engine/backends/cpu/index.ts';
import { loadCheckpoint, memorySource } from '../../src/engine/format/index.ts';
import {
  DEFAULT_HUB_ENDPOINT,
  SourceError,
  checkFits,
  downloadFiles,
  formatSourceRef,
  httpSource,
  hubBaseUrl,
  inspectRemote,
  memoryNeeded,
  memoryStore,
  newDownloadState,
  parseSourceRef,
  type DownloadProgress,
} from '../../src/engine/source/index.ts';
import type { Checkpoint } from '../../src/engine/format/load.ts';
import { openSource } from '../../src/cli/sources.ts';
import {
  LLM_JP_8X152M_CONFIG,
  LLM_JP_SHAPED_SMALL_CONFIG,
  folderRepo,
  generatedRepo,
  startStandInHub,
  type StandInHub,
} from '../hub/standIn.ts';

const root = resolve(import.meta.dirname, '../..');
const TOKENIZER = new Uint8Array(readFileSync(join(root, 'public/models/moe-top2/tokenizer.json')));
const COMMIT = 'c0ffee0000000000000000000000000000000001';

let hub: StandInHub;
let cacheDir: string;

beforeAll(async () => {
  const repos = new Map([
    [
      'llm-jp/FS-8x152M',
      generatedRepo(
        { ...LLM_JP_8X152M_CONFIG },
        { dtype: 'BF16', shards: 3, seed: 1, commit: COMMIT, tokenizer: TOKENIZER, opaqueEtags: true },
      ),
    ],
    [
      'test-org/llmjp-small',
      generatedRepo(
        { ...LLM_JP_SHAPED_SMALL_CONFIG },
        { dtype: 'BF16', shards: 2, seed: 2, commit: COMMIT, tokenizer: TOKENIZER },
      ),
    ],
    ['test-org/mixtral', folderRepo(join(root, 'tests/fixtures/models/mixtral_f32'), COMMIT)],
    ['test-org/gated', { ...folderRepo(join(root, 'tests/fixtures/models/llama_f32'), COMMIT), gated: true }],
  ]);
  hub = await startStandInHub(repos);
  cacheDir = mkdtempSync(join(tmpdir(), 'moe-hub-cache-'));
});
afterAll(async () => {
  await hub?.close();
  rmSync(cacheDir, { recursive: true, force: true });
});

const sourceFor = (repo: string, revision = 'main') =>
  httpSource(hubBaseUrl(repo, revision, hub.endpoint), { label: `hf:${repo}` });

async function logitsOf(ckpt: Checkpoint, tokens: number[]): Promise<Float32Array> {
  const backend = createCpuBackend();
  const model = await backend.load(ckpt.spec, ckpt.weights);
  const result = await model.forward(tokens, model.newCache(16), {
    routing: { mode: { kind: 'native' }, interventions: [] },
    logits: 'last',
  });
  model.dispose();
  return result.logits[0];
}

/** The stand-in's own bytes of a repo, read directly: the truth a download must reproduce. */
function directCheckpoint(repo: string): Promise<Checkpoint> {
  const files = new Map<string, Uint8Array>();
  for (const [name, f] of hub.repos.get(repo)!.files) files.set(name, f.read(0, f.size));
  return loadCheckpoint(memorySource(files, repo));
}

describe('source strings', () => {
  it('parses and formats every form, refusing what a link must not carry', () => {
    expect(parseSourceRef('hf:llm-jp/FS-8x152M')).toEqual({ kind: 'hf', repo: 'llm-jp/FS-8x152M', revision: 'main' });
    expect(parseSourceRef('hf:org/name@v1.0')).toEqual({ kind: 'hf', repo: 'org/name', revision: 'v1.0' });
    expect(formatSourceRef(parseSourceRef('hf:org/name@main'))).toBe('hf:org/name');
    expect(parseSourceRef('moe-top2')).toEqual({ kind: 'builtin', id: 'moe-top2' });
    expect(parseSourceRef('https://example.org/m')).toEqual({ kind: 'url', base: 'https://example.org/m/' });
    expect(parseSourceRef('http://127.0.0.1:8000/m/')).toEqual({ kind: 'url', base: 'http://127.0.0.1:8000/m/' });
    expect(() => parseSourceRef('http://example.org/m')).toThrow(/only over https/);
    expect(() => parseSourceRef('https://user:secret@example.org/m')).toThrow(/credentials never go/);
    expect(() => parseSourceRef('hf:just-a-name')).toThrow(/ORG\/NAME/);
    expect(() => parseSourceRef('hf:org/../etc')).toThrow(SourceError);
    expect(() => parseSourceRef('hf:org/name@../../x')).toThrow(/not a revision/);
    expect(() => parseSourceRef('javascript:alert(1)')).toThrow(SourceError);
    expect(hubBaseUrl('a/b', 'refs/pr/1')).toBe(`${DEFAULT_HUB_ENDPOINT}/a/b/resolve/refs%2Fpr%2F1/`);
  });
});

describe('know before you download', () => {
  it("describes llm-jp 8x152M's exact config from configs and headers only", async () => {
    hub.log.length = 0;
    const preview = await inspectRemote(sourceFor('llm-jp/FS-8x152M'));
    expect(preview.spec.architecture).toBe('mixtral');
    expect(preview.spec.numLayers).toBe(12);
    expect(preview.spec.moe?.numExperts).toBe(8);
    expect(preview.spec.moe?.topK).toBe(2);
    expect(preview.spec.dtype).toBe('BF16');
    // Counted by hand from the published shapes: embeddings + head 2·99584·512; per layer attention
    // 4·512², two norms, router 8·512, 8 experts of 3·512·2048; final norm.
    const d = 512;
    const perLayer = 4 * d * d + 2 * d + 8 * d + 8 * 3 * d * 2048;
    const total = 2 * 99584 * d + 12 * perLayer + d;
    expect(preview.params.total).toBe(total);
    expect(total / 1e9).toBeCloseTo(0.42, 2);
    expect(preview.params.activeFor({ kind: 'native' }) / 1e9).toBeCloseTo(0.19, 2);
    expect(preview.weightBytes).toBe(total * 2);
    expect(preview.weightFiles).toHaveLength(3);
    expect(preview.downloadBytes).toBeGreaterThan(total * 2);
    expect(preview.commit).toBe(COMMIT);
    // Nothing but small range requests touched the weights.
    const weightRequests = hub.log.filter((r) => r.path.endsWith('.safetensors'));
    expect(weightRequests.length).toBeGreaterThan(0);
    for (const r of weightRequests) expect(r.range).toMatch(/^bytes=\d+-\d+$/);
    const cpu = memoryNeeded(preview.spec, preview.weightBytes, 'cpu');
    const gpu = memoryNeeded(preview.spec, preview.weightBytes, 'webgpu');
    expect(cpu.weights).toBe(total * 2);
    expect(gpu.weights).toBe(total * 2);
    const q4 = memoryNeeded(preview.spec, preview.weightBytes, 'webgpu', 'q4');
    expect(q4.weights).toBeCloseTo(total * 0.5625, -3);
    expect(() => checkFits(cpu, 2 ** 29, 'cpu', 'what this browser tab may use', 'hf:llm-jp/FS-8x152M')).toThrow(
      /needs about .* on the CPU backend, more than what this browser tab may use \(512 MB\)/,
    );
  });

  it('an unsupported architecture is refused before any weights are read', async () => {
    const repo = folderRepo(join(root, 'tests/fixtures/models/mixtral_f32'), COMMIT);
    repo.files.set('config.json', {
      ...repo.files.get('config.json')!,
      ...(() => {
        const bytes = new TextEncoder().encode(JSON.stringify({ model_type: 'jamba', hidden_size: 8 }));
        return { size: bytes.byteLength, read: (a: number, b: number) => bytes.subarray(a, b) };
      })(),
    });
    hub.repos.set('test-org/jamba', repo);
    hub.log.length = 0;
    await expect(inspectRemote(sourceFor('test-org/jamba'))).rejects.toThrow(/model_type "jamba" is not supported/);
    expect(hub.log.some((r) => r.path.endsWith('.safetensors'))).toBe(false);
  });
});

describe('download', () => {
  it("streams every file with byte progress, and the model equals the hub's bytes", async () => {
    const source = sourceFor('test-org/llmjp-small');
    const preview = await inspectRemote(source);
    const progress: DownloadProgress[] = [];
    const files = await downloadFiles(source, preview, {
      sourceId: 'hf:test-org/llmjp-small',
      onProgress: (p) => progress.push(p),
    });
    const last = progress.at(-1)!;
    expect(last.received).toBe(preview.downloadBytes);
    expect(last.total).toBe(preview.downloadBytes);
    expect(last.filesDone).toBe(preview.files.length);
    // Progress moves within a file, not only between files.
    const shard = preview.weightFiles[0];
    expect(progress.filter((p) => p.file === shard && p.fileReceived < p.fileSize).length).toBeGreaterThan(0);
    for (let i = 1; i < progress.length; i++)
      expect(progress[i].received).toBeGreaterThanOrEqual(progress[i - 1].received);
    const ckpt = await loadCheckpoint(memorySource(files, 'x'));
    const truth = await directCheckpoint('test-org/llmjp-small');
    expect(await logitsOf(ckpt, [5, 6, 7])).toEqual(await logitsOf(truth, [5, 6, 7]));
  });

  it('a connection cut mid-file resumes with a Range request, without starting over', async () => {
    const source = sourceFor('test-org/llmjp-small');
    const preview = await inspectRemote(source);
    const shard = preview.weightFiles[1];
    hub.faults.cut!.set(shard, { afterBytes: 100_000, times: 1 });
    hub.log.length = 0;
    const files = await downloadFiles(source, preview, { sourceId: 'x' });
    hub.faults.cut!.delete(shard);
    expect(hub.log.some((r) => r.path.endsWith(shard) && r.range === 'bytes=100000-')).toBe(true);
    const ckpt = await loadCheckpoint(memorySource(files, 'x'));
    expect(await logitsOf(ckpt, [1, 2])).toEqual(
      await logitsOf(await directCheckpoint('test-org/llmjp-small'), [1, 2]),
    );
  });

  it('after repeated failures it stops with a sentence, and Retry continues from the bytes it has', async () => {
    const source = sourceFor('test-org/llmjp-small');
    const preview = await inspectRemote(source);
    const shard = preview.weightFiles[0];
    hub.faults.cut!.set(shard, { afterBytes: 50_000, times: 10 });
    const state = newDownloadState();
    const error = await downloadFiles(source, preview, { sourceId: 'x', state, retries: 1 }).catch((e) => e);
    expect(error).toBeInstanceOf(SourceError);
    expect(error.reason).toBe('network');
    expect(error.message).toMatch(/broke off/);
    const finishedBefore = [...state.finished.keys()];
    expect(state.partial.get(shard)?.received).toBeGreaterThan(0);
    hub.faults.cut!.delete(shard);
    hub.log.length = 0;
    const files = await downloadFiles(source, preview, { sourceId: 'x', state });
    // Finished files were not fetched again; the broken one continued with a Range request.
    for (const f of finishedBefore) expect(hub.log.some((r) => r.path.endsWith(`/${f}`))).toBe(false);
    expect(hub.log.some((r) => r.path.endsWith(shard) && /^bytes=\d+-$/.test(r.range ?? ''))).toBe(true);
    expect(files.size).toBe(preview.files.length);
  });

  it('a corrupted file fails its checksum; a cancelled download says so', async () => {
    const source = sourceFor('test-org/llmjp-small');
    const preview = await inspectRemote(source);
    const shard = preview.weightFiles[0];
    hub.faults.corrupt!.set(shard, 5000);
    const error = await downloadFiles(source, preview, { sourceId: 'x', retries: 0 }).catch((e) => e);
    hub.faults.corrupt!.delete(shard);
    expect(error.reason).toBe('truncated');
    expect(error.message).toMatch(/arrived corrupted/);

    hub.faults.slow!.set(shard, 200_000);
    const controller = new AbortController();
    const cancelledRun = downloadFiles(source, preview, {
      sourceId: 'x',
      signal: controller.signal,
      onProgress: (p) => {
        if (p.file === shard && p.fileReceived > 0) controller.abort();
      },
    }).catch((e) => e);
    const cancelled = await cancelledRun;
    hub.faults.slow!.delete(shard);
    expect(cancelled.reason).toBe('cancelled');
    expect(cancelled.message).toMatch(/cancelled/);
  });

  it('gated, missing, unknown revision, hub down, and a full store: each has its own sentence', async () => {
    await expect(inspectRemote(sourceFor('test-org/gated'))).rejects.toMatchObject({
      reason: 'unauthorized',
      message: expect.stringMatching(/gated or private/),
    });
    await expect(inspectRemote(sourceFor('test-org/no-such-model'))).rejects.toMatchObject({
      reason: 'not-found',
      message: expect.stringMatching(/no config.json/),
    });
    await expect(inspectRemote(sourceFor('test-org/mixtral', 'no-such-branch'))).rejects.toMatchObject({
      reason: 'not-found',
    });
    hub.faults.down = true;
    await expect(inspectRemote(sourceFor('test-org/mixtral'))).rejects.toMatchObject({
      reason: 'network',
      message: expect.stringMatching(/could not be reached/),
    });
    const offline = httpSource(hubBaseUrl('test-org/mixtral', 'main', hub.endpoint), { isOnline: () => false });
    await expect(inspectRemote(offline)).rejects.toMatchObject({
      reason: 'network',
      message: expect.stringMatching(/offline/),
    });
    hub.faults.down = false;

    const source = sourceFor('test-org/mixtral');
    const preview = await inspectRemote(source);
    const full = memoryStore();
    full.writeFile = async (_s, f) => {
      throw new SourceError(
        'quota',
        f.name,
        'This browser has no room left to store the model.',
        'Delete models on this device.',
      );
    };
    await expect(
      downloadFiles(source, preview, { sourceId: 'hf:test-org/mixtral', store: full }),
    ).rejects.toMatchObject({ reason: 'quota' });
  });

  it("an HTML page answered with 200 (a dev server's fallback) counts as a missing file", async () => {
    const server = createServer((_req, res) => {
      res.setHeader('content-type', 'text/html');
      res.end('<!doctype html><html></html>');
    });
    await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
    const port = (server.address() as { port: number }).port;
    const source = httpSource(`http://127.0.0.1:${port}/models/x/`);
    expect(await source.download('config.json')).toBeNull();
    expect(await source.stat('model.safetensors')).toBeNull();
    await expect(inspectRemote(source)).rejects.toThrow(/no config.json/);
    await new Promise<void>((done) => server.close(() => done()));
  });
});

describe('the CLI cache (Hugging Face layout)', () => {
  it('downloads once, then opens with the hub stopped and --offline', async () => {
    const env = { ...process.env, HF_ENDPOINT: hub.endpoint, HF_HUB_CACHE: cacheDir, HF_HUB_OFFLINE: '' };
    const first = await openSource('hf:test-org/mixtral', { env });
    const repoDir = join(cacheDir, 'models--test-org--mixtral');
    expect(readFileSync(join(repoDir, 'refs/main'), 'utf8')).toBe(COMMIT);
    const link = join(repoDir, 'snapshots', COMMIT, 'model.safetensors');
    expect(readlinkSync(link)).toMatch(/^\.\.\/\.\.\/blobs\/[0-9a-f]{64}$/);
    expect(existsSync(join(repoDir, 'snapshots', '.incoming'))).toBe(false);

    hub.faults.down = true;
    try {
      const again = await openSource('hf:test-org/mixtral', { env: { ...env, HF_HUB_OFFLINE: '1' } });
      expect(await logitsOf(again, [3, 4, 5])).toEqual(await logitsOf(first, [3, 4, 5]));
      await expect(
        openSource('hf:test-org/llmjp-small', { env: { ...env, HF_HUB_OFFLINE: '1' } }),
      ).rejects.toMatchObject({ reason: 'offline-miss' });
    } finally {
      hub.faults.down = false;
    }
  });
});

describe('the moe command with every source form', () => {
  const run = async (args: string[], env: Record<string, string>) => {
    const { execFile } = await import('node:child_process');
    // Asynchronous: the stand-in hub runs in this process and must keep answering.
    return new Promise<{ status: number; stdout: string; stderr: string }>((done) => {
      execFile(
        process.execPath,
        ['bin/moe.mjs', ...args],
        { cwd: root, env: { ...process.env, ...env }, timeout: 120_000 },
        (err, stdout, stderr) => done({ status: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
      );
    });
  };

  it('inspect describes a hub model without downloading it; eval downloads, then works offline', async () => {
    const cache = mkdtempSync(join(tmpdir(), 'moe-cli-cache-'));
    const env = { HF_ENDPOINT: hub.endpoint, HF_HUB_CACHE: cache, HF_HUB_OFFLINE: '' };
    try {
      const inspect = await run(['inspect', 'hf:llm-jp/FS-8x152M', '--json'], env);
      expect(inspect.stderr).toBe('');
      const report = JSON.parse(inspect.stdout);
      expect(report).toMatchObject({ architecture: 'mixtral', layers: 12, experts: 8, topK: 2, dtype: 'BF16' });
      expect(report.download.files).toBeGreaterThan(3);
      expect(report.memory.cpu).toBeGreaterThan(0.8e9);
      expect(existsSync(join(cache, 'models--llm-jp--FS-8x152M', 'blobs'))).toBe(false);

      const first = await run(['eval', 'hf:test-org/mixtral', '--tokens', '1,2,3', '--json'], env);
      expect(first.status).toBe(0);
      expect(first.stderr).toMatch(/download model.safetensors/);
      hub.faults.down = true;
      const offline = await run(['eval', 'hf:test-org/mixtral', '--tokens', '1,2,3', '--json', '--offline'], env);
      hub.faults.down = false;
      expect(offline.stderr).toBe('');
      expect(JSON.parse(offline.stdout).logits).toEqual(JSON.parse(first.stdout).logits);
      // The same numbers as the fixture folder on disk: the download changed nothing.
      const local = await run(['eval', 'tests/fixtures/models/mixtral_f32', '--tokens', '1,2,3', '--json'], {});
      expect(JSON.parse(local.stdout).logits).toEqual(JSON.parse(first.stdout).logits);

      const gated = await run(['inspect', 'hf:test-org/gated'], env);
      expect(gated.status).not.toBe(0);
      expect(gated.stderr).toMatch(/^moe: .*gated or private.* Hint: /);
      const missing = await run(['eval', 'hf:test-org/not-here', '--tokens', '1', '--offline'], env);
      expect(missing.stderr).toMatch(/not in the model cache, and --offline forbids downloading it/);
    } finally {
      hub.faults.down = false;
      rmSync(cache, { recursive: true, force: true });
    }
  });
});
