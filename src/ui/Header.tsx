// The page's header: title, shortcuts and offline links, and the status list (engine, model, what
// runs now with its progress bar).
import { controller, usePlayground } from '../state/useStore.ts';
import { offlineMegabytes } from '../state/controller/models.ts';
import { parseBackendPreference, switchBackend } from '../state/controller/env.ts';
import { formatCount } from './format.ts';

function OfflineStatus() {
  const offline = usePlayground((s) => s.offline);
  const model = usePlayground((s) => s.model);
  const megabytes = offlineMegabytes(usePlayground((s) => s.builtInModels));
  return (
    <span data-testid="offline-status" data-state={offline?.kind ?? 'none'}>
      {offline === null && (
        <button
          type="button"
          className="link-button"
          data-testid="offline-keep"
          onClick={controller.offline.keep}
          disabled={!model}
        >
          Save for offline use{megabytes > 0 ? ` (stores about ${megabytes} MB on this device)` : ''}
        </button>
      )}
      {offline?.kind === 'ready' &&
        `Works offline: the app and its models are saved on this device (${offline.files} files).`}
      {offline?.kind === 'preparing' && 'Saving the app and models for offline use…'}
      {offline?.kind === 'failed' && `Offline use not ready: ${offline.reason}.`}
      {offline?.kind === 'unsupported' && 'Offline use needs a browser with service workers.'}
    </span>
  );
}

function EngineStatus() {
  const backend = usePlayground((s) => s.backend);
  if (!backend) return <>starting…</>;
  return (
    <>
      <span
        className={`badge badge-${backend.kind}`}
        data-testid="backend-badge"
        data-kind={backend.kind}
        data-chosen-by={backend.chosenBy ?? ''}
        title={backend.reason}
      >
        {backend.kind === 'webgpu' ? 'WebGPU' : 'CPU'}
      </span>{' '}
      {backend.description}
      {backend.fallbackReason && <span className="fallback"> (CPU fallback: {backend.fallbackReason})</span>}
      {backend.reason && !backend.fallbackReason && (
        <span className="small" data-testid="backend-reason">
          {' '}
          ({backend.reason})
        </span>
      )}{' '}
      <label className="backend-choice small">
        <span className="sr-only">Engine to use</span>
        <select
          data-testid="backend-choice"
          value={controller.env.preferBackend}
          onChange={(e) => switchBackend(parseBackendPreference(e.target.value))}
          aria-label="Engine to use (reloads the page)"
        >
          <option value="auto">pick the faster engine</option>
          <option value="webgpu">use WebGPU</option>
          <option value="cpu">use the CPU engine</option>
        </select>
      </label>
    </>
  );
}

export function Header() {
  const model = usePlayground((s) => s.model);
  const stage = usePlayground((s) => s.stage);
  const loading = usePlayground((s) => s.loading);
  const setHelpOpen = usePlayground((s) => s.setHelpOpen);
  return (
    <header className="top">
      <div>
        <h1>MoE Playground</h1>
        <p className="tagline">Watch a Mixture-of-Experts language model route every token, in your browser.</p>
        <p className="small">
          <button
            type="button"
            className="link-button"
            onClick={() => setHelpOpen(true)}
            data-testid="help-button"
            aria-keyshortcuts="?"
          >
            Keyboard shortcuts (?)
          </button>{' '}
          · <OfflineStatus />
        </p>
      </div>
      <dl className="status" aria-live="polite">
        <dt>Engine</dt>
        <dd data-testid="backend">
          <EngineStatus />
        </dd>
        <dt>Model</dt>
        <dd data-testid="model">
          {model
            ? `${model.id} — ${model.architecture}, ${model.numLayers} layers, ${model.numExperts ? `${model.numExperts} experts (top-${model.topK})` : 'dense'}, ${formatCount(model.parametersTotal)} parameters (${formatCount(model.parametersActiveNative)} active), ${model.dtype}${model.quantize && model.quantize !== 'none' ? `, weights quantized to ${model.quantize}` : ''}`
            : 'none yet'}
        </dd>
        <dt>Status</dt>
        <dd data-testid="stage">
          {stage}
          {loading && (
            <progress max={1} value={loading.fraction} aria-label="loading progress" data-testid="progress">
              {Math.round(loading.fraction * 100)}%
            </progress>
          )}
        </dd>
      </dl>
    </header>
  );
}
