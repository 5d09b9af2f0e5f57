// The typed message protocol between the page and the engine's Web Worker.
// Only plain, structured-cloneable data crosses it: no GPU objects, no class instances.
import type { RoutingTrace, TokenRouting } from '../engine/types.ts';

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
  /** Absolute indices of the MoE layers. */
  moeLayers: number[];
  parametersTotal: number;
  parametersActiveNative: number;
  /** Parameters outside the routed experts, and one routed expert: the UI derives the active share of any mode from these. */
  parametersNonExpert: number;
  parametersPerExpert: number;
  dtype: string;
  maxPositions: number;
  vocabSize: number;
}

/** One candidate for the next token. */
export interface TokenChoice {
  id: number;
  text: string;
  probability: number;
}

export interface SamplingSettings {
  temperature: number;
  topP: number;
  seed: number;
  maxTokens: number;
}

export type WorkerRequest =
  | { type: 'init'; preferBackend: 'webgpu' | 'cpu' }
  | { type: 'load'; requestId: number; modelId: string; baseUrl: string }
  /** Generate from `prompt`; a newer generate/score request or a cancel ends it. */
  | { type: 'generate'; requestId: number; prompt: string; sampling: SamplingSettings; routing: string }
  /** Re-score a token sequence (prompt + generated) under `routing`; KL is measured against the previous scoring of the same tokens. */
  | { type: 'score'; requestId: number; tokenIds: number[]; routing: string }
  /** Cancel whatever generation or scoring runs now. */
  | { type: 'cancel' };

export type WorkerResponse =
  | { type: 'backend'; status: BackendStatus }
  | { type: 'progress'; requestId: number; stage: string; fraction: number }
  | { type: 'loaded'; requestId: number; model: ModelStatus }
  /** The prompt after tokenisation, sent before any generated token. */
  | { type: 'prompt'; requestId: number; tokenIds: number[]; tokenTexts: string[]; trace: RoutingTrace; logProbs: number[]; top: TokenChoice[][] }
  | {
      type: 'token';
      requestId: number;
      id: number;
      text: string;
      position: number;
      /** log p of this token under the distribution it was sampled from. */
      logProb: number;
      /** One entry per MoE layer. */
      routing: TokenRouting[];
      /** Top-5 of the distribution this token was drawn from (what the previous position predicted). */
      drawnFrom: TokenChoice[];
    }
  | { type: 'generated'; requestId: number; stopReason: string; tokensPerSecond: number; count: number; nextTop: TokenChoice[] }
  | {
      type: 'scored';
      requestId: number;
      routing: string;
      tokenIds: number[];
      tokenTexts: string[];
      trace: RoutingTrace;
      /** logProbs[i] = log p(token i+1 | tokens ..i). */
      logProbs: number[];
      /** Next-token top-5 after each position. */
      top: TokenChoice[][];
      /** KL(previous ‖ this) of the next-token distribution after each position; null when there was no previous scoring of these tokens. */
      klVsPrevious: number[] | null;
      previousRouting: string | null;
      meanLoss: number;
      tokensPerSecond: number;
    }
  | { type: 'cancelled'; requestId: number }
  | { type: 'error'; requestId?: number; message: string; hint?: string };
