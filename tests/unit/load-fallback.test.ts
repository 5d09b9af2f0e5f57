// The loader must decide which files exist without trusting a status 200: Vite's dev server and
// `vite preview` (what `npm start` runs) answer a missing file with the site's index page. These
// tests serve real fixture checkpoints over real HTTP from a server that does exactly that.

import { createServer, type Server } from 'node:http';
import { readFileSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadCheckpoint, memorySource, urlSource } from '../../src/engine/format/index.ts';
import { CheckpointError } from '../../src/engine/format/errors.ts';
import type { LoadProgress } from '../../src/engine/format/load.ts';

const FIXTURES = resolve(import.meta.dirname, '../fixtures/models');
const INDEX_PAGE =
  '<!doctype html>\n<html lang="en"><head><title>MoE Playground</title></head><body><div id="root"></div></body></html>\n';

/** Like Vite: a file that exists is served; anything else gets the index page with status 200 and text/html. */
function spaServer(): Server {
  return createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    const file = join(FIXTURES, path);
    if (file.startsWith(FIXTURES) && !path.includes('..')) {
      try {
        const bytes = readFileSync(file);
        res.writeHead(200, {
          'content-type': file.endsWith('.json') ? 'application/json' : 'application/octet-stream',
          'content-length': bytes.byteLength,
        });
        res.end(bytes);
        return;
      } catch {
        // fall through to the index page
      }
    }
    res.writeHead(200, { 'content-type': 'text/html' });
    res.end(INDEX_PAGE);
  });
}

let server: Server;
let base = '';
beforeAll(async () => {
  server = spaServer();
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  const address = server.address();
  base = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
});
afterAll(() => new Promise<void>((done) => server.close(() => done())));

function folderFiles(name: string): Map<string, Uint8Array> {
  const dir = join(FIXTURES, name);
  return new Map(readdirSync(dir).map((f) => [f, new Uint8Array(readFileSync(join(dir, f)))]));
}

/** A memory source that answers every missing file with the index page, as a fallback server does, minus the content type. */
function pageForMissing(files: Map<string, Uint8Array>, label: string) {
  const page = new TextEncoder().encode(INDEX_PAGE);
  const inner = memorySource(files, label);
  return { label, readFile: async (name: string) => (await inner.readFile(name)) ?? page };
}

async function loadError(promise: Promise<unknown>): Promise<CheckpointError> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(CheckpointError);
    return err as CheckpointError;
  }
  throw new Error('expected the load to fail');
}

describe('a server that answers a missing file with its index page (status 200)', () => {
  it('a single-file checkpoint loads over HTTP, and its tensors are the file on disk', async () => {
    const ckpt = await loadCheckpoint(urlSource(`${base}/mixtral_f32/`));
    const onDisk = await loadCheckpoint(memorySource(folderFiles('mixtral_f32')));
    expect(ckpt.spec.numLayers).toBe(onDisk.spec.numLayers);
    expect(ckpt.bytesOnDisk).toBe(onDisk.bytesOnDisk);
    expect(Buffer.from(ckpt.weights.embed.bytes).equals(Buffer.from(onDisk.weights.embed.bytes))).toBe(true);
  });

  it('a sharded checkpoint loads over HTTP (model.safetensors answered with the page counts as absent)', async () => {
    const ckpt = await loadCheckpoint(urlSource(`${base}/mixtral_sharded_f32/`));
    const onDisk = await loadCheckpoint(memorySource(folderFiles('mixtral_sharded_f32')));
    expect(ckpt.bytesOnDisk).toBe(onDisk.bytesOnDisk);
    expect(Buffer.from(ckpt.weights.lmHead.bytes).equals(Buffer.from(onDisk.weights.lmHead.bytes))).toBe(true);
  });

  it('the same without a content type: the content itself decides (page ≠ JSON, ≠ safetensors)', async () => {
    const ckpt = await loadCheckpoint(pageForMissing(folderFiles('mixtral_sharded_f32'), 'spa'));
    expect(ckpt.spec.moe?.numExperts).toBeGreaterThan(0);
    const single = await loadCheckpoint(pageForMissing(folderFiles('mixtral_f32'), 'spa'));
    expect(single.spec.moe?.numExperts).toBeGreaterThan(0);
  });

  it('a folder that does not exist gives one sentence naming the folder, not a JSON error', async () => {
    const e = await loadError(loadCheckpoint(urlSource(`${base}/no-such-model/`)));
    expect(e.message).toMatch(/^config\.json is missing from http:\/\/127\.0\.0\.1:\d+\/no-such-model\/\.$/);
    expect(e.message).not.toMatch(/JSON|doctype/);
    expect(e.hint).toMatch(/address/);
  });

  it('without a content type, a page where config.json should be is named as such', async () => {
    const e = await loadError(loadCheckpoint(pageForMissing(new Map(), 'spa-folder')));
    expect(e.message).toBe('config.json is missing from spa-folder (the server answered with a web page instead).');
  });

  it('a folder without weights says so, and that the server answered with something else', async () => {
    const files = folderFiles('mixtral_f32');
    files.delete('model.safetensors');
    const e = await loadError(loadCheckpoint(pageForMissing(files, 'spa-folder')));
    expect(e.message).toMatch(
      /neither model\.safetensors nor model\.safetensors\.index\.json is in spa-folder \(the server answered/,
    );
  });

  it('a damaged real safetensors file is still reported as damaged, not as absent', async () => {
    const files = folderFiles('mixtral_f32');
    files.set('model.safetensors', files.get('model.safetensors')!.subarray(0, 100));
    const e = await loadError(loadCheckpoint(pageForMissing(files, 'spa')));
    expect(e.message).toMatch(/beyond the end/);
  });

  it('reports byte progress per file, ending at the file size', async () => {
    const seen: LoadProgress[] = [];
    await loadCheckpoint(urlSource(`${base}/mixtral_f32/`), { onProgress: (p) => seen.push(p) });
    const size = readFileSync(join(FIXTURES, 'mixtral_f32', 'model.safetensors')).byteLength;
    const weights = seen.filter((p) => p.file === 'model.safetensors');
    expect(weights.length).toBeGreaterThan(1);
    expect(weights[weights.length - 1]).toEqual({ file: 'model.safetensors', received: size, total: size });
    for (let i = 1; i < weights.length; i++)
      expect(weights[i].received).toBeGreaterThanOrEqual(weights[i - 1].received);
  });
});
