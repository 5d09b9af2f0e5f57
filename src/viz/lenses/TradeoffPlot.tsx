// The sparsity trade-off (DS-MoE's picture): Δloss against dense on the y axis, the share of
// parameters a token reads on the x axis, one curve per model (told apart by marker shape and dash,
// not colour: colour means "expert" elsewhere), dense ringed. Modes crowd (topk:3…7 and the low
// thresholds of a model all sit near Δ 0), so labels are placed one by one, most telling first
// (labelPriority), where they hit nothing already drawn and sit nearest their own point (labels.ts);
// a label with no such spot is left off and a footnote says how many: the point keeps its tooltip and
// every point stays in the table twin and the CSV.
import { extent, line, scaleLinear, symbol, symbolCircle, symbolDiamond, symbolSquare, symbolTriangle } from 'd3';
import {
  TRADEOFF_CLOSE,
  tableToObjects,
  tradeoffTable,
  type LensTable,
  type TradeoffLens,
  type TradeoffPoint,
} from '../../engine/lens/index.ts';
import { Footnote, footnoteHeight, LensFigure, textWidth, wrapText } from './LensFigure.tsx';
import { type Box, type LabelRequest, type Mark, placeLabels } from './labels.ts';

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
/** Half the size of a point's marker (symbol area 40), and the radius of dense's ring. */
const MARK_R = 4;
const RING_R = 8;
const LEGEND_X = W - PAD.right - 110;
const LEGEND_Y = PAD.top + 10;

const finitePoints = (lens: TradeoffLens) =>
  lens.points.filter((p) => p.deltaLoss !== null && Number.isFinite(p.deltaLoss));
const pointId = (model: string, mode: string) => `${model}|${mode}`;

export interface LabelOrder {
  model: string;
  point: TradeoffPoint;
  /** One of the points that must be labelled (dense, sparsest, closest to dense, worst). */
  key: boolean;
}

/**
 * The order labels are placed in, so crowding drops the least telling ones: every curve's dense, then
 * every curve's sparsest mode within TRADEOFF_CLOSE nats of dense, its sparsest mode (the two its
 * sentence names), its worst mode (these four are `key`: they may take a leader line); then the rest,
 * curve by curve from sparse to dense.
 */
export function labelPriority(curves: readonly TradeoffCurve[]): LabelOrder[] {
  const keyed: LabelOrder[][] = [[], [], [], []];
  const rest: LabelOrder[] = [];
  for (const c of curves) {
    const pts = finitePoints(c.lens).sort((a, b) => a.activeShare - b.activeShare);
    const dense = pts.find((p) => p.mode === 'dense');
    const sparse = pts.filter((p) => p !== dense);
    const close = sparse.find((p) => p.deltaLoss! <= TRADEOFF_CLOSE);
    const worst = sparse.reduce<TradeoffPoint | undefined>(
      (a, p) => (!a || p.deltaLoss! > a.deltaLoss! ? p : a),
      undefined,
    );
    const keys = [dense, close, sparse[0], worst];
    keys.forEach((p, rank) => {
      if (p && keys.indexOf(p) === rank) keyed[rank].push({ model: c.label, point: p, key: true });
    });
    rest.push(...pts.filter((p) => !keys.includes(p)).map((point) => ({ model: c.label, point, key: false })));
  }
  return [...keyed.flat(), ...rest];
}

export function TradeoffPlot({ curves, showTable }: TradeoffPlotProps) {
  const points = curves.flatMap((c) => finitePoints(c.lens));
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
  // Labels keep off every mark and the legend; the same mode of two models with overlapping marks
  // (both denses, topk:7 when both are about as good as dense) shares one label.
  const at = (p: TradeoffPoint) => [x(p.activeShare), y(p.deltaLoss!)] as const;
  const marks: Mark[] = points.map((p) => {
    const [px, py] = at(p);
    return { x: px, y: py, r: p.mode === 'dense' ? RING_R : MARK_R };
  });
  const legend: Box = {
    x0: LEGEND_X - 5,
    y0: LEGEND_Y - 7,
    x1: LEGEND_X + 10 + Math.max(0, ...curves.map((c) => textWidth(c.label))),
    y1: LEGEND_Y + 14 * Math.max(0, curves.length - 1) + 7,
  };
  const requests: LabelRequest[] = [];
  const sharedWith = new Map<string, string>();
  for (const { model, point, key } of labelPriority(curves)) {
    const [px, py] = at(point);
    const r = point.mode === 'dense' ? RING_R : MARK_R;
    const twin = requests.find((q) => q.text === point.mode && Math.hypot(q.x - px, q.y - py) < Math.max(q.r, r));
    if (twin) {
      sharedWith.set(pointId(model, point.mode), twin.id);
      twin.also = [...(twin.also ?? []), { x: px, y: py, r }];
    } else
      requests.push({
        id: pointId(model, point.mode),
        text: point.mode,
        x: px,
        y: py,
        r,
        leader: key,
      });
  }
  const labels = placeLabels(requests, marks, [legend], { x0: PAD.left, y0: 0, x1: W, y1: H - PAD.bottom });
  const labelled = new Set(labels.map((l) => l.id));
  const isLabelled = (model: string, mode: string) => {
    const id = pointId(model, mode);
    return labelled.has(sharedWith.get(id) ?? id);
  };
  const unlabelled =
    points.length -
    curves.reduce((n, c) => n + finitePoints(c.lens).filter((p) => isLabelled(c.label, p.mode)).length, 0);
  const note =
    unlabelled > 0
      ? wrapText(
          `${unlabelled} crowded ${unlabelled === 1 ? 'point is' : 'points are'} not labelled: hover a point for its mode; the table and CSV list every point.`,
          W - PAD.left - 4,
        )
      : [];
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
        height={H + footnoteHeight(note)}
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
          const pts = finitePoints(c.lens).sort((a, b) => a.activeShare - b.activeShare);
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
                  data-labelled={isLabelled(c.label, p.mode)}
                >
                  <title>{`${c.label} ${p.mode}: ${(100 * p.activeShare).toFixed(1)}% active, loss ${p.loss.toFixed(4)} (${p.deltaLoss! >= 0 ? '+' : ''}${p.deltaLoss!.toFixed(4)})`}</title>
                  <path d={marker} fill={p.mode === 'dense' ? '#fff' : '#333'} stroke="#111" />
                  {p.mode === 'dense' && <circle r={RING_R} fill="none" stroke="#111" />}
                </g>
              ))}
              <g transform={`translate(${LEGEND_X} ${LEGEND_Y + 14 * i})`}>
                <path d={marker} fill="#333" />
                <text x={10} y={0} dominantBaseline="middle" className="cell-small">
                  {c.label}
                </text>
              </g>
            </g>
          );
        })}
        {labels.map((l) =>
          l.leader ? (
            <line
              key={`${l.id}-leader`}
              x1={l.leader.x1}
              x2={l.leader.x2}
              y1={l.leader.y1}
              y2={l.leader.y2}
              stroke="#777"
            />
          ) : null,
        )}
        {labels.map((l) => (
          <text
            key={l.id}
            x={l.x}
            y={l.y}
            textAnchor={l.anchor}
            className="cell-small"
            data-testid="tradeoff-label"
            data-point={l.id}
            stroke="#fff"
            strokeWidth={3}
            strokeLinejoin="round"
            paintOrder="stroke"
          >
            {l.text}
          </text>
        ))}
        {note.length > 0 && <Footnote x={PAD.left} top={H} lines={note} />}
      </svg>
    </LensFigure>
  );
}

/** The plotted points as JSON rows (model, mode, active share, loss, Δloss), for the export menu. */
export function tradeoffRows(curves: TradeoffCurve[]) {
  return curves.flatMap((c) => tableToObjects(tradeoffTable(c.lens, c.label)));
}
