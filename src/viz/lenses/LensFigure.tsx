// The frame every lens view shares: a figure whose caption is the lens's one-sentence reading, the
// marks, and a table twin with the same numbers as the CSV/JSON export (visually hidden unless
// `showTable`), so screen readers and keyboard users read exactly what the picture shows.
import type { ReactNode } from 'react';
import type { Cell, LensTable } from '../../engine/lens/index.ts';

export function formatCell(c: Cell): string {
  if (c === null) return '—';
  if (typeof c === 'string') return c;
  if (!Number.isFinite(c)) return '—';
  return Number.isInteger(c) ? String(c) : c.toPrecision(4);
}

/** The rows of `table` whose `column` equals `value` (a figure showing one layer gets that layer's rows). */
export function rowsWhere(table: LensTable, column: string, value: Cell): LensTable {
  const i = table.columns.indexOf(column);
  return { columns: table.columns, rows: table.rows.filter((r) => r[i] === value) };
}

interface TableTwinProps {
  table: LensTable;
  caption: string;
  visible?: boolean;
}

export function TableTwin({ table, caption, visible = false }: TableTwinProps) {
  return (
    <table className={visible ? 'lens-table' : 'lens-table sr-only'} data-testid="lens-table">
      <caption>{caption}</caption>
      <thead>
        <tr>
          {table.columns.map((c) => (
            <th key={c} scope="col">
              {c.replace(/_/g, ' ')}
            </th>
          ))}
        </tr>
      </thead>
      <tbody>
        {table.rows.map((row, i) => (
          <tr key={i}>
            {row.map((c, j) =>
              j === 0 ? (
                <th key={j} scope="row">
                  {formatCell(c)}
                </th>
              ) : (
                <td key={j}>{formatCell(c)}</td>
              ),
            )}
          </tr>
        ))}
      </tbody>
    </table>
  );
}

interface LensFigureProps {
  /** data-testid of the figure, e.g. "lens-domain". */
  id: string;
  title: string;
  sentence: string;
  table: LensTable;
  showTable?: boolean;
  children: ReactNode;
}

export function LensFigure({ id, title, sentence, table, showTable, children }: LensFigureProps) {
  return (
    <figure className="lens-figure" data-testid={id}>
      <figcaption>
        <strong>{title}.</strong> {sentence}
      </figcaption>
      {children}
      <TableTwin table={table} caption={`${title}: the numbers of the figure`} visible={showTable} />
    </figure>
  );
}

/** An expert's number on its identity colour, the way every view names an expert. */
export function ExpertTick({ x, y, expert, fill }: { x: number; y: number; expert: number; fill: string }) {
  return (
    <g>
      <rect x={x - 8} y={y - 7} width={16} height={14} rx={3} fill={fill} />
      <text x={x} y={y} textAnchor="middle" dominantBaseline="middle" className="cell-small" fill="#fff">
        {expert}
      </text>
    </g>
  );
}
