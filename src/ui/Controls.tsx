// Prompt, sampling settings and the routing mode. The prompt is kept in the store, so nothing typed
// is lost when a generation is cancelled or a setting changes.
import { usePlayground } from '../state/useStore.ts';
import { LIMITS, type ControlName } from '../state/url.ts';

interface Props {
  onGenerate(): void;
  onStop(): void;
  onShare(): void;
  /** Teacher controls from the link: a hidden group is not drawn, a locked one is shown but disabled. */
  hidden(name: ControlName): boolean;
  locked(name: ControlName): boolean;
}

export function Controls({ onGenerate, onStop, onShare, hidden, locked }: Props) {
  const share = usePlayground((s) => s.share);
  const shareMessage = usePlayground((s) => s.shareMessage);
  const setShare = usePlayground((s) => s.setShare);
  const activity = usePlayground((s) => s.activity);
  const model = usePlayground((s) => s.model);
  const E = Math.max(model?.numExperts ?? 8, 1);
  // The prompt's length in tokens as last tokenised (at least 1): what counts against the context.
  const promptTokens = usePlayground((s) => (s.run?.source === 'engine' ? Math.max(s.run.promptLength, 1) : 1));
  const busy = activity === 'generating' || activity === 'scoring';
  if (['prompt', 'generate', 'share', 'sampling', 'routing'].every((n) => hidden(n as ControlName))) return null;
  return (
    <section className="panel controls" aria-label="Prompt and settings">
      {!hidden('prompt') && (
        <label className="field-prompt">
          <span>
            Prompt
            {locked('prompt') && (
              <span className="locked-note" data-testid="prompt-locked">
                {' '}
                🔒 fixed by this lesson’s link
              </span>
            )}
          </span>
          <textarea
            data-testid="prompt"
            value={share.prompt}
            maxLength={LIMITS.promptChars}
            rows={3}
            readOnly={locked('prompt')}
            aria-readonly={locked('prompt')}
            onChange={(e) => setShare({ prompt: e.target.value })}
          />
        </label>
      )}
      <div className="buttons">
        {!hidden('generate') && (
          <>
            <button
              type="button"
              className="primary"
              data-testid="generate"
              disabled={!model || activity === 'loading' || locked('generate')}
              onClick={onGenerate}
              aria-keyshortcuts="g"
            >
              Generate
            </button>
            <button type="button" data-testid="stop" disabled={!busy} onClick={onStop} aria-keyshortcuts="Escape">
              Stop
            </button>
          </>
        )}
        {!hidden('share') && (
          <button type="button" data-testid="share" onClick={onShare} disabled={locked('share')} aria-keyshortcuts="l">
            Copy share link
          </button>
        )}
        {shareMessage && (
          <span className="share-message" data-testid="share-message">
            {shareMessage}
          </span>
        )}
      </div>
      {!hidden('sampling') && (
        <fieldset className="sampling" disabled={locked('sampling')}>
          <legend>Sampling</legend>
          <RangeField
            testId="temperature"
            label="temperature"
            value={share.temperature}
            limits={LIMITS.temperature}
            step={0.05}
            onChange={(temperature) => setShare({ temperature })}
          />
          <RangeField
            testId="top-p"
            label="top-p"
            value={share.topP}
            limits={LIMITS.topP}
            step={0.01}
            onChange={(topP) => setShare({ topP })}
          />
          <label>
            seed
            <input
              data-testid="seed"
              type="number"
              min={LIMITS.seed[0]}
              max={LIMITS.seed[1]}
              value={share.seed}
              onChange={(e) => setShare({ seed: Number(e.target.value) })}
            />
          </label>
          <label>
            max tokens
            <input
              data-testid="max-tokens"
              type="number"
              min={LIMITS.maxTokens[0]}
              max={LIMITS.maxTokens[1]}
              value={share.maxTokens}
              onChange={(e) => setShare({ maxTokens: Number(e.target.value) })}
              aria-describedby="context-note"
            />
          </label>
          {model && share.maxTokens + promptTokens > model.maxPositions && (
            <p className="small notice-inline" id="context-note" data-testid="context-note" role="status">
              This model reads at most {model.maxPositions} tokens, prompt included, so generation stops there, before{' '}
              {share.maxTokens} new tokens (the prompt takes {promptTokens}).
            </p>
          )}
        </fieldset>
      )}
      {!hidden('routing') && (
        <fieldset
          className="routing"
          disabled={locked('routing') || model?.numExperts === 0}
          data-testid="routing-controls"
        >
          <legend>Routing (applies to the text on screen at once)</legend>
          {model?.numExperts === 0 && (
            <p className="small" data-testid="routing-dense-note">
              This model is dense: every token goes through its one feed-forward block, so there is nothing to route.
              Upcycle it or pick an MoE model.
            </p>
          )}
          <div className="mode-buttons" role="radiogroup" aria-label="Routing mode">
            {(
              [
                ['native', `native (top-${model?.topK ?? '?'})`],
                ['dense', `dense (all ${E})`],
                ['topk', 'top-k'],
                ['threshold', 'threshold'],
              ] as const
            ).map(([mode, label]) => (
              <label key={mode} className={share.mode === mode ? 'mode-on' : undefined}>
                <input
                  type="radio"
                  name="mode"
                  data-testid={`mode-${mode}`}
                  checked={share.mode === mode}
                  onChange={() => setShare({ mode })}
                />
                {label}
              </label>
            ))}
          </div>
          <label className={share.mode === 'topk' ? undefined : 'dim'}>
            <span>
              k = <output data-testid="k-value">{Math.min(share.k, E)}</output> of {E} experts
            </span>
            <input
              data-testid="k"
              type="range"
              min={1}
              max={E}
              step={1}
              value={Math.min(share.k, E)}
              onChange={(e) => setShare({ mode: 'topk', k: Number(e.target.value) })}
            />
          </label>
          <label className={share.mode === 'threshold' ? undefined : 'dim'}>
            <span>
              threshold: experts with E·p &gt; <output data-testid="t-value">{share.t.toFixed(2)}</output>
            </span>
            <input
              data-testid="t"
              type="range"
              min={0}
              max={Math.min(E, 4)}
              step={0.05}
              value={Math.min(share.t, E)}
              onChange={(e) => setShare({ mode: 'threshold', t: Number(e.target.value) })}
            />
          </label>
        </fieldset>
      )}
    </section>
  );
}

/** A labelled slider that shows its value with two decimals. */
function RangeField(props: {
  testId: string;
  label: string;
  value: number;
  limits: readonly [number, number];
  step: number;
  onChange: (value: number) => void;
}) {
  return (
    <label>
      <span>
        {props.label} <output>{props.value.toFixed(2)}</output>
      </span>
      <input
        data-testid={props.testId}
        type="range"
        min={props.limits[0]}
        max={props.limits[1]}
        step={props.step}
        value={props.value}
        onChange={(e) => props.onChange(Number(e.target.value))}
      />
    </label>
  );
}
