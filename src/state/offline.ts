// Registers the service worker (public/sw.js) and asks it to keep the files the app needs offline:
// the page's own resources and the checkpoint files of the built-in models and the loaded model.

export type OfflineState =
  | { kind: 'unsupported' }
  | { kind: 'preparing' }
  | { kind: 'ready'; files: number }
  | { kind: 'failed'; reason: string };

const CHECKPOINT_FILES = [
  'config.json',
  'tokenizer.json',
  'tokenizer_config.json',
  'generation_config.json',
  'model.safetensors',
  'model.safetensors.index.json',
];

/** The files of a checkpoint folder (shards read from its index when there is one). */
async function checkpointFiles(folderUrl: string): Promise<string[]> {
  const base = folderUrl.endsWith('/') ? folderUrl : `${folderUrl}/`;
  const files = CHECKPOINT_FILES.map((f) => new URL(f, new URL(base, location.href)).href);
  try {
    const response = await fetch(`${base}model.safetensors.index.json`);
    if (response.ok) {
      const index = (await response.json()) as { weight_map?: Record<string, string> };
      for (const shard of new Set(Object.values(index.weight_map ?? {})))
        files.push(new URL(shard, new URL(base, location.href)).href);
    }
  } catch {
    // No index: a single-file checkpoint.
  }
  return files;
}

export async function prepareOffline(modelFolders: string[], onState: (state: OfflineState) => void): Promise<void> {
  if (!('serviceWorker' in navigator) || !import.meta.env.PROD) {
    onState({ kind: 'unsupported' });
    return;
  }
  onState({ kind: 'preparing' });
  try {
    await navigator.serviceWorker.register(`${import.meta.env.BASE_URL}sw.js`);
    const registration = await navigator.serviceWorker.ready;
    const urls = new Set<string>([location.origin + location.pathname]);
    for (const entry of performance.getEntriesByType('resource')) {
      if (entry.name.startsWith(location.origin)) urls.add(entry.name);
    }
    for (const folder of modelFolders) for (const f of await checkpointFiles(folder)) urls.add(f);
    for (const extra of ['models/index.json', 'tour.json', 'example-trace.json'])
      urls.add(new URL(`${import.meta.env.BASE_URL}${extra}`, location.href).href);
    const answer = new Promise<{ stored: number; failed: number }>((resolve) => {
      const listen = (event: MessageEvent) => {
        if (event.data?.type === 'kept') {
          navigator.serviceWorker.removeEventListener('message', listen);
          resolve(event.data);
        }
      };
      navigator.serviceWorker.addEventListener('message', listen);
    });
    registration.active?.postMessage({ type: 'keep', urls: [...urls] });
    const { stored, failed } = await answer;
    onState(
      failed > 0 ? { kind: 'failed', reason: `${failed} files could not be saved` } : { kind: 'ready', files: stored },
    );
  } catch (error) {
    onState({ kind: 'failed', reason: error instanceof Error ? error.message : String(error) });
  }
}
