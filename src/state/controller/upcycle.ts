// Upcycling in the browser: the link's recipe turns the dense model into an MoE in the worker
// (engine.loadModel reads it); these actions set or clear it and load the parent to start from.
import { formatRecipe, type UpcycleRecipe } from '../url.ts';
import type { ControllerContext } from './context.ts';
import type { EngineActions } from './engine.ts';
import { denseParentOf, resolveModel } from './models.ts';

export interface UpcycleActions {
  /** Upcycles the model in the link with `recipe` (null: back to the dense parent itself). */
  upcycle(recipe: UpcycleRecipe | null): void;
  /** Loads the site's dense parent, so upcycling is reachable from any model. */
  loadParent(): void;
}

export function upcycleActions(ctx: ControllerContext, engine: EngineActions): UpcycleActions {
  const { store, env } = ctx;
  return {
    upcycle(recipe) {
      const s = store.getState();
      s.setShare({ upcycle: recipe ? formatRecipe(recipe) : '', iv: '' });
      const parent = resolveModel(env, s.builtInModels, s.share.model);
      if (parent) engine.loadModel({ id: parent.id, name: parent.id, path: parent.url });
    },
    loadParent() {
      const s = store.getState();
      const parent = denseParentOf(s.builtInModels);
      if (!parent) return;
      s.setShare({ upcycle: '', iv: '' });
      engine.loadModel(parent);
    },
  };
}
