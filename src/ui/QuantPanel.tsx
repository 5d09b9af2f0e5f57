// The weights' precision in memory: none / q8 / q4, with what each needs on the running backend,
// and, whenever a quantized model runs, what quantization costs on the eval texts (measured in the
// worker against the same checkpoint as stored).
import { describeQuantCost } from '../engine/quant/cost.ts';
import type { QuantScheme } from '../engine/types.ts';
import { controller, usePlayground } from '../state/useStore.ts';

const LABEL: Record<QuantScheme, string> = { none: 'as stored', q8: 'q8 (int8)', q4: 'q4 (4-bit)' };

export function formatMegabytes(bytes: number): string {
  const mb = bytes / 1e6;
  return mb >= 1000 ? `${(mb / 1000).toFixed(2)} GB` : `${mb.toFixed(mb < 10 ? 1 : 0)} MB`;
}

export function QuantPanel({ locked }: { locked: boolean }) {
  const model = usePlayground((s) => s.model);
  const backend = usePlayground((s) => s.backend);
  const chosen = usePlayground((s) => s.share.quant);
  const activity = usePlayground((s) => s.activity);
  const cost = usePlayground((s) => s.quantCost);
  const measuring = usePlayground((s) => s.quantMeasuring);
  const cancelled = usePlayground((s) => s.quantCancelled);
  const refusal = usePlayground((s) => s.quantRefusal);
  if (!model || model.quantChoices.length === 0) return null;
  const engine = backend?.kind === 'webgpu' ? 'WebGPU' : 'CPU';
  const shownCost = cost && cost.modelId === model.id && cost.cost.scheme === model.quantize ? cost : null;
  return (
    <section className="panel quant" aria-label="Weights in memory" data-testid="quant-panel">
      <h2>Weights in memory</h2>
      <fieldset className="quant-choices" disabled={locked}>
        <legend className="small">
          Quantization on load (memory on the {engine} backend: weights, and in all with files and KV cache)
        </legend>
        {model.quantChoices.map((c) => (
          <label key={c.scheme} className={c.available ? '' : 'unavailable'} data-testid={`quant-option-${c.scheme}`}>
            <input
              type="radio"
              name="quant"
              value={c.scheme}
              data-testid={`quant-${c.scheme}`}
              checked={chosen === c.scheme}
              disabled={activity === 'loading'}
              onChange={() => controller.quant.choose(c.scheme)}
            />{' '}
            {LABEL[c.scheme]}:{' '}
            <span data-testid={`quant-memory-${c.scheme}`} data-weights={c.weightBytes} data-total={c.totalBytes}>
              weights {formatMegabytes(c.weightBytes)}, {formatMegabytes(c.totalBytes)} in all
            </span>
            {!c.available && <span className="small"> — {c.why}</span>}
          </label>
        ))}
      </fieldset>
      {refusal && (
        <p className="fallback small" role="alert" data-testid="quant-refusal">
          {refusal}
        </p>
      )}
      {model.quantize !== 'none' && (
        <p className="small" data-testid="quant-cost" aria-live="polite">
          {shownCost ? (
            <span
              data-testid="quant-cost-line"
              data-routing={shownCost.cost.routingUnchanged ?? ''}
              data-top1={shownCost.cost.top1Agreement}
              data-delta-loss={shownCost.cost.deltaLoss}
              data-kl={shownCost.cost.meanKl}
              data-tokens={shownCost.tokens}
            >
              {describeQuantCost(shownCost.cost)} ({shownCost.tokens} tokens of {shownCost.texts} texts, KL{' '}
              {shownCost.cost.meanKl.toFixed(4)} nats).
            </span>
          ) : measuring ? (
            <>
              Measuring what {measuring.scheme} costs on the eval texts… {Math.round(measuring.fraction * 100)}%{' '}
              <button
                type="button"
                className="link-button"
                data-testid="quant-cost-cancel"
                onClick={controller.quant.cancel}
              >
                cancel
              </button>
            </>
          ) : cancelled ? (
            <button
              type="button"
              className="link-button"
              data-testid="quant-cost-measure"
              onClick={controller.quant.measure}
            >
              Measure what {model.quantize} costs on the eval texts
            </button>
          ) : (
            `What ${model.quantize} costs on the eval texts is measured once the model is idle.`
          )}
        </p>
      )}
    </section>
  );
}
