// Compare: the text on screen (pane A: the main model and routing) scored by a second engine (pane
// B: its own model and routing, in its own worker, through its own EngineClient and its own store).
// The pane opens and closes with the `compare` setting; the tour waits for `compareSettled`.
import type { StoreApi } from 'zustand/vanilla';
import { parsePlanText } from '../../engine/routing/index.ts';
import { EngineClient } from '../engineClient.ts';
import { createPlaygroundStore, type PlaygroundState } from '../store.ts';
import { parseRecipe } from '../url.ts';
import { watch, type ControllerContext } from './context.ts';
import { resolveModel } from './models.ts';

export interface CompareActions {
  /** Pane B's state (its model, run, activity, error), the same shape as the main store's. */
  readonly pane: StoreApi<PlaygroundState>;
  start(options: { createClient?: () => EngineClient }): void;
}

/** Two models split any text into the same tokens when their tokenizer files are the same. */
export function sameTokenizer(a: { tokenizerId: string } | null, b: { tokenizerId: string } | null): boolean {
  return a !== null && b !== null && a.tokenizerId === b.tokenizerId;
}

const textKeyOf = (s: PlaygroundState) => (s.run && s.run.source === 'engine' ? s.run.tokenIds.join(',') : '');

export function compareActions(ctx: ControllerContext): CompareActions {
  const { store, env } = ctx;
  const pane = createPlaygroundStore();
  /** Pane B's state before anything ran: what each opening starts from (its actions are bound to this store). */
  const fresh = pane.getState();
  const main = () => store.getState();
  let session: {
    client: EngineClient;
    ready: boolean;
    requestedKey: string | null;
    loadedKey: string | null;
    loads: number;
    scoredKey: string;
    stop: (() => void)[];
  } | null = null;

  /** Pane B's model: the link's second model, or (when empty) the same model as pane A, upcycled the same way. */
  const wanted = () => {
    const { share } = main();
    const id = share.bModel || share.model;
    const recipe = share.bModel ? '' : share.upcycle;
    return { id, recipe, key: `${id}|${recipe}` };
  };

  const load = () => {
    if (!session?.ready) return;
    const { id, recipe, key } = wanted();
    // Wait for the list of installed models: before it arrives every id would look unknown.
    if (!id || main().builtInModels === null || session.requestedKey === key) return;
    session.requestedKey = key;
    const resolved = resolveModel(env, main().builtInModels, id);
    if (!resolved) {
      pane.getState().setError({
        message: `The second pane's model ${JSON.stringify(id)} is not installed on this site.`,
        hint: 'Pick another model for pane B.',
      });
      return;
    }
    const parsed = parseRecipe(recipe);
    const current = session;
    const call = parsed
      ? current.client.upcycle(resolved.id, resolved.url, parsed, {
          prompt: main().share.prompt,
          sampling: { temperature: 0, topP: 1, seed: 0, maxTokens: 1 },
        })
      : current.client.load(resolved.id, resolved.url);
    pane.getState().begin(call.requestId, 'loading');
    call.then(
      () => {
        if (session !== current || current.requestedKey !== key) return;
        current.loadedKey = key;
        current.loads++;
        score();
        settle();
      },
      () => undefined, // the error is in pane B's store
    );
  };

  /** Scores pane A's text whenever it, pane B's model or pane B's routing changes (and A is not mid-run). */
  const score = () => {
    if (!session) return;
    const a = main().run;
    const b = pane.getState();
    const textKey = textKeyOf(main());
    const same = sameTokenizer(main().model, b.model);
    const { bRouting } = main().share;
    if (session.loadedKey !== wanted().key || !textKey || !a || main().activity !== 'idle' || !b.model) return;
    const key = `${session.loads}|${textKey}|${bRouting}|${same}`;
    if (key === session.scoredKey) return;
    session.scoredKey = key;
    const call = session.client.score(a.tokenIds, parsePlanText(bRouting), same ? undefined : a.tokenTexts.join(''));
    pane.getState().begin(call.requestId, 'scoring', bRouting);
    call.catch(() => undefined); // the error is in pane B's store
  };

  /** Pane B has answered for the text on screen (or cannot): what the tour waits for before moving on. */
  const settle = () => {
    const b = pane.getState();
    const textKey = textKeyOf(main());
    const bText = textKeyOf(b);
    const settled =
      session !== null &&
      (b.error !== null ||
        (b.activity === 'idle' &&
          !b.loading &&
          session.loadedKey === wanted().key &&
          textKey !== '' &&
          (bText === textKey || (!sameTokenizer(main().model, b.model) && bText !== ''))));
    main().setCompareSettled(settled);
  };

  const open = (createClient: () => EngineClient) => {
    pane.setState(fresh, true);
    const client = createClient();
    const current = {
      client,
      ready: false,
      requestedKey: null,
      loadedKey: null,
      loads: 0,
      scoredKey: '',
      stop: [] as (() => void)[],
    };
    session = current;
    current.stop.push(client.watch((message) => pane.getState().receive(message)));
    client.init(env.preferBackend).then(
      () => {
        if (session !== current) return;
        current.ready = true;
        load();
      },
      () => undefined,
    );
  };

  const close = () => {
    if (!session) return;
    for (const stop of session.stop) stop();
    session.client.terminate();
    session = null;
    main().setCompareSettled(false);
  };

  return {
    pane,
    start({ createClient = EngineClient.inWorker }) {
      // The pane is on screen with a text to compare (the example or the engine's).
      const shown = (s: PlaygroundState) => s.share.compare && !s.share.hide.includes('compare') && s.run !== null;
      const sync = () => {
        if (shown(main()) && !session) open(createClient);
        else if (!shown(main()) && session) close();
        load();
        score();
        settle();
      };
      sync();
      watch(ctx, (s) => shown(s), sync);
      watch(
        ctx,
        (s) => `${s.share.bModel}|${s.share.model}|${s.share.upcycle}|${s.builtInModels === null ? '' : 'listed'}`,
        sync,
      );
      watch(ctx, textKeyOf, sync);
      watch(ctx, (s) => s.activity, sync);
      watch(ctx, (s) => s.share.bRouting, sync);
      watch(ctx, (s) => s.model, sync);
      const unsubscribePane = pane.subscribe(() => {
        score();
        settle();
      });
      ctx.cleanups.push(unsubscribePane, close);
    },
  };
}
