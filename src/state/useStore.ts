// The app's one store instance and its React hook. The initial settings come from the share link.
import { useStore } from 'zustand';
import { createPlaygroundStore, type PlaygroundState } from './store.ts';
import { parseShareFragment } from './url.ts';

const fromLink = parseShareFragment(typeof location === 'undefined' ? '' : location.hash);

export const playgroundStore = createPlaygroundStore(fromLink.state);
playgroundStore.getState().addNotices(fromLink.notices);
/** Which settings the link set, so the app knows e.g. whether a model was asked for. */
export const linkPresent = fromLink.present;

export function usePlayground<T>(selector: (state: PlaygroundState) => T): T {
  return useStore(playgroundStore, selector);
}
