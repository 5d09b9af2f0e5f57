import { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import { EngineClient } from './engineClient.ts';
import { Controls } from './Controls.tsx';
import { Metrics } from './Metrics.tsx';
import { DetailPanel } from './DetailPanel.tsx';
import { formatCount } from './format.ts';
import { linkPresent, playgroundStore, usePlayground } from '../state/useStore.ts';
import type { BuiltInModel } from '../state/store.ts';
import { fitToModel, formatRecipe, formatShareFragment, parseRecipe, parseShareFragment, planOf, VIEWS, type ControlName, type UpcycleRecipe, type ViewName } from '../state/url.ts';
import { Interventions } from './Interventions.tsx';
import { ComparePane } from './ComparePane.tsx';
import { UpcyclePanel } from './UpcyclePanel.tsx';
import { HelpSheet } from './HelpSheet.tsx';
import { TourPanel, missingModels, type Tour } from './Tour.tsx';
import { ExportBar, TraceExport } from './ExportBar.tsx';
import { TeacherTools } from './TeacherTools.tsx';
import { Glossary, TERMS } from './Glossary.tsx';
import { prepareOffline, type OfflineState } from './offline.ts';
import { useShortcuts } from './shortcuts.ts';
import { HeatmapTable } from '../viz/HeatmapTable.tsx';
import { loadSavedRun, type SavedRun } from '../state/example.ts';
import { TokenText } from '../viz/TokenText.tsx';
import { ErrorBoundary } from './ErrorBoundary.tsx';
import { PathGrid } from '../viz/PathGrid.tsx';
import { ProbHeatmap } from '../viz/ProbHeatmap.tsx';
import { ExpertLoad } from '../viz/ExpertLoad.tsx';
import { LossStrip } from '../viz/LossStrip.tsx';
import type { WorkerResponse } from '../worker/protocol.ts';
// Opening models from the hub, an address or the disk (issue 11).
import { OpenModel } from './OpenModel.tsx';
import { DeviceModels } from './DeviceModels.tsx';
import { createSourceActions, createSourcesStore, hubEndpointFor, isRemoteSource } from '../state/sources.ts';
import { parseSourceRef } from '../engine/source/ref.ts';
import { devicePath, storeKeyOf } from '../worker/sourceProtocol.ts';

const BASE = import.meta.env.BASE_URL;
/** The hub `hf:` models come from: the site's setting, or `?hub=` on loopback (development, tests). */
const HUB = hubEndpointFor(location.search, import.meta.env.VITE_HUB_ENDPOINT as string | undefined);
const sourcesStore = createSourcesStore(HUB.endpoint);
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

let tourRequest: Promise<Tour | null> | null = null;
/** The guided tour (public/tour.json), fetched once; null when the site has none. */
function fetchTour(): Promise<Tour | null> {
  tourRequest ??= fetch(`${BASE}tour.json`)
    .then((r) => (r.ok ? (r.json() as Promise<Tour>) : null))
    .then((t) => (t && Array.isArray(t.steps) && t.steps.length > 0 ? t : null))
    .catch(() => null);
  return tourRequest;
}

/** The page opened with no link and no test model: the tour's first step is the first screen. */
const FIRST_SCREEN = location.hash === '' && !new URLSearchParams(location.search).has('model');

/**
 * Test checkpoints may be named by path: the e2e harness serves them under /fixtures/, and the dev
 * server (`npm start`) serves the repository, so /tests/fixtures/models/NAME/ works there.
 */
function isFixturePath(id: string): boolean {
  return /^\/(fixtures|tests\/fixtures\/models)\/[A-Za-z0-9._-]+\/?$/.test(id);
}

/** The model to open: the link's, else `?model=` (tests), else the first built-in one. */
function chooseModel(models: BuiltInModel[], requested: string): { model: BuiltInModel | null; notice?: string; remote?: string } {
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
  // A remote model in a link is never downloaded by itself: the page opens another and asks.
  if (requested && isRemoteSource(requested)) return { model: fallback, remote: requested };
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

/** `?backend=cpu` picks the CPU engine; anything else prefers WebGPU and falls back to the CPU. */
const PREFER_BACKEND: 'webgpu' | 'cpu' = new URLSearchParams(location.search).get('backend') === 'cpu' ? 'cpu' : 'webgpu';

/** Reloads the page with the other engine, keeping the experiment in the fragment. */
function switchBackend(backend: 'webgpu' | 'cpu'): void {
  const query = new URLSearchParams(location.search);
  if (backend === 'cpu') query.set('backend', 'cpu');
  else query.delete('backend');
  const search = query.toString();
  location.assign(`${location.pathname}${search ? `?${search}` : ''}${location.hash}`);
}

/** SwiftShader, llvmpipe, WARP, "software": adapters that run WebGPU on the CPU. */
function isSoftwareAdapter(description: string): boolean {
  return /swiftshader|llvmpipe|lavapipe|software|warp|basic render/i.test(description);
}

function modelUrl(model: BuiltInModel): string {
  return model.path.startsWith('/') || model.path.startsWith('device:') ? model.path : `${BASE}${model.path}`;
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
    // While a model loads, its own first run is on the way; a Generate now would run the old model.
    if (!client || !state.model || state.activity === 'loading') return;
    const routing = planOf(state.share);
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
    // While a model loads, the text on screen belongs to the old one: the new model's own run replaces it.
    if (state.activity === 'loading') return;
    const routing = planOf(state.share);
    // A running generation or scoring already works under the routing asked for: leave it alone.
    if ((state.activity === 'generating' || state.activity === 'scoring') && routing === state.activeRouting) return;
    if (state.activity === 'idle' && routing === current.routing) return;
    const requestId = client.newRequestId();
    state.begin(requestId, 'scoring', routing);
    client.send({ type: 'score', requestId, tokenIds: current.tokenIds, routing });
  }, []);

  /** Loads a model; with the link's upcycling recipe, upcycles it in the worker first (and proves the identity). */
  const loadModel = useCallback((picked: BuiltInModel) => {
    const client = clientRef.current;
    if (!client) return;
    const state = playgroundStore.getState();
    state.setShare({ model: picked.id });
    const requestId = client.newRequestId();
    state.begin(requestId, 'loading');
    const recipe = parseRecipe(state.share.upcycle);
    if (recipe) {
      setStage(`upcycling ${picked.name}`);
      const { prompt, temperature, topP, seed, maxTokens } = state.share;
      client.send({ type: 'upcycle', requestId, modelId: picked.id, baseUrl: modelUrl(picked), recipe, proof: { prompt, sampling: { temperature, topP, seed, maxTokens } } });
    } else {
      setStage(`loading ${picked.name}`);
      client.send({ type: 'load', requestId, modelId: picked.id, baseUrl: modelUrl(picked) });
    }
  }, []);

  const sources = useMemo(
    () =>
      createSourceActions(sourcesStore, {
        send: (request) => clientRef.current?.send(request),
        newRequestId: () => clientRef.current?.newRequestId() ?? 0,
        openModel: (m) => loadModel(m),
      }),
    [loadModel],
  );

  useEffect(() => {
    // The saved example paints before the engine is up.
    fetch(`${BASE}example-trace.json`)
      .then((r) => (r.ok ? (r.json() as Promise<SavedRun>) : null))
      .then((saved) => saved && playgroundStore.getState().showExample(loadSavedRun(saved)))
      .catch(() => undefined);

    const client = new EngineClient();
    clientRef.current = client;
    const preferBackend = PREFER_BACKEND;
    const unsubscribe = client.subscribe((message: WorkerResponse) => {
      const store = playgroundStore.getState();
      // Replies to a request a newer one replaced change nothing on the page (the store drops them too).
      const current = !('requestId' in message) || message.requestId === undefined || message.requestId === store.activeRequest;
      sources.receive(message);
      store.receive(message);
      if (!current && message.type !== 'error') return;
      switch (message.type) {
        case 'backend':
          setStage('looking for a model');
          void Promise.all([fetchBuiltInModels(), FIRST_SCREEN ? fetchTour() : null]).then(([models, tour]) => {
            const state = playgroundStore.getState();
            state.setBuiltInModels(models);
            // The first screen is the tour's first step: its settings and model, so nothing loads twice.
            const first = tour?.steps[0];
            let requested = linkPresent.has('model') ? state.share.model : '';
            if (first && missingModels(first, models).length === 0) {
              const parsed = parseShareFragment(first.link).state;
              state.setShare({ ...parsed, step: 0 });
              requested = parsed.model;
            }
            const { model: picked, notice, remote } = chooseModel(models, requested);
            if (notice) state.addNotices([notice]);
            if (HUB.notice) state.addNotices([HUB.notice]);
            sources.refreshDevice();
            const openPicked = () => {
              if (picked) loadModel(picked);
              else setStage('no built-in model is installed');
            };
            // A link's remote model opens from this device when it is stored; otherwise another model opens and the page asks.
            if (remote) sources.askForLink(remote, openPicked);
            else openPicked();
          });
          break;
        case 'progress':
          setStage(message.stage);
          break;
        case 'loaded': {
          const fitted = fitToModel(store.share, { numExperts: message.model.numExperts, numMoeLayers: message.model.moeLayers.length, moeLayers: message.model.moeLayers });
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
          setStage(
            message.stopReason === 'contextFull'
              ? `ready: stopped at the model’s context of ${playgroundStore.getState().model?.maxPositions ?? '?'} tokens (prompt included), before the maximum tokens asked for`
              : 'ready',
          );
          rescoreIfNeeded();
          break;
        case 'scored':
          setStage('ready');
          break;
        case 'cancelled':
          setStage('ready (stopped)');
          break;
        case 'error':
          if (current) setStage('stopped by an error');
          break;
      }
    });
    client.send({ type: 'init', preferBackend });
    return () => {
      unsubscribe();
      client.terminate();
    };
  }, [loadModel, rescoreIfNeeded, sources]);

  // A routing or intervention change applies to the text on screen at once.
  const routing = planOf(share);
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
  const [helpOpen, setHelpOpen] = useState(false);
  const [tableVisible, setTableVisible] = useState(false);
  const [plainText, setPlainText] = useState(false);
  const [tour, setTour] = useState<Tour | null>(null);
  const [offline, setOffline] = useState<OfflineState | null>(null);
  const textRef = useRef<HTMLDivElement>(null);
  const viewRef = useRef<HTMLDivElement>(null);
  const hidden = (name: ControlName) => share.hide.includes(name);
  const locked = (name: ControlName) => share.lock.includes(name);

  const resolveModel = useCallback((id: string): { id: string; url: string } | null => {
    const list = playgroundStore.getState().builtInModels ?? [];
    const builtIn = list.find((m) => m.id === id);
    if (builtIn) return { id: builtIn.id, url: modelUrl(builtIn) };
    if (isFixturePath(id)) return { id, url: id.endsWith('/') ? id : `${id}/` };
    // A hub or web model is read from this device's store (or the worker's memory), never fetched here.
    if (isRemoteSource(id)) return { id, url: devicePath(storeKeyOf(parseSourceRef(id), HUB.endpoint)) };
    return null;
  }, []);

  /** Makes a tour step's link the state of the page; loads its model when it changes. */
  const applyTourStep = useCallback(
    (index: number) => {
      if (!tour || index < 0 || index >= tour.steps.length) return;
      const step = tour.steps[index];
      const state = playgroundStore.getState();
      const parsed = parseShareFragment(step.link);
      const missing = missingModels(step, state.builtInModels);
      if (missing.length > 0) {
        state.setShare({ step: index });
        return;
      }
      const reload = parsed.state.model !== state.share.model || parsed.state.upcycle !== state.share.upcycle || !state.model;
      // Keep the reader's own classroom settings (presenter, embed, hidden and locked controls).
      const { presenter, embed, hide, lock } = state.share;
      state.setShare({ ...parsed.state, presenter, embed, hide, lock, step: index });
      const picked = state.builtInModels?.find((m) => m.id === parsed.state.model);
      if (reload && picked) loadModel(picked);
      else if (!reload) generate();
    },
    [tour, loadModel, generate],
  );

  // The tour, and on the default first screen (no link, no test model) its autoplay.
  const firstScreen = useRef(FIRST_SCREEN);
  const reducedMotion = typeof matchMedia === 'function' && matchMedia('(prefers-reduced-motion: reduce)').matches;
  useEffect(() => {
    void fetchTour().then((t) => t && setTour(t));
  }, []);
  // A first screen whose tour step cannot run here (its model is not installed) still opens the tour on step 1.
  useEffect(() => {
    if (!tour || builtInModels === null || !firstScreen.current || playgroundStore.getState().share.step >= 0) return;
    if (missingModels(tour.steps[0], builtInModels).length > 0) playgroundStore.getState().setShare({ step: 0 });
  }, [tour, builtInModels]);

  // Offline: only when the reader asks (it stores every built-in model on the device), or when an
  // earlier visit already did (a service worker controls the page), to keep that copy current.
  const offlineStarted = useRef(false);
  const keepOffline = useCallback(() => {
    if (offlineStarted.current) return;
    offlineStarted.current = true;
    const folders = (playgroundStore.getState().builtInModels ?? []).map(modelUrl);
    const resolved = resolveModel(playgroundStore.getState().share.model);
    if (resolved && !folders.includes(resolved.url)) folders.push(resolved.url);
    void prepareOffline(folders, setOffline);
  }, [resolveModel]);
  useEffect(() => {
    if (model && typeof navigator !== 'undefined' && navigator.serviceWorker?.controller) keepOffline();
  }, [model, keepOffline]);
  // What saving for offline use costs: the built-in models' weights (stored as f16, 2 bytes each).
  const offlineMegabytes = Math.round((builtInModels ?? []).reduce((sum, m) => sum + (m.parametersTotal ?? 0) * 2, 0) / 1e6);

  const onUpcycle = useCallback(
    (recipe: UpcycleRecipe | null) => {
      const state = playgroundStore.getState();
      state.setShare({ upcycle: recipe ? formatRecipe(recipe) : '', iv: '' });
      const parent = resolveModel(state.share.model);
      if (parent) loadModel({ id: parent.id, name: parent.id, path: parent.url });
    },
    [loadModel, resolveModel],
  );

  const exportCurrentView = useCallback(() => {
    document.querySelector<HTMLButtonElement>('[data-testid="export-view-svg"]')?.click();
  }, []);

  const shortcuts = useMemo(() => {
    const st = () => playgroundStore.getState();
    const firstChoice = () => {
      const s = st();
      const r = s.run?.trace.layers[Math.min(s.share.layer, (s.run?.trace.layers.length ?? 1) - 1)]?.[s.share.token];
      const absolute = s.run?.trace.moeLayers[s.share.layer];
      return r && absolute !== undefined ? { layer: absolute, expert: r.experts[0] } : null;
    };
    const can = (name: ControlName) => !st().share.lock.includes(name) && !st().share.hide.includes(name);
    const handlers: Record<string, () => void> = {
      '?': () => setHelpOpen((o) => !o),
      Escape: () => (helpOpen ? setHelpOpen(false) : onStop()),
      g: () => can('generate') && generate(),
      n: () => can('routing') && setShare({ mode: 'native' }),
      d: () => can('routing') && setShare({ mode: 'dense' }),
      h: () => can('routing') && setShare({ mode: 'threshold' }),
      ArrowLeft: () => st().selectToken(st().share.token - 1),
      ArrowRight: () => st().selectToken(st().share.token + 1),
      '[': () => st().selectLayer(st().share.layer - 1),
      ']': () => st().selectLayer(st().share.layer + 1),
      v: () => can('views') && setShare({ view: VIEWS[(VIEWS.indexOf(st().share.view) + 1) % VIEWS.length] }),
      a: () => {
        const c = firstChoice();
        if (c && can('interventions')) st().setInterventions(cycleTo(st().share.iv, c.layer, c.expert, '-'));
      },
      f: () => {
        const c = firstChoice();
        if (c && can('interventions')) st().setInterventions(cycleTo(st().share.iv, c.layer, c.expert, '+'));
      },
      u: () => can('interventions') && st().undoInterventions(),
      c: () => can('compare') && setShare({ compare: !st().share.compare }),
      p: () => setShare({ presenter: !st().share.presenter }),
      s: () => can('export') && exportCurrentView(),
      l: () => can('share') && onShare(),
      PageDown: () => can('tour') && applyTourStep(st().share.step + 1),
      PageUp: () => can('tour') && applyTourStep(st().share.step - 1),
    };
    for (let k = 1; k <= 9; k++) handlers[String(k)] = () => can('routing') && setShare({ mode: 'topk', k });
    return handlers;
  }, [helpOpen, onStop, generate, setShare, exportCurrentView, onShare, applyTourStep]);
  useShortcuts(shortcuts, true);

  const className = ['app', share.presenter ? 'presenter' : '', share.embed ? 'embed' : ''].filter(Boolean).join(' ');
  const canUpcycle = model !== null && (model.numExperts === 0 || share.upcycle !== '');
  // The dense parent among the built-in models: the one whose every parameter is active.
  const denseParent = builtInModels?.find((m) => m.id === 'dense-parent') ?? builtInModels?.find((m) => m.parametersTotal !== undefined && m.parametersTotal === m.parametersActive) ?? null;
  const loadParent = denseParent
    ? () => {
        playgroundStore.getState().setShare({ upcycle: '', iv: '' });
        loadModel(denseParent);
      }
    : null;
  // A class link that hides or locks controls is the students' view: no teacher tools to undo the locks.
  const classLink = share.lock.length > 0 || share.hide.length > 0;

  return (
    <main className={className} data-testid="app" data-presenter={share.presenter} data-embed={share.embed}>
      {!share.embed && (
        <header className="top">
          <div>
            <h1>MoE Playground</h1>
            <p className="tagline">Watch a Mixture-of-Experts language model route every token, in your browser.</p>
            <p className="small">
              <button type="button" className="link-button" onClick={() => setHelpOpen(true)} data-testid="help-button" aria-keyshortcuts="?">
                Keyboard shortcuts (?)
              </button>{' '}
              ·{' '}
              <span data-testid="offline-status" data-state={offline?.kind ?? 'none'}>
                {offline === null && (
                  <button type="button" className="link-button" data-testid="offline-keep" onClick={keepOffline} disabled={!model}>
                    Save for offline use{offlineMegabytes > 0 ? ` (stores about ${offlineMegabytes} MB on this device)` : ''}
                  </button>
                )}
                {offline?.kind === 'ready' && `Works offline: the app and its models are saved on this device (${offline.files} files).`}
                {offline?.kind === 'preparing' && 'Saving the app and models for offline use…'}
                {offline?.kind === 'failed' && `Offline use not ready: ${offline.reason}.`}
                {offline?.kind === 'unsupported' && 'Offline use needs a browser with service workers.'}
              </span>
            </p>
          </div>
          <dl className="status" aria-live="polite">
            <dt>Engine</dt>
            <dd data-testid="backend">
              {backend ? (
                <>
                  <span className={`badge badge-${backend.kind}`}>{backend.kind === 'webgpu' ? 'WebGPU' : 'CPU'}</span> {backend.description}
                  {backend.fallbackReason && <span className="fallback"> (CPU fallback: {backend.fallbackReason})</span>}{' '}
                  <label className="backend-choice small">
                    <span className="sr-only">Engine to use</span>
                    <select data-testid="backend-choice" value={PREFER_BACKEND} onChange={(e) => switchBackend(e.target.value === 'cpu' ? 'cpu' : 'webgpu')} aria-label="Engine to use (reloads the page)">
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
      )}
      {share.embed && (
        <p className="embed-bar small">
          <strong>MoE Playground</strong> · {model?.id ?? stage} ·{' '}
          <a href={`${location.pathname}#${formatShareFragment({ ...share, embed: false })}`} target="_blank" rel="noreferrer">
            open the full playground
          </a>
        </p>
      )}

      {tour && !share.embed && !hidden('tour') && (share.step >= 0 || firstScreen.current) && (
        <TourPanel tour={tour} builtInModels={builtInModels} autoplay={firstScreen.current && !reducedMotion} onApply={applyTourStep} locked={locked('tour')} />
      )}

      {builtInModels !== null && builtInModels.length === 0 && !model && (
        <section className="notice-box" data-testid="no-models">
          <strong>No built-in model is installed.</strong> The example below is a saved trace. Add models under <code>public/models/</code> (listed in{' '}
          <code>public/models/index.json</code>) and reload.
        </section>
      )}
      {builtInModels && builtInModels.length > 0 && !hidden('model') && !share.embed && (
        <section className="panel model-picker" aria-label="Model">
          <label>
            Model{' '}
            <select
              data-testid="model-picker"
              disabled={locked('model')}
              value={pickedBuiltIn?.id ?? ''}
              onChange={(e) => {
                const next = builtInModels.find((m) => m.id === e.target.value);
                if (next) {
                  setShare({ upcycle: '', iv: '' });
                  loadModel(next);
                }
              }}
            >
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
              {pickedBuiltIn.training ?? pickedBuiltIn.description}{' '}
              <a href={`${modelUrl(pickedBuiltIn)}README.md`} target="_blank" rel="noreferrer" data-testid="model-card-link">
                Model card: how it was trained and what it found, per domain
              </a>
            </p>
          )}
          <p className="small about-models" data-testid="about-models" hidden={!pickedBuiltIn && model !== null}>
            These are tiny models (2–11 M parameters) trained for minutes on a laptop-class CPU, so their text is not fluent. Their routing is real: the
            router’s choices, losses and the dense vs sparse trade-off are what a large MoE does, at a scale you can run here.
          </p>
        </section>
      )}

      {!hidden('model') && !locked('model') && !share.embed && (
        <div className="open-row">
          <OpenModel store={sourcesStore} actions={sources} backend={backend?.kind ?? null} modelId={model?.id ?? null} onCopyLinkWithoutModel={onShare} />
          <DeviceModels store={sourcesStore} actions={sources} modelId={model?.id ?? null} />
        </div>
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

      <div className={share.embed && hidden('prompt') && hidden('sampling') && hidden('routing') && hidden('interventions') ? 'layout layout-wide' : 'layout'}>
        <div className="side">
          <Controls onGenerate={generate} onStop={onStop} onShare={onShare} shareMessage={shareMessage} hidden={hidden} locked={locked} />
          {model && !hidden('interventions') && model.numExperts > 0 && <Interventions onRegenerate={generate} disabled={locked('interventions')} />}
          {model && !hidden('upcycle') && !share.embed && (
            <UpcyclePanel parentIsDense={canUpcycle} onUpcycle={onUpcycle} onLoadParent={loadParent} parentName={denseParent?.name ?? null} locked={locked('upcycle')} />
          )}
        </div>
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
                    {run.modelLabel} · {run.tokenIds.length} tokens ({run.promptLength} prompt) · generated with {run.generatedWith} · scored with {run.routing}
                  </p>
                )}
                <div className="buttons reading-toggle" role="group" aria-label="How to show the text">
                  <button type="button" className="small-button" aria-pressed={!plainText} data-testid="text-as-tokens" onClick={() => setPlainText(false)}>
                    Tokens and experts
                  </button>
                  <button type="button" className="small-button" aria-pressed={plainText} data-testid="text-as-plain" onClick={() => setPlainText(true)}>
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
                    MoE layer <strong data-testid="layer-value">{run.trace.moeLayers.length > 0 ? `L${run.trace.moeLayers[layer]}` : "none (dense model)"}</strong>
                    {run.trace.moeLayers.length > 0 && (
                      <input data-testid="layer" type="range" min={0} max={Math.max(run.trace.moeLayers.length - 1, 0)} step={1} value={layer} onChange={(e) => setShare({ layer: Number(e.target.value) })} aria-keyshortcuts="[ ]" />
                    )}
                  </label>
                  {!hidden('export') && <ExportBar target={textRef} name="text" title="Routed text" kind="token-text" />}
                </div>
                <p className="legend" hidden={plainText}>
                  Colour: first-choice expert at this layer (number below each token); strength: its <span title={TERMS.gateWeight} className="term">gate weight</span> (how much that
                  expert’s output counts). Click a token for details (← → move).
                </p>
                <div ref={textRef} hidden={plainText}>
                  <ErrorBoundary area="the routed text">
                    <TokenText run={run} layer={layer} selected={token} onSelect={(i) => setShare({ token: i })} />
                  </ErrorBoundary>
                </div>
                <p className="strip-title">Loss per token in nats, −ln p (bars; black tick: under {run.previousRouting ?? 'the previous mode'})</p>
                <ErrorBoundary area="the loss strip">
                  <LossStrip run={run} selected={token} onSelect={(i) => setShare({ token: i })} />
                </ErrorBoundary>
              </section>
              <div className="metrics-row">
                <ErrorBoundary area="the scores">
                  <Metrics />
                </ErrorBoundary>
                {!hidden('export') && <TraceExport />}
                {!hidden('compare') && !share.embed && (
                  <button
                    type="button"
                    className="small-button"
                    data-testid="compare-button"
                    aria-pressed={share.compare}
                    aria-keyshortcuts="c"
                    disabled={locked('compare')}
                    onClick={() => setShare({ compare: !share.compare })}
                  >
                    {share.compare ? 'Close the comparison' : 'Compare with another model or routing'}
                  </button>
                )}
              </div>
              <Glossary />
              {share.compare && !hidden('compare') && <ComparePane resolveModel={resolveModel} preferBackend={PREFER_BACKEND} locked={locked('compare')} />}
              <section className="panel view-panel" aria-label="Routing views">
                <div className="panel-tools">
                  {!hidden('views') && (
                    <div className="tabs" role="tablist" aria-label="Views">
                      {VIEWS.map((v) => (
                        <button key={v} type="button" role="tab" aria-selected={share.view === v} data-testid={`view-${v}`} className={share.view === v ? 'tab-on' : undefined} disabled={locked('views')} onClick={() => setShare({ view: v })}>
                          {VIEW_LABEL[v]}
                        </button>
                      ))}
                    </div>
                  )}
                  {!hidden('export') && <ExportBar target={viewRef} name="view" title={VIEW_LABEL[share.view]} kind="svg" />}
                </div>
                <div ref={viewRef} role="tabpanel" aria-label={VIEW_LABEL[share.view]}>
                  <ErrorBoundary key={share.view} area={`the ${VIEW_LABEL[share.view]} view`}>
                  {share.view === 'paths' && <PathGrid run={run} layer={layer} selected={token} onSelect={(i, m) => setShare({ token: i, layer: m })} />}
                  {share.view === 'probs' && (
                    <>
                      <ProbHeatmap
                        run={run}
                        token={token}
                        layer={layer}
                        numExperts={numExperts}
                        onSelectLayer={(m) => setShare({ layer: m })}
                        iv={share.iv}
                        onCycle={(l, e) => {
                          if (!locked('interventions') && !hidden('interventions') && model && model.numExperts > 0) playgroundStore.getState().cycleIntervention(l, e);
                        }}
                      />
                      <label className="check small">
                        <input type="checkbox" data-testid="table-toggle" checked={tableVisible} onChange={(e) => setTableVisible(e.target.checked)} /> show as a table
                      </label>
                    </>
                  )}
                  {share.view === 'load' && <ExpertLoad run={run} numExperts={numExperts} layer={layer} onSelectLayer={(m) => setShare({ layer: m })} />}
                  </ErrorBoundary>
                </div>
                {share.view === 'probs' && <HeatmapTable run={run} token={token} numExperts={numExperts} iv={share.iv} visible={tableVisible} />}
              </section>
              <ErrorBoundary area="the token details">
                <DetailPanel run={run} token={token} numExperts={numExperts} />
              </ErrorBoundary>
            </>
          )}
        </div>
      </div>
      {!share.embed && !classLink && <TeacherTools />}
      <HelpSheet open={helpOpen} onClose={() => setHelpOpen(false)} />
    </main>
  );
}

/** Sets one expert's chip to `action` ('-' ablate, '+' force), or removes it when it already is. */
function cycleTo(iv: string, layer: number, expert: number, action: '-' | '+'): string {
  const chips = iv.split(',').filter((c) => c !== '');
  const key = `L${layer}E${expert}`;
  const at = chips.findIndex((c) => c.slice(0, -1) === key);
  if (at >= 0 && chips[at].endsWith(action)) return chips.filter((_, i) => i !== at).join(',');
  if (at >= 0) chips[at] = `${key}${action}`;
  else chips.push(`${key}${action}`);
  return chips.join(',');
}
