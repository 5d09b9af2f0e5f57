// The text, each token coloured by its first-choice expert at the selected layer; the colour's
// strength is the gate weight, and the expert number is printed under the token (tokenMark in
// palette.ts: the same marks as the SVG export and the compare pane).
import type { RunState } from '../state/store.ts';
import { showToken, tokenMark } from './palette.ts';

interface Props {
  run: RunState;
  layer: number;
  selected: number;
  onSelect(index: number): void;
}

export function TokenText({ run, layer, selected, onSelect }: Props) {
  const rows = run.trace.layers[layer] ?? [];
  return (
    <div
      className="token-text"
      data-testid="token-text"
      role="list"
      aria-label={`Text coloured by the first-choice expert at MoE layer ${layer}`}
    >
      {run.tokenTexts.map((text, i) => {
        const routing = rows[i];
        const mark = tokenMark(routing);
        return (
          <span role="listitem" key={i} className="token-item">
            <button
              type="button"
              className={`token${i === selected ? ' token-selected' : ''}${i < run.promptLength ? ' token-prompt' : ''}`}
              style={{ background: mark.fill, color: mark.ink }}
              onClick={() => onSelect(i)}
              data-index={i}
              data-expert={mark.expert}
              title={
                routing
                  ? `token ${i} ${JSON.stringify(text)} → experts ${routing.experts.join(', ')} (weights ${routing.weights.map((w) => w.toFixed(2)).join(', ')})`
                  : text
              }
            >
              <span className="token-body">{showToken(text)}</span>
              <span className="token-expert">{mark.expertLabel}</span>
            </button>
          </span>
        );
      })}
    </div>
  );
}
