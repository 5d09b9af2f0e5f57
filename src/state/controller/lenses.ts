// The Lenses view's orchestration: starts a lens job on the main engine client (the worker runs it on
// its own models, beside the page's generation), feeds its progress and result to the lens store,
// cancels it, runs the job a link asks for once the page knows its models, and keeps the lens keys
// of the last result in the address bar and the share link.
import { parsePlanText } from '../../engine/routing/index.ts';
import type { RoutingPlan } from '../../engine/types.ts';
import type { LensJobSpec } from '../../worker/lensJobs.ts';
import { EngineError } from '../engineClient.ts';
import {
  BUILT_IN_TEXTS,
  createLensStore,
  formatLensParams,
  jobTexts,
  linkSettings,
  parseLensFragment,
  type LensName,
  type LensStore,
  type ParsedLensLink,
} from '../lenses.ts';
import { formatShareFragment } from '../url.ts';
import { watch, type ControllerContext } from './context.ts';
import { resolveModel } from './models.ts';

export interface LensActions {
  /** The Lenses view's own store (settings, job, result), like the compare pane's. */
  store: LensStore;
  /** Runs the job a link asks for once the page knows its models; keeps the address bar in step. */
  start(): void;
  /** Starts a job with the current settings; a sentence (and nothing lost) when they cannot run. */
  run(): Promise<void>;
  /** Stops the running job between two windows. */
  cancel(): void;
  /** The link that reruns the current result with `name` in focus (and why part of it could not go in). */
  linkFor(name: LensName): { url: string; problem: string | null } | null;
  /** The lens keys the address bar carries ("&lens=…"), '' while the view is closed or has no result. */
  fragmentSuffix(): string;
}

function planOf(text: string): RoutingPlan | null {
  try {
    return parsePlanText(text.trim());
  } catch {
    return null;
  }
}

export function lensActions(ctx: ControllerContext, link: ParsedLensLink = parseLensFragment('')): LensActions {
  const { env } = ctx;
  const store = createLensStore({ open: link.present, settings: link.settings, pendingRun: link.present });
  ctx.store.getState().addNotices(link.notices);

  let builtInTexts: Promise<Record<string, string>> | null = null;
  /** public/eval/NAME.txt, fetched once; a text that cannot be read is left out (jobTexts says so). */
  const fetchBuiltInTexts = () => {
    builtInTexts ??= Promise.all(
      BUILT_IN_TEXTS.map((name) =>
        fetch(`${env.base}eval/${name}.txt`)
          .then((r) => (r.ok ? r.text() : null))
          .catch(() => null)
          .then((text): [string, string | null] => [name, text]),
      ),
    ).then((pairs) => {
      const texts: Record<string, string> = {};
      for (const [name, text] of pairs) if (text !== null) texts[name] = text;
      return texts;
    });
    return builtInTexts;
  };

  const fragmentSuffix = () => {
    const { open, resultSettings, settings } = store.getState();
    if (!open || !resultSettings) return '';
    return `&${formatLensParams(linkSettings(resultSettings, settings.focus || 'domain')).params}`;
  };

  const run = async () => {
    const state = store.getState();
    const s = state.settings;
    const fail = (message: string, hint: string) => state.setProblem({ message, hint });
    const client = ctx.client();
    if (!client) return fail('The engine is not started yet.', 'Wait a moment and press Run again.');
    const page = ctx.store.getState();
    const models = page.builtInModels;
    const modelId = s.model || page.share.model;
    const a = resolveModel(env, models, modelId);
    if (!a)
      return fail(
        modelId ? `The model ${JSON.stringify(modelId)} is not one of the built-in models.` : 'No model is chosen yet.',
        'Pick a model in the Lenses view.',
      );
    const planA = planOf(s.routing);
    if (!planA)
      return fail(
        `The routing ${JSON.stringify(s.routing)} is not a routing mode.`,
        'Write native, dense, topk:K or threshold:T (interventions after |, e.g. topk:2|L1E3-).',
      );
    const compareId = s.compareModel || a.id;
    const b = s.compare ? resolveModel(env, models, compareId) : null;
    if (s.compare && !b)
      return fail(
        `The second model ${JSON.stringify(compareId)} is not one of the built-in models.`,
        'Pick another model to compare with.',
      );
    const planB = s.compare ? planOf(s.compareRouting) : null;
    if (s.compare && !planB)
      return fail(
        `The second routing ${JSON.stringify(s.compareRouting)} is not a routing mode.`,
        'Write native, dense, topk:K or threshold:T.',
      );
    const texts = jobTexts(s, s.source === 'builtin' ? await fetchBuiltInTexts() : {});
    if ('problem' in texts) return fail(texts.problem, texts.hint);
    const job: LensJobSpec = {
      a: { model: { id: a.id, baseUrl: a.url }, routing: planA },
      b: b && planB ? { model: { id: b.id, baseUrl: b.url }, routing: planB } : undefined,
      texts: texts.texts,
      maxTokens: s.maxTokens,
      tradeoff: s.tradeoff,
    };
    const call = client.lens(job, (m) => {
      if (m.type === 'lensProgress' || m.type === 'lensDone' || m.type === 'lensFailed') store.getState().receive(m);
    });
    state.begin(call.requestId, job, { model: a.id, compareModel: b?.id ?? '' });
    await call.catch((error: unknown) => {
      // The engine refused the request as a whole (or stopped): the same sentence as a failed job.
      const message = error instanceof Error ? error.message : String(error);
      store.getState().receive({
        type: 'lensFailed',
        requestId: call.requestId,
        message,
        hint: error instanceof EngineError ? error.hint : undefined,
        cancelled: false,
      });
    });
  };

  /** A link asked for a run: it starts once the engine is up, the models are known and (without a lens model) the page's model is chosen. */
  const maybeRunFromLink = () => {
    const { open, pendingRun, settings } = store.getState();
    const page = ctx.store.getState();
    if (!open || !pendingRun || page.builtInModels === null || !page.backend || !ctx.client()) return;
    if (!settings.model && !page.share.model) return;
    store.getState().setPendingRun(false);
    void run();
  };

  return {
    store,
    start() {
      watch(ctx, (s) => `${s.builtInModels !== null}|${Boolean(s.backend)}|${s.share.model}`, maybeRunFromLink);
      const unsubscribe = store.subscribe((next, previous) => {
        if (next.open !== previous.open || next.pendingRun !== previous.pendingRun) maybeRunFromLink();
        if (next.open !== previous.open || next.resultSettings !== previous.resultSettings)
          env.replaceFragment(`${formatShareFragment(ctx.store.getState().share)}${fragmentSuffix()}`);
      });
      ctx.cleanups.push(unsubscribe);
      maybeRunFromLink();
    },
    run,
    cancel() {
      const job = store.getState().job;
      if (job) ctx.client()?.cancelLens(job.requestId);
    },
    linkFor(name) {
      const ran = store.getState().resultSettings;
      if (!ran) return null;
      const lens = formatLensParams(linkSettings(ran, name));
      return {
        url: env.linkTo(`${formatShareFragment(ctx.store.getState().share)}&${lens.params}`),
        problem: lens.problem,
      };
    },
    fragmentSuffix,
  };
}
