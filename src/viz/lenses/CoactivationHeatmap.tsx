// Co-activation at one MoE layer: row a, column b is P(b chosen | a chosen). Greys for probability;
// the diagonal (always 1) is left blank so it does not swamp the scale.
import { interpolateGreys, scaleBand, scaleSequential } from 'd3';
import { coactivationTable, type CoactivationLens } from '../../engine/lens/index.ts';
import { expertColor, inkOn } from '../palette.ts';
import { ExpertTick, Footnote, footnoteHeight, LensFigure, rowsWhere, wrapText } from './LensFigure.tsx';

export interface CoactivationHeatmapProps {
  lens: CoactivationLens;
  layerIndex: number;
  showTable?: boolean;
}

const LEFT = 28;
const TOP = 28;

export function CoactivationHeatmap({ lens, layerIndex, showTable }: CoactivationHeatmapProps) {
  const E = lens.numExperts;
  const layer = lens.moeLayers[layerIndex];
  const cell = E <= 16 ? 30 : Math.max(8, Math.floor(480 / E));
  const size = E * cell;
  const width = LEFT + size + 8;
  const note = wrapText(
    `% of the row expert's tokens that also chose the column expert; chance ${(100 * lens.chance[layerIndex]).toFixed(0)}%`,
    width - LEFT - 4,
  );
  const x = scaleBand<number>()
    .domain(Array.from({ length: E }, (_, e) => e))
    .range([LEFT, LEFT + size]);
  const y = scaleBand<number>()
    .domain(x.domain())
    .range([TOP, TOP + size]);
  const off = lens.matrix[layerIndex].flatMap((row, a) => row.filter((_, b) => b !== a));
  const colour = scaleSequential(interpolateGreys).domain([0, Math.max(...off, lens.chance[layerIndex] * 2, 1e-9)]);
  return (
    <LensFigure
      id="lens-coactivation"
      title={`Co-activation, layer ${layer}`}
      sentence={lens.sentence}
      table={rowsWhere(coactivationTable(lens), 'layer', layer)}
      showTable={showTable}
    >
      <svg
        width={width}
        height={TOP + size + 6 + footnoteHeight(note)}
        role="img"
        aria-label={`P(column expert chosen | row expert chosen) at layer ${layer}; random sets of the same size give ${(100 * lens.chance[layerIndex]).toFixed(0)}%`}
      >
        {x.domain().map((e) => (
          <g key={e}>
            <ExpertTick x={x(e)! + cell / 2} y={TOP - 12} expert={e} fill={expertColor(e)} />
            <ExpertTick x={LEFT - 12} y={y(e)! + cell / 2} expert={e} fill={expertColor(e)} />
          </g>
        ))}
        {lens.matrix[layerIndex].map((row, a) =>
          row.map((p, b) => {
            if (a === b)
              return (
                <rect
                  key={`${a}-${b}`}
                  x={x(b)}
                  y={y(a)}
                  width={cell - 1}
                  height={cell - 1}
                  fill="none"
                  stroke="#bbb"
                />
              );
            const fill = colour(p);
            return (
              <g key={`${a}-${b}`} data-testid="coactivation-cell" data-a={a} data-b={b} data-p={p}>
                <title>{`P(expert ${b} | expert ${a}) at layer ${layer}: ${(100 * p).toFixed(1)}% (expert ${a} chosen ${lens.chosen[layerIndex][a]} times)`}</title>
                <rect x={x(b)} y={y(a)} width={cell - 1} height={cell - 1} fill={fill} />
                {cell >= 24 && (
                  <text
                    x={x(b)! + cell / 2}
                    y={y(a)! + cell / 2}
                    textAnchor="middle"
                    dominantBaseline="middle"
                    className="cell-small"
                    fill={inkOn(fill)}
                  >
                    {Math.round(100 * p)}
                  </text>
                )}
              </g>
            );
          }),
        )}
        <Footnote x={LEFT} top={TOP + size + 6} lines={note} />
      </svg>
    </LensFigure>
  );
}
