// Per-token loss (−log p, nats) as grey bars, with the loss under the previous routing mode as a
// tick: bars above their tick got worse with the new mode, below got better.
import { max, scaleLinear } from 'd3';
import type { RunState } from '../state/store.ts';

interface Props {
  run: RunState;
  selected: number;
  onSelect(index: number): void;
}

const BAR = 14;
const H = 60;

export function LossStrip({ run, selected, onSelect }: Props) {
  const losses = run.logProbs.map((lp) => (lp === null ? null : -lp));
  const previous = run.previousLogProbs?.map((lp) => (lp === null ? null : -lp)) ?? null;
  const top = max([...losses, ...(previous ?? [])].map((v) => v ?? 0)) ?? 1;
  const y = scaleLinear()
    .domain([0, top || 1])
    .range([H - 2, 4]);
  return (
    <div className="scroll-x">
      <svg
        width={losses.length * BAR + 2}
        height={H}
        data-testid="loss-strip"
        role="img"
        aria-label="Loss of every token"
      >
        {losses.map((loss, i) => (
          <g key={i} transform={`translate(${i * BAR}, 0)`} onClick={() => onSelect(i)}>
            <title>
              {loss === null
                ? 'first token: nothing predicts it'
                : `token ${i}: loss ${loss.toFixed(3)}${previous?.[i] != null ? ` (was ${previous[i]!.toFixed(3)} under ${run.previousRouting})` : ''}`}
            </title>
            <rect width={BAR - 2} height={H} fill={i === selected ? '#e8e8e8' : 'transparent'} />
            {loss !== null && <rect x={1} y={y(loss)} width={BAR - 4} height={y(0) - y(loss)} fill="#666" />}
            {previous?.[i] != null && (
              <line x1={0} x2={BAR - 2} y1={y(previous[i]!)} y2={y(previous[i]!)} stroke="#000" strokeWidth={2} />
            )}
          </g>
        ))}
      </svg>
    </div>
  );
}
