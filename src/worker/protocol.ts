// The typed message protocol between the page and the engine's Web Worker (docs/architecture.md).
// Only plain, structured-cloneable data crosses it: no GPU objects, no class instances. Routing
// travels as the engine's structured RoutingPlan, never as text. This file imports only src/engine.
import type { QuantCost } from '../engine/quant/cost.ts';
import type { QuantScheme, RoutingPlan, RoutingTrace, TokenRouting } from '../engine/types.ts';
import type { LensRequest, LensResponse } from './lensJobs.ts';
import type { SourceRequest, SourceResponse } from './sourceProtocol.ts';

/**
 * An upcycling recipe: N experts, granularity G, top-k K, router seed S and, optionally, the
 * Drop-Upcycling share D in percent (the share link writes it "E8G1K2S0", or "E8G1K2S0D50").
 */
export interface UpcycleRecipe {
  experts: number;
  granularity: number;
  topK: number;
  seed: number;
  /** Share of each expert's intermediate units re-initialised (0 = plain copies, 0.5 = half). */
  drop?: number;
}

export interface BackendStatus {
  kind: 'cpu' | 'webgpu';
  description: string;
  /** Why the CPU fallback runs, when it does. */
  fallbackReason?: string;
  /** Why this backend runs, in one sentence for the badge ("CPU: 3.1x faster than WebGPU on this software adapter"). */
  reason?: string;
  /** How the choice was made: forced by the link or the menu, read from the adapter, or measured at load. */
  chosenBy?: 'forced' | 'adapter' | 'measured' | 'fallback';
  /** Decode tokens per second of both backends, when they were measured at load. */
  measured?: { cpu: number; webgpu: number };
  /** A software WebGPU adapter was found (SwiftShader, llvmpipe, a fallback adapter). */
  softwareAdapter?: boolean;
}

/** What one quantization scheme needs for the loaded model on the running backend (memoryNeeded), and whether it can run. */
export interface QuantChoice {
  scheme: QuantScheme;
  /** Bytes held for the weights. */
  weightBytes: number;
  /** Bytes in all: weights, files while loading, KV cache and working buffers. */
  totalBytes: number;
  /** false when the backend lacks the scheme or the model cannot fit; `why` says so in a sentence. */
  available: boolean;
  why?: string;
}

/** Which backend the page asks for: the faster one (measured when in doubt), or one forced by ?backend= or the menu. */
export type BackendPreference = 'auto' | 'webgpu' | 'cpu';

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
  /** A fingerprint of the tokenizer's files: two models with the same one split any text into the same tokens. */
  tokenizerId: string;
  /** The quantization the weights run at. */
  quantize: QuantScheme;
  /** Each scheme's memory on the running backend, for this model. */
  quantChoices: QuantChoice[];
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
  | { type: 'init'; preferBackend: BackendPreference }
  /** Load a checkpoint, its matrices quantized to `quantize` (default none); a failure keeps the model loaded before. */
  | { type: 'load'; requestId: number; modelId: string; baseUrl: string; quantize?: QuantScheme }
  /**
   * Measure what the running model's quantization costs against the same checkpoint as stored, on `texts`
   * (each cut to `maxTokens` tokens, in windows). Runs like a scoring: a newer generate/score or a cancel ends it.
   */
  | { type: 'quantcost'; requestId: number; texts: string[]; maxTokens: number }
  /** Generate from `prompt`; a newer generate/score request or a cancel ends it. */
  | { type: 'generate'; requestId: number; prompt: string; sampling: SamplingSettings; routing: RoutingPlan }
  /**
   * Re-score a token sequence (prompt + generated) under `routing`;
   * KL is measured against the previous scoring of the same tokens. With `text`, the text is
   * tokenised by this model instead (the compare pane's model may have another tokenizer).
   */
  | { type: 'score'; requestId: number; tokenIds: number[]; routing: RoutingPlan; text?: string }
  /**
   * Upcycle the dense checkpoint at baseUrl in memory and load the child; first prove the identity
   * at initialisation by generating `proof` with parent and child under native routing.
   */
  | {
      type: 'upcycle';
      requestId: number;
      modelId: string;
      baseUrl: string;
      recipe: UpcycleRecipe;
      proof: { prompt: string; sampling: SamplingSettings };
    }
  /** Cancel whatever generation or scoring runs now. */
  | { type: 'cancel' }
  /** The Lenses view's jobs (src/worker/lensJobs.ts): they run beside generation, on their own models. */
  | LensRequest
  /** Opening checkpoints from the hub, a URL or the disk, and the models kept on this device (sourceProtocol.ts). */
  | SourceRequest;

export type WorkerResponse =
  | { type: 'backend'; status: BackendStatus }
  /** `received`/`total`: bytes of the file being downloaded, when the stage is a download (total null when unknown). */
  | { type: 'progress'; requestId: number; stage: string; fraction: number; received?: number; total?: number | null }
  | { type: 'loaded'; requestId: number; model: ModelStatus }
  /** The prompt after tokenisation, sent before any generated token. */
  | {
      type: 'prompt';
      requestId: number;
      tokenIds: number[];
      tokenTexts: string[];
      trace: RoutingTrace;
      logProbs: number[];
      top: TokenChoice[][];
    }
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
  | {
      type: 'generated';
      requestId: number;
      stopReason: string;
      tokensPerSecond: number;
      count: number;
      nextTop: TokenChoice[];
    }
  | {
      type: 'scored';
      requestId: number;
      routing: RoutingPlan;
      tokenIds: number[];
      tokenTexts: string[];
      trace: RoutingTrace;
      /** logProbs[i] = log p(token i+1 | tokens ..i). */
      logProbs: number[];
      /** Next-token top-5 after each position. */
      top: TokenChoice[][];
      /** KL(previous ‖ this) of the next-token distribution after each position; null when there was no previous scoring of these tokens. */
      klVsPrevious: number[] | null;
      previousRouting: RoutingPlan | null;
      meanLoss: number;
      tokensPerSecond: number;
    }
  | {
      type: 'upcycled';
      requestId: number;
      recipe: UpcycleRecipe;
      parentId: string;
      /** Prompt + generated text of parent and child, same prompt, seed and sampling. */
      parentText: string;
      childText: string;
      parentTokenIds: number[];
      childTokenIds: number[];
      /** Largest |logit difference| over the prompt's positions: rounding only (≈1e-6) when the identity holds. */
      maxLogitDifference: number;
      /** true when the chosen top-k weights sum to 1 (renormalised), which is why the identity holds. */
      renormalised: boolean;
    }
  | {
      type: 'quantcost';
      requestId: number;
      modelId: string;
      cost: QuantCost;
      /** Tokens compared, over how many texts, in windows of this many tokens. */
      tokens: number;
      texts: number;
      window: number;
    }
  | { type: 'cancelled'; requestId: number }
  | { type: 'error'; requestId?: number; message: string; hint?: string }
  | LensResponse
  | SourceResponse;
