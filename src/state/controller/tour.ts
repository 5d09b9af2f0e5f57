// The guided tour: fetched once, a step's link applied to the page (loading its model when it
// changes), and the first screen opened on step 1.
import { missingModels, type Tour } from '../tour.ts';
import { parseShareFragment } from '../url.ts';
import { watch, type ControllerContext } from './context.ts';
import type { EngineActions } from './engine.ts';

export interface TourActions {
  /** The tour (public/tour.json), fetched once; null when the site has none. */
  fetch(): Promise<Tour | null>;
  /** Makes step `index`'s link the state of the page; loads its model when it changes. */
  apply(index: number): void;
  /** Fetches the tour into the store; on the first screen, opens it on step 1 even when that step cannot run here. */
  start(): void;
  /** The first screen plays the tour by itself (unless the reader asked for reduced motion). */
  readonly autoplay: boolean;
}

export function tourActions(ctx: ControllerContext, engine: EngineActions): TourActions {
  const { store, env } = ctx;
  const state = () => store.getState();
  let request: Promise<Tour | null> | null = null;
  const actions: TourActions = {
    autoplay: env.firstScreen && !env.reducedMotion,
    fetch() {
      request ??= env.fetchJson('tour.json').then((t) => {
        const tour = t as Tour | null;
        return tour && Array.isArray(tour.steps) && tour.steps.length > 0 ? tour : null;
      });
      return request;
    },
    apply(index) {
      const tour = state().tour;
      if (!tour || index < 0 || index >= tour.steps.length) return;
      const step = tour.steps[index];
      const s = state();
      const parsed = parseShareFragment(step.link);
      if (missingModels(step, s.builtInModels).length > 0) {
        s.setShare({ step: index });
        return;
      }
      const reload = parsed.state.model !== s.share.model || parsed.state.upcycle !== s.share.upcycle || !s.model;
      // Keep the reader's own classroom settings (presenter, embed, hidden and locked controls).
      const { presenter, embed, hide, lock } = s.share;
      s.setShare({ ...parsed.state, presenter, embed, hide, lock, step: index });
      const picked = s.builtInModels?.find((m) => m.id === parsed.state.model);
      if (reload && picked) engine.loadModel(picked);
      else if (!reload) engine.generate();
    },
    start() {
      void actions.fetch().then((t) => t && state().setTour(t));
      // A first screen whose tour step cannot run here (its model is not installed) still opens the tour on step 1.
      const openFirst = () => {
        const { tour, builtInModels, share } = state();
        if (!tour || builtInModels === null || !env.firstScreen || share.step >= 0) return;
        if (missingModels(tour.steps[0], builtInModels).length > 0) state().setShare({ step: 0 });
      };
      watch(ctx, (s) => s.tour, openFirst);
      watch(ctx, (s) => s.builtInModels, openFirst);
    },
  };
  return actions;
}
