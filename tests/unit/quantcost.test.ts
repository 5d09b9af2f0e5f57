// What quantization costs (src/engine/quant/cost.ts): identity gives zero cost; KL, top-1 agreement and
// Δloss agree with PyTorch computing them from the same logits; the routing share counts expert sets.

import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { dirSource } from '../../src/cli/fsSource.ts';
import { createCpuBackend } from '../../src/engine/backends/cpu/index.ts';
import { loadCheckpoint } from '../../src/engine/format/index.ts';
import { describeQuantCost, quantizationCost, tokenWindows } from '../../src/engine/quant/cost.ts';
import { parseRoutingPlan } from '../../src/engine/routing/index.ts';
import { scoreTokens } from '../../src/engine/run/index.ts';
import { loadTokenizer } from '../../src/engine/tokenizer.ts';

const BUILT_IN = join(import.meta.dirname, '..', '..', 'public', 'models', 'moe-top2');
const NATIVE = parseRoutingPlan('native');

describe('quantizationCost', async () => {
  const ckpt = await loadCheckpoint(dirSource(BUILT_IN));
  const tokens = loadTokenizer(ckpt.tokenizerJson, ckpt.tokenizerConfigJson).encode(
    'Twelve plus seven is 19. Der Hund schläft. print("hello")\nFortune favours the bold.',
  );
  const windows = tokenWindows(tokens, 16);
  const reference = await createCpuBackend().load(ckpt.spec, ckpt.weights);

  it('windows: consecutive slices, the last shorter, single tokens dropped', () => {
    expect(tokenWindows([1, 2, 3, 4, 5], 2)).toEqual([
      [1, 2],
      [3, 4],
    ]);
    expect(tokenWindows([1, 2, 3, 4, 5, 6], 4)).toEqual([
      [1, 2, 3, 4],
      [5, 6],
    ]);
  });

  it('a model against itself costs nothing', async () => {
    const c = await quantizationCost(reference, reference, 'none', windows, NATIVE);
    expect(c.routingUnchanged).toBe(1);
    expect(c.top1Agreement).toBe(1);
    expect(c.meanKl).toBe(0);
    expect(c.deltaLoss).toBe(0);
    expect(c.routingDecisions).toBe(tokens.length * 4); // 4 MoE layers
  });

  it('reports each window before scoring it, and an aborted signal stops it with an AbortError', async () => {
    const seen: Array<[number, number]> = [];
    await quantizationCost(reference, reference, 'none', windows, NATIVE, {
      onWindow: (done, total) => void seen.push([done, total]),
    });
    expect(seen).toEqual(windows.map((_, i) => [i, windows.length]));
    const controller = new AbortController();
    const run = quantizationCost(reference, reference, 'none', windows, NATIVE, {
      signal: controller.signal,
      onWindow: (done) => {
        if (done === 1) controller.abort();
      },
    });
    await expect(run).rejects.toMatchObject({ name: 'AbortError' });
  });

  it('q4: KL, top-1 agreement, losses and the routing share match PyTorch / a direct count on the same logits', async () => {
    const q4 = await createCpuBackend({ quantize: 'q4' }).load(ckpt.spec, ckpt.weights);
    const c = await quantizationCost(reference, q4, 'q4', windows, NATIVE);
    expect(c.meanKl).toBeGreaterThan(0);
    const a = await Promise.all(windows.map((w) => scoreTokens(reference, w, NATIVE)));
    const b = await Promise.all(windows.map((w) => scoreTokens(q4, w, NATIVE)));
    const payload = JSON.stringify({
      a: a.flatMap((r) => r.logits.map((row) => Array.from(row))),
      b: b.flatMap((r) => r.logits.map((row) => Array.from(row))),
      targets: windows.flatMap((w) => w.map((_, t) => (t + 1 < w.length ? w[t + 1] : -1))),
    });
    const script = `
import json, sys, torch
d = json.load(sys.stdin)
a = torch.tensor(d['a'], dtype=torch.float64).log_softmax(-1)
b = torch.tensor(d['b'], dtype=torch.float64).log_softmax(-1)
t = torch.tensor(d['targets'])
kl = torch.nn.functional.kl_div(b, a, log_target=True, reduction='none').sum(-1).mean().item()
top1 = (a.argmax(-1) == b.argmax(-1)).double().mean().item()
m = t >= 0
la = -a[m].gather(1, t[m][:, None]).mean().item()
lb = -b[m].gather(1, t[m][:, None]).mean().item()
print(json.dumps({'kl': kl, 'top1': top1, 'la': la, 'lb': lb}))`;
    const r = spawnSync('/usr/bin/python3', ['-c', script], { input: payload, encoding: 'utf8', maxBuffer: 1 << 28 });
    expect(r.status, r.stderr).toBe(0);
    const ref = JSON.parse(r.stdout) as { kl: number; top1: number; la: number; lb: number };
    expect(c.meanKl).toBeCloseTo(ref.kl, 9);
    expect(c.top1Agreement).toBeCloseTo(ref.top1, 12);
    expect(c.referenceLoss).toBeCloseTo(ref.la, 9);
    expect(c.deltaLoss).toBeCloseTo(ref.lb - ref.la, 9);
    let same = 0,
      n = 0;
    a.forEach((r0, w) =>
      r0.trace.layers.forEach((layer, m) =>
        layer.forEach((x, t) => {
          n++;
          if ([...x.experts].sort().join() === [...b[w].trace.layers[m][t].experts].sort().join()) same++;
        }),
      ),
    );
    expect(c.routingUnchanged).toBe(same / n);
    expect(c.routingUnchanged).toBeLessThan(1);
    expect(describeQuantCost(c)).toMatch(
      /^q4: \d+% of routing decisions unchanged, top-1 token the same at \d+% of positions, Δloss [+−]\d\.\d{3} nats on the eval texts$/,
    );
  });
});
