// The sparsity trade-off (DS-MoE's picture): Δloss against dense on the y axis, the share of
// parameters a token reads on the x axis, one curve per model (told apart by marker shape and dash,
// not colour: colour means "expert" elsewhere), dense ringed. Modes crowd (topk:3…7 and the low
// thresholds of a model all sit near Δ 0), so labels are placed one by one, most telling first
// (labelPriority), where they hit nothing already drawn and sit nearest their own point (placeLabels);
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
import { Footnote, footnoteHeight, LensFigure, SMALL_FONT_PX, textWidth, wrapText } from './LensFigure.tsx';

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

/** An axis-aligned box in SVG px. */
export interface Box {
  x0: number;
  y0: number;
  x1: number;
  y1: number;
}

export const boxesIntersect = (a: Box, b: Box) => a.x0 < b.x1 && b.x0 < a.x1 && a.y0 < b.y1 && b.y0 < a.y1;
const boxInside = (a: Box, b: Box) => a.x0 >= b.x0 && a.x1 <= b.x1 && a.y0 >= b.y0 && a.y1 <= b.y1;

/** A point's mark on the plot: its centre and half its size (dense's ring is larger). */
export interface Mark {
  x: number;
  y: number;
  r: number;
}

export interface LabelRequest extends Mark {
  id: string;
  text: string;
  /** May stand away from its point, tied to it by a leader line (the labels that must show). */
  leader?: boolean;
  /** Marks of other points this label also names (the same mode of another model, drawn on top of this one). */
  also?: readonly Mark[];
}

export interface PlacedLabel {
  id: string;
  text: string;
  /** Where the <text> goes: x with textAnchor `anchor`, y its baseline. */
  x: number;
  y: number;
  anchor: 'start' | 'middle' | 'end';
  /** The space the text takes at its widest likely face (textWidth), plus 1 px all round. */
  box: Box;
  /** The line from the mark to the label, when the label stands away from its point. */
  leader?: { x1: number; y1: number; x2: number; y2: number };
}

/** How much further than next to the point a leader-lined label may stand, px, nearest first. */
const LEADER_STEPS = [10, 22, 34, 46];

/** How much nearer (px) a label must be to its own mark than to any other, unless it has a leader. */
const NEAR_MARGIN = 2;

const distanceToBox = (x: number, y: number, b: Box) =>
  Math.hypot(Math.max(b.x0 - x, 0, x - b.x1), Math.max(b.y0 - y, 0, y - b.y1));

/** Whether the segment (x1, y1)–(x2, y2) passes through the inside of `b` (Liang–Barsky clipping). */
export function segmentHitsBox(s: { x1: number; y1: number; x2: number; y2: number }, b: Box): boolean {
  const dx = s.x2 - s.x1;
  const dy = s.y2 - s.y1;
  let t0 = 0;
  let t1 = 1;
  for (const [p, q] of [
    [-dx, s.x1 - b.x0],
    [dx, b.x1 - s.x1],
    [-dy, s.y1 - b.y0],
    [dy, b.y1 - s.y1],
  ]) {
    if (p === 0) {
      if (q <= 0) return false;
    } else {
      const t = q / p;
      if (p < 0) t0 = Math.max(t0, t);
      else t1 = Math.min(t1, t);
      if (t0 >= t1) return false;
    }
  }
  return true;
}

/**
 * Labels placed greedily in the order asked. Each tries eight spots next to its point (upper right
 * first, then right, lower right, the same on the left, above, below), taking one only where its own
 * mark is the nearest to the label, so no label reads as another point's; a request with `leader`
 * then tries spots further above or below (LEADER_STEPS, straight over the point, then to its right,
 * then its left) joined to the point by a line. A spot must lie in `bounds` and meet no mark, no
 * obstacle (the legend), no label and no leader line already placed, and its leader none of those
 * either; a label with no free spot is left off. Same input, same output; no two returned boxes
 * intersect.
 */
export function placeLabels(
  requests: readonly LabelRequest[],
  marks: readonly Mark[],
  obstacles: readonly Box[],
  bounds: Box,
  fontPx = SMALL_FONT_PX,
): PlacedLabel[] {
  const ascent = 0.8 * fontPx;
  const descent = 0.25 * fontPx;
  const placed: PlacedLabel[] = [];
  const taken: Box[] = [
    ...marks.map((m) => ({ x0: m.x - m.r, y0: m.y - m.r, x1: m.x + m.r, y1: m.y + m.r })),
    ...obstacles,
  ];
  const leaders: NonNullable<PlacedLabel['leader']>[] = [];
  const free = (b: Box) => !taken.some((o) => boxesIntersect(o, b)) && !leaders.some((l) => segmentHitsBox(l, b));
  for (const q of requests) {
    const w = textWidth(q.text, fontPx);
    const g = q.r + 2;
    const own = (m: Mark) => [q, ...(q.also ?? [])].some((o) => Math.abs(m.x - o.x) < 0.5 && Math.abs(m.y - o.y) < 0.5);
    const nearestIsOwn = (b: Box) => {
      const mine = distanceToBox(q.x, q.y, b) - q.r;
      return marks.every((m) => own(m) || distanceToBox(m.x, m.y, b) - m.r >= mine + NEAR_MARGIN);
    };
    const mid = q.y + (ascent - descent) / 2; // baseline that centres the text on the point
    const spots: [number, number, PlacedLabel['anchor'], boolean][] = [
      [q.x + g, q.y - g, 'start', false],
      [q.x + g, mid, 'start', false],
      [q.x + g, q.y + g + ascent - descent, 'start', false],
      [q.x - g, q.y - g, 'end', false],
      [q.x - g, mid, 'end', false],
      [q.x - g, q.y + g + ascent - descent, 'end', false],
      [q.x, q.y - q.r - 1 - descent, 'middle', false],
      [q.x, q.y + q.r + 1 + ascent, 'middle', false],
    ];
    if (q.leader)
      for (const d of LEADER_STEPS)
        for (const side of [0, 1, -1])
          for (const up of [true, false]) {
            const x = q.x + side * (w / 2 + 4);
            spots.push([x, up ? q.y - q.r - d - 1 - descent : q.y + q.r + d + 1 + ascent, 'middle', true]);
          }
    for (const [x, y, anchor, far] of spots) {
      const left = anchor === 'start' ? x : anchor === 'end' ? x - w : x - w / 2;
      const box = { x0: left - 1, y0: y - ascent - 1, x1: left + w + 1, y1: y + descent + 1 };
      if (!boxInside(box, bounds) || !free(box)) continue;
      if (!far && !nearestIsOwn(box)) continue;
      let leader: PlacedLabel['leader'];
      if (far) {
        // From just off the mark to the nearest point of the label's box; only the part clear of
        // the mark's own square is checked against the rest.
        const cx = Math.min(Math.max(q.x, box.x0), box.x1);
        const cy = Math.min(Math.max(q.y, box.y0), box.y1);
        const len = Math.hypot(cx - q.x, cy - q.y);
        const at = (t: number) => [q.x + ((cx - q.x) * t) / len, q.y + ((cy - q.y) * t) / len];
        const [sx, sy] = at(q.r + 1);
        const [tx, ty] = at(q.r * Math.SQRT2 + 0.5);
        const clear = { x1: tx, y1: ty, x2: cx, y2: cy };
        if (taken.some((o) => segmentHitsBox(clear, o))) continue;
        leader = { x1: sx, y1: sy, x2: cx, y2: cy };
        leaders.push(leader);
      }
      placed.push({ id: q.id, text: q.text, x, y, anchor, box, leader });
      taken.push(box);
      break;
    }
  }
  return placed;
}

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
