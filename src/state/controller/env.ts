// The page's surroundings, read once: the site's base URL, what the address asks for, and the few
// browser calls the controller makes (fetch, history, clipboard). Nothing else in src/state reads
// `location`.
import type { BackendPreference } from '../../worker/protocol.ts';

import { hubEndpointFor } from '../sources.ts';

export interface PageEnv {
  /** The site's base URL (Vite's BASE_URL), ending in '/'. */
  base: string;
  /** `?backend=cpu|webgpu` forces that engine; without it the engine picks the faster (measured on a software adapter). */
  preferBackend: BackendPreference;
  /** `?model=` (tests name fixture checkpoints this way); '' when absent. */
  queryModel: string;
  /** The page opened with no link and no test model: the tour's first step is the first screen. */
  firstScreen: boolean;
  /** The reader asked for reduced motion (the tour does not play by itself then). */
  reducedMotion: boolean;
  /** Fetches JSON from the site; null when it is missing or not JSON. */
  fetchJson(path: string): Promise<unknown>;
  /** Fetches a text file from the site; null when it is missing. */
  fetchText(path: string): Promise<string | null>;
  /** Writes the share fragment into the address bar without a reload. */
  replaceFragment(fragment: string): void;
  /** The page's address with this fragment (a share link). */
  linkTo(fragment: string): string;
  /** Copies text to the clipboard; false when the browser refused. */
  copyText(text: string): Promise<boolean>;
  /** A service worker already controls the page (an earlier visit saved it for offline use). */
  offlineActive(): boolean;
  /** The hub `hf:` models come from (the site's setting, or `?hub=` on loopback), and a notice when `?hub=` was refused. Default: huggingface.co. */
  hub?: { endpoint: string; notice: string | null };
}

export function browserEnv(): PageEnv {
  const query = new URLSearchParams(location.search);
  return {
    base: import.meta.env.BASE_URL,
    preferBackend: parseBackendPreference(query.get('backend')),
    queryModel: query.get('model') ?? '',
    firstScreen: location.hash === '' && !query.has('model'),
    reducedMotion: typeof matchMedia === 'function' && matchMedia('(prefers-reduced-motion: reduce)').matches,
    async fetchJson(path) {
      try {
        const response = await fetch(`${import.meta.env.BASE_URL}${path}`);
        return response.ok ? await response.json() : null;
      } catch {
        return null;
      }
    },
    async fetchText(path) {
      try {
        const response = await fetch(`${import.meta.env.BASE_URL}${path}`);
        return response.ok ? await response.text() : null;
      } catch {
        return null;
      }
    },
    replaceFragment: (fragment) => history.replaceState(null, '', `${location.pathname}${location.search}#${fragment}`),
    linkTo: (fragment) => `${location.origin}${location.pathname}${location.search}#${fragment}`,
    copyText: async (text) => {
      if (!navigator.clipboard) return false;
      try {
        await navigator.clipboard.writeText(text);
        return true;
      } catch {
        return false;
      }
    },
    offlineActive: () => typeof navigator !== 'undefined' && Boolean(navigator.serviceWorker?.controller),
    hub: hubEndpointFor(location.search, import.meta.env.VITE_HUB_ENDPOINT as string | undefined),
  };
}

/** `?backend=` as the engine reads it: cpu or webgpu force that engine, anything else (or nothing) picks the faster. */
export function parseBackendPreference(value: string | null): BackendPreference {
  return value === 'cpu' || value === 'webgpu' ? value : 'auto';
}

/** Reloads the page with another engine choice, keeping the experiment in the fragment. */
export function switchBackend(backend: BackendPreference): void {
  const query = new URLSearchParams(location.search);
  if (backend === 'auto') query.delete('backend');
  else query.set('backend', backend);
  const search = query.toString();
  location.assign(`${location.pathname}${search ? `?${search}` : ''}${location.hash}`);
}
