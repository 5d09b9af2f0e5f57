// The app's one store and one controller, and the React hooks that read them. The initial settings
// come from the share link; src/main.tsx starts the controller before the first render.
import { useStore } from 'zustand';
import type { StoreApi } from 'zustand/vanilla';
import { createController } from './controller/index.ts';
import { browserEnv } from './controller/env.ts';
import { createPlaygroundStore, type PlaygroundState } from './store.ts';
import { parseShareFragment } from './url.ts';

const fromLink = parseShareFragment(typeof location === 'undefined' ? '' : location.hash);

export const playgroundStore = createPlaygroundStore(fromLink.state);
playgroundStore.getState().addNotices(fromLink.notices);
/** Which settings the link set, so the app knows e.g. whether a model was asked for. */
export const linkPresent = fromLink.present;

export const controller = createController(playgroundStore, browserEnv());

/** Starts the page (once): the engine worker, the model, the tour, link sync, offline, compare. */
export function startPlayground(): void {
  controller.start({ linkSetModel: linkPresent.has('model') });
}

export function usePlayground<T>(selector: (state: PlaygroundState) => T): T {
  return useStore(playgroundStore, selector);
}

/** Reads the compare pane's store (pane B). */
export function usePaneB<T>(selector: (state: PlaygroundState) => T): T {
  return useStore(controller.compare.pane as StoreApi<PlaygroundState>, selector);
}
