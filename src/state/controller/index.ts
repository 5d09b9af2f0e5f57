// The controller: every action of the page that is more than setting a value, outside React (the
// way zustand's guide recommends). Components read the store and call these; they hold no
// orchestration. Each module is a function of the shared context that returns its actions; a
// feature adds a module here (docs/architecture.md says how).
import type { StoreApi } from 'zustand/vanilla';
import type { EngineClient } from '../engineClient.ts';
import type { ParsedLensLink } from '../lenses.ts';
import type { PlaygroundState } from '../store.ts';
import { compareActions, type CompareActions } from './compare.ts';
import type { ControllerContext } from './context.ts';
import { engineActions, type EngineActions } from './engine.ts';
import { lensActions, type LensActions } from './lenses.ts';
import type { PageEnv } from './env.ts';
import { offlineActions, type OfflineActions } from './offline.ts';
import { quantActions, type QuantActions } from './quant.ts';
import { shareActions, type ShareActions } from './share.ts';
import { shortcutTable, type ShortcutTable } from './shortcuts.ts';
import { tourActions, type TourActions } from './tour.ts';
import { upcycleActions, type UpcycleActions } from './upcycle.ts';
import { sourcesActions, type SourcesModule } from './sources.ts';

export interface Controller {
  /** The page's surroundings (base URL, preferred engine, first screen). */
  env: PageEnv;
  engine: EngineActions;
  tour: TourActions;
  share: ShareActions;
  offline: OfflineActions;
  upcycle: UpcycleActions;
  compare: CompareActions;
  /** The Lenses view: router statistics over a text set (src/state/lenses.ts, src/ui/LensesPanel.tsx). */
  lenses: LensActions;
  quant: QuantActions;
  shortcuts: ShortcutTable;
  /** Opening models from the hub, an address or the disk; the models kept on this device. */
  sources: SourcesModule;
  /** Starts the page: the engine worker, model discovery and loading, the tour, link sync, offline, compare. */
  start(options: { linkSetModel: boolean; createClient?: () => EngineClient }): void;
  /** Stops every worker and subscription. */
  dispose(): void;
}

export function createController(
  store: StoreApi<PlaygroundState>,
  env: PageEnv,
  options: { lensLink?: ParsedLensLink } = {},
): Controller {
  let client: EngineClient | null = null;
  const ctx: ControllerContext = { store, env, client: () => client, cleanups: [] };
  const engine = engineActions(ctx, (c) => (client = c));
  const tour = tourActions(ctx, engine);
  const lenses = lensActions(ctx, options.lensLink);
  const share = shareActions(ctx, lenses.fragmentSuffix);
  const offline = offlineActions(ctx);
  const upcycle = upcycleActions(ctx, engine);
  const compare = compareActions(ctx);
  const quant = quantActions(ctx, engine);
  const shortcuts = shortcutTable(ctx, engine, share, tour);
  const sources = sourcesActions(ctx, engine);
  let started = false;
  return {
    env,
    engine,
    tour,
    share,
    offline,
    upcycle,
    compare,
    lenses,
    quant,
    shortcuts,
    sources,
    start({ linkSetModel, createClient }) {
      if (started) return;
      started = true;
      share.start();
      tour.start();
      offline.start();
      quant.start();
      engine.start({ linkSetModel, fetchTour: tour.fetch, createClient, askForLink: sources.askForLink });
      sources.start();
      compare.start({ createClient });
      lenses.start();
    },
    dispose() {
      for (const cleanup of ctx.cleanups.splice(0).reverse()) cleanup();
      client = null;
      started = false;
    },
  };
}
