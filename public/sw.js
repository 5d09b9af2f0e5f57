// Service worker: after the first visit the playground works offline. Network first (so a new
// deployment shows at once), falling back to the cache; every same-origin GET that succeeds is
// kept: the app shell, the engine's worker and the model files. The page also sends the list of
// files to keep (those fetched before this worker took control, and the built-in models).
const CACHE = 'moe-playground-v1';

self.addEventListener('install', (event) => {
  self.skipWaiting();
  event.waitUntil(
    caches
      .open(CACHE)
      .then((cache) => cache.addAll([new URL('./', self.registration.scope).href]).catch(() => undefined)),
  );
});

self.addEventListener('activate', (event) => {
  event.waitUntil(self.clients.claim());
});

async function networkFirst(request) {
  const cache = await caches.open(CACHE);
  try {
    const response = await fetch(request);
    // A 404 is kept too: the loader asks for optional files (a shard index) and must get the same answer offline.
    if ((response.status === 200 || response.status === 404) && response.type === 'basic')
      await cache.put(request, response.clone());
    return response;
  } catch (error) {
    const hit = await cache.match(request);
    if (hit) return hit;
    // Any page address (?model=…, #…) is the same app shell.
    if (request.mode === 'navigate') {
      const shell = await cache.match(new URL('./', self.registration.scope).href);
      if (shell) return shell;
    }
    throw error;
  }
}

self.addEventListener('fetch', (event) => {
  const request = event.request;
  if (request.method !== 'GET' || new URL(request.url).origin !== self.location.origin) return;
  event.respondWith(networkFirst(request));
});

// { type: 'keep', urls } → fetch and store what is not stored yet; answers { type: 'kept', stored, failed }.
self.addEventListener('message', (event) => {
  const data = event.data;
  if (data?.type !== 'keep' || !Array.isArray(data.urls)) return;
  event.waitUntil(
    (async () => {
      const cache = await caches.open(CACHE);
      let stored = 0;
      let failed = 0;
      const queue = data.urls.filter((u) => typeof u === 'string').map((u) => new URL(u, self.location.href).href);
      const seen = new Set(queue);
      while (queue.length > 0) {
        const url = queue.shift();
        if (new URL(url).origin !== self.location.origin) continue;
        try {
          let response = await cache.match(url);
          if (!response) {
            response = await fetch(url);
            if (response.status === 404) {
              await cache.put(url, response);
              continue;
            }
            if (response.status !== 200) {
              failed++;
              continue;
            }
            await cache.put(url, response.clone());
          }
          stored++;
          // Scripts import chunks the page never fetched itself (the engine worker's): keep those too.
          if (url.endsWith('.js')) {
            for (const match of (await response.text()).matchAll(/["'`](\.{1,2}\/[\w./-]+?\.js)["'`]/g)) {
              const next = new URL(match[1], url).href;
              if (!seen.has(next)) {
                seen.add(next);
                queue.push(next);
              }
            }
          }
        } catch {
          failed++;
        }
      }
      event.source?.postMessage({ type: 'kept', stored, failed });
    })(),
  );
});
