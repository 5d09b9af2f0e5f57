// The worker's source jobs (src/worker/sourceJobs.ts) and the page's sources state, in Node against
// the stand-in hub: what the page is told before a download, the device's store as the second
// visit's only source, a refused store that still opens the model, and the link rules.
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadCheckpoint, memorySource } from '../../src/engine/format/index.ts';
import { SourceError } from '../../src/engine/source/errors.ts';
import { memoryStore, type ModelStore } from '../../src/engine/source/store.ts';
import { SourceJobs } from '../../src/worker/sourceJobs.ts';
import type { SourceResponse } from '../../src/worker/sourceProtocol.ts';
import { createSourceActions, createSourcesStore, hubEndpointFor } from '../../src/state/sources.ts';
import { DEFAULT_SHARE_STATE, formatShareFragment, parseShareFragment } from '../../src/state/url.ts';
import type { WorkerRequest } from '../../src/worker/protocol.ts';
import { EngineSession } from '../../src/worker/session.ts';
import type { WorkerResponse } from '../../src/worker/protocol.ts';
import { dirSource } from '../../src/cli/fsSource.ts';
import { LLM_JP_SHAPED_SMALL_CONFIG, generatedRepo, startStandInHub, type StandInHub } from '../hub/standIn.ts';

const root = resolve(import.meta.dirname, '../..');
const TOKENIZER = new Uint8Array(readFileSync(join(root, 'public/models/moe-top2/tokenizer.json')));
const COMMIT = 'c0ffee0000000000000000000000000000000003';
const REPO = 'test-org/llmjp-small';

let hub: StandInHub;
beforeAll(async () => {
  hub = await startStandInHub(
    new Map([
      [
        REPO,
        generatedRepo(
          { ...LLM_JP_SHAPED_SMALL_CONFIG },
          { dtype: 'BF16', shards: 2, seed: 2, commit: COMMIT, tokenizer: TOKENIZER },
        ),
      ],
    ]),
  );
});
afterAll(() => hub?.close());

/** Runs one request and collects what the jobs post. */
async function run(
  jobs: SourceJobs,
  posted: SourceResponse[],
  request: Parameters<SourceJobs['handle']>[0],
): Promise<SourceResponse[]> {
  const from = posted.length;
  await jobs.handle(request);
  return posted.slice(from);
}

function jobsWith(store: ModelStore | null, memoryBytes = 2 ** 34) {
  const posted: SourceResponse[] = [];
  const jobs = new SourceJobs((m) => posted.push(m), {
    store: async () => store,
    memoryLimit: () => ({ bytes: memoryBytes, name: 'the test limit' }),
    progressInterval: 0,
  });
  return { jobs, posted };
}

const hubFiles = () => hub.repos.get(REPO)!.files;
const hubSize = () => [...hubFiles().values()].reduce((a, f) => a + f.size, 0);

describe('source jobs', () => {
  it('a lookup tells the page what it needs to decide, and refuses with the limit named when it cannot fit', async () => {
    const { jobs, posted } = jobsWith(memoryStore());
    const [reply] = await run(jobs, posted, {
      type: 'source-lookup',
      requestId: 1,
      source: `hf:${REPO}`,
      endpoint: hub.endpoint,
    });
    expect(reply.type).toBe('source-preview');
    if (reply.type !== 'source-preview') return;
    const p = reply.preview;
    expect(p.storeKey).toBe(`hf:${REPO} via ${hub.endpoint}`);
    expect([p.host, p.repository, p.revision, p.commit]).toEqual([new URL(hub.endpoint).host, REPO, 'main', COMMIT]);
    expect(p.downloadBytes).toBe(hubSize());
    expect(p.files.map((f) => f.name).sort()).toEqual([...hubFiles().keys()].sort());
    expect(p.memory.cpu.refusal).toBeNull();
    expect(p.stored).toBe(false);

    const small = jobsWith(memoryStore(), 1 << 20);
    const [refused] = await run(small.jobs, small.posted, {
      type: 'source-lookup',
      requestId: 2,
      source: `hf:${REPO}`,
      endpoint: hub.endpoint,
    });
    if (refused.type !== 'source-preview') throw new Error(refused.type);
    expect(refused.preview.memory.cpu.refusal?.message).toMatch(
      /needs about \d+ MB on the CPU backend, more than the test limit \(1 MB\)/,
    );
  });

  it("downloads into the store; the next open comes from the device with the hub down, and equals the hub's bytes", async () => {
    const store = memoryStore();
    const { jobs, posted } = jobsWith(store);
    const replies = await run(jobs, posted, {
      type: 'source-fetch',
      requestId: 3,
      source: `hf:${REPO}`,
      endpoint: hub.endpoint,
    });
    const last = replies.at(-1)!;
    expect(last).toMatchObject({
      type: 'source-fetched',
      fromDevice: false,
      modelPath: `device:hf:${REPO} via ${hub.endpoint}`,
    });
    const progress = replies.filter((r) => r.type === 'source-progress');
    expect(progress.at(-1)).toMatchObject({ progress: { received: hubSize(), total: hubSize() } });

    hub.faults.down = true;
    try {
      const again = jobsWith(store).jobs;
      const out: SourceResponse[] = [];
      const fresh = new SourceJobs((m) => out.push(m), { store: async () => store });
      await fresh.handle({
        type: 'source-fetch',
        requestId: 4,
        source: `hf:${REPO}`,
        endpoint: hub.endpoint,
        deviceOnly: true,
      });
      expect(out).toMatchObject([{ type: 'source-fetched', fromDevice: true }]);
      const source = fresh.sourceFor(`device:hf:${REPO} via ${hub.endpoint}`)!;
      const truth = new Map([...hubFiles()].map(([name, f]) => [name, f.read(0, f.size)]));
      const fromDevice = await loadCheckpoint(source);
      const direct = await loadCheckpoint(memorySource(truth));
      expect(fromDevice.spec).toEqual(direct.spec);
      expect(fromDevice.weights.embed.bytes).toEqual(direct.weights.embed.bytes);
      expect(again.sourceFor('/models/x/')).toBeNull();
    } finally {
      hub.faults.down = false;
    }
  });

  it('a store that refuses (full quota) still opens the model, from memory, and says why it was not kept', async () => {
    const refusing: ModelStore = {
      ...memoryStore(),
      async writeFile(_source, file) {
        throw new SourceError(
          'quota',
          file.name,
          `This browser has no room left to store ${file.name}.`,
          'Delete models you no longer need.',
        );
      },
    };
    const { jobs, posted } = jobsWith(refusing);
    const replies = await run(jobs, posted, {
      type: 'source-fetch',
      requestId: 5,
      source: `hf:${REPO}`,
      endpoint: hub.endpoint,
    });
    const last = replies.at(-1)!;
    if (last.type !== 'source-fetched') throw new Error(JSON.stringify(last));
    expect(last.warning?.message).toMatch(/could not be kept on this device: This browser has no room left to store/);
    expect(await refusing.list()).toEqual([]);
    const ckpt = await loadCheckpoint(jobs.sourceFor(last.modelPath)!);
    expect(ckpt.spec.numLayers).toBe(3);
  });

  it('deviceOnly never touches the network for a model that is not stored', async () => {
    const { jobs, posted } = jobsWith(memoryStore());
    hub.log.length = 0;
    const [reply] = await run(jobs, posted, {
      type: 'source-fetch',
      requestId: 6,
      source: `hf:${REPO}`,
      endpoint: hub.endpoint,
      deviceOnly: true,
    });
    expect(reply).toMatchObject({ type: 'source-failed', failure: { reason: 'offline-miss' } });
    expect(hub.log).toEqual([]);
  });
});

describe('the page side', () => {
  it('?hub= is taken only for a hub on this machine', () => {
    expect(hubEndpointFor('?hub=http://127.0.0.1:8123', undefined)).toEqual({
      endpoint: 'http://127.0.0.1:8123',
      notice: null,
    });
    expect(hubEndpointFor('', undefined).endpoint).toBe('https://huggingface.co');
    expect(hubEndpointFor('', 'https://hub.example.org/').endpoint).toBe('https://hub.example.org');
    const foreign = hubEndpointFor('?hub=https://evil.example', undefined);
    expect(foreign.endpoint).toBe('https://huggingface.co');
    expect(foreign.notice).toMatch(/only a hub on this machine/);
    expect(hubEndpointFor('?hub=http://user:pw@localhost:1', undefined).endpoint).toBe('https://huggingface.co');
  });

  it('links carry hub and web sources, never a local model or credentials', () => {
    expect(parseShareFragment('v=1&model=hf%3Allm-jp%2FFS-8x152M%40v1').state.model).toBe('hf:llm-jp/FS-8x152M@v1');
    expect(parseShareFragment('v=1&model=https%3A%2F%2Fexample.org%2Fm%2F').state.model).toBe('https://example.org/m/');
    for (const bad of [
      'local%3Amine',
      'https%3A%2F%2Fu%3Ap%40example.org%2Fm',
      'http%3A%2F%2Fexample.org%2Fm',
      'hf%3Aorg%2F..%2Fx',
    ]) {
      const parsed = parseShareFragment(`v=1&model=${bad}`);
      expect(parsed.state.model).toBe('');
      expect(parsed.notices[0]).toMatch(/model .* was refused/);
    }
    expect(formatShareFragment({ ...DEFAULT_SHARE_STATE, model: 'local:my-folder' })).not.toMatch(/model=/);
    expect(formatShareFragment({ ...DEFAULT_SHARE_STATE, model: 'hf:org/name' })).toMatch(/model=hf%3Aorg%2Fname/);
  });

  it("a link's model not on the device is looked up and asked about; one on the device opens at once", () => {
    const sent: WorkerRequest[] = [];
    const opened: string[] = [];
    let id = 0;
    const store = createSourcesStore('http://127.0.0.1:1');
    const actions = createSourceActions(store, {
      send: (r) => sent.push(r),
      newRequestId: () => ++id,
      openModel: (m) => opened.push(`${m.id} ${m.path}`),
    });
    let fallback = 0;
    actions.askForLink('hf:org/name', () => fallback++);
    expect(sent.at(-1)).toMatchObject({ type: 'source-fetch', deviceOnly: true });
    actions.receive({
      type: 'source-failed',
      requestId: 1,
      source: 'hf:org/name',
      failure: { reason: 'offline-miss', message: 'x', canRetry: false },
    });
    expect(fallback).toBe(1);
    expect(sent.at(-1)).toMatchObject({ type: 'source-lookup', source: 'hf:org/name' });
    expect(store.getState().linkAsk).toEqual({ source: 'hf:org/name' });
    expect(opened).toEqual([]);

    actions.askForLink('hf:org/stored', () => fallback++);
    const req = sent.at(-1) as { requestId: number };
    actions.receive({
      type: 'source-fetched',
      requestId: req.requestId,
      source: 'hf:org/stored',
      modelPath: 'device:hf:org/stored',
      fromDevice: true,
    });
    expect(opened).toEqual(['hf:org/stored device:hf:org/stored']);
    expect(fallback).toBe(1);
  });
});

describe('the engine session', () => {
  it('a load overtaken by a newer one (a download finished while a built-in model loaded) is not installed', async () => {
    const posted: WorkerResponse[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const folder = (name: string) => dirSource(join(root, 'tests/fixtures/models', name));
    const session = new EngineSession(
      (m) => posted.push(m),
      (base) =>
        base === 'slow'
          ? {
              label: 'slow',
              readFile: async (n, p) => {
                await gate;
                return folder('llama_f32').readFile(n, p);
              },
            }
          : folder('mixtral_f32'),
    );
    await session.handle({ type: 'init', preferBackend: 'cpu' });
    const first = session.handle({ type: 'load', requestId: 1, modelId: 'older', baseUrl: 'slow' });
    await session.handle({ type: 'load', requestId: 2, modelId: 'newer', baseUrl: 'fast' });
    release();
    await first;
    expect(posted.filter((m) => m.type === 'loaded').map((m) => (m as { model: { id: string } }).model.id)).toEqual([
      'newer',
    ]);
    expect(posted).toContainEqual({ type: 'cancelled', requestId: 1 });
  });
});
