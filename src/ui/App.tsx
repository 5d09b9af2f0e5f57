import { useEffect, useRef, useState } from 'react';
import { EngineClient } from './engineClient.ts';
import type { BackendStatus, ModelStatus, WorkerResponse } from '../worker/protocol.ts';

interface BuiltInModel {
  id: string;
  name: string;
  path: string;
}

const EXAMPLE_TEXT = 'The experts of a mixture';

function formatCount(n: number): string {
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)} M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)} k`;
  return String(n);
}

/** Which model to open: `?model=<url>` (tests, researchers), else the first built-in model. */
async function pickModel(): Promise<BuiltInModel | null> {
  const override = new URLSearchParams(location.search).get('model');
  if (override) {
    const url = new URL(override, location.href);
    if (url.origin !== location.origin) throw new Error('Models can only be loaded from this site.');
    return { id: url.pathname, name: url.pathname, path: url.pathname.endsWith('/') ? url.pathname : `${url.pathname}/` };
  }
  const response = await fetch(`${import.meta.env.BASE_URL}models/index.json`);
  if (!response.ok) return null;
  const list = (await response.json()) as { models?: BuiltInModel[] };
  const first = list.models?.[0];
  return first ? { ...first, path: `${import.meta.env.BASE_URL}${first.path}` } : null;
}

export function App() {
  const clientRef = useRef<EngineClient | null>(null);
  const [backend, setBackend] = useState<BackendStatus | null>(null);
  const [model, setModel] = useState<ModelStatus | null>(null);
  const [stage, setStage] = useState('starting the engine');
  const [error, setError] = useState<{ message: string; hint?: string } | null>(null);
  const [scored, setScored] = useState<Extract<WorkerResponse, { type: 'scored' }> | null>(null);

  useEffect(() => {
    const client = new EngineClient();
    clientRef.current = client;
    const preferBackend = new URLSearchParams(location.search).get('backend') === 'cpu' ? 'cpu' : 'webgpu';
    const unsubscribe = client.subscribe((message) => {
      switch (message.type) {
        case 'backend':
          setBackend(message.status);
          setStage('looking for a model');
          pickModel()
            .then((picked) => {
              if (!picked) {
                setStage('no built-in model is installed');
                return;
              }
              setStage(`loading ${picked.name}`);
              client.send({ type: 'load', requestId: client.newRequestId(), modelId: picked.id, baseUrl: picked.path });
            })
            .catch((e: unknown) => setError({ message: e instanceof Error ? e.message : String(e) }));
          break;
        case 'progress':
          setStage(message.stage);
          break;
        case 'loaded':
          setModel(message.model);
          setStage('scoring an example');
          client.send({ type: 'score', requestId: client.newRequestId(), text: EXAMPLE_TEXT, routing: 'native' });
          break;
        case 'scored':
          setScored(message);
          setStage('ready');
          break;
        case 'error':
          setError({ message: message.message, hint: message.hint });
          break;
      }
    });
    client.send({ type: 'init', preferBackend });
    return unsubscribe;
  }, []);

  return (
    <main className="app">
      <h1>MoE Playground</h1>
      <p className="tagline">Watch a Mixture-of-Experts language model route every token — in your browser.</p>
      <section className="status" aria-live="polite">
        <dl>
          <dt>Engine</dt>
          <dd data-testid="backend">
            {backend ? (
              <>
                <span className={`badge badge-${backend.kind}`}>{backend.kind === 'webgpu' ? 'WebGPU' : 'CPU'}</span>{' '}
                {backend.description}
                {backend.fallbackReason && <span className="fallback"> (CPU fallback: {backend.fallbackReason})</span>}
              </>
            ) : (
              'starting…'
            )}
          </dd>
          <dt>Model</dt>
          <dd data-testid="model">
            {model
              ? `${model.id} — ${model.architecture}, ${model.numLayers} layers, ${model.numExperts ? `${model.numExperts} experts (top-${model.topK})` : 'dense'}, ${formatCount(model.parametersTotal)} parameters (${formatCount(model.parametersActiveNative)} active), ${model.dtype}`
              : 'none yet'}
          </dd>
          <dt>Status</dt>
          <dd data-testid="stage">{stage}</dd>
        </dl>
      </section>
      {scored && (
        <section className="example" data-testid="example">
          <h2>Next token after “{EXAMPLE_TEXT}”</h2>
          <ol>
            {scored.nextTokenTop.map((t, i) => (
              <li key={i}>
                <code>{JSON.stringify(t.token)}</code> {(t.probability * 100).toFixed(1)}%
              </li>
            ))}
          </ol>
          <p>Mean loss over the example: {scored.meanLoss.toFixed(3)} nats/token</p>
        </section>
      )}
      {error && (
        <section className="error" role="alert" data-testid="error">
          <strong>{error.message}</strong>
          {error.hint && <p>{error.hint}</p>}
        </section>
      )}
    </main>
  );
}
