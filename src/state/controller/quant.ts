// Quantization in the page: choose none / q8 / q4 for the main pane's model (reloaded at once,
// the text on screen kept and re-scored), refuse a choice the backend lacks or cannot fit with a
// sentence, and, whenever a quantized model runs, measure in the worker what quantization costs on
// the eval texts (public/eval) against the same checkpoint as stored. The measurement runs only
// while the engine is idle; a generation or a re-score cancels it and it resumes once idle again.
import type { QuantScheme } from '../../engine/types.ts';
import { watch, type ControllerContext } from './context.ts';
import type { EngineActions } from './engine.ts';

/** The eval texts every model is measured on (public/eval, the texts `moe quantcost` reads by default). */
export const EVAL_TEXTS = ['arithmetic.txt', 'english.txt', 'german.txt', 'python.txt'] as const;
/** Tokens of each text compared: a bounded measurement that takes seconds on the built-in models. */
export const QUANT_COST_TOKENS = 128;

export interface QuantActions {
  start(): void;
  /** Runs the model at `scheme` (reloads it, keeping the text), or refuses with a sentence. */
  choose(scheme: QuantScheme): void;
  /** Measures what the running quantization costs (again). */
  measure(): void;
  /** Stops a measurement under way (it does not restart by itself). */
  cancel(): void;
}

const key = (modelId: string, scheme: string) => `${modelId}:${scheme}`;

/**
 * What to do about the cost line now: 'measure' when a quantized model runs idle with no cost measured
 * (or cancelled) for it and none under way; else 'wait'. Pure, so the unit tests pin it down.
 */
export function costDecision(s: {
  model: { id: string; quantize: QuantScheme } | null;
  activity: string;
  quantCost: { modelId: string; cost: { scheme: string } } | null;
  quantMeasuring: { modelId: string; scheme: string } | null;
  quantCancelled: string | null;
}): 'measure' | 'wait' {
  const m = s.model;
  if (!m || m.quantize === 'none' || s.activity !== 'idle' || s.quantMeasuring) return 'wait';
  const k = key(m.id, m.quantize);
  if (s.quantCancelled === k) return 'wait';
  if (s.quantCost && key(s.quantCost.modelId, s.quantCost.cost.scheme) === k) return 'wait';
  return 'measure';
}

/** The sentence refusing `scheme` for the running model, or null when it may be chosen. */
export function refusalOf(
  model: {
    id: string;
    quantize: QuantScheme;
    quantChoices: { scheme: QuantScheme; available: boolean; why?: string }[];
  } | null,
  scheme: QuantScheme,
): string | null {
  const choice = model?.quantChoices.find((c) => c.scheme === scheme);
  if (!model || !choice || choice.available) return null;
  return `${choice.why ?? `${scheme} cannot run here.`} ${model.id} stays loaded at ${model.quantize === 'none' ? 'its stored precision' : model.quantize}.`;
}

export function quantActions(ctx: ControllerContext, engine: EngineActions): QuantActions {
  const { store, env } = ctx;
  const state = () => store.getState();
  let texts: Promise<string[]> | null = null;
  const evalTexts = () =>
    (texts ??= Promise.all(EVAL_TEXTS.map((f) => env.fetchText(`eval/${f}`))).then((all) =>
      all.filter((t): t is string => t !== null && t.length > 0),
    ));
  let scheduled = false;

  const actions: QuantActions = {
    start() {
      // A cost belongs to one model and scheme: another model drops it.
      watch(
        ctx,
        (s) => (s.model ? key(s.model.id, s.model.quantize) : ''),
        () => {
          const s = state();
          if (
            s.quantCost &&
            s.model &&
            key(s.quantCost.modelId, s.quantCost.cost.scheme) !== key(s.model.id, s.model.quantize)
          )
            s.setQuantCost(null);
          if (s.model) s.setQuantRefusal(null);
        },
      );
      // Measure once the engine is idle (a loaded model's first run comes first).
      watch(
        ctx,
        (s) => `${costDecision(s)}`,
        (decision) => {
          if (decision !== 'measure' || scheduled) return;
          scheduled = true;
          setTimeout(() => {
            scheduled = false;
            if (costDecision(state()) === 'measure') actions.measure();
          }, 0);
        },
      );
    },

    choose(scheme) {
      const s = state();
      const model = s.model;
      const refusal = refusalOf(model, scheme);
      if (refusal) {
        s.setQuantRefusal(refusal);
        return;
      }
      s.setQuantRefusal(null);
      s.setShare({ quant: scheme });
      const picked = engine.lastPicked();
      // Before a model runs (or while one loads), the setting applies to the load under way or the next.
      if (!model || !picked || model.quantize === scheme || s.activity === 'loading') return;
      engine.loadModel(picked, { keepText: true });
    },

    measure() {
      const client = ctx.client();
      const model = state().model;
      if (!client || !model || model.quantize === 'none' || state().quantMeasuring) return;
      const { id: modelId, quantize: scheme } = model;
      state().setQuantCancelled(null);
      state().setQuantMeasuring({ modelId, scheme, fraction: 0 });
      void evalTexts().then((all) => {
        if (all.length === 0) {
          state().setQuantMeasuring(null);
          state().setQuantCancelled(key(modelId, scheme));
          return;
        }
        // A generation may have started while the texts were fetched: it goes first.
        if (state().activity !== 'idle' || state().model?.id !== modelId || state().model?.quantize !== scheme) {
          state().setQuantMeasuring(null);
          return;
        }
        const call = client.quantCost(all, QUANT_COST_TOKENS, (message) => {
          if (message.type === 'progress' && state().quantMeasuring)
            state().setQuantMeasuring({ modelId, scheme, fraction: message.fraction });
        });
        call.then(
          (reply) => {
            state().setQuantMeasuring(null);
            if (
              reply.type === 'quantcost' &&
              state().model?.id === reply.modelId &&
              state().model?.quantize === reply.cost.scheme
            ) {
              state().setQuantCost({
                modelId: reply.modelId,
                cost: reply.cost,
                tokens: reply.tokens,
                texts: reply.texts,
              });
            }
          },
          () => {
            // The engine's sentence is in the store's error; do not retry by itself.
            state().setQuantMeasuring(null);
            state().setQuantCancelled(key(modelId, scheme));
          },
        );
      });
    },

    cancel() {
      const measuring = state().quantMeasuring;
      if (!measuring) return;
      state().setQuantCancelled(key(measuring.modelId, measuring.scheme));
      // The measurement runs only while the page is idle: a run the person started is never cancelled here.
      if (state().activity === 'idle') ctx.client()?.cancel();
      state().setQuantMeasuring(null);
    },
  };
  return actions;
}
