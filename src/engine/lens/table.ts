// Every lens as rows: one flat table per figure, for CSV and JSON-rows export (the page's
// Export menu and `moe analyze`). Columns name the (layer, expert) pair explicitly: an expert index
// means nothing without its layer.

import type { AgreementLens } from './agreement.ts';
import type { CoactivationLens } from './coactivation.ts';
import type { DomainLens } from './domain.ts';
import type { LoadLens } from './load.ts';
import type { LocalityLens } from './locality.ts';
import type { TradeoffLens } from './tradeoff.ts';
import type { VocabLens } from './vocab.ts';

export type Cell = string | number | null;

export interface LensTable {
  columns: string[];
  rows: Cell[][];
}

export function domainTable(lens: DomainLens): LensTable {
  const rows: Cell[][] = [];
  for (const d of lens.domains)
    lens.moeLayers.forEach((layer, m) =>
      d.share[m].forEach((share, e) =>
        rows.push([layer, e, d.name, d.assignments[m][e], share, d.tokenRate[m][e], share * lens.numExperts]),
      ),
    );
  return { columns: ['layer', 'expert', 'domain', 'assignments', 'share', 'token_rate', 'times_fair_share'], rows };
}

export function vocabTable(lens: VocabLens): LensTable {
  const rows: Cell[][] = [];
  for (const L of lens.layers)
    for (const x of L.experts) {
      x.inputs.forEach((t, rank) =>
        rows.push([L.layer, x.expert, 'input', rank + 1, t.token, t.text ?? null, t.count, t.share]),
      );
      x.predicted.forEach((t, rank) =>
        rows.push([L.layer, x.expert, 'predicted', rank + 1, t.token, t.text ?? null, t.count, null]),
      );
    }
  return { columns: ['layer', 'expert', 'kind', 'rank', 'token', 'text', 'count', 'share_of_token'], rows };
}

export function concentrationTable(lens: VocabLens): LensTable {
  const rows: Cell[][] = [];
  for (const L of lens.layers)
    for (const t of L.tokens) rows.push([L.layer, t.token, t.text ?? null, t.count, t.expert, t.concentration]);
  return { columns: ['layer', 'token', 'text', 'count', 'expert', 'concentration'], rows };
}

export function coactivationTable(lens: CoactivationLens): LensTable {
  const rows: Cell[][] = [];
  lens.moeLayers.forEach((layer, m) =>
    lens.matrix[m].forEach((row, a) =>
      row.forEach((p, b) => rows.push([layer, a, b, lens.together[m][a][b], lens.chosen[m][a], p])),
    ),
  );
  return { columns: ['layer', 'expert_a', 'expert_b', 'together', 'chosen_a', 'p_b_given_a'], rows };
}

export function localityTable(lens: LocalityLens): LensTable {
  return {
    columns: ['layer', 'pairs', 'same_first', 'overlap', 'chance_first', 'chance_first_from_load', 'chance_overlap'],
    rows: lens.layers.map((l) => [
      l.layer,
      l.pairs,
      l.sameFirst,
      l.overlap,
      l.chanceFirst,
      l.chanceFirstFromLoad,
      l.chanceOverlap,
    ]),
  };
}

export function loadTable(lens: LoadLens): LensTable {
  const rows: Cell[][] = [];
  for (const l of lens.layers)
    l.load.forEach((f, e) => rows.push([l.layer, e, f, l.meanProb[e], l.cv, l.maxOverMean, l.auxLoss]));
  return {
    columns: ['layer', 'expert', 'load', 'mean_prob', 'layer_cv', 'layer_max_over_mean', 'layer_aux_loss'],
    rows,
  };
}

export function tradeoffTable(lens: TradeoffLens, model = ''): LensTable {
  return {
    columns: ['model', 'mode', 'active_share', 'active_parameters', 'experts_per_layer', 'loss', 'delta_loss', 'dense'],
    rows: lens.points.map((p) => [
      model,
      p.mode,
      p.activeShare,
      p.activeParameters,
      p.expertsPerLayer,
      p.loss,
      p.deltaLoss,
      p.mode === 'dense' ? 1 : 0,
    ]),
  };
}

export function agreementTable(lens: AgreementLens): LensTable {
  return {
    columns: ['layer', 'same_set', 'same_first'],
    rows: [...lens.layers.map((l): Cell[] => [l.layer, l.sameSet, l.sameFirst]), ['all', lens.sameSet, lens.sameFirst]],
  };
}

/** RFC 4180 CSV: a header line, then one line per row; fields with a comma, quote or line break are quoted. */
export function tableToCsv(table: LensTable): string {
  const field = (c: Cell) => {
    if (c === null) return '';
    const s = typeof c === 'number' ? (Number.isFinite(c) ? String(c) : '') : c;
    return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  };
  return [table.columns, ...table.rows].map((row) => row.map(field).join(',')).join('\r\n') + '\r\n';
}

/** The rows as objects keyed by column: what a JSON export holds. */
export function tableToObjects(table: LensTable): Record<string, Cell>[] {
  return table.rows.map((row) => Object.fromEntries(table.columns.map((c, i) => [c, row[i]])));
}
