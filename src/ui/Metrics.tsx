// What the routing mode costs and changes: active parameters, loss and its change, KL, speed.
import { activeShare, mean, meanExpertsPerLayer, meanLoss } from '../state/derive.ts';
import { usePlayground } from '../state/useStore.ts';
import { formatNumber, formatPercent, formatSigned } from './format.ts';
import { TERMS } from './Glossary.tsx';

export function Metrics() {
  const run = usePlayground((s) => s.run);
  const activity = usePlayground((s) => s.activity);
  if (!run) return null;
  const isExample = run.source === 'example';
  const loss = meanLoss(run.logProbs);
  const previous = run.previousLogProbs ? meanLoss(run.previousLogProbs) : NaN;
  // Measured for the model that produced the text on screen, which may not be the one loading now.
  const facts = isExample ? null : run.modelFacts;
  const share = facts ? activeShare(facts, run.trace) : NaN;
  return (
    <section className="metrics" data-testid="metrics" aria-live="polite">
      <div>
        <span className="metric-label">routing</span>
        <span className="metric-value" data-testid="metric-routing">
          {run.routing}
        </span>
      </div>
      <div>
        <span className="metric-label" title={TERMS.expertsPerLayer}>
          experts / layer
        </span>
        <span className="metric-value" data-testid="experts-per-layer">
          {run.trace.moeLayers.length > 0 ? formatNumber(meanExpertsPerLayer(run.trace), 2) : 'dense model'}
        </span>
      </div>
      <div>
        <span className="metric-label" title={TERMS.active}>
          parameters active
        </span>
        <span className="metric-value" data-testid="active-share" data-value={share}>
          {formatPercent(share)}
        </span>
      </div>
      <div>
        <span className="metric-label" title={TERMS.loss}>
          mean loss (nats)
        </span>
        <span className="metric-value" data-testid="mean-loss" data-value={loss}>
          {formatNumber(loss)}
        </span>
      </div>
      <div>
        <span className="metric-label" title={TERMS.deltaLoss}>
          Δ loss vs {run.previousRouting ?? '—'}
        </span>
        <span className="metric-value" data-testid="delta-loss">
          {run.previousRouting ? formatSigned(loss - previous) : '–'}
        </span>
      </div>
      <div>
        <span className="metric-label" title={TERMS.kl}>
          KL vs {run.previousRouting ?? '—'} (nats)
        </span>
        <span className="metric-value" data-testid="kl" data-value={mean(run.kl)}>
          {run.kl ? formatNumber(mean(run.kl), 4) : '–'}
        </span>
      </div>
      <div>
        <span className="metric-label">tokens/s</span>
        <span className="metric-value" data-testid="speed">
          {run.generateTokensPerSecond !== null ? `gen ${formatNumber(run.generateTokensPerSecond, 1)}` : ''}
          {run.generateTokensPerSecond !== null && run.scoreTokensPerSecond !== null ? ' · ' : ''}
          {run.scoreTokensPerSecond !== null ? `score ${formatNumber(run.scoreTokensPerSecond, 1)}` : ''}
          {run.generateTokensPerSecond === null && run.scoreTokensPerSecond === null ? '–' : ''}
        </span>
      </div>
      {activity !== 'idle' && (
        <div className="activity" data-testid="activity">
          {activity}…
        </div>
      )}
    </section>
  );
}
