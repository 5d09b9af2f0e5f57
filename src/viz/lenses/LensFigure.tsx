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

/** Font size in px of the figures' small text, `.cell-small` in app.css (a unit test keeps the two equal). */
export const SMALL_FONT_PX = 9;
/** Baseline to baseline of a footnote's lines, px. */
const NOTE_LINE_PX = 11;

// Advance widths (hundredths of an em, rounded up) of ASCII 32…126 in DejaVu Sans, measured in
// Chromium: the widest of the faces `system-ui, sans-serif` falls back to, so text that fits by this
// measure fits in the narrower ones (Segoe UI, SF, Roboto, Cantarell) too. The SVG is laid out before
// it is on a page (and in Node for the tests), so it cannot ask the browser.
const ASCII_EM = [
  32, 41, 46, 84, 64, 96, 78, 28, 40, 40, 50, 84, 32, 37, 32, 34, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 34, 34, 84,
  84, 84, 54, 100, 71, 69, 70, 78, 64, 58, 78, 76, 30, 30, 66, 56, 87, 75, 79, 61, 79, 70, 64, 60, 74, 69, 99, 69, 62,
  69, 40, 34, 40, 84, 50, 50, 62, 64, 55, 64, 62, 35, 64, 64, 28, 28, 58, 28, 98, 64, 62, 64, 64, 40, 53, 40, 64, 60,
  82, 60, 60, 53, 64, 34, 64, 84,
];
const OTHER_EM: Record<string, number> = { 'Δ': 69, '·': 32, '×': 84, '—': 100, '–': 50, '’': 32, '≈': 84, 'σ': 64 };

/** Width in px of `text` set at `fontPx` in the widest likely sans-serif face (unknown characters count 1 em). */
export function textWidth(text: string, fontPx = SMALL_FONT_PX): number {
  let hundredths = 0;
  for (const ch of text) {
    const c = ch.codePointAt(0)!;
    hundredths += c >= 32 && c < 127 ? ASCII_EM[c - 32] : (OTHER_EM[ch] ?? 100);
  }
  return (hundredths * fontPx) / 100;
}

/**
 * `text` broken at spaces into lines no wider than `maxWidth` px at `fontPx` (textWidth); a word
 * wider than the whole line is cut between characters, so no line is ever wider than `maxWidth`.
 */
export function wrapText(text: string, maxWidth: number, fontPx = SMALL_FONT_PX): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/).filter(Boolean)) {
    const joined = line ? `${line} ${word}` : word;
    if (textWidth(joined, fontPx) <= maxWidth) {
      line = joined;
      continue;
    }
    if (line) lines.push(line);
    line = '';
    for (const ch of word) {
      if (line && textWidth(line + ch, fontPx) > maxWidth) {
        lines.push(line);
        line = '';
      }
      line += ch;
    }
  }
  if (line) lines.push(line);
  return lines;
}

/** Height in px a footnote of `lines` takes, from the top given to Footnote to below its last line. */
export function footnoteHeight(lines: readonly string[]): number {
  return lines.length === 0 ? 0 : lines.length * NOTE_LINE_PX + 3;
}

/**
 * The small explanatory text under a figure's marks, already wrapped (wrapText) to the width the
 * figure leaves it, so the SVG on the page and its SVG/PNG export show the whole sentence; the
 * figure makes itself footnoteHeight(lines) taller.
 */
export function Footnote({ x, top, lines }: { x: number; top: number; lines: readonly string[] }) {
  return (
    <text x={x} y={top + SMALL_FONT_PX} className="cell-small" data-testid="lens-footnote">
      {lines.map((l, i) => (
        <tspan key={i} x={x} dy={i === 0 ? 0 : NOTE_LINE_PX}>
          {l}
        </tspan>
      ))}
    </text>
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
