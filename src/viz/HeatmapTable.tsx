// The table twin of the router-probability heatmap: the same numbers as rows (layers) × columns
// (experts) for screen readers, keyboard users and anyone who wants to read exact values.
import type { RunState } from '../state/store.ts';
import { chipAction } from '../state/store.ts';

interface Props {
  run: RunState;
  token: number;
  numExperts: number;
  iv: string;
  visible: boolean;
}

export function HeatmapTable({ run, token, numExperts, iv, visible }: Props) {
  const experts = Array.from({ length: numExperts }, (_, e) => e);
  return (
    // A table never shrinks below its content, so the hidden twin sits in a 1-pixel box (sr-only on a
    // div) instead of making the whole page scroll sideways; shown, it scrolls inside its own box.
    <div className={visible ? 'scroll-x' : 'sr-only'} data-testid="heatmap-table-box">
      <table className="heatmap-table" data-testid="heatmap-table">
        <caption>
          Router probabilities of token {token} ({JSON.stringify(run.tokenTexts[token] ?? '')}) per MoE layer and
          expert; chosen experts are marked “chosen” with their gate weight.
        </caption>
        <thead>
          <tr>
            <th scope="col">layer</th>
            {experts.map((e) => (
              <th key={e} scope="col">
                expert {e}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {run.trace.moeLayers.map((absolute, m) => {
            const routing = run.trace.layers[m][token];
            if (!routing) return null;
            return (
              <tr key={m}>
                <th scope="row">L{absolute}</th>
                {experts.map((e) => {
                  const rank = routing.experts.indexOf(e);
                  const action = chipAction(iv, absolute, e);
                  return (
                    <td key={e}>
                      {routing.probs[e].toFixed(3)}
                      {rank >= 0 && ` chosen (weight ${routing.weights[rank].toFixed(3)})`}
                      {action && ` ${action === 'ablate' ? 'ablated' : 'forced'}`}
                    </td>
                  );
                })}
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}
