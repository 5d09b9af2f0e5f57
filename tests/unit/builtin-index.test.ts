// The page's reading of public/models/index.json: a suggested routing is kept only when the page can
// set it, and the shipped index suggests DS-MoE's threshold for ds-moe and nothing for the others.
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { fetchBuiltInModels, shareRoutingOf } from '../../src/state/controller/models.ts';
import type { PageEnv } from '../../src/state/controller/env.ts';

const ROOT = resolve(import.meta.dirname, '../..');

function envServing(index: unknown): PageEnv {
  return {
    base: '/',
    preferBackend: 'auto',
    queryModel: '',
    firstScreen: false,
    reducedMotion: true,
    fetchJson: async (path) => (path === 'models/index.json' ? index : null),
    fetchText: async () => null,
    replaceFragment: () => undefined,
    linkTo: (f) => `/#${f}`,
    copyText: async () => true,
    offlineActive: () => false,
  } as PageEnv;
}

describe('suggested routing in the built-in index', () => {
  it('maps routing modes to the share fields that select them, and refuses the rest', () => {
    expect(shareRoutingOf('threshold:0.6')).toEqual({ mode: 'threshold', t: 0.6 });
    expect(shareRoutingOf('topk:3')).toEqual({ mode: 'topk', k: 3 });
    expect(shareRoutingOf('native')).toBeNull();
    expect(shareRoutingOf('dense')).toBeNull();
    expect(shareRoutingOf('threshold:banana')).toBeNull();
    expect(shareRoutingOf('<img src=x>')).toBeNull();
  });

  it('keeps a well-formed suggestion and drops a malformed one without dropping the model', async () => {
    const good = { mode: 'threshold:0.6', active: 0.486, gap: 0.02, nativeGap: 0.45 };
    const models = await fetchBuiltInModels(
      envServing({
        models: [
          { id: 'a', name: 'A', path: 'models/a/', suggestedRouting: good },
          {
            id: 'b',
            name: 'B',
            path: 'models/b/',
            suggestedRouting: { mode: 'rm -rf', active: 1, gap: 0, nativeGap: 1 },
          },
          {
            id: 'c',
            name: 'C',
            path: 'models/c/',
            suggestedRouting: { mode: 'topk:2', active: '50%', gap: 0, nativeGap: 1 },
          },
          { id: 'd', name: 'D', path: 'models/d/' },
        ],
      }),
    );
    expect(models.map((m) => m.id)).toEqual(['a', 'b', 'c', 'd']);
    expect(models.map((m) => m.suggestedRouting)).toEqual([good, undefined, undefined, undefined]);
  });

  it("the shipped index suggests ds-moe's best routing at half the parameters, and nothing for the rest", async () => {
    const index = JSON.parse(readFileSync(join(ROOT, 'public/models/index.json'), 'utf8'));
    const models = await fetchBuiltInModels(envServing(index));
    const suggested = models.filter((m) => m.suggestedRouting).map((m) => m.id);
    expect(suggested).toEqual(['ds-moe']);
    const card = JSON.parse(readFileSync(join(ROOT, 'public/models/ds-moe/card.json'), 'utf8'));
    const s = models.find((m) => m.id === 'ds-moe')!.suggestedRouting!;
    expect(s.mode).toBe(card.bestAtHalf.mode);
    expect(s.active).toBeLessThanOrEqual(0.5);
    expect(s.gap).toBeLessThanOrEqual(0.05);
    expect(s.nativeGap).toBeGreaterThan(s.gap + 0.1);
  });
});
