// Compare: the text on screen (pane A) beside the same text scored by a second engine (pane B, run
// by the controller's compare module with its own model and routing), with per-token routing
// differences outlined and the totals side by side.
import { usePaneB, usePlayground } from '../state/useStore.ts';
import type { RunState } from '../state/store.ts';
import { activeShare, meanExpertsPerLayer, meanLoss } from '../state/derive.ts';
import { planTextOf } from '../state/url.ts';
import type { ModelStatus } from '../worker/protocol.ts';
import {
  formatPlanText,
  formatRoutingMode,
  parsePlanText,
  parseRoutingMode,
  withMode,
} from '../engine/routing/index.ts';
import { showToken, tokenMark } from '../viz/palette.ts';
import { formatNumber, formatPercent } from './format.ts';

interface Props {
  locked: boolean;
}

const ROUTING_CHOICES = ['native', 'dense', 'topk:1', 'topk:2', 'topk:4', 'threshold:1', 'threshold:0.5'];

function sameSet(a: number[] | undefined, b: number[] | undefined): boolean {
  if (!a || !b || a.length !== b.length) return false;
  const s = new Set(a);
  return b.every((x) => s.has(x));
}

/** For each token: does pane B's chosen-expert set at MoE layer m differ from pane A's? null when the tokens differ. */
export function routingDifferences(a: RunState, b: RunState, m: number): boolean[] | null {
  if (a.tokenIds.length !== b.tokenIds.length || a.tokenIds.some((id, i) => id !== b.tokenIds[i])) return null;
  return a.tokenIds.map((_, i) => !sameSet(a.trace.layers[m]?.[i]?.experts, b.trace.layers[m]?.[i]?.experts));
}

function speedOf(run: RunState): string {
  if (run.scoreTokensPerSecond !== null) return `${formatNumber(run.scoreTokensPerSecond, 1)} (scoring)`;
  if (run.generateTokensPerSecond !== null) return `${formatNumber(run.generateTokensPerSecond, 1)} (generating)`;
  return '–';
}

function TokenRow({
  run,
  layer,
  diffs,
  pane,
}: {
  run: RunState;
  layer: number;
  diffs: boolean[] | null;
  pane: string;
}) {
  const rows = run.trace.layers[Math.min(layer, run.trace.layers.length - 1)] ?? [];
  return (
    <p className="compare-tokens" data-testid={`compare-tokens-${pane}`}>
      {run.tokenTexts.map((text, i) => {
        const routing = rows[i];
        const mark = tokenMark(routing);
        const differs = diffs?.[i] ?? false;
        const lp = run.logProbs[i];
        return (
          <span
            key={i}
            className={`ctoken${differs ? ' ctoken-diff' : ''}`}
            style={{ background: mark.fill, color: mark.ink }}
            data-diff={differs}
            title={`token ${i}: experts ${routing?.experts.join(', ') ?? '–'}${lp !== null && lp !== undefined ? `, loss ${(-lp).toFixed(3)}` : ''}${differs ? ' — routed differently from the other pane' : ''}`}
          >
            {showToken(text)}
            <sub>{mark.expertLabel}</sub>
            {differs && <span className="sr-only"> (routed differently)</span>}
          </span>
        );
      })}
    </p>
  );
}

export function ComparePane({ locked }: Props) {
  const share = usePlayground((s) => s.share);
  const runA = usePlayground((s) => s.run);
  const modelA = usePlayground((s) => s.model);
  const builtInModels = usePlayground((s) => s.builtInModels);
  const setShare = usePlayground((s) => s.setShare);
  const runB = usePaneB((s) => s.run);
  const modelB = usePaneB((s) => s.model);
  const errorB = usePaneB((s) => s.error);
  const activityB = usePaneB((s) => s.activity);
  const loadingB = usePaneB((s) => s.loading);

  const layer = share.layer;
  const diffs = runA && runB && runB.source === 'engine' ? routingDifferences(runA, runB, layer) : null;
  const differing = diffs ? diffs.filter(Boolean).length : 0;
  const bPlan = parsePlanText(share.bRouting);
  const bMode = formatRoutingMode(bPlan.mode);
  const column = (run: RunState | null, model: ModelStatus | null, routing: string, pane: 'a' | 'b') => {
    const ok = run && run.source === 'engine';
    const loss = ok ? meanLoss(run.logProbs) : NaN;
    const activeShareValue = ok && run.modelFacts ? activeShare(run.modelFacts, run.trace) : NaN;
    return {
      model: ok ? run.modelLabel : (model?.id ?? '…'),
      routing: ok ? run.routing : routing,
      loss,
      activeShareValue,
      experts: ok ? meanExpertsPerLayer(run.trace) : NaN,
      speed: ok ? speedOf(run) : '–',
      pane,
    };
  };
  const a = column(runA, modelA, planTextOf(share), 'a');
  const b = column(runB, modelB, share.bRouting, 'b');

  return (
    <section className="panel compare" aria-label="Compare two models or routings" data-testid="compare">
      <h2>Compare on the same text</h2>
      <fieldset className="compare-controls" disabled={locked}>
        <legend className="sr-only">Pane B settings</legend>
        <label>
          Pane B model{' '}
          <select
            data-testid="compare-model"
            value={share.bModel}
            onChange={(e) => setShare({ bModel: e.target.value })}
          >
            <option value="">same as A ({share.model})</option>
            {(builtInModels ?? []).map((m) => (
              <option key={m.id} value={m.id}>
                {m.name}
              </option>
            ))}
            {share.bModel !== '' && !(builtInModels ?? []).some((m) => m.id === share.bModel) && (
              <option value={share.bModel}>{share.bModel}</option>
            )}
          </select>
        </label>
        <label>
          Pane B routing{' '}
          <select
            data-testid="compare-routing"
            value={bMode}
            onChange={(e) => setShare({ bRouting: formatPlanText(withMode(bPlan, parseRoutingMode(e.target.value))) })}
          >
            {[...new Set([...ROUTING_CHOICES, bMode])].map((r) => (
              <option key={r} value={r}>
                {r}
              </option>
            ))}
          </select>
        </label>
        <button
          type="button"
          data-testid="compare-copy-a"
          onClick={() => setShare({ bRouting: planTextOf(share) })}
          title="Give pane B the routing and interventions of pane A"
        >
          Copy A’s routing
        </button>
      </fieldset>
      {errorB && (
        <p className="error small" role="alert" data-testid="compare-error">
          <strong>{errorB.message}</strong> {errorB.hint}
        </p>
      )}
      <table className="compare-totals" data-testid="compare-totals">
        <thead>
          <tr>
            <th scope="col"></th>
            <th scope="col">A</th>
            <th scope="col">B</th>
          </tr>
        </thead>
        <tbody>
          <tr>
            <th scope="row">model</th>
            <td>{a.model}</td>
            <td data-testid="compare-b-model">{b.model}</td>
          </tr>
          <tr>
            <th scope="row">routing</th>
            <td data-testid="compare-a-routing">{a.routing}</td>
            <td data-testid="compare-b-routing">{b.routing}</td>
          </tr>
          <tr>
            <th scope="row">mean loss (nats)</th>
            <td data-testid="compare-a-loss" data-value={a.loss}>
              {formatNumber(a.loss)}
            </td>
            <td data-testid="compare-b-loss" data-value={b.loss}>
              {formatNumber(b.loss)}
            </td>
          </tr>
          <tr>
            <th scope="row">parameters active</th>
            <td data-testid="compare-a-active" data-value={a.activeShareValue}>
              {formatPercent(a.activeShareValue)}
            </td>
            <td data-testid="compare-b-active" data-value={b.activeShareValue}>
              {formatPercent(b.activeShareValue)}
            </td>
          </tr>
          <tr>
            <th scope="row">experts / layer</th>
            <td>{formatNumber(a.experts, 2)}</td>
            <td>{formatNumber(b.experts, 2)}</td>
          </tr>
          <tr>
            <th scope="row">tokens/s</th>
            <td data-testid="compare-a-speed">{a.speed}</td>
            <td data-testid="compare-b-speed">{b.speed}</td>
          </tr>
        </tbody>
      </table>
      {(activityB !== 'idle' || loadingB) && (
        <p className="small dim" data-testid="compare-activity">
          pane B: {loadingB?.stage ?? activityB}…
        </p>
      )}
      {runA && runA.source === 'engine' && (
        <div className="compare-panes">
          <div>
            <h3>A · {a.routing}</h3>
            <TokenRow run={runA} layer={layer} diffs={diffs} pane="a" />
          </div>
          <div>
            <h3>B · {b.routing}</h3>
            {runB && runB.source === 'engine' ? (
              <TokenRow run={runB} layer={layer} diffs={diffs} pane="b" />
            ) : (
              <p className="dim">scoring…</p>
            )}
          </div>
        </div>
      )}
      <p className="legend" data-testid="compare-diff-count" data-value={diffs ? differing : ''}>
        Colour and number: first-choice expert at MoE layer {layer}. Outlined tokens are routed to a different set of
        experts in the two panes
        {diffs
          ? ` (${differing} of ${diffs.length})`
          : runB?.source === 'engine'
            ? ' (the panes tokenised the text differently, so tokens are not compared one by one)'
            : ''}
        .
      </p>
    </section>
  );
}
