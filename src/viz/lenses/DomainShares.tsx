// Domain specialisation at one MoE layer: rows are domains, columns experts, each cell the share of
// that domain's (token, chosen expert) assignments going to the expert. Grey intensity is the share
// (greys mean "amount" in every view); cells above the fair share 1/E are printed bold; the most
// specialised (layer, expert, domain) is outlined.
import { max, scaleBand, scaleSequential, interpolateGreys } from 'd3';
import { domainTable, type DomainLens } from '../../engine/lens/index.ts';
import { expertColor, inkOn } from '../palette.ts';
import { ExpertTick, Footnote, footnoteHeight, LensFigure, rowsWhere, wrapText } from './LensFigure.tsx';

export interface DomainSharesProps {
  lens: DomainLens;
  /** Position in lens.moeLayers of the layer to draw. */
  layerIndex: number;
  showTable?: boolean;
}

const CELL_H = 24;
const LEFT = 90;
const TOP = 22;

export function DomainShares({ lens, layerIndex, showTable }: DomainSharesProps) {
  const E = lens.numExperts;
  const layer = lens.moeLayers[layerIndex];
  const width = LEFT + Math.max(E * 38, 200);
  const noteTop = TOP + lens.domains.length * CELL_H + 6;
  const note = wrapText(
    `% of assignments; bold = above the fair share ${(100 / E).toFixed(1)}%; divergence between domains ${(100 * lens.divergence[layerIndex]).toFixed(0)}%`,
    width - LEFT - 4,
  );
  const height = noteTop + footnoteHeight(note);
  const x = scaleBand<number>()
    .domain(Array.from({ length: E }, (_, e) => e))
    .range([LEFT, width - 4])
    .paddingInner(0.06);
  const y = scaleBand<number>()
    .domain(lens.domains.map((_, d) => d))
    .range([TOP, TOP + lens.domains.length * CELL_H])
    .paddingInner(0.08);
  const top = max(lens.domains.flatMap((d) => d.share[layerIndex])) ?? 0;
  const colour = scaleSequential(interpolateGreys).domain([0, Math.max(top, 2 / E)]);
  const star = lens.top && lens.top.layerIndex === layerIndex ? lens.top : null;
  return (
    <LensFigure
      id="lens-domain"
      title={`Domain specialisation, layer ${layer}`}
      sentence={lens.sentence}
      table={rowsWhere(domainTable(lens), 'layer', layer)}
      showTable={showTable}
    >
      <svg
        width={width}
        height={height}
        role="img"
        aria-label={`Share of each domain's routing assignments per expert at layer ${layer}; fair share ${(100 / E).toFixed(1)}%`}
      >
        {x.domain().map((e) => (
          <ExpertTick key={e} x={x(e)! + x.bandwidth() / 2} y={10} expert={e} fill={expertColor(e)} />
        ))}
        {lens.domains.map((d, di) => (
          <g key={d.name}>
            <text
              x={LEFT - 6}
              y={y(di)! + y.bandwidth() / 2}
              textAnchor="end"
              dominantBaseline="middle"
              className="axis-label"
            >
              {d.name}
            </text>
            {d.share[layerIndex].map((s, e) => {
              const fill = colour(s);
              const outlined = star && star.domain === d.name && star.expert === e;
              return (
                <g key={e} data-testid="domain-cell" data-domain={d.name} data-expert={e} data-share={s}>
                  <title>{`${d.name}, expert ${e} of layer ${layer}: ${(100 * s).toFixed(1)}% of assignments (${(s * E).toFixed(2)}× fair share)`}</title>
                  <rect
                    x={x(e)}
                    y={y(di)}
                    width={x.bandwidth()}
                    height={y.bandwidth()}
                    fill={fill}
                    stroke={outlined ? '#111' : 'none'}
                    strokeWidth={outlined ? 3 : 0}
                  />
                  <text
                    x={x(e)! + x.bandwidth() / 2}
                    y={y(di)! + y.bandwidth() / 2}
                    textAnchor="middle"
                    dominantBaseline="middle"
                    className="cell-small"
                    fill={inkOn(fill)}
                    fontWeight={s > 1 / E ? 700 : 400}
                  >
                    {Math.round(100 * s)}
                  </text>
                </g>
              );
            })}
          </g>
        ))}
        <Footnote x={LEFT} top={noteTop} lines={note} />
      </svg>
    </LensFigure>
  );
}
