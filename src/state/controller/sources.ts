// Opening models from the hub, an address or the reader's disk (issue 11), as a controller module:
// the sources state (src/state/sources.ts) wired to the main pane's engine client, and a fetched
// checkpoint installed through the engine's ordinary load, so a failure keeps the model loaded.
import { DEFAULT_HUB_ENDPOINT } from '../../engine/source/ref.ts';
import { createSourceActions, createSourcesStore, type SourceActions, type SourcesState } from '../sources.ts';
import type { StoreApi } from 'zustand/vanilla';
import type { ControllerContext } from './context.ts';
import type { EngineActions } from './engine.ts';

export type SourcesModule = SourceActions & {
  store: StoreApi<SourcesState>;
  /** Starts following the engine's replies (after the engine module created its client). */
  start(): void;
};

export function sourcesActions(ctx: ControllerContext, engine: EngineActions): SourcesModule {
  const hub = ctx.env.hub ?? { endpoint: DEFAULT_HUB_ENDPOINT, notice: null };
  const store = createSourcesStore(hub.endpoint);
  const actions = createSourceActions(store, {
    send: (request) => ctx.client()?.send(request),
    newRequestId: () => ctx.client()?.reserveRequestId() ?? 0,
    openModel: (model) => engine.loadModel(model),
  });
  return {
    ...actions,
    store,
    start() {
      if (hub.notice) ctx.store.getState().addNotices([hub.notice]);
      const client = ctx.client();
      if (!client) return;
      ctx.cleanups.push(
        client.watch((message) => {
          actions.receive(message);
          if (message.type === 'backend') actions.refreshDevice();
        }),
      );
    },
  };
}
