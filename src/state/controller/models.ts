// Model discovery: the site's built-in models (public/models/index.json), which one to open, and
// where a model id's files are.
import type { BuiltInModel } from '../store.ts';
import type { PageEnv } from './env.ts';
import { DEFAULT_HUB_ENDPOINT, parseSourceRef } from '../../engine/source/ref.ts';
import { parseRoutingMode } from '../../engine/routing/index.ts';
import { devicePath, storeKeyOf } from '../../worker/sourceProtocol.ts';
import { isRemoteSource } from '../sources.ts';

export async function fetchBuiltInModels(env: PageEnv): Promise<BuiltInModel[]> {
  const list = (await env.fetchJson('models/index.json')) as { models?: unknown } | null;
  if (!list || !Array.isArray(list.models)) return [];
  return list.models
    .filter(
      (m): m is BuiltInModel =>
        typeof m === 'object' && m !== null && typeof m.id === 'string' && typeof m.path === 'string',
    )
    .map((m) => ({ ...m, suggestedRouting: checkedSuggestion(m.suggestedRouting) }));
}

/** index.json's suggested routing, kept only when it is a routing mode the page can set and its numbers are numbers. */
function checkedSuggestion(value: unknown): BuiltInModel['suggestedRouting'] {
  if (typeof value !== 'object' || value === null) return undefined;
  const { mode, active, gap, nativeGap } = value as Record<string, unknown>;
  if (typeof mode !== 'string' || !shareRoutingOf(mode)) return undefined;
  if (![active, gap, nativeGap].every((x) => typeof x === 'number' && Number.isFinite(x))) return undefined;
  return { mode, active: active as number, gap: gap as number, nativeGap: nativeGap as number };
}

/** "topk:3" / "threshold:0.6" → the share-link fields that select it; null for anything else. */
export function shareRoutingOf(mode: string): { mode: 'topk'; k: number } | { mode: 'threshold'; t: number } | null {
  try {
    const parsed = parseRoutingMode(mode);
    if (parsed.kind === 'topk') return { mode: 'topk', k: parsed.k };
    if (parsed.kind === 'threshold') return { mode: 'threshold', t: parsed.t };
  } catch {
    // not a routing mode
  }
  return null;
}

/**
 * Test checkpoints may be named by path: the e2e harness serves them under /fixtures/, and the dev
 * server (`npm start`) serves the repository, so /tests/fixtures/models/NAME/ works there.
 */
export function isFixturePath(id: string): boolean {
  return /^\/(fixtures|tests\/fixtures\/models)\/[A-Za-z0-9._-]+\/?$/.test(id);
}

/** The folder URL of a model's files. */
export function modelUrl(env: PageEnv, model: BuiltInModel): string {
  return model.path.startsWith('/') || model.path.startsWith('device:') ? model.path : `${env.base}${model.path}`;
}

/** A model id (built-in id or fixture path) → the model to load; null when this site does not have it. */
export function findModel(models: BuiltInModel[], id: string): BuiltInModel | null {
  const builtIn = models.find((m) => m.id === id);
  if (builtIn) return builtIn;
  if (isFixturePath(id)) {
    const path = id.endsWith('/') ? id : `${id}/`;
    return { id: path, name: path, path };
  }
  return null;
}

/** The model to open: the link's, else `?model=` (tests), else the first built-in one. */
export function chooseModel(
  models: BuiltInModel[],
  requested: string,
  queryModel: string,
): { model: BuiltInModel | null; notice?: string; remote?: string } {
  const fallback = findModel(models, queryModel) ?? models[0] ?? null;
  // A remote model in a link is never downloaded by itself: the page opens another and asks.
  if (requested && isRemoteSource(requested)) return { model: fallback, remote: requested };
  if (requested) {
    const wanted = findModel(models, requested);
    if (wanted) return { model: wanted };
    return {
      model: fallback,
      notice: `The link's model ${JSON.stringify(requested.slice(0, 60))} is not one of the built-in models${fallback ? `; ${fallback.name} is loaded instead` : ''}.`,
    };
  }
  return { model: fallback };
}

/** The dense parent among the built-in models: 'dense-parent', else one whose every parameter is active. */
export function denseParentOf(models: BuiltInModel[] | null): BuiltInModel | null {
  return (
    models?.find((m) => m.id === 'dense-parent') ??
    models?.find((m) => m.parametersTotal !== undefined && m.parametersTotal === m.parametersActive) ??
    null
  );
}

/** What saving for offline use stores: the built-in models' weights (f16, 2 bytes each), in MB. */
export function offlineMegabytes(models: BuiltInModel[] | null): number {
  return Math.round((models ?? []).reduce((sum, m) => sum + (m.parametersTotal ?? 0) * 2, 0) / 1e6);
}

/** A model id → its id and folder URL (built-in id or fixture path, kept as written); null when unknown. */
export function resolveModel(
  env: PageEnv,
  models: BuiltInModel[] | null,
  id: string,
): { id: string; url: string } | null {
  const builtIn = (models ?? []).find((m) => m.id === id);
  if (builtIn) return { id: builtIn.id, url: modelUrl(env, builtIn) };
  if (isFixturePath(id)) return { id, url: id.endsWith('/') ? id : `${id}/` };
  // A hub or web model is read from this device's store (or the worker's memory), never fetched here.
  if (isRemoteSource(id))
    return { id, url: devicePath(storeKeyOf(parseSourceRef(id), env.hub?.endpoint ?? DEFAULT_HUB_ENDPOINT)) };
  return null;
}
