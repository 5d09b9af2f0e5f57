// The Web Worker that hosts the engine, so the page never freezes while the model runs.
/// <reference lib="webworker" />
import { urlSource } from '../engine/format/sources.ts';
import { EngineSession } from './session.ts';
import { cacheApiStore } from './modelStore.ts';
import { SourceJobs } from './sourceJobs.ts';
import { SOURCE_REQUEST_TYPES, type SourceRequest } from './sourceProtocol.ts';
import type { WorkerRequest, WorkerResponse } from './protocol.ts';

declare const self: DedicatedWorkerGlobalScope;

const post = (message: WorkerResponse) => self.postMessage(message);
// Checkpoints from the hub, a URL or the reader's disk are served to the session as `device:<key>`.
const sources = new SourceJobs(post, { store: cacheApiStore, isOnline: () => self.navigator.onLine });
const session = new EngineSession(post, (baseUrl) => sources.sourceFor(baseUrl) ?? urlSource(baseUrl));

self.onmessage = (event: MessageEvent<WorkerRequest>) => {
  const request = event.data;
  if (SOURCE_REQUEST_TYPES.has(request.type)) void sources.handle(request as SourceRequest);
  else void session.handle(request);
};
