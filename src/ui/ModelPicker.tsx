// The model picker with the picked model's card, or the notice that no model is installed.
import { controller, usePlayground } from '../state/useStore.ts';
import { modelUrl, shareRoutingOf } from '../state/controller/models.ts';
import { routingOf } from '../state/url.ts';
import { formatCount } from './format.ts';
import { useTeacherControls } from './teacher.ts';

export function ModelPicker() {
  const builtInModels = usePlayground((s) => s.builtInModels);
  const model = usePlayground((s) => s.model);
  const chosen = usePlayground((s) => s.share.model);
  const embed = usePlayground((s) => s.share.embed);
  const setShare = usePlayground((s) => s.setShare);
  const { hidden, locked } = useTeacherControls();
  const routing = usePlayground((s) => routingOf(s.share));
  const picked = builtInModels?.find((m) => m.id === chosen);
  const suggestion = picked?.suggestedRouting;
  const suggested = suggestion ? shareRoutingOf(suggestion.mode) : null;
  const usingSuggestion = suggested !== null && routing === routingOf({ k: 0, t: 0, ...suggested });
  if (builtInModels !== null && builtInModels.length === 0 && !model) {
    return (
      <section className="notice-box" data-testid="no-models">
        <strong>No built-in model is installed.</strong> The example below is a saved trace. Add models under{' '}
        <code>public/models/</code> (listed in <code>public/models/index.json</code>) and reload.
      </section>
    );
  }
  if (!builtInModels || builtInModels.length === 0 || hidden('model') || embed) return null;
  return (
    <section className="panel model-picker" aria-label="Model">
      <label>
        Model{' '}
        <select
          data-testid="model-picker"
          disabled={locked('model')}
          value={picked?.id ?? ''}
          onChange={(e) => {
            const next = builtInModels.find((m) => m.id === e.target.value);
            if (next) {
              setShare({ upcycle: '', iv: '' });
              controller.engine.loadModel(next);
            }
          }}
        >
          {!picked && <option value="">{chosen || 'choose…'}</option>}
          {builtInModels.map((m) => (
            <option key={m.id} value={m.id}>
              {m.name}
            </option>
          ))}
        </select>
      </label>
      {picked && (
        <p className="card" data-testid="model-card">
          {picked.parametersTotal !== undefined && (
            <>
              {formatCount(picked.parametersTotal)} parameters
              {picked.parametersActive !== undefined && <>, {formatCount(picked.parametersActive)} active per token</>}.{' '}
            </>
          )}
          {picked.training ?? picked.description}{' '}
          <a
            href={`${modelUrl(controller.env, picked)}README.md`}
            target="_blank"
            rel="noreferrer"
            data-testid="model-card-link"
          >
            Model card: how it was trained and what it found, per domain
          </a>
        </p>
      )}
      {picked && suggestion && suggested && !hidden('routing') && (
        <p className="small suggested-routing" data-testid="suggested-routing">
          Its card: <strong>{suggestion.mode}</strong> reads {Math.round(suggestion.active * 100)}% of the parameters
          for {signedNats(suggestion.gap)} against every expert, where native routing costs{' '}
          {signedNats(suggestion.nativeGap)}.{' '}
          {usingSuggestion ? (
            <span data-testid="suggested-routing-on">That is the routing on screen.</span>
          ) : (
            <button
              type="button"
              className="small-button"
              data-testid="use-suggested-routing"
              disabled={locked('routing')}
              onClick={() => setShare(suggested)}
            >
              Use {suggestion.mode}
            </button>
          )}
        </p>
      )}
      <p className="small about-models" data-testid="about-models" hidden={!picked && model !== null}>
        These are tiny models (2–11 M parameters) trained for minutes on a laptop-class CPU, so their text is not
        fluent. Their routing is real: the router’s choices, losses and the dense vs sparse trade-off are what a large
        MoE does, at a scale you can run here.
      </p>
    </section>
  );
}

const signedNats = (x: number) => `${x >= 0 ? '+' : '−'}${Math.abs(x).toFixed(3)} nats`;
