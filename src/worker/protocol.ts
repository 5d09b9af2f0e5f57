// The typed message protocol between the page and the engine's Web Worker.
// Only plain, structured-cloneable data crosses it: no GPU objects, no class instances.

export interface BackendStatus {
  kind: 'cpu' | 'webgpu';
  description: string;
  /** Why the CPU fallback runs, when it does. */
  fallbackReason?: string;
}

export interface ModelStatus {
  id: string;
  architecture: string;
  numLayers: number;
  numExperts: number;
  topK: number;
  parametersTotal: number;
  parametersActiveNative: number;
  dtype: string;
}

export type WorkerRequest =
  | { type: 'init'; preferBackend: 'webgpu' | 'cpu' }
  | { type: 'load'; requestId: number; modelId: string; baseUrl: string }
  | { type: 'score'; requestId: number; text: string; routing: string };

export type WorkerResponse =
  | { type: 'backend'; status: BackendStatus }
  | { type: 'progress'; requestId: number; stage: string; fraction: number }
  | { type: 'loaded'; requestId: number; model: ModelStatus }
  | {
      type: 'scored';
      requestId: number;
      tokens: string[];
      nextTokenTop: { token: string; probability: number }[];
      meanLoss: number;
    }
  | { type: 'error'; requestId?: number; message: string; hint?: string };
