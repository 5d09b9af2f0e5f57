// Expert load per MoE layer: the share of routing assignments each expert received, against the
// uniform line 1/E (a balanced router's bars all touch it).
import { max, scaleBand, scaleLinear } from 'd3';
import type { RunState } from '../state/store.ts';
import { expertLoad } from '../state/derive.ts';
import { expertColor } from './palette.ts';

interface Props {
  run: RunState;
  numExperts: number;
  layer: number;
  onSelectLayer(m: number): void;
}

const W = 220;
const H = 110;
const PAD = { left: 30, right: 6, top: 16, bottom: 18 };

export function ExpertLoad({ run, numExperts, layer, onSelectLayer }: Props) {
  const loads = run.trace.moeLayers.map((_, m) => expertLoad(run.trace, m, numExperts));
  const uniform = 1 / numExperts;
  const top = Math.max(uniform * 2, max(loads.flat()) ?? 0);
  const x = scaleBand<number>()
    .domain(Array.from({ length: numExperts }, (_, e) => e))
    .range([PAD.left, W - PAD.right])
    .paddingInner(0.15);
  const y = scaleLinear()
    .domain([0, top])
    .range([H - PAD.bottom, PAD.top])
    .nice();
  return (
    <div className="load-grid" data-testid="expert-load">
      {loads.map((shares, m) => (
        <svg
          key={m}
          width={W}
          height={H}
          className={m === layer ? 'load-selected' : undefined}
          onClick={() => onSelectLayer(m)}
          role="img"
          aria-label={`Expert load at layer ${run.trace.moeLayers[m]}`}
        >
          <text x={PAD.left} y={11} className="axis-label">
            layer {run.trace.moeLayers[m]} · {run.tokenIds.length} tokens
          </text>
          {y.ticks(3).map((t) => (
            <text key={t} x={PAD.left - 4} y={y(t)} textAnchor="end" dominantBaseline="middle" className="cell-small">
              {Math.round(t * 100)}%
            </text>
          ))}
          {shares.map((share, e) => (
            <g key={e} data-testid="load-bar" data-layer={m} data-expert={e} data-share={share}>
              <title>{`expert ${e}: ${(share * 100).toFixed(1)}% of assignments`}</title>
              <rect x={x(e)} y={y(share)} width={x.bandwidth()} height={y(0) - y(share)} fill={expertColor(e)} />
              <text x={x(e)! + x.bandwidth() / 2} y={H - 5} textAnchor="middle" className="cell-small">
                {e}
              </text>
            </g>
          ))}
          <line x1={PAD.left} x2={W - PAD.right} y1={y(uniform)} y2={y(uniform)} className="uniform-line" />
          <text x={W - PAD.right} y={y(uniform) - 3} textAnchor="end" className="cell-small">
            1/E
          </text>
        </svg>
      ))}
    </div>
  );
}
