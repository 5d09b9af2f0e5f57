// The Lenses views (src/viz/lenses) rendered to markup on the hand-worked trace: each draws one mark
// per number of its lens, names experts by number, carries the lens's sentence as its caption, and has
// a table twin holding the same rows as the CSV export. (Layout and look are checked in the browser.)
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
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
import { SMALL_FONT_PX, textWidth, wrapText } from '../../src/viz/lenses/LensFigure.tsx';
import {
  type Box,
  boxesIntersect,
  type LabelRequest,
  type Mark,
  placeLabels,
  segmentHitsBox,
} from '../../src/viz/lenses/labels.ts';
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

/** Every start-anchored small text set straight in an <svg> (footnotes and the like), one entry per line, with that svg's width. */
function smallTextLines(markup: string): { width: number; x: number; line: string }[] {
  const out: { width: number; x: number; line: string }[] = [];
  for (const [, width, body] of markup.matchAll(/<svg width="([\d.]+)"[^>]*>(.*?)<\/svg>/gs)) {
    for (const [, x, inner] of body.matchAll(/<text x="([\d.]+)" y="[\d.]+" class="cell-small"[^>]*>(.*?)<\/text>/gs)) {
      const clean = (t: string) =>
        t
          .replace(/<!-- -->/g, '')
          .replace(/&#x27;/g, "'")
          .replace(/&amp;/g, '&');
      const tspans = [...inner.matchAll(/<tspan[^>]*>(.*?)<\/tspan>/g)].map((m) => clean(m[1]));
      for (const line of tspans.length ? tspans : [clean(inner.replace(/<[^>]+>/g, ''))])
        out.push({ width: Number(width), x: Number(x), line });
    }
  }
  return out;
}

/** A trade-off point as the sweep gives it, from its active share and loss. */
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
/** The built-ins' sweep as the README screenshot shows it (mode, active share, Δloss): most modes of both sit near Δ 0. */
function sweep(dense: number, rows: string): TradeoffPoint[] {
  return rows.split(' ').map((r) => {
    const [mode, share, delta] = r.split('/');
    return point(mode, Number(share), dense + Number(delta));
  });
}
const moeTop2 = sweep(
  3.542,
  'topk:1/0.2228/0.05008 topk:2/0.3338/0.006911 topk:3/0.4449/0.001635 topk:4/0.5559/0.0007364 topk:5/0.6669/-0.000029 ' +
    'topk:6/0.7779/0.0000856 topk:7/0.889/0.00002927 threshold:0.25/0.3097/0.001369 threshold:0.5/0.2852/0.002831 ' +
    'threshold:0.75/0.2727/0.0045 threshold:1/0.2635/0.005081 threshold:1.5/0.2514/0.01883 threshold:2/0.2419/0.02167 dense/1/0',
);
const dsMoe = sweep(
  3.505,
  'topk:1/0.2228/1.084 topk:2/0.3338/0.4608 topk:3/0.4449/0.2118 topk:4/0.5559/0.09917 topk:5/0.6669/0.0427 ' +
    'topk:6/0.7779/0.01586 topk:7/0.889/0.004074 threshold:0.25/0.598/0.00538 threshold:0.5/0.5169/0.0119 ' +
    'threshold:0.75/0.4392/0.04179 threshold:1/0.3636/0.1454 threshold:1.5/0.2686/0.8868 threshold:2/0.2435/1.036 dense/1/0',
);

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

describe('lens figures fit their text', () => {
  it('the small text is measured at the size app.css sets for .cell-small', () => {
    const css = readFileSync(resolve(import.meta.dirname, '../../src/ui/app.css'), 'utf8');
    expect(/\n\.cell-small \{\s*font-size: (\d+)px;/.exec(css)?.[1]).toBe(String(SMALL_FONT_PX));
    // DejaVu Sans's own advances (Chromium, 9 px): the estimate is the face's width, not a guess.
    expect(textWidth('CV 0.38 · max/mean 1.54 · aux 1.108')).toBeCloseTo(169.7, 0);
  });

  it('wrapText breaks at spaces into lines no wider than asked, and cuts a word wider than a line', () => {
    const text = '% of assignments; bold = above the fair share 12.5%; divergence between domains 18%';
    const lines = wrapText(text, 200);
    expect(lines.length).toBeGreaterThan(1);
    expect(lines.join(' ')).toBe(text);
    for (const l of lines) expect(textWidth(l)).toBeLessThanOrEqual(200);
    const cut = wrapText('supercalifragilistic', 40);
    expect(cut.join('')).toBe('supercalifragilistic');
    for (const l of cut) expect(textWidth(l)).toBeLessThanOrEqual(40);
  });

  it('no footnote line runs past its figure, however narrow (few experts, few layers)', () => {
    const figures = {
      domain: html(DomainShares, { lens: domainSpecialisation([a, b], shape, names), layerIndex: 0 }),
      coactivation: html(CoactivationHeatmap, { lens: coactivation([a, b], shape), layerIndex: 0 }),
      locality: html(LocalityBars, { lens: locality([a, b], shape) }),
      load: html(LoadBars, { lens: loadBalance([a, b], shape) }),
      tradeoff: html(TradeoffPlot, { curves: [{ label: 'moe-top2', lens: tradeoffLens(moeTop2) }] }),
    };
    for (const [name, markup] of Object.entries(figures)) {
      const lines = smallTextLines(markup);
      expect(lines.length, name).toBeGreaterThan(0);
      for (const { width, x, line } of lines)
        expect(x + textWidth(line), `${name}: ${line}`).toBeLessThanOrEqual(width);
      expect(markup, name).toContain('data-testid="lens-footnote"');
    }
    // The whole sentence is still there, over the lines.
    const domainNote = smallTextLines(figures.domain).map((l) => l.line);
    expect(domainNote.length).toBeGreaterThan(1);
    expect(domainNote.join(' ')).toMatch(
      /^% of assignments; bold = above the fair share 25\.0%; divergence between domains \d+%$/,
    );
  });
});

describe('trade-off labels', () => {
  /** The placed labels of a rendered TradeoffPlot with the box each takes (as placeLabels measures it). */
  function renderedLabels(markup: string) {
    return [
      ...markup.matchAll(
        /<text x="([-\d.]+)" y="([-\d.]+)" text-anchor="(start|middle|end)" class="cell-small" data-testid="tradeoff-label" data-point="([^"]+)"[^>]*>(.*?)<\/text>/g,
      ),
    ].map(([, x, y, anchor, id, text]) => {
      const w = textWidth(text);
      const left = anchor === 'start' ? Number(x) : anchor === 'end' ? Number(x) - w : Number(x) - w / 2;
      const box: Box = {
        x0: left,
        y0: Number(y) - 0.8 * SMALL_FONT_PX,
        x1: left + w,
        y1: Number(y) + 0.25 * SMALL_FONT_PX,
      };
      return { id, text, box };
    });
  }

  it('on the built-ins’ crowded sweep: no two labels overlap, dense and each sentence’s modes are labelled, every point stays in the table', () => {
    const out = html(TradeoffPlot, {
      curves: [
        { label: 'moe-top2', lens: tradeoffLens(moeTop2) },
        { label: 'ds-moe', lens: tradeoffLens(dsMoe) },
      ],
    });
    const labels = renderedLabels(out);
    expect(labels.length).toBeGreaterThan(8);
    for (let i = 0; i < labels.length; i++)
      for (let j = i + 1; j < labels.length; j++)
        expect(boxesIntersect(labels[i].box, labels[j].box), `${labels[i].id} / ${labels[j].id}`).toBe(false);
    for (const l of labels) {
      expect(l.box.x0).toBeGreaterThanOrEqual(0);
      expect(l.box.x1).toBeLessThanOrEqual(420);
    }
    const ids = labels.map((l) => l.id);
    // dense (one label for both: the two rings coincide), the sparsest mode and the sentence's "within 0.01 nats" mode of each model
    expect(ids.filter((id) => id.endsWith('|dense'))).toHaveLength(1);
    for (const id of ['moe-top2|topk:1', 'moe-top2|threshold:1', 'ds-moe|topk:1', 'ds-moe|threshold:0.25'])
      expect(ids).toContain(id);
    // The crowd loses some labels, says so, and keeps every point and row.
    expect(count(out, 'tradeoff-point')).toBe(28);
    expect(tableRows(out)).toHaveLength(28);
    const unlabelled = out.split('data-labelled="false"').length - 1;
    expect(unlabelled).toBeGreaterThan(0);
    expect(out.split('data-labelled="true"').length - 1).toBe(28 - unlabelled);
    expect(out).toContain(`${unlabelled} crowded points are not labelled`);
    // Same input, same picture.
    expect(
      html(TradeoffPlot, {
        curves: [
          { label: 'moe-top2', lens: tradeoffLens(moeTop2) },
          { label: 'ds-moe', lens: tradeoffLens(dsMoe) },
        ],
      }),
    ).toBe(out);
  });

  it('placeLabels: a tight cluster gets labels that meet no mark, label or leader, each nearest its own point', () => {
    const marks: Mark[] = Array.from({ length: 12 }, (_, i) => ({ x: 100 + 3 * i, y: 100 + (i % 3), r: 4 }));
    const requests: LabelRequest[] = marks.map((m, i) => ({
      ...m,
      id: `p${i}`,
      text: `threshold:${i}`,
      leader: i < 2,
    }));
    const bounds: Box = { x0: 0, y0: 0, x1: 300, y1: 200 };
    const legend: Box = { x0: 90, y0: 60, x1: 140, y1: 80 };
    const placed = placeLabels(requests, marks, [legend], bounds);
    expect(placed.length).toBeGreaterThan(1);
    expect(placed.length).toBeLessThan(12); // most cannot be told apart, so they go unlabelled
    expect(placed.map((p) => p.id).slice(0, 2)).toEqual(['p0', 'p1']); // the ones that may have a leader
    const markBoxes = marks.map((m) => ({ x0: m.x - m.r, y0: m.y - m.r, x1: m.x + m.r, y1: m.y + m.r }));
    for (const [i, p] of placed.entries()) {
      expect(p.box.x0 >= 0 && p.box.x1 <= 300 && p.box.y0 >= 0 && p.box.y1 <= 200).toBe(true);
      for (const o of [...markBoxes, legend]) expect(boxesIntersect(p.box, o)).toBe(false);
      for (const q of placed.slice(i + 1)) expect(boxesIntersect(p.box, q.box)).toBe(false);
      for (const q of placed) if (q.leader && q !== p) expect(segmentHitsBox(q.leader, p.box)).toBe(false);
    }
    expect(placeLabels(requests, marks, [legend], bounds)).toEqual(placed);
  });
});
