// Agreement between two runs on the same text: per MoE layer, the share of tokens with the same
// chosen set and with the same first choice; the caption reads the next-token agreement and KL.
import { scaleBand, scaleLinear } from 'd3';
import { agreementTable, type AgreementLens } from '../../engine/lens/index.ts';
import { Footnote, footnoteHeight, LensFigure, wrapText } from './LensFigure.tsx';

export interface AgreementBarsProps {
  lens: AgreementLens;
  showTable?: boolean;
}

/** Height of the bars and their labels; the footnote goes under them. */
const H = 127;
const PAD = { left: 34, right: 8, top: 10, bottom: 17 };

export function AgreementBars({ lens, showTable }: AgreementBarsProps) {
  const width = PAD.left + PAD.right + (lens.layers.length + 1) * 64;
  const groups = [
    ...lens.layers.map((l) => ({ label: `layer ${l.layer}`, sameSet: l.sameSet, sameFirst: l.sameFirst })),
    { label: 'all', sameSet: lens.sameSet, sameFirst: lens.sameFirst },
  ];
  const x = scaleBand<number>()
    .domain(groups.map((_, i) => i))
    .range([PAD.left, width - PAD.right])
    .paddingInner(0.25);
  const note = wrapText('dark: same chosen set · light: same first choice', width - PAD.left - 4);
  const inner = scaleBand<string>().domain(['set', 'first']).range([0, x.bandwidth()]).paddingInner(0.1);
  const y = scaleLinear()
    .domain([0, 1])
    .range([H - PAD.bottom, PAD.top]);
  return (
    <LensFigure
      id="lens-agreement"
      title="Agreement between two runs"
      sentence={lens.sentence}
      table={agreementTable(lens)}
      showTable={showTable}
    >
      <svg
        width={width}
        height={H + footnoteHeight(note)}
        role="img"
        aria-label={`Share of tokens with the same chosen experts and the same first choice in both runs; same next token ${(100 * lens.top1).toFixed(0)}%`}
      >
        {y.ticks(4).map((t) => (
          <text key={t} x={PAD.left - 4} y={y(t)} textAnchor="end" dominantBaseline="middle" className="cell-small">
            {Math.round(100 * t)}%
          </text>
        ))}
        {groups.map((g, i) => (
          <g key={g.label} data-testid="agreement-group" data-label={g.label}>
            <rect
              x={x(i)! + inner('set')!}
              y={y(g.sameSet)}
              width={inner.bandwidth()}
              height={y(0) - y(g.sameSet)}
              fill="#444"
            >
              <title>{`${g.label}: same chosen set ${(100 * g.sameSet).toFixed(1)}%`}</title>
            </rect>
            <rect
              x={x(i)! + inner('first')!}
              y={y(g.sameFirst)}
              width={inner.bandwidth()}
              height={y(0) - y(g.sameFirst)}
              fill="#999"
            >
              <title>{`${g.label}: same first choice ${(100 * g.sameFirst).toFixed(1)}%`}</title>
            </rect>
            <text x={x(i)! + x.bandwidth() / 2} y={H - PAD.bottom + 12} textAnchor="middle" className="axis-label">
              {g.label}
            </text>
          </g>
        ))}
        <Footnote x={PAD.left} top={H} lines={note} />
      </svg>
    </LensFigure>
  );
}
