// The engine behind the page: owns the backend, the loaded model and the tokenizer.
// GPU objects live here and never cross into React state.
/// <reference lib="webworker" />
import { chooseBackend } from '../engine/backends/select.ts';
import { loadCheckpoint, urlSource, countParameters } from '../engine/format/index.ts';
import { loadTokenizer, type TextTokenizer } from '../engine/tokenizer.ts';
import { parseRoutingMode } from '../engine/routing/index.ts';
import { scoreTokens } from '../engine/run/index.ts';
import type { Backend, LoadedModel } from '../engine/types.ts';
import type { WorkerRequest, WorkerResponse } from './protocol.ts';

declare const self: DedicatedWorkerGlobalScope;

let backend: Backend | null = null;
let model: LoadedModel | null = null;
let tokenizer: TextTokenizer | null = null;

function post(message: WorkerResponse): void {
  self.postMessage(message);
}

function describe(error: unknown): { message: string; hint?: string } {
  if (error instanceof Error) {
    const hint = (error as Error & { hint?: unknown }).hint;
    return { message: error.message, hint: typeof hint === 'string' ? hint : undefined };
  }
  return { message: String(error) };
}

async function handle(request: WorkerRequest): Promise<void> {
  switch (request.type) {
    case 'init': {
      const choice = await chooseBackend(request.preferBackend);
      backend = choice.backend;
      post({
        type: 'backend',
        status: { kind: backend.kind, description: backend.description, fallbackReason: choice.fallbackReason },
      });
      return;
    }
    case 'load': {
      if (!backend) throw new Error('The engine is not started yet.');
      post({ type: 'progress', requestId: request.requestId, stage: 'downloading weights', fraction: 0 });
      const checkpoint = await loadCheckpoint(urlSource(request.baseUrl));
      post({ type: 'progress', requestId: request.requestId, stage: 'uploading weights', fraction: 0.5 });
      const loaded = await backend.load(checkpoint.spec, checkpoint.weights);
      // Only replace the old model once the new one is ready: a failed load keeps what was there.
      model?.dispose();
      model = loaded;
      tokenizer = loadTokenizer(checkpoint.tokenizerJson, checkpoint.tokenizerConfigJson);
      const spec = checkpoint.spec;
      const parameters = countParameters(spec);
      post({
        type: 'loaded',
        requestId: request.requestId,
        model: {
          id: request.modelId,
          architecture: spec.architecture,
          numLayers: spec.numLayers,
          numExperts: spec.moe?.numExperts ?? 0,
          topK: spec.moe?.topK ?? 0,
          parametersTotal: parameters.total,
          parametersActiveNative: parameters.activeFor({ kind: 'native' }),
          dtype: spec.dtype,
        },
      });
      return;
    }
    case 'score': {
      if (!model || !tokenizer) throw new Error('No model is loaded yet.');
      const ids = tokenizer.encode(request.text);
      if (ids.length === 0) throw new Error('The text is empty after tokenisation.');
      const result = await scoreTokens(model, ids, { mode: parseRoutingMode(request.routing), interventions: [] });
      const last = result.logits[result.logits.length - 1];
      let max = -Infinity;
      for (const v of last) max = Math.max(max, v);
      let sum = 0;
      for (const v of last) sum += Math.exp(v - max);
      const order = Array.from(last.keys()).sort((a, b) => last[b] - last[a]).slice(0, 5);
      const tok = tokenizer;
      post({
        type: 'scored',
        requestId: request.requestId,
        tokens: ids.map((id) => tok.decode([id])),
        nextTokenTop: order.map((id) => ({ token: tok.decode([id]), probability: Math.exp(last[id] - max) / sum })),
        meanLoss: result.meanLoss,
      });
      return;
    }
  }
}

self.onmessage = (event: MessageEvent<WorkerRequest>) => {
  const request = event.data;
  handle(request).catch((error: unknown) => {
    post({ type: 'error', requestId: 'requestId' in request ? request.requestId : undefined, ...describe(error) });
  });
};
