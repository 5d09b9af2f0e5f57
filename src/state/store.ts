// The playground's state: plain data only (settings, traces, progress, errors). GPU objects stay
// in the worker. One zustand store made of slices: the run slice here (settings, the text on screen
// and its scores, fed by worker messages through `receive`, one reducer, so tests can drive it with
// the messages the engine sends) and the page slice (pageSlice.ts). The controller (controller/)
// holds the actions that talk to the worker; a feature adds its own slice next to these
// (docs/architecture.md).
import { createStore, type StateCreator, type StoreApi } from 'zustand/vanilla';
import { formatInterventions, formatPlanText, parseInterventions } from '../engine/routing/index.ts';
import type { Intervention, RoutingTrace } from '../engine/types.ts';
import type { BackendStatus, ModelStatus, TokenChoice, WorkerResponse } from '../worker/protocol.ts';
import type { ParameterFacts } from './derive.ts';
import { DEFAULT_SHARE_STATE, sanitizeShare, type ShareState } from './url.ts';
import { createPageSlice, type PageSlice } from './pageSlice.ts';
import { createQuantSlice, type QuantSlice } from './quantSlice.ts';

export interface BuiltInModel {
  id: string;
  name: string;
  /** Folder of the checkpoint, relative to the site root (e.g. "models/tiny-mixtral/"). */
  path: string;
  description?: string;
  /** How it was trained (upcycled from …, DS-MoE …). */
  training?: string;
  parametersTotal?: number;
  parametersActive?: number;
  /**
   * A sparse routing its card found far better than the native one (DS-MoE's threshold rule): the
   * mode, the share of parameters it reads, and its and native's loss above every expert (nats).
   */
  suggestedRouting?: { mode: string; active: number; gap: number; nativeGap: number };
}

/** One text with its routing and scores: the saved example, or the engine's latest output. */
export interface RunState {
  source: 'example' | 'engine';
  /** Which model produced it (shown on the example, which is not the loaded model). */
  modelLabel: string;
  /**
   * The parameter counts of the model that produced it, so "parameters active" is always computed
   * for the run on screen, even while another model is loading; null for the saved example.
   */
  modelFacts: ParameterFacts | null;
  tokenIds: number[];
  tokenTexts: string[];
  promptLength: number;
  trace: RoutingTrace;
  /** logProbs[i] = log p(token i | tokens before it); null for the first token. */
  logProbs: (number | null)[];
  /** The same under the routing scored before, when the tokens were the same (for the change column). */
  previousLogProbs: (number | null)[] | null;
  previousRouting: string | null;
  /** KL(previous ‖ current) of the next-token distribution after each position. */
  kl: (number | null)[] | null;
  /** Next-token top-5 after each position (null where not known yet). */
  top: (TokenChoice[] | null)[];
  /** The routing mode the trace and scores belong to. */
  routing: string;
  /** The routing mode the text was generated under (what a share link replays). */
  generatedWith: string;
  generateTokensPerSecond: number | null;
  scoreTokensPerSecond: number | null;
}

export type Activity = 'idle' | 'loading' | 'generating' | 'scoring';

export interface RunSlice {
  backend: BackendStatus | null;
  /** null until public/models/index.json was read; [] when no built-in model is installed. */
  builtInModels: BuiltInModel[] | null;
  model: ModelStatus | null;
  loading: { stage: string; fraction: number } | null;
  activity: Activity;
  /** The request whose messages are applied; replies to older requests are dropped. */
  activeRequest: number | null;
  activeRouting: string;
  share: ShareState;
  run: RunState | null;
  notices: string[];
  error: { message: string; hint?: string } | null;
  /** Parent vs upcycled child on the same prompt and seed (the identity at initialisation). */
  proof: UpcycledMessage | null;
  /** Earlier intervention lists, newest last, for undo. */
  ivUndo: string[];
  /** The compare pane has answered for the text on screen (or failed): what the tour waits for before moving on. */
  compareSettled: boolean;
  setCompareSettled(settled: boolean): void;

  /** Replace the interventions (remembering the old list for undo). */
  setInterventions(iv: string): void;
  /** Cycle one expert: none → ablated → forced → none. */
  cycleIntervention(layer: number, expert: number): void;
  undoInterventions(): void;
  setShare(patch: Partial<ShareState>): void;
  selectToken(index: number): void;
  selectLayer(m: number): void;
  addNotices(notices: string[]): void;
  dismissNotice(index: number): void;
  setBuiltInModels(models: BuiltInModel[]): void;
  showExample(run: RunState): void;
  /** Mark a request as the one whose replies count; `activity` says what it does, `routing` under which mode. */
  begin(requestId: number, activity: Activity, routing?: string): void;
  receive(message: WorkerResponse): void;
  setError(error: { message: string; hint?: string } | null): void;
}

type UpcycledMessage = Extract<WorkerResponse, { type: 'upcycled' }>;

/** The next state of one expert's chip: none → ablate (-) → force (+) → none; the order of other chips is kept. */
export function cycleChip(iv: string, layer: number, expert: number): string {
  const now = chipAction(iv, layer, expert);
  return setChip(iv, layer, expert, now === null ? 'ablate' : now === 'ablate' ? 'force' : null);
}

/** Sets one expert's chip to `action`, or removes it (null); the order of other chips is kept. */
export function setChip(iv: string, layer: number, expert: number, action: Intervention['action'] | null): string {
  const list = parseInterventions(iv);
  const at = list.findIndex((c) => c.layer === layer && c.expert === expert);
  if (action === null) return formatInterventions(list.filter((_, i) => i !== at));
  if (at >= 0) list[at] = { layer, expert, action };
  else list.push({ layer, expert, action });
  return formatInterventions(list);
}

/** The action on one expert in an intervention list, if any. */
export function chipAction(iv: string, layer: number, expert: number): Intervention['action'] | null {
  return parseInterventions(iv).find((c) => c.layer === layer && c.expert === expert)?.action ?? null;
}

function factsOf(model: ModelStatus | null): ParameterFacts | null {
  if (!model) return null;
  const { parametersTotal, parametersNonExpert, parametersPerExpert, moeLayers } = model;
  return { parametersTotal, parametersNonExpert, parametersPerExpert, moeLayers: [...moeLayers] };
}

/** The whole state: every slice. A feature's slice is added here and in createPlaygroundStore. */
export type PlaygroundState = RunSlice & PageSlice & QuantSlice;

export function createPlaygroundStore(initialShare: ShareState = DEFAULT_SHARE_STATE): StoreApi<PlaygroundState> {
  return createStore<PlaygroundState>()((...a) => ({
    ...createRunSlice(initialShare)(...a),
    ...createPageSlice(...a),
    ...createQuantSlice(...a),
  }));
}

function createRunSlice(initialShare: ShareState): StateCreator<PlaygroundState, [], [], RunSlice> {
  return (set, get) => ({
    backend: null,
    builtInModels: null,
    model: null,
    loading: null,
    activity: 'idle',
    activeRequest: null,
    activeRouting: 'native',
    share: { ...initialShare },
    run: null,
    notices: [],
    error: null,
    proof: null,
    ivUndo: [],
    compareSettled: false,

    setCompareSettled(settled) {
      if (get().compareSettled !== settled) set({ compareSettled: settled });
    },
    setInterventions(iv) {
      const before = get().share.iv;
      if (iv === before) return;
      set({ ivUndo: [...get().ivUndo.slice(-49), before] });
      get().setShare({ iv });
    },
    cycleIntervention(layer, expert) {
      get().setInterventions(cycleChip(get().share.iv, layer, expert));
    },
    undoInterventions() {
      const stack = get().ivUndo;
      if (stack.length === 0) return;
      set({ ivUndo: stack.slice(0, -1) });
      get().setShare({ iv: stack[stack.length - 1] });
    },

    setShare(patch) {
      set({ share: sanitizeShare(get().share, patch) });
    },
    selectToken(index) {
      const count = get().run?.tokenIds.length ?? 0;
      get().setShare({ token: Math.max(0, Math.min(index, count - 1)) });
    },
    selectLayer(m) {
      const layers = get().run?.trace.moeLayers.length ?? 1;
      get().setShare({ layer: Math.max(0, Math.min(m, layers - 1)) });
    },
    addNotices(notices) {
      if (notices.length > 0) set({ notices: [...get().notices, ...notices] });
    },
    dismissNotice(index) {
      set({ notices: get().notices.filter((_, i) => i !== index) });
    },
    setBuiltInModels(models) {
      set({ builtInModels: models });
    },
    showExample(run) {
      // The example is only a placeholder: never replace the engine's own output with it.
      if (get().run?.source === 'engine') return;
      set({ run });
    },
    begin(requestId, activity, routing) {
      set({ activeRequest: requestId, activity, activeRouting: routing ?? get().activeRouting, error: null });
    },
    setError(error) {
      set({ error });
    },

    receive(message) {
      const state = get();
      // The worker really did install this model, whoever asked: `model` always names the model the
      // worker runs, so every later output is labelled with the model that produced it.
      if (message.type === 'loaded' && message.requestId !== state.activeRequest) {
        set({ model: message.model });
        return;
      }
      // Replies to a request that a newer one replaced are stale.
      if (
        'requestId' in message &&
        message.requestId !== undefined &&
        message.type !== 'error' &&
        message.requestId !== state.activeRequest
      )
        return;
      switch (message.type) {
        case 'backend':
          set({ backend: message.status });
          return;
        case 'progress':
          set({ loading: { stage: message.stage, fraction: message.fraction } });
          return;
        case 'loaded':
          set({ model: message.model, loading: null, activity: 'idle' });
          return;
        case 'prompt': {
          const logProbs: (number | null)[] = [null, ...message.logProbs];
          set({
            run: {
              source: 'engine',
              modelLabel: state.model?.id ?? '',
              modelFacts: factsOf(state.model),
              tokenIds: [...message.tokenIds],
              tokenTexts: [...message.tokenTexts],
              promptLength: message.tokenIds.length,
              trace: message.trace,
              logProbs,
              previousLogProbs: null,
              previousRouting: null,
              kl: null,
              top: [...message.top],
              routing: state.activeRouting,
              generatedWith: state.activeRouting,
              generateTokensPerSecond: null,
              scoreTokensPerSecond: null,
            },
          });
          return;
        }
        case 'token': {
          const run = state.run;
          if (run?.source !== 'engine') return;
          const trace: RoutingTrace = {
            moeLayers: run.trace.moeLayers,
            positions: [...run.trace.positions, message.position],
            layers: run.trace.layers.map((rows, m) => [...rows, message.routing[m]]),
          };
          const top = [...run.top];
          top[top.length - 1] = message.drawnFrom;
          top.push(null);
          set({
            run: {
              ...run,
              tokenIds: [...run.tokenIds, message.id],
              tokenTexts: [...run.tokenTexts, message.text],
              trace,
              logProbs: [...run.logProbs, message.logProb],
              top,
            },
          });
          return;
        }
        case 'generated': {
          const run = state.run;
          if (!run) return;
          const top = [...run.top];
          top[top.length - 1] = message.nextTop;
          set({ activity: 'idle', run: { ...run, top, generateTokensPerSecond: message.tokensPerSecond } });
          return;
        }
        case 'scored': {
          const run = state.run;
          const sameTokens =
            run !== null &&
            run.tokenIds.length === message.tokenIds.length &&
            run.tokenIds.every((id, i) => id === message.tokenIds[i]);
          const logProbs: (number | null)[] = [null, ...message.logProbs];
          const routing = formatPlanText(message.routing);
          const changedRouting = sameTokens && run.routing !== routing;
          set({
            activity: 'idle',
            run: {
              source: 'engine',
              modelLabel: state.model?.id ?? run?.modelLabel ?? '',
              modelFacts: factsOf(state.model) ?? run?.modelFacts ?? null,
              tokenIds: [...message.tokenIds],
              tokenTexts: [...message.tokenTexts],
              promptLength: run && sameTokens ? run.promptLength : message.tokenIds.length,
              trace: message.trace,
              logProbs,
              previousLogProbs: changedRouting ? run.logProbs : sameTokens ? run.previousLogProbs : null,
              previousRouting: changedRouting ? run.routing : sameTokens ? run.previousRouting : null,
              kl: message.klVsPrevious ?? (sameTokens && !changedRouting ? run.kl : null),
              top: message.top,
              routing,
              generatedWith: run && sameTokens ? run.generatedWith : routing,
              generateTokensPerSecond: run && sameTokens ? run.generateTokensPerSecond : null,
              scoreTokensPerSecond: message.tokensPerSecond,
            },
          });
          return;
        }
        case 'upcycled':
          set({ proof: message });
          return;
        case 'cancelled':
          set({ activity: 'idle' });
          return;
        case 'error':
          // An error of an old request still matters to the person (a failed load), but must not stop a newer run.
          set({
            error: { message: message.message, hint: message.hint },
            loading: null,
            activity:
              message.requestId === undefined || message.requestId === state.activeRequest ? 'idle' : state.activity,
          });
          return;
      }
    },
  });
}
