import { useCallback, useEffect, useRef, useState } from 'react';
import { EngineClient } from './engineClient.ts';
import { Controls } from './Controls.tsx';
import { Metrics } from './Metrics.tsx';
import { DetailPanel } from './DetailPanel.tsx';
import { formatCount } from './format.ts';
import { linkPresent, playgroundStore, usePlayground } from '../state/useStore.ts';
import type { BuiltInModel } from '../state/store.ts';
import { fitToModel, formatShareFragment, routingOf, VIEWS, type ViewName } from '../state/url.ts';
import { loadSavedRun, type SavedRun } from '../state/example.ts';
import { TokenText } from '../viz/TokenText.tsx';
import { PathGrid } from '../viz/PathGrid.tsx';
import { ProbHeatmap } from '../viz/ProbHeatmap.tsx';
import { ExpertLoad } from '../viz/ExpertLoad.tsx';
import { LossStrip } from '../viz/LossStrip.tsx';
import type { WorkerResponse } from '../worker/protocol.ts';

const BASE = import.meta.env.BASE_URL;
const VIEW_LABEL: Record<ViewName, string> = { paths: 'Token paths', probs: 'Router probabilities', load: 'Expert load' };

async function fetchBuiltInModels(): Promise<BuiltInModel[]> {
  try {
    const response = await fetch(`${BASE}models/index.json`);
    if (!response.ok) return [];
    const list = (await response.json()) as { models?: unknown };
    if (!Array.isArray(list.models)) return [];
    return list.models.filter((m): m is BuiltInModel => typeof m === 'object' && m !== null && typeof m.id === 'string' && typeof m.path === 'string');
  } catch {
    return [];
  }
}

/** Test checkpoints (the e2e harness serves them under /fixtures/) may be named by path. */
function isFixturePath(id: string): boolean {
  return /^\/fixtures\/[A-Za-z0-9._-]+\/?$/.test(id);
}

/** The model to open: the link's, else `?model=` (tests), else the first built-in one. */
function chooseModel(models: BuiltInModel[], requested: string): { model: BuiltInModel | null; notice?: string } {
  const query = new URLSearchParams(location.search).get('model') ?? '';
  const byId = (id: string): BuiltInModel | null => {
    const builtIn = models.find((m) => m.id === id);
    if (builtIn) return builtIn;
    if (isFixturePath(id)) {
      const path = id.endsWith('/') ? id : `${id}/`;
      return { id: path, name: path, path };
    }
    return null;
  };
  const fallback = byId(query) ?? models[0] ?? null;
  if (requested) {
    const wanted = byId(requested);
    if (wanted) return { model: wanted };
    return {
      model: fallback,
      notice: `The link's model ${JSON.stringify(requested.slice(0, 60))} is not one of the built-in models${fallback ? `; ${fallback.name} is loaded instead` : ''}.`,
    };
  }
  return { model: fallback };
}

function modelUrl(model: BuiltInModel): string {
  return model.path.startsWith('/') ? model.path : `${BASE}${model.path}`;
}

export function App() {
  const clientRef = useRef<EngineClient | null>(null);
  const backend = usePlayground((s) => s.backend);
  const model = usePlayground((s) => s.model);
  const builtInModels = usePlayground((s) => s.builtInModels);
  const loading = usePlayground((s) => s.loading);
  const run = usePlayground((s) => s.run);
  const share = usePlayground((s) => s.share);
  const notices = usePlayground((s) => s.notices);
  const error = usePlayground((s) => s.error);
  const [stage, setStage] = useState('starting the engine');
  const [shareMessage, setShareMessage] = useState<string | null>(null);

  const generate = useCallback(() => {
    const client = clientRef.current;
    const state = playgroundStore.getState();
    if (!client || !state.model) return;
    const routing = routingOf(state.share);
    state.setShare({ gen: routing, token: 0 });
    const requestId = client.newRequestId();
    state.begin(requestId, 'generating', routing);
    const { temperature, topP, seed, maxTokens } = state.share;
    client.send({ type: 'generate', requestId, prompt: state.share.prompt, sampling: { temperature, topP, seed, maxTokens }, routing });
  }, []);

  /** Re-score the text on screen under the routing the settings ask for (cancels a running generation). */
  const rescoreIfNeeded = useCallback(() => {
    const client = clientRef.current;
    const state = playgroundStore.getState();
    const current = state.run;
    if (!client || !state.model || !current || current.source !== 'engine') return;
    const routing = routingOf(state.share);
    if (routing === current.routing && state.activity !== 'generating') return;
    if (routing === state.activeRouting && state.activity === 'scoring') return;
    const requestId = client.newRequestId();
    state.begin(requestId, 'scoring', routing);
    client.send({ type: 'score', requestId, tokenIds: current.tokenIds, routing });
  }, []);

  const loadModel = useCallback((picked: BuiltInModel) => {
    const client = clientRef.current;
    if (!client) return;
    const state = playgroundStore.getState();
    state.setShare({ model: picked.id });
    setStage(`loading ${picked.name}`);
    const requestId = client.newRequestId();
    state.begin(requestId, 'loading');
    client.send({ type: 'load', requestId, modelId: picked.id, baseUrl: modelUrl(picked) });
  }, []);

  useEffect(() => {
    // The saved example paints before the engine is up.
    fetch(`${BASE}example-trace.json`)
      .then((r) => (r.ok ? (r.json() as Promise<SavedRun>) : null))
      .then((saved) => saved && playgroundStore.getState().showExample(loadSavedRun(saved)))
      .catch(() => undefined);

    const client = new EngineClient();
    clientRef.current = client;
    const preferBackend = new URLSearchParams(location.search).get('backend') === 'cpu' ? 'cpu' : 'webgpu';
    const unsubscribe = client.subscribe((message: WorkerResponse) => {
      const store = playgroundStore.getState();
      store.receive(message);
      switch (message.type) {
        case 'backend':
          setStage('looking for a model');
          void fetchBuiltInModels().then((models) => {
            const state = playgroundStore.getState();
            state.setBuiltInModels(models);
            const { model: picked, notice } = chooseModel(models, linkPresent.has('model') ? state.share.model : '');
            if (notice) state.addNotices([notice]);
            if (!picked) {
              setStage('no built-in model is installed');
              return;
            }
            loadModel(picked);
          });
          break;
        case 'progress':
          setStage(message.stage);
          break;
        case 'loaded': {
          const fitted = fitToModel(store.share, { numExperts: message.model.numExperts, numMoeLayers: message.model.moeLayers.length });
          store.setShare(fitted.state);
          store.addNotices(fitted.notices);
          setStage('generating');
          // Replay the experiment: generate under the link's generation routing, then re-score under its view routing.
          const state = playgroundStore.getState();
          const requestId = client.newRequestId();
          const { temperature, topP, seed, maxTokens } = state.share;
          state.begin(requestId, 'generating', state.share.gen);
          client.send({ type: 'generate', requestId, prompt: state.share.prompt, sampling: { temperature, topP, seed, maxTokens }, routing: state.share.gen });
          break;
        }
        case 'generated':
          if (message.requestId === playgroundStore.getState().activeRequest || playgroundStore.getState().activity === 'idle') setStage('ready');
          rescoreIfNeeded();
          break;
        case 'scored':
          setStage('ready');
          break;
        case 'error':
          setStage('stopped by an error');
          break;
      }
    });
    client.send({ type: 'init', preferBackend });
    return () => {
      unsubscribe();
      client.terminate();
    };
  }, [loadModel, rescoreIfNeeded]);

  // A routing change applies to the text on screen at once.
  const routing = routingOf(share);
  useEffect(() => {
    rescoreIfNeeded();
  }, [routing, rescoreIfNeeded]);

  // The whole experiment lives in the fragment, so the address bar is always a share link.
  useEffect(() => {
    const timer = setTimeout(() => history.replaceState(null, '', `${location.pathname}${location.search}#${formatShareFragment(share)}`), 150);
    return () => clearTimeout(timer);
  }, [share]);

  const onShare = useCallback(() => {
    const url = `${location.origin}${location.pathname}${location.search}#${formatShareFragment(playgroundStore.getState().share)}`;
    history.replaceState(null, '', url);
    navigator.clipboard?.writeText(url).then(
      () => setShareMessage('Link copied.'),
      () => setShareMessage('Copy the address bar: it holds the link.'),
    ) ?? setShareMessage('Copy the address bar: it holds the link.');
  }, []);

  const onStop = useCallback(() => clientRef.current?.send({ type: 'cancel' }), []);
  const setShare = playgroundStore.getState().setShare;
  const numExperts = model?.numExperts || (run ? run.trace.layers[0]?.[0]?.probs.length ?? 8 : 8);
  const layer = Math.min(share.layer, Math.max((run?.trace.moeLayers.length ?? 1) - 1, 0));
  const token = Math.min(share.token, Math.max((run?.tokenIds.length ?? 1) - 1, 0));
  const pickedBuiltIn = builtInModels?.find((m) => m.id === share.model);

  return (
    <main className="app">
      <header className="top">
        <div>
          <h1>MoE Playground</h1>
          <p className="tagline">Watch a Mixture-of-Experts language model route every token, in your browser.</p>
        </div>
        <dl className="status" aria-live="polite">
          <dt>Engine</dt>
          <dd data-testid="backend">
            {backend ? (
              <>
                <span className={`badge badge-${backend.kind}`}>{backend.kind === 'webgpu' ? 'WebGPU' : 'CPU'}</span> {backend.description}
                {backend.fallbackReason && <span className="fallback"> (CPU fallback: {backend.fallbackReason})</span>}
              </>
            ) : (
              'starting…'
            )}
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

      {builtInModels !== null && builtInModels.length === 0 && !model && (
        <section className="notice-box" data-testid="no-models">
          <strong>No built-in model is installed.</strong> The example below is a saved trace. Add models under <code>public/models/</code> (listed in{' '}
          <code>public/models/index.json</code>) and reload.
        </section>
      )}
      {builtInModels && builtInModels.length > 0 && (
        <section className="panel model-picker" aria-label="Model">
          <label>
            Model{' '}
            <select data-testid="model-picker" value={pickedBuiltIn?.id ?? ''} onChange={(e) => {
              const next = builtInModels.find((m) => m.id === e.target.value);
              if (next) loadModel(next);
            }}>
              {!pickedBuiltIn && <option value="">{share.model || 'choose…'}</option>}
              {builtInModels.map((m) => (
                <option key={m.id} value={m.id}>
                  {m.name}
                </option>
              ))}
            </select>
          </label>
          {pickedBuiltIn && (
            <p className="card" data-testid="model-card">
              {pickedBuiltIn.parametersTotal !== undefined && <>{formatCount(pickedBuiltIn.parametersTotal)} parameters{pickedBuiltIn.parametersActive !== undefined && <>, {formatCount(pickedBuiltIn.parametersActive)} active per token</>}. </>}
              {pickedBuiltIn.training ?? pickedBuiltIn.description}
            </p>
          )}
        </section>
      )}

      {notices.length > 0 && (
        <section className="notices" data-testid="notices" role="status">
          <h2>Some link settings were changed</h2>
          <ul>
            {notices.map((notice, i) => (
              <li key={i}>
                {notice}{' '}
                <button type="button" className="link" onClick={() => playgroundStore.getState().dismissNotice(i)} aria-label="dismiss">
                  ×
                </button>
              </li>
            ))}
          </ul>
        </section>
      )}
      {error && (
        <section className="error" role="alert" data-testid="error">
          <strong>{error.message}</strong>
          {error.hint && <p>{error.hint}</p>}
        </section>
      )}

      <div className="layout">
        <Controls onGenerate={generate} onStop={onStop} onShare={onShare} shareMessage={shareMessage} />
        <div className="views">
          {run && (
            <>
              <section className="panel text-panel" aria-label="Routed text">
                {run.source === 'example' ? (
                  <p className="example-banner" data-testid="example-banner">
                    Precomputed example: a real trace saved from the engine ({run.modelLabel}), shown while the model loads.
                  </p>
                ) : (
                  <p className="run-info" data-testid="run-source" data-source="engine">
                    {run.tokenIds.length} tokens ({run.promptLength} prompt) · generated with {run.generatedWith} · scored with {run.routing}
                  </p>
                )}
                <label className="layer-scrubber">
                  MoE layer <strong data-testid="layer-value">L{run.trace.moeLayers[layer]}</strong>
                  <input data-testid="layer" type="range" min={0} max={Math.max(run.trace.moeLayers.length - 1, 0)} step={1} value={layer} onChange={(e) => setShare({ layer: Number(e.target.value) })} />
                </label>
                <p className="legend">Colour: first-choice expert at this layer (number below each token); strength: its gate weight. Click a token for details.</p>
                <TokenText run={run} layer={layer} selected={token} onSelect={(i) => setShare({ token: i })} />
                <h3 className="strip-title">Loss per token (bars; black tick: under {run.previousRouting ?? 'the previous mode'})</h3>
                <LossStrip run={run} selected={token} onSelect={(i) => setShare({ token: i })} />
              </section>
              <Metrics />
              <section className="panel view-panel">
                <div className="tabs" role="tablist">
                  {VIEWS.map((v) => (
                    <button key={v} type="button" role="tab" aria-selected={share.view === v} data-testid={`view-${v}`} className={share.view === v ? 'tab-on' : undefined} onClick={() => setShare({ view: v })}>
                      {VIEW_LABEL[v]}
                    </button>
                  ))}
                </div>
                {share.view === 'paths' && <PathGrid run={run} layer={layer} selected={token} onSelect={(i, m) => setShare({ token: i, layer: m })} />}
                {share.view === 'probs' && <ProbHeatmap run={run} token={token} layer={layer} numExperts={numExperts} onSelectLayer={(m) => setShare({ layer: m })} />}
                {share.view === 'load' && <ExpertLoad run={run} numExperts={numExperts} layer={layer} onSelectLayer={(m) => setShare({ layer: m })} />}
              </section>
              <DetailPanel run={run} token={token} numExperts={numExperts} />
            </>
          )}
        </div>
      </div>
    </main>
  );
}
