// What every controller module shares: the store, the main pane's engine client, the page's
// surroundings, and a way to react to a change of the state (zustand's subscribe with a selector).
import type { StoreApi } from 'zustand/vanilla';
import type { EngineClient } from '../engineClient.ts';
import type { PlaygroundState } from '../store.ts';
import type { PageEnv } from './env.ts';

export interface ControllerContext {
  store: StoreApi<PlaygroundState>;
  /** The main pane's engine (created by start()). */
  client(): EngineClient | null;
  env: PageEnv;
  /** Functions to call when the controller is disposed (subscriptions, timers, other clients). */
  cleanups: (() => void)[];
}

/**
 * Calls `onChange(next, previous)` whenever `select(state)` changes (compared with Object.is, or
 * `key` when given), and once at once when `immediately`. Registered for disposal.
 */
export function watch<T>(
  ctx: ControllerContext,
  select: (state: PlaygroundState) => T,
  onChange: (next: T, previous: T) => void,
): void {
  let previous = select(ctx.store.getState());
  const unsubscribe = ctx.store.subscribe((state) => {
    const next = select(state);
    if (Object.is(next, previous)) return;
    const before = previous;
    previous = next;
    onChange(next, before);
  });
  ctx.cleanups.push(unsubscribe);
}

/** The request whose replies count in the store (replies to a replaced request change nothing). */
export function isCurrent(ctx: ControllerContext, requestId: number): boolean {
  return ctx.store.getState().activeRequest === requestId;
}
