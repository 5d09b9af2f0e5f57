// "Open a model": a hub repository or an address, looked up before anything is downloaded (what it
// is, its size, the memory it needs here), then downloaded with progress, cancel and retry; or a
// checkpoint folder picked or dropped from the reader's disk.
import { useRef, useState, type DragEvent, type FormEvent } from 'react';
import { useStore } from 'zustand';
import type { StoreApi } from 'zustand/vanilla';
import type { SourceActions, SourcesState } from '../state/sources.ts';
import { isLocalModel } from '../state/sources.ts';
import { parseSourceRef } from '../engine/source/ref.ts';
import type { SourceFailureMessage, SourcePreview } from '../worker/sourceProtocol.ts';
import { formatCount } from './format.ts';
import { filesFromDrop, folderName } from './dropFiles.ts';

export function formatBytes(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} GB`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)} MB`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(0)} kB`;
  return `${n} bytes`;
}

/** Memory in binary units, as the refusal sentences give it (src/engine/source/memory.ts). */
function formatMemory(n: number): string {
  return n >= 2 ** 30 ? `${(n / 2 ** 30).toFixed(1)} GB` : `${Math.ceil(n / 2 ** 20)} MB`;
}

function formatSeconds(s: number): string {
  if (!Number.isFinite(s)) return 'estimating';
  if (s < 60) return `${Math.ceil(s)} s`;
  return `${Math.floor(s / 60)} min ${Math.ceil(s % 60)} s`;
}

function Failure({
  failure,
  onRetry,
  testId,
}: {
  failure: SourceFailureMessage;
  onRetry?: () => void;
  testId: string;
}) {
  return (
    <div className="error" role="alert" data-testid={testId} data-reason={failure.reason}>
      <strong>{failure.message.charAt(0).toUpperCase() + failure.message.slice(1)}</strong>
      {failure.hint && <p>{failure.hint}</p>}
      {onRetry && failure.canRetry && (
        <p className="buttons">
          <button type="button" data-testid="source-retry" onClick={onRetry}>
            Retry (continues where it stopped)
          </button>
        </p>
      )}
    </div>
  );
}

/** Where a link's model comes from, read from the source string alone (no network). */
function describeSource(
  source: string,
  endpoint: string,
): { host: string; repository: string; revision: string | null } {
  try {
    const ref = parseSourceRef(source);
    if (ref.kind === 'hf') return { host: new URL(endpoint).host, repository: ref.repo, revision: ref.revision };
    if (ref.kind === 'url') {
      const url = new URL(ref.base);
      return { host: url.host, repository: url.pathname, revision: null };
    }
  } catch {
    // shown as written
  }
  return { host: '?', repository: source, revision: null };
}

function PreviewCard({ preview, backend }: { preview: SourcePreview; backend: 'cpu' | 'webgpu' | null }) {
  const rows: Array<[string, string, string]> = [
    ['Source', preview.source, 'preview-source'],
    [
      'From',
      `${preview.host} · ${preview.repository}${preview.revision ? ` · revision ${preview.revision}` : ''}${preview.commit ? ` (commit ${preview.commit.slice(0, 10)})` : ''}`,
      'preview-from',
    ],
    ['Architecture', `${preview.architecture}, ${preview.numLayers} layers, ${preview.dtype}`, 'preview-architecture'],
    [
      'Experts',
      preview.numExperts > 0 ? `${preview.numExperts} experts per layer, top-${preview.topK}` : 'dense (no experts)',
      'preview-experts',
    ],
    [
      'Parameters',
      `${formatCount(preview.parametersTotal)} total, ${formatCount(preview.parametersActive)} active per token`,
      'preview-parameters',
    ],
    [
      'Download',
      `${formatBytes(preview.downloadBytes)} in ${preview.files.length} files${preview.stored ? ' (already on this device)' : ''}`,
      'preview-download',
    ],
  ];
  return (
    <div data-testid="source-preview">
      <dl className="status preview">
        {rows.map(([label, value, id]) => (
          <div key={id} className="preview-row">
            <dt>{label}</dt>
            <dd
              data-testid={id}
              {...(id === 'preview-parameters'
                ? { 'data-total': preview.parametersTotal, 'data-active': preview.parametersActive }
                : {})}
            >
              {value}
            </dd>
          </div>
        ))}
        <div className="preview-row">
          <dt>Memory here</dt>
          <dd data-testid="preview-memory">
            {(['cpu', 'webgpu'] as const).map((b) => (
              <span key={b} className="memory-line" data-backend={b} data-fits={preview.memory[b].refusal === null}>
                {b === 'cpu' ? 'CPU engine' : 'WebGPU'}: about {formatMemory(preview.memory[b].bytes)}
                {preview.memory[b].refusal ? ' (does not fit)' : ' (fits)'}
                {backend === b ? ' · in use' : ''}
                <br />
              </span>
            ))}
            <span className="small">
              Limit: {preview.memoryLimit.name}, {formatMemory(preview.memoryLimit.bytes)}.
            </span>
          </dd>
        </div>
      </dl>
      {!preview.hasTokenizer && (
        <p className="small fallback">
          This repository has no tokenizer.json: the page cannot turn text into tokens for it.
        </p>
      )}
    </div>
  );
}

export function OpenModel({
  store,
  actions,
  backend,
  modelId,
  onCopyLinkWithoutModel,
}: {
  store: StoreApi<SourcesState>;
  actions: SourceActions;
  backend: 'cpu' | 'webgpu' | null;
  modelId: string | null;
  onCopyLinkWithoutModel: () => void;
}) {
  const lookup = useStore(store, (s) => s.lookup);
  const download = useStore(store, (s) => s.download);
  const linkAsk = useStore(store, (s) => s.linkAsk);
  const local = useStore(store, (s) => s.local);
  const endpoint = useStore(store, (s) => s.endpoint);
  const [text, setText] = useState('');
  const [dragging, setDragging] = useState(false);
  const [copied, setCopied] = useState<string | null>(null);
  const filesInput = useRef<HTMLInputElement>(null);
  const folderInput = useRef<HTMLInputElement>(null);

  const onSubmit = (e: FormEvent) => {
    e.preventDefault();
    if (text.trim() !== '') actions.lookup(text);
  };
  const onDrop = (e: DragEvent) => {
    e.preventDefault();
    setDragging(false);
    void filesFromDrop(e.dataTransfer).then(({ name, files }) => {
      if (files.length > 0) actions.openFiles(name, files);
    });
  };
  const onPicked = (list: FileList | null) => {
    const files = list ? [...list] : [];
    if (files.length > 0) actions.openFiles(folderName(files), files);
  };

  const preview = lookup.status === 'preview' ? lookup.preview : null;
  const refusal = preview && backend ? preview.memory[backend].refusal : null;
  const running = download?.status === 'running' && !(download.fromDevice && linkAsk);
  const asked = linkAsk ? describeSource(linkAsk.source, endpoint) : null;
  const progress = download?.progress ?? null;
  const total = preview && download && preview.source === download.source ? preview.files : null;

  return (
    <section
      className={`panel open-model${dragging ? ' dragging' : ''}`}
      aria-label="Open a model"
      data-testid="open-model"
      onDragOver={(e) => {
        e.preventDefault();
        setDragging(true);
      }}
      onDragLeave={() => setDragging(false)}
      onDrop={onDrop}
    >
      <h2>Open a model</h2>
      {linkAsk && asked && (
        <div className="notice-box" data-testid="link-ask">
          <strong>This link opens a model from {asked.host}:</strong> {asked.repository}
          {asked.revision && <> · revision {asked.revision}</>}
          {preview && preview.source === linkAsk.source ? (
            <> · {formatBytes(preview.downloadBytes)} to download</>
          ) : lookup.status === 'looking' ? (
            <> · reading its size…</>
          ) : null}
          . Nothing is downloaded until you choose to.{' '}
          <button type="button" className="link-button" data-testid="link-ask-dismiss" onClick={actions.dismissLink}>
            Not now
          </button>
        </div>
      )}
      <form className="buttons open-form" onSubmit={onSubmit}>
        <label className="open-input">
          <span className="sr-only">Hub repository or address</span>
          <input
            type="text"
            data-testid="source-input"
            value={text}
            onChange={(e) => setText(e.target.value)}
            placeholder="hf:ORG/NAME[@REVISION] or https://…"
            spellCheck={false}
            autoComplete="off"
          />
        </label>
        <button type="submit" data-testid="source-lookup" disabled={text.trim() === '' || lookup.status === 'looking'}>
          Look up
        </button>
      </form>
      <p className="small">
        Or from your disk:{' '}
        <button
          type="button"
          className="link-button"
          data-testid="pick-folder"
          onClick={() => folderInput.current?.click()}
        >
          choose a checkpoint folder
        </button>
        ,{' '}
        <button
          type="button"
          className="link-button"
          data-testid="pick-files"
          onClick={() => filesInput.current?.click()}
        >
          choose its files
        </button>
        , or drop the folder here (config.json, *.safetensors, tokenizer.json). Files from your disk stay on this
        device.
        <input
          ref={folderInput}
          type="file"
          hidden
          data-testid="folder-input"
          {...{ webkitdirectory: '', directory: '' }}
          multiple
          onChange={(e) => onPicked(e.target.files)}
        />
        <input
          ref={filesInput}
          type="file"
          hidden
          data-testid="files-input"
          multiple
          onChange={(e) => onPicked(e.target.files)}
        />
      </p>
      {local && !local.failure && (
        <p className="small" data-testid="local-checking">
          Reading {local.name}…
        </p>
      )}
      {local?.failure && <Failure failure={local.failure} testId="local-failure" />}
      {modelId && isLocalModel(modelId) && (
        <div className="notice-box" data-testid="local-note">
          The model on screen, {modelId.slice('local:'.length)}, comes from your disk: a link cannot carry it. A link
          from this page opens the default model instead, with everything else (prompt, routing, interventions) as you
          set it.{' '}
          <button
            type="button"
            className="link-button"
            data-testid="copy-link-without-model"
            onClick={() => {
              onCopyLinkWithoutModel();
              setCopied('Link without the model copied.');
            }}
          >
            Copy the link without the model
          </button>
          {copied && <span className="share-message"> {copied}</span>}
        </div>
      )}

      {lookup.status === 'looking' && (
        <p className="small" data-testid="source-looking">
          Reading the configs and weight headers of {lookup.source}…
        </p>
      )}
      {lookup.status === 'failed' && <Failure failure={lookup.failure} testId="source-failure" />}
      {preview && (
        <>
          <PreviewCard preview={preview} backend={backend} />
          {refusal ? (
            <div className="error" role="alert" data-testid="source-refusal">
              <strong>{refusal.message}</strong>
              <p>{refusal.hint}</p>
            </div>
          ) : (
            <p className="buttons">
              <button
                type="button"
                className="primary"
                data-testid="source-download"
                disabled={running || modelId === preview.source}
                onClick={() => actions.download(preview.source)}
              >
                {preview.stored ? 'Open from this device' : `Download and open (${formatBytes(preview.downloadBytes)})`}
              </button>
            </p>
          )}
        </>
      )}

      {download && !(download.fromDevice && linkAsk && download.status === 'running') && (
        <div className="download" data-testid="download" data-status={download.status}>
          {download.status === 'running' && (
            <>
              <p className="small" data-testid="download-total">
                {progress
                  ? `${progress.from === 'device' ? 'Reading from this device' : 'Downloading'} ${download.source}: ${formatBytes(progress.received)} of ${formatBytes(progress.total)}`
                  : `Starting ${download.source}…`}
                {progress &&
                  progress.bytesPerSecond > 0 &&
                  ` · ${formatBytes(progress.bytesPerSecond)}/s · ${formatSeconds(progress.secondsLeft)} left`}
              </p>
              <progress
                max={1}
                value={progress && progress.total > 0 ? progress.received / progress.total : 0}
                data-testid="download-progress"
                data-received={progress?.received ?? 0}
                data-total={progress?.total ?? 0}
                aria-label="download progress"
              />
              <p className="buttons">
                <button type="button" data-testid="source-cancel" onClick={actions.cancel}>
                  Cancel
                </button>
              </p>
            </>
          )}
          {(download.status === 'running' || download.status === 'failed') &&
            (total ?? Object.keys(download.files).map((name) => ({ name, size: download.files[name].size }))).length >
              0 && (
              <ul className="file-progress small" data-testid="file-progress">
                {(total ?? Object.keys(download.files).map((name) => ({ name, size: download.files[name].size }))).map(
                  (f) => {
                    const got = download.files[f.name]?.received ?? 0;
                    return (
                      <li key={f.name} data-file={f.name} data-received={got}>
                        <span className="file-name">{f.name}</span>{' '}
                        <progress max={Math.max(f.size, 1)} value={got} aria-label={`${f.name} progress`} />{' '}
                        {formatBytes(got)} of {formatBytes(f.size)}
                      </li>
                    );
                  },
                )}
              </ul>
            )}
          {download.status === 'failed' && download.failure && (
            <Failure
              failure={download.failure}
              onRetry={() => actions.download(download.source)}
              testId="download-failure"
            />
          )}
          {download.status === 'done' && (
            <p className="small" data-testid="download-done">
              {download.fromDevice
                ? `Opened ${download.source} from this device (no network).`
                : `Downloaded ${download.source}${download.warning ? '' : ' and kept it on this device'}.`}
            </p>
          )}
          {download.warning && (
            <div className="notice-box" role="status" data-testid="download-warning">
              <strong>{download.warning.message}</strong> {download.warning.hint}
            </div>
          )}
        </div>
      )}
    </section>
  );
}
