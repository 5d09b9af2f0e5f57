// The text, each token coloured by its first-choice expert at the selected layer; the colour's
// strength is the gate weight, and the expert number is printed under the token.
import type { RunState } from '../state/store.ts';
import { expertColor, inkOn, showToken } from './palette.ts';
import { color as d3color } from 'd3';

interface Props {
  run: RunState;
  layer: number;
  selected: number;
  onSelect(index: number): void;
}

/** Blends the expert colour towards white by (1 − weight), so a weak gate reads pale. */
function tint(expert: number, weight: number): string {
  const c = d3color(expertColor(expert))!.rgb();
  const w = 0.25 + 0.75 * Math.max(0, Math.min(1, weight));
  return `rgb(${Math.round(255 - (255 - c.r) * w)}, ${Math.round(255 - (255 - c.g) * w)}, ${Math.round(255 - (255 - c.b) * w)})`;
}

export function TokenText({ run, layer, selected, onSelect }: Props) {
  const rows = run.trace.layers[layer] ?? [];
  return (
    <div className="token-text" data-testid="token-text" role="list" aria-label={`Text coloured by the first-choice expert at MoE layer ${layer}`}>
      {run.tokenTexts.map((text, i) => {
        const routing = rows[i];
        const expert = routing?.experts[0];
        const weight = routing?.weights[0] ?? 0;
        const background = expert === undefined ? '#eee' : tint(expert, weight);
        return (
          <span role="listitem" key={i} className="token-item">
          <button
            type="button"
            className={`token${i === selected ? ' token-selected' : ''}${i < run.promptLength ? ' token-prompt' : ''}`}
            style={{ background, color: inkOn(background) }}
            onClick={() => onSelect(i)}
            data-index={i}
            data-expert={expert}
            title={routing ? `token ${i} ${JSON.stringify(text)} → experts ${routing.experts.join(', ')} (weights ${routing.weights.map((w) => w.toFixed(2)).join(', ')})` : text}
          >
            <span className="token-body">{showToken(text)}</span>
            <span className="token-expert">{expert ?? '–'}</span>
          </button>
          </span>
        );
      })}
    </div>
  );
}
