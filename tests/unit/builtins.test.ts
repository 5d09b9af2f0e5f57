// The built-in models as shipped: every model the picker lists is complete, the set fits the size
// budget, the zoo is one shape at equal training compute, and the README's table of built-ins says
// what the cards (measured by training/cards.ts with the engine) say.
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '../..');
const MODELS = join(ROOT, 'public/models');
const DOMAINS = ['english', 'german', 'python', 'arithmetic'];
const ZOO = ['fine-grained-naive', 'fine-grained', 'fine-grained-scratch'];

interface Card {
  id: string;
  losses: Array<{ mode: string; losses: Record<string, number>; activeShare: number }>;
  training: { steps: number; tokensPerStep: number | null } | null;
  expertDistance?: number[];
  routerEntropy?: number[];
  ablation?: { strongest: Ablation | null; largest: Ablation | null };
  curve?: Array<{ mode: string; active: number; gap: number }>;
  bestAtHalf?: { mode: string; active: number; gap: number };
}
interface Ablation {
  layer: number;
  expert: number;
  domain: string;
  rise: number;
  others: number;
}

const readJson = <T>(path: string): T => JSON.parse(readFileSync(path, 'utf8')) as T;
const index = readJson<{ models: Array<{ id: string; path: string }> }>(join(MODELS, 'index.json'));
const card = (id: string) => readJson<Card>(join(MODELS, id, 'card.json'));
const meanLoss = (c: Card, mode: string) => {
  const row = c.losses.find((r) => r.mode === mode);
  if (!row) throw new Error(`${c.id}: no ${mode} row`);
  return DOMAINS.reduce((s, d) => s + row.losses[d], 0) / DOMAINS.length;
};

describe('built-in models', () => {
  it('the picker lists every model folder, and each is complete', () => {
    const folders = readdirSync(MODELS).filter((f) => statSync(join(MODELS, f)).isDirectory());
    expect(index.models.map((m) => m.id).sort()).toEqual(folders.sort());
    for (const { id, path } of index.models) {
      expect(path).toBe(`models/${id}/`);
      for (const file of ['config.json', 'model.safetensors', 'tokenizer.json', 'card.json', 'README.md'])
        expect(existsSync(join(MODELS, id, file)), `${id}/${file}`).toBe(true);
      expect(card(id).id).toBe(id);
    }
  });

  it('all together stay within the 80 MB budget', () => {
    let bytes = 0;
    for (const { id } of index.models)
      for (const f of readdirSync(join(MODELS, id))) bytes += statSync(join(MODELS, id, f)).size;
    expect(bytes).toBeLessThanOrEqual(80e6);
  });

  it('every MoE card carries the new measures: distance, entropy per layer, ablation, trade-off curve', () => {
    for (const { id } of index.models) {
      const c = card(id);
      const config = readJson<{ num_local_experts?: number }>(join(MODELS, id, 'config.json'));
      if (!config.num_local_experts) continue;
      expect(c.expertDistance?.length, id).toBeGreaterThan(0);
      expect(c.routerEntropy?.length, id).toBe(c.expertDistance?.length);
      expect(c.ablation, id).toBeDefined();
      expect(c.curve?.length, id).toBeGreaterThan(config.num_local_experts);
    }
  });

  it('every card says what q8 and q4 cost the model', () => {
    for (const { id } of index.models) {
      const q = (
        card(id) as Card & { quantization?: Array<{ scheme: string; weightBytes: number; top1Agreement: number }> }
      ).quantization;
      expect(
        q?.map((c) => c.scheme),
        id,
      ).toEqual(['q8', 'q4']);
      expect(q![1].weightBytes, id).toBeLessThan(q![0].weightBytes);
      for (const c of q!) expect(c.top1Agreement, id).toBeGreaterThan(0.5);
    }
  });

  it('the zoo: one shape, the same steps and tokens, three starts', () => {
    const present = ZOO.filter((id) => index.models.some((m) => m.id === id));
    expect(present).toEqual(ZOO);
    const shapes = ZOO.map((id) => {
      const { _name_or_path, ...config } = readJson<Record<string, unknown>>(join(MODELS, id, 'config.json'));
      return JSON.stringify({ ...config, norm_topk_prob: undefined });
    });
    expect(new Set(shapes).size).toBe(1);
    const recipes = ZOO.map((id) =>
      readJson<{
        drop: number;
        scratch: boolean;
        parent: string;
        train: { steps: number; batch_size: number; seq_len: number; seed: number };
      }>(join(MODELS, id, 'recipe.json')),
    );
    expect(new Set(recipes.map((r) => r.parent)).size).toBe(1);
    expect(
      new Set(recipes.map((r) => `${r.train.steps}/${r.train.batch_size}/${r.train.seq_len}/${r.train.seed}`)).size,
    ).toBe(1);
    expect(recipes.map((r) => [r.drop > 0, r.scratch])).toEqual([
      [false, false],
      [true, false],
      [false, true],
    ]);
  });

  it("the README's table of built-ins quotes the cards", () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('## Built-in models'), readme.indexOf('## Lenses'));
    const rows = section.split('\n').filter((l) => /^\| `[a-z0-9-]+`/.test(l));
    expect(rows.map((r) => /`([a-z0-9-]+)`/.exec(r)![1]).sort()).toEqual(index.models.map((m) => m.id).sort());
    for (const row of rows) {
      const id = /`([a-z0-9-]+)`/.exec(row)![1];
      const cells = row.split('|').map((c) => c.trim());
      const c = card(id);
      const losses = cells[4].split('/').map((v) => Number(v.trim()));
      const expected = c.losses.some((r) => r.mode === 'dense')
        ? [meanLoss(c, 'dense'), meanLoss(c, 'native'), meanLoss(c, 'topk:1')]
        : [meanLoss(c, 'native')];
      expect(losses.length, id).toBe(expected.length);
      losses.forEach((v, i) => expect(Math.abs(v - expected[i]), `${id} loss ${i}`).toBeLessThanOrEqual(0.0006));
      if (c.routerEntropy) {
        const entropy = cells[5].split(',').map((v) => Number(v.trim()));
        expect(entropy.length, id).toBe(c.routerEntropy.length);
        entropy.forEach((v, i) =>
          expect(Math.abs(v - c.routerEntropy![i]), `${id} entropy ${i}`).toBeLessThanOrEqual(0.006),
        );
      }
    }
  });

  it('ds-moe: the card states its best point at ≤ 50% active, and it is on the curve', () => {
    const c = card('ds-moe');
    const best = c.bestAtHalf!;
    expect(best.active).toBeLessThanOrEqual(0.5);
    const onCurve = c.curve!.filter((p) => p.active <= 0.5).sort((a, b) => a.gap - b.gap)[0];
    expect(onCurve.mode).toBe(best.mode);
    expect(Math.abs(onCurve.gap - (meanLoss(c, best.mode) - meanLoss(c, 'dense')))).toBeLessThan(1e-9);
  });
});
