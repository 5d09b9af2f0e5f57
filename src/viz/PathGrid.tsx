// Token × layer grid: each column is one token's path through the MoE layers; a cell shows the
// first-choice expert (colour + number), with the other chosen experts' numbers beneath.
import { scaleBand } from 'd3';
import type { RunState } from '../state/store.ts';
import { expertColor, inkOn, showToken } from './palette.ts';

interface Props {
  run: RunState;
  layer: number;
  selected: number;
  onSelect(index: number, layer: number): void;
}

const CELL_W = 30;
const CELL_H = 30;
const LABEL_W = 34;
const HEAD_H = 54;

export function PathGrid({ run, layer, selected, onSelect }: Props) {
  const layers = run.trace.moeLayers;
  const n = run.tokenTexts.length;
  const x = scaleBand<number>()
    .domain(Array.from({ length: n }, (_, i) => i))
    .range([LABEL_W, LABEL_W + n * CELL_W])
    .paddingInner(0.08);
  const y = scaleBand<number>()
    .domain(layers.map((_, m) => m))
    .range([HEAD_H, HEAD_H + layers.length * CELL_H])
    .paddingInner(0.08);
  const width = LABEL_W + n * CELL_W + 4;
  const height = HEAD_H + layers.length * CELL_H + 4;
  return (
    <div className="scroll-x">
      <svg
        width={width}
        height={height}
        data-testid="path-grid"
        role="img"
        aria-label="Each token's first-choice expert in every MoE layer"
      >
        {run.tokenTexts.map((text, i) => (
          <text
            key={i}
            transform={`translate(${x(i)! + x.bandwidth() / 2}, ${HEAD_H - 6}) rotate(-60)`}
            className={`axis-label${i === selected ? ' axis-selected' : ''}`}
          >
            {showToken(text).slice(0, 8)}
          </text>
        ))}
        {layers.map((absolute, m) => (
          <text
            key={m}
            x={LABEL_W - 6}
            y={y(m)! + y.bandwidth() / 2}
            textAnchor="end"
            dominantBaseline="middle"
            className={`axis-label${m === layer ? ' axis-selected' : ''}`}
          >
            L{absolute}
          </text>
        ))}
        {layers.map((_, m) =>
          run.trace.layers[m].map((routing, i) => {
            const expert = routing.experts[0];
            const fill = expertColor(expert);
            return (
              <g
                key={`${m}-${i}`}
                transform={`translate(${x(i)}, ${y(m)})`}
                onClick={() => onSelect(i, m)}
                className="grid-cell"
                data-testid="path-cell"
                data-layer={m}
                data-token={i}
                data-expert={expert}
              >
                <title>{`token ${i}, layer ${layers[m]}: experts ${routing.experts.join(', ')}`}</title>
                <rect
                  width={x.bandwidth()}
                  height={y.bandwidth()}
                  fill={fill}
                  fillOpacity={0.35 + 0.65 * routing.weights[0]}
                  stroke={i === selected ? '#111' : 'none'}
                  strokeWidth={2}
                />
                <text
                  x={x.bandwidth() / 2}
                  y={y.bandwidth() / 2 - (routing.experts.length > 1 ? 4 : 0)}
                  textAnchor="middle"
                  dominantBaseline="middle"
                  fill={inkOn(fill)}
                  className="cell-number"
                >
                  {expert}
                </text>
                {routing.experts.length > 1 && (
                  <text
                    x={x.bandwidth() / 2}
                    y={y.bandwidth() - 4}
                    textAnchor="middle"
                    fill={inkOn(fill)}
                    className="cell-small"
                  >
                    {routing.experts.length > 3 ? `+${routing.experts.length - 1}` : routing.experts.slice(1).join(' ')}
                  </text>
                )}
              </g>
            );
          }),
        )}
      </svg>
    </div>
  );
}
