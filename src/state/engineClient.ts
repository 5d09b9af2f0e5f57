// The page's one client for the engine worker (docs/architecture.md): every request is a call that
// returns a promise of its final reply, and the messages streamed on the way (progress, the prompt,
// each token, the upcycling proof) go to the call's listener. Modelled on web-llm's
// WebWorkerMLCEngine. The main pane and the compare pane each own one (each runs its own model).
// The client speaks to a port: the Web Worker in the page, an in-process EngineSession in tests.
import type { QuantScheme, RoutingPlan } from '../engine/types.ts';
import type { LensJobSpec } from '../worker/lensJobs.ts';
import type {
  BackendPreference,
  BackendStatus,
  ModelStatus,
  SamplingSettings,
  UpcycleRecipe,
  WorkerRequest,
  WorkerResponse,
} from '../worker/protocol.ts';

/** What a client needs from the other side: a worker, or anything that behaves like one. */
export interface EnginePort {
  postMessage(request: WorkerRequest): void;
  /** Set by the client: every reply of the engine. */
  onmessage: ((event: { data: WorkerResponse }) => void) | null;
  /** Set by the client: the engine itself failed (its replies will not come). */
  onerror?: ((event: { message?: string }) => void) | null;
  terminate(): void;
}

type Reply<T extends WorkerResponse['type']> = Extract<WorkerResponse, { type: T }>;
export type GeneratedReply = Reply<'generated'>;
export type ScoredReply = Reply<'scored'>;
export type CancelledReply = Reply<'cancelled'>;
export type UpcycledReply = Reply<'upcycled'>;
export type LensReply = Reply<'lensDone'> | Reply<'lensFailed'>;
export type QuantCostReply = Reply<'quantcost'>;

/** A call's promise, with the request id its streamed messages and its reply carry. */
export type EngineCall<T> = Promise<T> & { readonly requestId: number };

/** Receives every message of one call, the final reply or error included, in order. */
export type CallListener = (message: WorkerResponse) => void;

/** The engine refused or failed a request: the sentence and hint it sent. */
export class EngineError extends Error {
  readonly hint: string | undefined;
  readonly requestId: number | undefined;
  constructor(message: string, hint?: string, requestId?: number) {
    super(message);
    this.name = 'EngineError';
    this.hint = hint;
    this.requestId = requestId;
  }
}

/** The final reply types of each request type; everything else a call receives is streamed. */
const FINAL: Record<string, readonly WorkerResponse['type'][]> = {
  load: ['loaded'],
  upcycle: ['loaded'],
  generate: ['generated', 'cancelled'],
  score: ['scored', 'cancelled'],
  lens: ['lensDone', 'lensFailed'],
  quantcost: ['quantcost', 'cancelled'],
};

interface Pending {
  type: WorkerRequest['type'];
  listener?: CallListener;
  resolve(message: WorkerResponse): void;
  reject(error: EngineError): void;
}

type Distribute<T> = T extends unknown ? Omit<T, 'requestId'> : never;
type CallRequest = Distribute<Extract<WorkerRequest, { requestId: number }>>;

export class EngineClient {
  private readonly pending = new Map<number, Pending>();
  private readonly watchers = new Set<(message: WorkerResponse) => void>();
  private backendWaiters: { resolve(status: BackendStatus): void; reject(error: EngineError): void }[] = [];
  private nextRequestId = 1;

  constructor(private readonly port: EnginePort) {
    port.onmessage = (event) => this.receive(event.data);
    port.onerror = (event) => {
      const message = `The engine stopped: ${event.message || 'unknown error'}`;
      for (const watcher of this.watchers) watcher({ type: 'error', message });
      this.fail(message);
    };
  }

  /** The engine in its own Web Worker (the page). */
  static inWorker(): EngineClient {
    const worker = new Worker(new URL('../worker/engine.worker.ts', import.meta.url), { type: 'module' });
    return new EngineClient(worker as unknown as EnginePort);
  }

  /** Starts the engine: the faster backend ('auto', measured when in doubt) or the one forced; WebGPU falls back to the CPU, saying why. */
  init(preferBackend: BackendPreference): Promise<BackendStatus> {
    const answer = new Promise<BackendStatus>((resolve, reject) => this.backendWaiters.push({ resolve, reject }));
    this.port.postMessage({ type: 'init', preferBackend });
    return answer;
  }

  /** Downloads and installs a checkpoint; progress messages go to `listener`. */
  load(
    modelId: string,
    baseUrl: string,
    listener?: CallListener,
    quantize: QuantScheme = 'none',
  ): EngineCall<ModelStatus> {
    return this.call({ type: 'load', modelId, baseUrl, quantize }, listener, (m) => (m as Reply<'loaded'>).model);
  }

  /** Measures what the running model's quantization costs on `texts` (progress to `listener`); a newer generate/score or cancel() ends it. */
  quantCost(texts: string[], maxTokens: number, listener?: CallListener): EngineCall<QuantCostReply | CancelledReply> {
    return this.call({ type: 'quantcost', texts, maxTokens }, listener, (m) => m as QuantCostReply | CancelledReply);
  }

  /** Upcycles the dense checkpoint at baseUrl in memory and installs the child; the identity proof arrives as an `upcycled` message first. */
  upcycle(
    modelId: string,
    baseUrl: string,
    recipe: UpcycleRecipe,
    proof: { prompt: string; sampling: SamplingSettings },
    listener?: CallListener,
  ): EngineCall<ModelStatus> {
    return this.call(
      { type: 'upcycle', modelId, baseUrl, recipe, proof },
      listener,
      (m) => (m as Reply<'loaded'>).model,
    );
  }

  /** Generates from a prompt; the prompt's scores and each token stream to `listener`. A newer generate/score or cancel() ends it (resolves `cancelled`). */
  generate(
    prompt: string,
    sampling: SamplingSettings,
    routing: RoutingPlan,
    listener?: CallListener,
  ): EngineCall<GeneratedReply | CancelledReply> {
    return this.call(
      { type: 'generate', prompt, sampling, routing },
      listener,
      (m) => m as GeneratedReply | CancelledReply,
    );
  }

  /** Scores tokens (or, with `text`, this model's tokenisation of it) under a plan. */
  score(
    tokenIds: number[],
    routing: RoutingPlan,
    text?: string,
    listener?: CallListener,
  ): EngineCall<ScoredReply | CancelledReply> {
    return this.call({ type: 'score', tokenIds, routing, text }, listener, (m) => m as ScoredReply | CancelledReply);
  }

  /** Runs the router lenses over a text set on the job's own models (src/worker/lensJobs.ts); progress goes to `listener`. */
  lens(job: LensJobSpec, listener?: CallListener): EngineCall<LensReply> {
    return this.call({ type: 'lens', job }, listener, (m) => m as LensReply);
  }

  /** Stops the lens job `requestId` between two windows (its call resolves `lensFailed`, cancelled). */
  cancelLens(requestId: number): void {
    this.port.postMessage({ type: 'lensCancel', requestId });
  }

  /** A request id for a request sent with send(), whose replies the caller follows through watch(). */
  reserveRequestId(): number {
    return this.nextRequestId++;
  }

  /** Sends a request whose replies are followed through watch() (the source jobs: look up, download, the device's models). */
  send(request: WorkerRequest): void {
    this.port.postMessage(request);
  }

  /** Cancels the running generation or scoring (its call resolves `cancelled`). */
  cancel(): void {
    this.port.postMessage({ type: 'cancel' });
  }

  /** Every message the engine sends, for whoever keeps a log or a status line. Returns the unsubscribe function. */
  watch(listener: (message: WorkerResponse) => void): () => void {
    this.watchers.add(listener);
    return () => this.watchers.delete(listener);
  }

  /** Stops the engine; pending calls reject. */
  terminate(): void {
    this.watchers.clear();
    this.fail('The engine was stopped.');
    this.port.terminate();
  }

  private call<T>(
    request: CallRequest,
    listener: CallListener | undefined,
    pick: (final: WorkerResponse) => T,
  ): EngineCall<T> {
    const requestId = this.nextRequestId++;
    const promise = new Promise<T>((resolve, reject) => {
      this.pending.set(requestId, { type: request.type, listener, resolve: (m) => resolve(pick(m)), reject });
    });
    this.port.postMessage({ ...request, requestId } as WorkerRequest);
    return Object.assign(promise, { requestId });
  }

  private receive(message: WorkerResponse): void {
    for (const watcher of this.watchers) watcher(message);
    if (message.type === 'backend') {
      const waiters = this.backendWaiters;
      this.backendWaiters = [];
      for (const w of waiters) w.resolve(message.status);
      return;
    }
    const requestId = 'requestId' in message ? message.requestId : undefined;
    if (requestId === undefined) {
      if (message.type === 'error') this.fail(message.message, message.hint);
      return;
    }
    const call = this.pending.get(requestId);
    if (!call) return;
    call.listener?.(message);
    if (message.type === 'error') {
      this.pending.delete(requestId);
      call.reject(new EngineError(message.message, message.hint, requestId));
    } else if (message.type === 'cancelled' && (call.type === 'load' || call.type === 'upcycle')) {
      // A newer load overtook this one in the worker (it installed nothing).
      this.pending.delete(requestId);
      call.reject(new EngineError('A newer model load replaced this one.', undefined, requestId));
    } else if (
      FINAL[call.type]?.includes(message.type) &&
      !(message.type === 'generated' && message.stopReason === 'aborted')
    ) {
      // (An aborted generation reports what it generated, then 'cancelled': the call ends with the latter.)
      this.pending.delete(requestId);
      call.resolve(message);
    }
  }

  /** The engine failed as a whole: every waiting call rejects with the same sentence (watchers saw the error already). */
  private fail(message: string, hint?: string): void {
    const waiters = this.backendWaiters;
    this.backendWaiters = [];
    for (const w of waiters) w.reject(new EngineError(message, hint));
    for (const [requestId, call] of this.pending) call.reject(new EngineError(message, hint, requestId));
    this.pending.clear();
  }
}
