// The main pane's engine actions: start the worker, find and load a model (upcycled when the link
// says so), generate, re-score the text on screen when the routing changes, stop.
import { formatPlanText, parsePlanText } from '../../engine/routing/index.ts';
import { EngineClient, type CallListener } from '../engineClient.ts';
import { loadSavedRun, type SavedRun } from '../example.ts';
import type { BuiltInModel } from '../store.ts';
import { missingModels, type Tour } from '../tour.ts';
import { fitToModel, parseRecipe, parseShareFragment, planOf, planTextOf } from '../url.ts';
import { isCurrent, watch, type ControllerContext } from './context.ts';
import { chooseModel, fetchBuiltInModels, modelUrl } from './models.ts';

export interface EngineActions {
  /** Starts the worker, paints the saved example, finds the model to open and loads it. */
  start(options: {
    linkSetModel: boolean;
    fetchTour(): Promise<Tour | null>;
    createClient?: () => EngineClient;
    /** A link names a remote model: open it from the device if stored, else call `onMissing` (open another) and ask. */
    askForLink?: (source: string, onMissing: () => void) => void;
  }): void;
  /**
   * Loads a model at the quantization the settings ask for; with the link's upcycling recipe, upcycles it
   * in the worker first (and proves the identity). `keepText`: re-score the text on screen with the new
   * weights instead of generating anew (a change of quantization keeps what was generated).
   */
  loadModel(picked: BuiltInModel, options?: { keepText?: boolean }): void;
  /** The model last asked for (what a change of quantization reloads). */
  lastPicked(): BuiltInModel | null;
  /** Generates from the prompt under the routing and interventions of the settings. */
  generate(): void;
  /** Re-scores the text on screen under the routing the settings ask for (cancels a running generation). */
  rescoreIfNeeded(): void;
  stop(): void;
}

export function engineActions(ctx: ControllerContext, setClient: (client: EngineClient) => void): EngineActions {
  const { store, env } = ctx;
  const state = () => store.getState();
  const stageOnError = (requestId: number) => () => {
    // The error itself reached the store as a message; the status line says the run stopped.
    if (isCurrent(ctx, requestId)) state().setStage('stopped by an error');
  };

  const sampling = () => {
    const { temperature, topP, seed, maxTokens } = state().share;
    return { temperature, topP, seed, maxTokens };
  };

  /** Generates under `routing` (routing text) and, when it finished, re-scores under the view's routing. */
  const runGeneration = (client: EngineClient, routing: string) => {
    const call = client.generate(state().share.prompt, sampling(), parsePlanText(routing));
    state().begin(call.requestId, 'generating', routing);
    call.then((reply) => {
      if (!isCurrent(ctx, call.requestId)) return;
      if (reply.type === 'cancelled') {
        state().setStage('ready (stopped)');
        return;
      }
      state().setStage(
        reply.stopReason === 'contextFull'
          ? `ready: stopped at the model’s context of ${state().model?.maxPositions ?? '?'} tokens (prompt included), before the maximum tokens asked for`
          : 'ready',
      );
      actions.rescoreIfNeeded();
    }, stageOnError(call.requestId));
  };

  let lastPicked: BuiltInModel | null = null;

  const actions: EngineActions = {
    lastPicked: () => lastPicked,

    start({ linkSetModel, fetchTour, createClient = EngineClient.inWorker, askForLink }) {
      // The saved example paints before the engine is up.
      void env.fetchJson('example-trace.json').then((saved) => {
        if (saved) state().showExample(loadSavedRun(saved as SavedRun));
      });
      const client = createClient();
      setClient(client);
      // Every message passes through the store's one reducer, whoever asked (it drops stale replies).
      ctx.cleanups.push(
        client.watch((message) => {
          state().receive(message);
          // An error of the engine as a whole (it failed to start or stopped) stops whatever ran.
          if (message.type === 'error' && message.requestId === undefined) state().setStage('stopped by an error');
        }),
      );
      ctx.cleanups.push(() => client.terminate());
      // A routing or intervention change applies to the text on screen at once.
      watch(
        ctx,
        (s) => planTextOf(s.share),
        () => actions.rescoreIfNeeded(),
      );
      client.init(env.preferBackend).then(
        () => {
          state().setStage('looking for a model');
          return Promise.all([fetchBuiltInModels(env), env.firstScreen ? fetchTour() : null]).then(([models, tour]) => {
            state().setBuiltInModels(models);
            // The first screen is the tour's first step: its settings and model, so nothing loads twice.
            const first = tour?.steps[0];
            let requested = linkSetModel ? state().share.model : '';
            if (first && missingModels(first, models).length === 0) {
              const parsed = parseShareFragment(first.link).state;
              state().setShare({ ...parsed, step: 0 });
              requested = parsed.model;
            }
            const { model: picked, notice, remote } = chooseModel(models, requested, env.queryModel);
            if (notice) state().addNotices([notice]);
            const openPicked = () => {
              if (picked) actions.loadModel(picked);
              else state().setStage('no built-in model is installed');
            };
            if (remote && askForLink) askForLink(remote, openPicked);
            else openPicked();
          });
        },
        () => undefined, // the engine's error is already in the store
      );
    },

    loadModel(picked, { keepText = false } = {}) {
      const client = ctx.client();
      if (!client) return;
      lastPicked = picked;
      state().setShare({ model: picked.id });
      const quant = state().share.quant;
      const recipe = parseRecipe(state().share.upcycle);
      const progress: CallListener = (message) => {
        if (message.type === 'progress' && isCurrent(ctx, message.requestId)) state().setStage(message.stage);
      };
      const { prompt } = state().share;
      const call = recipe
        ? client.upcycle(picked.id, modelUrl(env, picked), recipe, { prompt, sampling: sampling() }, progress)
        : client.load(picked.id, modelUrl(env, picked), progress, quant);
      state().begin(call.requestId, 'loading');
      state().setStage(
        `${recipe ? 'upcycling' : 'loading'} ${picked.name}${!recipe && quant !== 'none' ? ` at ${quant}` : ''}`,
      );
      call.then(
        (model) => {
          if (!isCurrent(ctx, call.requestId)) return;
          const run = state().run;
          if (keepText && run?.source === 'engine' && run.tokenIds.length > 0 && model.id === run.modelLabel) {
            // The same text, scored by the new weights: nothing generated is lost.
            const plan = planOf(state().share);
            const score = client.score(run.tokenIds, plan);
            state().begin(score.requestId, 'scoring', formatPlanText(plan));
            state().setStage('scoring the text with the new weights');
            score.then((reply) => {
              if (isCurrent(ctx, score.requestId))
                state().setStage(reply.type === 'cancelled' ? 'ready (stopped)' : 'ready');
            }, stageOnError(score.requestId));
            return;
          }
          const fitted = fitToModel(state().share, {
            numExperts: model.numExperts,
            numMoeLayers: model.moeLayers.length,
            moeLayers: model.moeLayers,
          });
          state().setShare(fitted.state);
          state().addNotices(fitted.notices);
          state().setStage('generating');
          // Replay the experiment: generate under the link's generation routing, then re-score under its view routing.
          runGeneration(client, state().share.gen);
        },
        (error: unknown) => {
          // A refused or failed load keeps the model loaded before: the setting goes back to what runs.
          const running = state().model;
          if (running && state().share.quant !== running.quantize) state().setShare({ quant: running.quantize });
          if (running && error instanceof Error)
            state().setQuantRefusal(
              `${error.message} ${running.id} stays loaded at ${running.quantize === 'none' ? 'its stored precision' : running.quantize}.`,
            );
          stageOnError(call.requestId)();
        },
      );
    },

    generate() {
      const client = ctx.client();
      const s = state();
      // While a model loads, its own first run is on the way; a Generate now would run the old model.
      if (!client || !s.model || s.activity === 'loading') return;
      const routing = planTextOf(s.share);
      s.setShare({ gen: routing, token: 0 });
      runGeneration(client, routing);
    },

    rescoreIfNeeded() {
      const client = ctx.client();
      const s = state();
      const current = s.run;
      if (!client || !s.model || !current || current.source !== 'engine') return;
      // While a model loads, the text on screen belongs to the old one: the new model's own run replaces it.
      if (s.activity === 'loading') return;
      const plan = planOf(s.share);
      const routing = formatPlanText(plan);
      // A running generation or scoring already works under the routing asked for: leave it alone.
      if ((s.activity === 'generating' || s.activity === 'scoring') && routing === s.activeRouting) return;
      if (s.activity === 'idle' && routing === current.routing) return;
      const call = client.score(current.tokenIds, plan);
      s.begin(call.requestId, 'scoring', routing);
      call.then((reply) => {
        if (isCurrent(ctx, call.requestId)) state().setStage(reply.type === 'cancelled' ? 'ready (stopped)' : 'ready');
      }, stageOnError(call.requestId));
    },

    stop() {
      ctx.client()?.cancel();
    },
  };
  return actions;
}
