// The Lenses views (src/viz/lenses) rendered to markup on the hand-worked trace: each draws one mark
// per number of its lens, names experts by number, carries the lens's sentence as its caption, and has
// a table twin holding the same rows as the CSV export. (Layout and look are checked in the browser.)
import { createElement, type FunctionComponent } from 'react';
import { renderToStaticMarkup } from 'react-dom/server';
import { describe, expect, it } from 'vitest';
import {
  agreement,
  coactivation,
  domainSpecialisation,
  loadBalance,
  locality,
  type LogitWindow,
  type TradeoffPoint,
  tradeoffLens,
  vocabSpecialisation,
} from '../../src/engine/lens/index.ts';
import {
  AgreementBars,
  CoactivationHeatmap,
  DomainShares,
  LoadBars,
  LocalityBars,
  TradeoffPlot,
  VocabLists,
} from '../../src/viz/lenses/index.ts';
import { a, b, names, shape } from './lensHandTrace.ts';

// biome-ignore lint/suspicious/noExplicitAny: each view has its own props type
const html = (view: FunctionComponent<any>, props: object) => renderToStaticMarkup(createElement(view, props));
const count = (markup: string, testId: string) => markup.split(`data-testid="${testId}"`).length - 1;
/** The body rows of the table twin, each as its cells' text. */
function tableRows(markup: string): string[][] {
  const body = /<tbody>(.*)<\/tbody>/.exec(markup)![1];
  return body
    .split('</tr>')
    .filter((r) => r.includes('<t'))
    .map((r) => [...r.matchAll(/<t[hd][^>]*>(.*?)<\/t[hd]>/g)].map((m) => m[1]));
}

describe('lens views on the hand-worked trace', () => {
  it('DomainShares: one cell per (domain, expert) of the layer, the top cell outlined, table rows of that layer', () => {
    const lens = domainSpecialisation([a, b], shape, names);
    const out = html(DomainShares, { lens, layerIndex: 0 });
    expect(count(out, 'domain-cell')).toBe(2 * 4);
    expect(out).toContain('data-domain="a" data-expert="0" data-share="0.5"');
    expect(out.match(/stroke="#111" stroke-width="3"/g)).toHaveLength(1); // the most specialised cell
    expect(out).toContain(lens.sentence.replace(/'/g, '&#x27;'));
    const rows = tableRows(out);
    expect(rows).toHaveLength(8);
    expect(rows[0]).toEqual(['1', '0', 'a', '4', '0.5000', '1', '2']);
    expect(out).toContain('class="lens-table sr-only"');
    expect(html(DomainShares, { lens, layerIndex: 1, showTable: true })).toContain('class="lens-table"');
  });

  it('CoactivationHeatmap: E·(E−1) off-diagonal cells with P(b | a)', () => {
    const lens = coactivation([a, b], shape);
    const out = html(CoactivationHeatmap, { lens, layerIndex: 0 });
    expect(count(out, 'coactivation-cell')).toBe(12);
    expect(out).toContain('data-a="2" data-b="1" data-p="0.6666666666666666"');
    expect(tableRows(out)).toHaveLength(16);
  });

  it('LocalityBars, LoadBars and AgreementBars: one group per layer (and "all" for agreement)', () => {
    const loc = html(LocalityBars, { lens: locality([a, b], shape) });
    expect(count(loc, 'locality-layer')).toBe(2);
    expect(loc).toContain('data-layer="1" data-same-first="0.5"');
    const load = html(LoadBars, { lens: loadBalance([a, b], shape) });
    expect(count(load, 'lens-load-bar')).toBe(2 * 4);
    expect(load).toContain('data-layer="1" data-expert="3" data-load="0.08333333333333333"');
    const runA: LogitWindow = {
      ...b,
      logits: [
        [0, 0, 0],
        [1, 0, 0],
      ],
    };
    const agree = html(AgreementBars, { lens: agreement([[runA, runA]], shape) });
    expect(count(agree, 'agreement-group')).toBe(3);
    expect(tableRows(agree).at(-1)).toEqual(['all', '1', '1']);
  });

  it('VocabLists: a panel per expert with its top tokens, and the concentration bar', () => {
    const lens = vocabSpecialisation([a, b], shape, { minCount: 2, tokenText: (id) => `t${id}` });
    const out = html(VocabLists, { lens, layerIndex: 0 });
    expect(count(out, 'vocab-expert')).toBe(4);
    expect(out).toContain('data-testid="vocab-concentration" data-value="1"');
    expect(out).toMatch(/t7 3/); // expert 1 receives token 7 three times
  });

  it('TradeoffPlot: one curve per model, every mode a point, dense ringed, table rows of both models', () => {
    const point = (mode: string, activeShare: number, loss: number): TradeoffPoint => ({
      mode,
      activeShare,
      activeParameters: 0,
      expertsPerLayer: 0,
      loss,
      deltaLoss: null,
      lossByDomain: {},
      predictions: 1,
    });
    const one = tradeoffLens([point('topk:1', 0.3, 2.2), point('topk:2', 0.4, 2.05), point('dense', 1, 2)]);
    const two = tradeoffLens([point('topk:1', 0.3, 2.9), point('threshold:1', 0.6, 2.1), point('dense', 1, 2.05)]);
    const out = html(TradeoffPlot, {
      curves: [
        { label: 'moe-top2', lens: one },
        { label: 'ds-moe', lens: two },
      ],
    });
    expect(count(out, 'tradeoff-curve')).toBe(2);
    expect(count(out, 'tradeoff-point')).toBe(6);
    expect(out.match(/<circle r="8"/g)).toHaveLength(2);
    const rows = tableRows(out);
    expect(rows.map((r) => `${r[0]} ${r[1]}`)).toEqual([
      'moe-top2 topk:1',
      'moe-top2 topk:2',
      'moe-top2 dense',
      'ds-moe topk:1',
      'ds-moe threshold:1',
      'ds-moe dense',
    ]);
    expect(out).toContain('moe-top2: Dense loss is 2.000 nats');
  });
});
