// Offline use: only when the reader asks (it stores every built-in model on the device), or when
// an earlier visit already did (a service worker controls the page), to keep that copy current.
import { prepareOffline } from '../offline.ts';
import { watch, type ControllerContext } from './context.ts';
import { modelUrl, resolveModel } from './models.ts';

export interface OfflineActions {
  start(): void;
  /** Saves the app, the built-in models and the loaded model for offline use (once). */
  keep(): void;
}

export function offlineActions(ctx: ControllerContext): OfflineActions {
  const { store, env } = ctx;
  let started = false;
  const actions: OfflineActions = {
    start() {
      watch(
        ctx,
        (s) => s.model,
        (model) => {
          if (model && env.offlineActive()) actions.keep();
        },
      );
    },
    keep() {
      if (started) return;
      started = true;
      const { builtInModels, share } = store.getState();
      const folders = (builtInModels ?? []).map((m) => modelUrl(env, m));
      const resolved = resolveModel(env, builtInModels, share.model);
      if (resolved && !folders.includes(resolved.url)) folders.push(resolved.url);
      void prepareOffline(folders, (offline) => store.getState().setOffline(offline));
    },
  };
  return actions;
}
