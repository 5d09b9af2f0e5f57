// The page slice: what the page shows about its own progress (status line, share message, help
// sheet, tour, offline copy). Plain data and setters only; the controller decides when they change.
import type { StateCreator } from 'zustand/vanilla';
import type { OfflineState } from './offline.ts';
import type { Tour } from './tour.ts';

export interface PageSlice {
  /** The status line: what the engine is doing now, in words. */
  stage: string;
  /** The answer to "Copy share link". */
  shareMessage: string | null;
  helpOpen: boolean;
  /** The guided tour, once fetched; null when the site has none (or not yet). */
  tour: Tour | null;
  /** The offline copy, once asked for; null before. */
  offline: OfflineState | null;
  setStage(stage: string): void;
  setShareMessage(message: string | null): void;
  setHelpOpen(open: boolean): void;
  setTour(tour: Tour | null): void;
  setOffline(offline: OfflineState): void;
}

export const createPageSlice: StateCreator<PageSlice, [], [], PageSlice> = (set) => ({
  stage: 'starting the engine',
  shareMessage: null,
  helpOpen: false,
  tour: null,
  offline: null,
  setStage: (stage) => set({ stage }),
  setShareMessage: (shareMessage) => set({ shareMessage }),
  setHelpOpen: (helpOpen) => set({ helpOpen }),
  setTour: (tour) => set({ tour }),
  setOffline: (offline) => set({ offline }),
});
