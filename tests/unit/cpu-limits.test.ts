// Bad input on the CPU backend: weights that cannot fit its 4 GiB WebAssembly memory are refused before
// anything is allocated, with a sentence and a hint naming the quantizations that would fit.
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { dirSource } from '../../src/cli/fsSource.ts';
import { createCpuBackend } from '../../src/engine/backends/cpu/index.ts';
import { loadCheckpoint } from '../../src/engine/format/index.ts';
import { ModelTooLargeError } from '../../src/engine/format/quant.ts';
import { parseRoutingPlan } from '../../src/engine/routing/index.ts';
import type { PlainTensor } from '../../src/engine/types.ts';

const FIXTURE = path.resolve(import.meta.dirname, '../fixtures/models/mixtral_f16');

describe('CPU backend: a model that will not fit', () => {
  it('refuses 4.5 GiB of f16 weights with a hint that q8 (2.4 GiB) would fit; a loaded model keeps working', async () => {
    const { spec, weights } = await loadCheckpoint(dirSource(FIXTURE));
    const backend = createCpuBackend();
    const loaded = await backend.load(spec, weights);
    // Three 1.5 GiB f16 matrices viewing one buffer of untouched zero pages (the OS commits none of it).
    const rows = 786432;
    const cols = 1024;
    const zeros = new Uint8Array(rows * cols * 2);
    const huge = (): PlainTensor => ({ dtype: 'F16', shape: [rows, cols], bytes: zeros });
    const tooBig = {
      ...weights,
      embed: huge(),
      lmHead: huge(),
      layers: weights.layers.map((l, i) => (i === 0 ? { ...l, q: huge() } : l)),
    };
    const error: unknown = await backend.load(spec, tooBig).then(
      () => null,
      (e: unknown) => e,
    );
    expect(error instanceof ModelTooLargeError, String(error)).toBe(true);
    const e = error as ModelTooLargeError;
    expect(e.message).toMatch(
      /^The weights need 4\.50 GiB, more than the 4 GiB the CPU backend's WebAssembly memory can hold\.$/,
    );
    expect(e.hint).toMatch(/^Quantize on load: q8 needs 2\.39 GiB, q4 needs 1\.27 GiB\.$/);
    // What was loaded before is untouched.
    const out = await loaded.forward([1, 2, 3], loaded.newCache(3), {
      routing: parseRoutingPlan('native'),
      logits: 'last',
    });
    expect(out.logits[0].every(Number.isFinite)).toBe(true);
  });
});
