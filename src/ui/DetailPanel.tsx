// The selected token: its chosen experts and weights per layer, router entropy, its loss and the
// change, and the next-token top-5.
import { entropy } from '../state/derive.ts';
import type { RunState } from '../state/store.ts';
import { expertColor, inkOn, showToken } from '../viz/palette.ts';
import { formatNumber, formatSigned } from './format.ts';

interface Props {
  run: RunState;
  token: number;
  numExperts: number;
}

export function DetailPanel({ run, token, numExperts }: Props) {
  const text = run.tokenTexts[token];
  if (text === undefined) return null;
  const lp = run.logProbs[token];
  const prevLp = run.previousLogProbs?.[token];
  const top = run.top[token];
  const kl = run.kl?.[token];
  return (
    <section className="panel detail" data-testid="detail" aria-label="Selected token">
      <h2 className="detail-title">
        Token {token} <code className="token-literal">{showToken(text)}</code>{' '}
        {token < run.promptLength ? <small>(prompt)</small> : <small>(generated)</small>}
      </h2>
      <p>
        loss <strong data-testid="token-loss">{lp === null ? '– (first token)' : formatNumber(-lp)}</strong>
        {lp !== null && prevLp !== null && prevLp !== undefined && (
          <>
            {' '}
            (<span data-testid="token-delta">{formatSigned(-lp + prevLp)}</span> vs {run.previousRouting})
          </>
        )}
        {kl !== null && kl !== undefined && (
          <>
            {' '}
            · KL of next token vs {run.previousRouting}: {formatNumber(kl, 4)}
          </>
        )}
      </p>
      <table className="routing-table">
        <thead>
          <tr>
            <th>layer</th>
            <th>chosen experts (gate weight)</th>
            <th title={`router entropy in nats; uniform = ln ${numExperts} = ${Math.log(numExperts).toFixed(2)}`}>
              entropy
            </th>
          </tr>
        </thead>
        <tbody>
          {run.trace.moeLayers.map((absolute, m) => {
            const routing = run.trace.layers[m][token];
            if (!routing) return null;
            return (
              <tr key={m} data-testid="detail-layer">
                <td>L{absolute}</td>
                <td>
                  {routing.experts.map((e, j) => (
                    <span
                      key={e}
                      className="chip"
                      style={{ background: expertColor(e), color: inkOn(expertColor(e)) }}
                      data-expert={e}
                      data-weight={routing.weights[j]}
                    >
                      E{e} {routing.weights[j].toFixed(3)}
                    </span>
                  ))}
                </td>
                <td>{formatNumber(entropy(routing.probs), 3)}</td>
              </tr>
            );
          })}
        </tbody>
      </table>
      <h3>Next token after it</h3>
      {top ? (
        <ol className="top5" data-testid="next-top5" data-source={run.source}>
          {top.map((c) => (
            <li key={c.id}>
              <code>{showToken(c.text)}</code>{' '}
              <span className="bar" style={{ width: `${Math.max(2, c.probability * 100)}%` }} />{' '}
              {(c.probability * 100).toFixed(1)}%
            </li>
          ))}
        </ol>
      ) : (
        <p className="dim">not computed yet</p>
      )}
    </section>
  );
}
