// The page's side of the worker protocol: one worker, promises keyed by request id.
import type { WorkerRequest, WorkerResponse } from '../worker/protocol.ts';

type Listener = (message: WorkerResponse) => void;

export class EngineClient {
  private readonly worker: Worker;
  private readonly listeners = new Set<Listener>();
  private nextRequestId = 1;

  constructor() {
    this.worker = new Worker(new URL('../worker/engine.worker.ts', import.meta.url), { type: 'module' });
    this.worker.onmessage = (event: MessageEvent<WorkerResponse>) => {
      for (const listener of this.listeners) listener(event.data);
    };
    this.worker.onerror = (event) => {
      const message: WorkerResponse = { type: 'error', message: `The engine stopped: ${event.message || 'unknown error'}` };
      for (const listener of this.listeners) listener(message);
    };
  }

  subscribe(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  send(request: WorkerRequest): void {
    this.worker.postMessage(request);
  }

  /** Stops the worker (the page is going away or remounting). */
  terminate(): void {
    this.listeners.clear();
    this.worker.terminate();
  }

  newRequestId(): number {
    return this.nextRequestId++;
  }
}
