// The sparsity trade-off (DS-MoE's picture): Δloss against dense on the y axis, the share of
// parameters a token reads on the x axis, one curve per model (told apart by marker shape and dash,
// not colour: colour means "expert" elsewhere), each mode's point labelled, dense ringed.
import { extent, line, scaleLinear, symbol, symbolCircle, symbolDiamond, symbolSquare, symbolTriangle } from 'd3';
import { tableToObjects, tradeoffTable, type LensTable, type TradeoffLens } from '../../engine/lens/index.ts';
import { LensFigure } from './LensFigure.tsx';

export interface TradeoffCurve {
  /** The model's name, e.g. "moe-top2". */
  label: string;
  lens: TradeoffLens;
}

export interface TradeoffPlotProps {
  curves: TradeoffCurve[];
  showTable?: boolean;
}

const W = 420;
const H = 260;
const PAD = { left: 52, right: 14, top: 12, bottom: 40 };
const SHAPES = [symbolCircle, symbolSquare, symbolTriangle, symbolDiamond];
const DASHES = ['', '5 3', '2 2', '8 3 2 3'];

export function TradeoffPlot({ curves, showTable }: TradeoffPlotProps) {
  const points = curves.flatMap((c) =>
    c.lens.points.filter((p) => p.deltaLoss !== null && Number.isFinite(p.deltaLoss)),
  );
  const [lo, hi] = extent(points, (p) => p.deltaLoss!) as [number | undefined, number | undefined];
  const x = scaleLinear()
    .domain([0, 1])
    .range([PAD.left, W - PAD.right]);
  const y = scaleLinear()
    .domain([Math.min(lo ?? 0, 0), Math.max(hi ?? 0, 0.01)])
    .range([H - PAD.bottom, PAD.top])
    .nice();
  const table: LensTable = {
    columns: tradeoffTable(curves[0]?.lens ?? { points: [], dense: null, sentence: '' }).columns,
    rows: curves.flatMap((c) => tradeoffTable(c.lens, c.label).rows),
  };
  const sentence = curves
    .map((c) => (curves.length > 1 ? `${c.label}: ${c.lens.sentence}` : c.lens.sentence))
    .join(' ');
  return (
    <LensFigure
      id="lens-tradeoff"
      title="Loss against active parameters"
      sentence={sentence}
      table={table}
      showTable={showTable}
    >
      <svg
        width={W}
        height={H}
        role="img"
        aria-label={`Loss above dense against the share of parameters active, one curve per model: ${curves.map((c) => c.label).join(', ')}`}
      >
        {x.ticks(5).map((t) => (
          <text key={t} x={x(t)} y={H - PAD.bottom + 14} textAnchor="middle" className="cell-small">
            {Math.round(100 * t)}%
          </text>
        ))}
        {y.ticks(5).map((t) => (
          <g key={t}>
            <line x1={PAD.left} x2={W - PAD.right} y1={y(t)} y2={y(t)} stroke={t === 0 ? '#111' : '#ddd'} />
            <text x={PAD.left - 4} y={y(t)} textAnchor="end" dominantBaseline="middle" className="cell-small">
              {t.toFixed(2)}
            </text>
          </g>
        ))}
        <text x={(PAD.left + W - PAD.right) / 2} y={H - 6} textAnchor="middle" className="axis-label">
          parameters active per token
        </text>
        <text
          transform={`translate(12 ${(PAD.top + H - PAD.bottom) / 2}) rotate(-90)`}
          textAnchor="middle"
          className="axis-label"
        >
          Δ loss vs dense (nats)
        </text>
        {curves.map((c, i) => {
          const pts = c.lens.points
            .filter((p) => p.deltaLoss !== null && Number.isFinite(p.deltaLoss))
            .sort((a, b) => a.activeShare - b.activeShare);
          const path = line<(typeof pts)[number]>()
            .x((p) => x(p.activeShare))
            .y((p) => y(p.deltaLoss!))(pts);
          const marker = symbol(SHAPES[i % SHAPES.length], 40)() ?? '';
          return (
            <g key={c.label} data-testid="tradeoff-curve" data-model={c.label}>
              <path d={path ?? ''} fill="none" stroke="#333" strokeDasharray={DASHES[i % DASHES.length]} />
              {pts.map((p) => (
                <g
                  key={p.mode}
                  transform={`translate(${x(p.activeShare)} ${y(p.deltaLoss!)})`}
                  data-testid="tradeoff-point"
                  data-mode={p.mode}
                >
                  <title>{`${c.label} ${p.mode}: ${(100 * p.activeShare).toFixed(1)}% active, loss ${p.loss.toFixed(4)} (${p.deltaLoss! >= 0 ? '+' : ''}${p.deltaLoss!.toFixed(4)})`}</title>
                  <path d={marker} fill={p.mode === 'dense' ? '#fff' : '#333'} stroke="#111" />
                  {p.mode === 'dense' && <circle r={8} fill="none" stroke="#111" />}
                  <text x={6} y={-6} className="cell-small">
                    {p.mode}
                  </text>
                </g>
              ))}
              <g transform={`translate(${W - PAD.right - 110} ${PAD.top + 10 + 14 * i})`}>
                <path d={marker} fill="#333" />
                <text x={10} y={0} dominantBaseline="middle" className="cell-small">
                  {c.label}
                </text>
              </g>
            </g>
          );
        })}
      </svg>
    </LensFigure>
  );
}

/** The plotted points as JSON rows (model, mode, active share, loss, Δloss), for the export menu. */
export function tradeoffRows(curves: TradeoffCurve[]) {
  return curves.flatMap((c) => tableToObjects(tradeoffTable(c.lens, c.label)));
}
