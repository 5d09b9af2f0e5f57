// The routed text: tokens coloured by expert at the chosen MoE layer (or plain text), the layer
// scrubber, the loss strip and the text's export.
import { useRef, useState } from 'react';
import type { RunState } from '../state/store.ts';
import { usePlayground } from '../state/useStore.ts';
import { LossStrip } from '../viz/LossStrip.tsx';
import { TokenText } from '../viz/TokenText.tsx';
import { ErrorBoundary } from './ErrorBoundary.tsx';
import { ExportBar } from './ExportBar.tsx';
import { TERMS } from './Glossary.tsx';
import { useTeacherControls } from './teacher.ts';

export function TextPanel({ run, layer, token }: { run: RunState; layer: number; token: number }) {
  const setShare = usePlayground((s) => s.setShare);
  const { hidden } = useTeacherControls();
  const [plainText, setPlainText] = useState(false);
  const textRef = useRef<HTMLDivElement>(null);
  return (
    <section className="panel text-panel" aria-label="Routed text">
      {run.source === 'example' ? (
        <p className="example-banner" data-testid="example-banner">
          Precomputed example: a real trace saved from the engine ({run.modelLabel}), shown while the model loads.
        </p>
      ) : (
        <p className="run-info" data-testid="run-source" data-source="engine">
          {run.modelLabel} · {run.tokenIds.length} tokens ({run.promptLength} prompt) · generated with{' '}
          {run.generatedWith} · scored with {run.routing}
        </p>
      )}
      <div className="buttons reading-toggle" role="group" aria-label="How to show the text">
        <button
          type="button"
          className="small-button"
          aria-pressed={!plainText}
          data-testid="text-as-tokens"
          onClick={() => setPlainText(false)}
        >
          Tokens and experts
        </button>
        <button
          type="button"
          className="small-button"
          aria-pressed={plainText}
          data-testid="text-as-plain"
          onClick={() => setPlainText(true)}
        >
          Plain text
        </button>
      </div>
      {plainText && (
        <p className="plain-text" data-testid="plain-text">
          <span className="plain-prompt">{run.tokenTexts.slice(0, run.promptLength).join('')}</span>
          {run.tokenTexts.slice(run.promptLength).join('')}
        </p>
      )}
      <div className="panel-tools">
        <label className="layer-scrubber">
          MoE layer{' '}
          <strong data-testid="layer-value">
            {run.trace.moeLayers.length > 0 ? `L${run.trace.moeLayers[layer]}` : 'none (dense model)'}
          </strong>
          {run.trace.moeLayers.length > 0 && (
            <input
              data-testid="layer"
              type="range"
              min={0}
              max={Math.max(run.trace.moeLayers.length - 1, 0)}
              step={1}
              value={layer}
              onChange={(e) => setShare({ layer: Number(e.target.value) })}
              aria-keyshortcuts="[ ]"
            />
          )}
        </label>
        {!hidden('export') && <ExportBar target={textRef} name="text" title="Routed text" kind="token-text" />}
      </div>
      <p className="legend" hidden={plainText}>
        Colour: first-choice expert at this layer (number below each token); strength: its{' '}
        <span title={TERMS.gateWeight} className="term">
          gate weight
        </span>{' '}
        (how much that expert’s output counts). Click a token for details (← → move).
      </p>
      <div ref={textRef} hidden={plainText}>
        <ErrorBoundary area="the routed text">
          <TokenText run={run} layer={layer} selected={token} onSelect={(i) => setShare({ token: i })} />
        </ErrorBoundary>
      </div>
      <p className="strip-title">
        Loss per token in nats, −ln p (bars; black tick: under {run.previousRouting ?? 'the previous mode'})
      </p>
      <ErrorBoundary area="the loss strip">
        <LossStrip run={run} selected={token} onSelect={(i) => setShare({ token: i })} />
      </ErrorBoundary>
    </section>
  );
}
