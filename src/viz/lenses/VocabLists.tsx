// Vocabulary specialisation at one MoE layer: for each expert (its colour and number), the input
// tokens it receives most and the tokens the model predicts after them; above, how concentrated a
// token's routing is on its usual expert against random routing.
import { scaleLinear } from 'd3';
import { vocabTable, type VocabLens } from '../../engine/lens/index.ts';
import { expertColor, showToken } from '../palette.ts';
import { ExpertTick, LensFigure, rowsWhere } from './LensFigure.tsx';

export interface VocabListsProps {
  lens: VocabLens;
  layerIndex: number;
  /** Tokens listed per expert (default 5). */
  rows?: number;
  showTable?: boolean;
}

const PANEL_W = 170;
const LINE = 13;
const HEAD = 46;

export function VocabLists({ lens, layerIndex, rows = 5, showTable }: VocabListsProps) {
  const L = lens.layers[layerIndex];
  const perRow = 4;
  const panelH = 22 + (rows + 1) * LINE;
  const width = perRow * PANEL_W;
  const height = HEAD + Math.ceil(L.experts.length / perRow) * panelH;
  const bar = scaleLinear().domain([0, 1]).range([0, 220]);
  const label = (t: { token: number; text?: string }) => (t.text !== undefined ? showToken(t.text) : `#${t.token}`);
  const concentration = Number.isFinite(L.meanConcentration) ? L.meanConcentration : 0;
  return (
    <LensFigure
      id="lens-vocab"
      title={`Vocabulary specialisation, layer ${L.layer}`}
      sentence={lens.sentence}
      table={rowsWhere(vocabTable(lens), 'layer', L.layer)}
      showTable={showTable}
    >
      <svg
        width={width}
        height={height}
        role="img"
        aria-label={`Tokens each expert of layer ${L.layer} receives most and the tokens predicted after them`}
      >
        <text x={0} y={12} className="axis-label">
          a token goes to its usual expert {(100 * concentration).toFixed(0)}% of the time (tokens seen ≥{' '}
          {lens.minCount}×); random routing {(100 * L.chance).toFixed(0)}%
        </text>
        <rect
          x={0}
          y={20}
          width={bar(concentration)}
          height={10}
          fill="#444"
          data-testid="vocab-concentration"
          data-value={concentration}
        />
        <line x1={bar(L.chance)} x2={bar(L.chance)} y1={17} y2={33} stroke="#111" strokeDasharray="4 3" />
        {L.experts.map((x, i) => {
          const px = (i % perRow) * PANEL_W;
          const py = HEAD + Math.floor(i / perRow) * panelH;
          return (
            <g key={x.expert} transform={`translate(${px} ${py})`} data-testid="vocab-expert" data-expert={x.expert}>
              <ExpertTick x={9} y={8} expert={x.expert} fill={expertColor(x.expert)} />
              <text x={22} y={8} dominantBaseline="middle" className="cell-small">
                receives → predicts after
              </text>
              {Array.from({ length: rows }, (_, r) => (
                <g key={r}>
                  {x.inputs[r] && (
                    <text x={2} y={24 + r * LINE} className="cell-small">
                      <title>{`${x.inputs[r].count}× (${(100 * x.inputs[r].share).toFixed(0)}% of that token's occurrences)`}</title>
                      {label(x.inputs[r]).slice(0, 12)} {x.inputs[r].count}
                    </text>
                  )}
                  {x.predicted[r] && (
                    <text x={PANEL_W / 2} y={24 + r * LINE} className="cell-small">
                      {label(x.predicted[r]).slice(0, 12)} {x.predicted[r].count}
                    </text>
                  )}
                </g>
              ))}
            </g>
          );
        })}
      </svg>
    </LensFigure>
  );
}
