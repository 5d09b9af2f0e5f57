// The controller: every action of the page that is more than setting a value, outside React (the
// way zustand's guide recommends). Components read the store and call these; they hold no
// orchestration. Each module is a function of the shared context that returns its actions; a
// feature adds a module here (docs/architecture.md says how).
import type { StoreApi } from 'zustand/vanilla';
import type { EngineClient } from '../engineClient.ts';
import type { PlaygroundState } from '../store.ts';
import { compareActions, type CompareActions } from './compare.ts';
import type { ControllerContext } from './context.ts';
import { engineActions, type EngineActions } from './engine.ts';
import type { PageEnv } from './env.ts';
import { offlineActions, type OfflineActions } from './offline.ts';
import { quantActions, type QuantActions } from './quant.ts';
import { shareActions, type ShareActions } from './share.ts';
import { shortcutTable, type ShortcutTable } from './shortcuts.ts';
import { tourActions, type TourActions } from './tour.ts';
import { upcycleActions, type UpcycleActions } from './upcycle.ts';

export interface Controller {
  /** The page's surroundings (base URL, preferred engine, first screen). */
  env: PageEnv;
  engine: EngineActions;
  tour: TourActions;
  share: ShareActions;
  offline: OfflineActions;
  upcycle: UpcycleActions;
  compare: CompareActions;
  quant: QuantActions;
  shortcuts: ShortcutTable;
  /** Starts the page: the engine worker, model discovery and loading, the tour, link sync, offline, compare. */
  start(options: { linkSetModel: boolean; createClient?: () => EngineClient }): void;
  /** Stops every worker and subscription. */
  dispose(): void;
}

export function createController(store: StoreApi<PlaygroundState>, env: PageEnv): Controller {
  let client: EngineClient | null = null;
  const ctx: ControllerContext = { store, env, client: () => client, cleanups: [] };
  const engine = engineActions(ctx, (c) => (client = c));
  const tour = tourActions(ctx, engine);
  const share = shareActions(ctx);
  const offline = offlineActions(ctx);
  const upcycle = upcycleActions(ctx, engine);
  const compare = compareActions(ctx);
  const quant = quantActions(ctx, engine);
  const shortcuts = shortcutTable(ctx, engine, share, tour);
  let started = false;
  return {
    env,
    engine,
    tour,
    share,
    offline,
    upcycle,
    compare,
    quant,
    shortcuts,
    start({ linkSetModel, createClient }) {
      if (started) return;
      started = true;
      share.start();
      tour.start();
      offline.start();
      quant.start();
      engine.start({ linkSetModel, fetchTour: tour.fetch, createClient });
      compare.start({ createClient });
    },
    dispose() {
      for (const cleanup of ctx.cleanups.splice(0).reverse()) cleanup();
      client = null;
      started = false;
    },
  };
}
