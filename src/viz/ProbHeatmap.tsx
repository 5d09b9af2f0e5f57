// For the selected token: a layer × expert heatmap of router probabilities (greys: probability is
// not an expert identity), chosen experts outlined and marked with their gate weight.
import { scaleBand } from 'd3';
import type { RunState } from '../state/store.ts';
import { expertColor, inkOn, probabilityColor } from './palette.ts';
import { chipAction } from '../state/store.ts';

interface Props {
  run: RunState;
  token: number;
  layer: number;
  numExperts: number;
  onSelectLayer(m: number): void;
  /** Current interventions ("L1E3-,…"), drawn on the cells. */
  iv: string;
  /** Click or Enter on a cell: cycle that expert none → ablated → forced → none. */
  onCycle(layer: number, expert: number): void;
}

const ACTION_NAME = { ablate: 'ablated', force: 'forced' } as const;

const CELL = 40;
const LABEL_W = 36;
const HEAD_H = 26;

export function ProbHeatmap({ run, token, layer, numExperts, onSelectLayer, iv, onCycle }: Props) {
  const layers = run.trace.moeLayers;
  const experts = Array.from({ length: numExperts }, (_, e) => e);
  const x = scaleBand<number>()
    .domain(experts)
    .range([LABEL_W, LABEL_W + numExperts * CELL])
    .paddingInner(0.06);
  const y = scaleBand<number>()
    .domain(layers.map((_, m) => m))
    .range([HEAD_H, HEAD_H + layers.length * CELL])
    .paddingInner(0.06);
  return (
    <div className="scroll-x">
      <svg
        width={LABEL_W + numExperts * CELL + 4}
        height={HEAD_H + layers.length * CELL + 4}
        data-testid="prob-heatmap"
        role="group"
        aria-label={`Router probabilities of token ${token} in every layer; press a cell to ablate, force or release that expert`}
      >
        {experts.map((e) => (
          <g key={e} transform={`translate(${x(e)}, 4)`}>
            <rect width={x.bandwidth()} height={16} rx={3} fill={expertColor(e)} />
            <text x={x.bandwidth() / 2} y={12} textAnchor="middle" fill={inkOn(expertColor(e))} className="cell-small">
              E{e}
            </text>
          </g>
        ))}
        {layers.map((absolute, m) => {
          const routing = run.trace.layers[m][token];
          if (!routing) return null;
          return (
            <g key={m} onClick={() => onSelectLayer(m)}>
              <text
                x={LABEL_W - 6}
                y={y(m)! + y.bandwidth() / 2}
                textAnchor="end"
                dominantBaseline="middle"
                className={`axis-label${m === layer ? ' axis-selected' : ''}`}
              >
                L{absolute}
              </text>
              {experts.map((e) => {
                const p = routing.probs[e];
                const rank = routing.experts.indexOf(e);
                const fill = probabilityColor(p);
                const action = chipAction(iv, absolute, e);
                const cycle = () => onCycle(absolute, e);
                // The accessible name starts with the visible text (WCAG 2.5.3, label in name).
                const visible = `${action === 'ablate' ? '✕' : action === 'force' ? '★' : ''}${rank >= 0 ? '●' : ''}${p.toFixed(2).replace(/^0/, '')}`;
                return (
                  <g
                    key={e}
                    transform={`translate(${x(e)}, ${y(m)})`}
                    data-testid="prob-cell"
                    data-layer={m}
                    data-expert={e}
                    data-prob={p}
                    data-chosen={rank >= 0}
                    data-action={action ?? ''}
                    className="prob-cell"
                    role="button"
                    tabIndex={0}
                    aria-label={`${visible} — layer ${absolute}, expert ${e}: probability ${p.toFixed(3)}${rank >= 0 ? ', chosen' : ''}${action ? `, ${ACTION_NAME[action]}` : ''}. Press to ${action === null ? 'ablate' : action === 'ablate' ? 'force' : 'release'} it.`}
                    onClick={cycle}
                    onKeyDown={(event) => {
                      if (event.key === 'Enter' || event.key === ' ') {
                        event.preventDefault();
                        cycle();
                      }
                    }}
                  >
                    <title>{`layer ${absolute}, expert ${e}: p = ${p.toFixed(4)}${rank >= 0 ? `, chosen, gate weight ${routing.weights[rank].toFixed(4)}` : ''}`}</title>
                    <rect
                      width={x.bandwidth()}
                      height={y.bandwidth()}
                      fill={fill}
                      stroke={rank >= 0 ? expertColor(e) : '#ccc'}
                      strokeWidth={rank >= 0 ? 4 : 1}
                    />
                    {action && (
                      <text
                        x={x.bandwidth() - 3}
                        y={10}
                        textAnchor="end"
                        className="cell-action"
                        fill={action === 'ablate' ? '#b00020' : '#1f6f43'}
                      >
                        {action === 'ablate' ? '✕' : '★'}
                      </text>
                    )}
                    <text
                      x={x.bandwidth() / 2}
                      y={y.bandwidth() / 2 + 4}
                      textAnchor="middle"
                      fill={inkOn(fill)}
                      className="cell-small"
                    >
                      {rank >= 0 ? '●' : ''}
                      {p.toFixed(2).replace(/^0/, '')}
                    </text>
                  </g>
                );
              })}
            </g>
          );
        })}
      </svg>
    </div>
  );
}
