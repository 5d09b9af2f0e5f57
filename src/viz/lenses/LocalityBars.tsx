// Locality per MoE layer: how often consecutive tokens keep their first-choice expert, and how often
// their chosen sets overlap, with the chance levels drawn as ticks on each bar (dashed: uniform
// random; dotted: random given the layer's own load).
import { scaleBand, scaleLinear } from 'd3';
import { localityTable, type LocalityLens } from '../../engine/lens/index.ts';
import { Footnote, footnoteHeight, LensFigure, wrapText } from './LensFigure.tsx';

export interface LocalityBarsProps {
  lens: LocalityLens;
  showTable?: boolean;
}

/** Height of the bars and their layer labels; the footnote goes under them. */
const H = 135;
const PAD = { left: 34, right: 8, top: 10, bottom: 19 };

export function LocalityBars({ lens, showTable }: LocalityBarsProps) {
  const width = PAD.left + PAD.right + lens.layers.length * 70;
  const x = scaleBand<number>()
    .domain(lens.layers.map((_, m) => m))
    .range([PAD.left, width - PAD.right])
    .paddingInner(0.25);
  const note = wrapText(
    'dark: same first choice · light: sets overlap · dashed: random · dotted: random given the load',
    width - PAD.left - 4,
  );
  const inner = scaleBand<string>().domain(['same first', 'overlap']).range([0, x.bandwidth()]).paddingInner(0.1);
  const y = scaleLinear()
    .domain([0, 1])
    .range([H - PAD.bottom, PAD.top]);
  const tick = (x0: number, w: number, v: number, dash: string, label: string) => (
    <line x1={x0 - 2} x2={x0 + w + 2} y1={y(v)} y2={y(v)} stroke="#111" strokeWidth={1.5} strokeDasharray={dash}>
      <title>{label}</title>
    </line>
  );
  return (
    <LensFigure
      id="lens-locality"
      title="Locality"
      sentence={lens.sentence}
      table={localityTable(lens)}
      showTable={showTable}
    >
      <svg
        width={width}
        height={H + footnoteHeight(note)}
        role="img"
        aria-label="Share of consecutive tokens with the same first-choice expert and with overlapping chosen sets, per layer, against chance"
      >
        {y.ticks(4).map((t) => (
          <text key={t} x={PAD.left - 4} y={y(t)} textAnchor="end" dominantBaseline="middle" className="cell-small">
            {Math.round(100 * t)}%
          </text>
        ))}
        {lens.layers.map((l, m) => {
          const x0 = x(m)!;
          const a = x0 + inner('same first')!;
          const b = x0 + inner('overlap')!;
          const w = inner.bandwidth();
          return (
            <g key={m} data-testid="locality-layer" data-layer={l.layer} data-same-first={l.sameFirst}>
              <rect x={a} y={y(l.sameFirst)} width={w} height={y(0) - y(l.sameFirst)} fill="#444">
                <title>{`layer ${l.layer}: same first choice ${(100 * l.sameFirst).toFixed(1)}% of ${l.pairs} pairs`}</title>
              </rect>
              <rect x={b} y={y(l.overlap)} width={w} height={y(0) - y(l.overlap)} fill="#999">
                <title>{`layer ${l.layer}: chosen sets overlap ${(100 * l.overlap).toFixed(1)}%`}</title>
              </rect>
              {tick(a, w, l.chanceFirst, '4 3', `chance 1/E = ${(100 * l.chanceFirst).toFixed(1)}%`)}
              {tick(
                a,
                w,
                l.chanceFirstFromLoad,
                '1 2',
                `chance given the load = ${(100 * l.chanceFirstFromLoad).toFixed(1)}%`,
              )}
              {tick(b, w, l.chanceOverlap, '4 3', `random sets overlap ${(100 * l.chanceOverlap).toFixed(1)}%`)}
              <text x={x0 + x.bandwidth() / 2} y={H - PAD.bottom + 12} textAnchor="middle" className="axis-label">
                layer {l.layer}
              </text>
            </g>
          );
        })}
        <Footnote x={PAD.left} top={H} lines={note} />
      </svg>
    </LensFigure>
  );
}
