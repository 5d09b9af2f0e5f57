// Load balance per MoE layer: each expert's share of the routing assignments (its identity colour,
// its number under the bar) against the fair share 1/E, with the layer's CV, max/mean and Switch
// auxiliary loss written under it.
import { max, scaleBand, scaleLinear } from 'd3';
import { loadTable, type LoadLens } from '../../engine/lens/index.ts';
import { expertColor } from '../palette.ts';
import { Footnote, footnoteHeight, LensFigure, wrapText } from './LensFigure.tsx';

export interface LoadBarsProps {
  lens: LoadLens;
  showTable?: boolean;
}

const W = 210;
/** Height of the bars and the expert numbers; each layer's footnote goes under them. */
const H = 115;
const PAD = { left: 30, right: 6, top: 14, bottom: 19 };

export function LoadBars({ lens, showTable }: LoadBarsProps) {
  const E = lens.numExperts;
  const uniform = 1 / E;
  const x = scaleBand<number>()
    .domain(Array.from({ length: E }, (_, e) => e))
    .range([PAD.left, W - PAD.right])
    .paddingInner(0.15);
  const y = scaleLinear()
    .domain([0, Math.max(2 * uniform, max(lens.layers.flatMap((l) => l.load)) ?? 0)])
    .range([H - PAD.bottom, PAD.top])
    .nice();
  const notes = lens.layers.map((l) =>
    wrapText(
      `CV ${l.cv.toFixed(2)} · max/mean ${l.maxOverMean.toFixed(2)} · aux ${l.auxLoss.toFixed(3)}`,
      W - PAD.left - 4,
    ),
  );
  // Every layer as tall as the tallest footnote needs, so the small multiples line up.
  const height = H + Math.max(0, ...notes.map(footnoteHeight));
  return (
    <LensFigure
      id="lens-load"
      title="Load balance"
      sentence={lens.sentence}
      table={loadTable(lens)}
      showTable={showTable}
    >
      <div className="lens-multiples">
        {lens.layers.map((l, m) => (
          <svg
            key={l.layer}
            width={W}
            height={height}
            role="img"
            aria-label={`Expert load at layer ${l.layer}: coefficient of variation ${l.cv.toFixed(2)}, Switch auxiliary loss ${l.auxLoss.toFixed(3)}`}
          >
            <text x={PAD.left} y={10} className="axis-label">
              layer {l.layer}
            </text>
            {y.ticks(3).map((t) => (
              <text key={t} x={PAD.left - 4} y={y(t)} textAnchor="end" dominantBaseline="middle" className="cell-small">
                {Math.round(100 * t)}%
              </text>
            ))}
            {l.load.map((f, e) => (
              <g key={e} data-testid="lens-load-bar" data-layer={l.layer} data-expert={e} data-load={f}>
                <title>{`expert ${e} of layer ${l.layer}: ${(100 * f).toFixed(1)}% of assignments, mean probability ${(100 * l.meanProb[e]).toFixed(1)}%`}</title>
                <rect x={x(e)} y={y(f)} width={x.bandwidth()} height={y(0) - y(f)} fill={expertColor(e)} />
                <text x={x(e)! + x.bandwidth() / 2} y={H - PAD.bottom + 10} textAnchor="middle" className="cell-small">
                  {e}
                </text>
              </g>
            ))}
            <line
              x1={PAD.left}
              x2={W - PAD.right}
              y1={y(uniform)}
              y2={y(uniform)}
              className="uniform-line"
              stroke="#111"
              strokeDasharray="4 3"
            />
            <Footnote x={PAD.left} top={H} lines={notes[m]} />
          </svg>
        ))}
      </div>
    </LensFigure>
  );
}
