// The Web Worker that hosts the engine, so the page never freezes while the model runs.
/// <reference lib="webworker" />
import { EngineSession } from './session.ts';
import type { WorkerRequest, WorkerResponse } from './protocol.ts';

declare const self: DedicatedWorkerGlobalScope;

const session = new EngineSession((message: WorkerResponse) => self.postMessage(message));

self.onmessage = (event: MessageEvent<WorkerRequest>) => {
  void session.handle(event.data);
};
