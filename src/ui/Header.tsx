// The page's header: title, shortcuts and offline links, and the status list (engine, model, what
// runs now with its progress bar).
import { controller, usePlayground } from '../state/useStore.ts';
import { offlineMegabytes } from '../state/controller/models.ts';
import { switchBackend } from '../state/controller/env.ts';
import { formatCount } from './format.ts';

/** SwiftShader, llvmpipe, WARP, "software": adapters that run WebGPU on the CPU. */
function isSoftwareAdapter(description: string): boolean {
  return /swiftshader|llvmpipe|lavapipe|software|warp|basic render/i.test(description);
}

function OfflineStatus() {
  const offline = usePlayground((s) => s.offline);
  const model = usePlayground((s) => s.model);
  const megabytes = offlineMegabytes(usePlayground((s) => s.builtInModels));
  return (
    <span data-testid="offline-status" data-state={offline?.kind ?? 'none'}>
      {offline === null && (
        <button type="button" className="link-button" data-testid="offline-keep" onClick={controller.offline.keep} disabled={!model}>
          Save for offline use{megabytes > 0 ? ` (stores about ${megabytes} MB on this device)` : ''}
        </button>
      )}
      {offline?.kind === 'ready' && `Works offline: the app and its models are saved on this device (${offline.files} files).`}
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
      <span className={`badge badge-${backend.kind}`}>{backend.kind === 'webgpu' ? 'WebGPU' : 'CPU'}</span> {backend.description}
      {backend.fallbackReason && <span className="fallback"> (CPU fallback: {backend.fallbackReason})</span>}{' '}
      <label className="backend-choice small">
        <span className="sr-only">Engine to use</span>
        <select
          data-testid="backend-choice"
          value={controller.env.preferBackend}
          onChange={(e) => switchBackend(e.target.value === 'cpu' ? 'cpu' : 'webgpu')}
          aria-label="Engine to use (reloads the page)"
        >
          <option value="webgpu">use WebGPU when available</option>
          <option value="cpu">use the CPU engine</option>
        </select>
      </label>
      {backend.kind === 'webgpu' && isSoftwareAdapter(backend.description) && (
        <span className="fallback" data-testid="software-adapter">
          {' '}This WebGPU adapter is a software renderer (no graphics hardware): each generation or routing change can take many seconds. The CPU engine is usually faster here.
        </span>
      )}
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
          <button type="button" className="link-button" onClick={() => setHelpOpen(true)} data-testid="help-button" aria-keyshortcuts="?">
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
            ? `${model.id} — ${model.architecture}, ${model.numLayers} layers, ${model.numExperts ? `${model.numExperts} experts (top-${model.topK})` : 'dense'}, ${formatCount(model.parametersTotal)} parameters (${formatCount(model.parametersActiveNative)} active), ${model.dtype}`
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
