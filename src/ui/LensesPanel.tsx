// The Lenses view: runs the router lenses over a text set in the worker (its own models, beside
// whatever the page generates), with a progress bar and Cancel, and shows per MoE layer every lens
// the engine computes, each with SVG/PNG/CSV/JSON export, its sentence and a share link.
import { useEffect, useRef, useState, type ReactNode } from 'react';
import { useStore } from 'zustand';
import {
  BUILT_IN_TEXTS,
  LENS_LIMITS,
  LENS_NAMES,
  LENS_TITLE,
  lensCsv,
  lensJson,
  lensSentence,
  textNameOf,
  tradeoffCurves,
  type LensesState,
  type LensName,
  type PastedText,
} from '../state/lenses.ts';
import { controller, usePlayground } from '../state/useStore.ts';
import type { LensJobResult, LensSide } from '../worker/lensJobs.ts';
import {
  AgreementBars,
  CoactivationHeatmap,
  DomainShares,
  LoadBars,
  LocalityBars,
  TradeoffPlot,
  VocabLists,
} from '../viz/lenses/index.ts';
import { download, standaloneSvg } from '../viz/svgExport.ts';
import { SvgPngButtons } from './ExportBar.tsx';
import './lenses.css';

const lensStore = controller.lenses.store;

function useLenses<T>(selector: (s: LensesState) => T): T {
  return useStore(lensStore, selector);
}

/** locked (a class link's `lock=lenses`): the run's settings are fixed by the lesson; Run, Cancel and the results stay. */
export function LensesPanel({ locked = false }: { locked?: boolean }) {
  const open = useLenses((s) => s.open);
  return (
    <section className="panel lenses-panel" aria-label="Lenses" data-testid="lenses">
      <div className="lenses-head">
        <h2>Lenses: routing over many texts</h2>
        <button
          type="button"
          className="small-button"
          data-testid="lenses-toggle"
          aria-expanded={open}
          onClick={() => lensStore.getState().setOpen(!open)}
        >
          {open ? 'Close the Lenses view' : 'Open the Lenses view'}
        </button>
      </div>
      {!open ? (
        <p className="small">
          Do experts specialise by domain or by token? Which fire together? Does a token keep its expert? What does each
          step of sparsity cost? Run a model over a set of texts and measure it (docs/lenses.md).
        </p>
      ) : (
        <>
          <LensForm locked={locked} />
          <LensResults />
        </>
      )}
    </section>
  );
}

function modelOptions(
  builtIns: { id: string; name: string }[] | null,
  extra: string[],
): { id: string; name: string }[] {
  const list = [...(builtIns ?? [])];
  for (const id of extra) if (id && !list.some((m) => m.id === id)) list.push({ id, name: id });
  return list;
}

function LensForm({ locked }: { locked: boolean }) {
  const settings = useLenses((s) => s.settings);
  const job = useLenses((s) => s.job);
  const problem = useLenses((s) => s.problem);
  const builtInModels = usePlayground((s) => s.builtInModels);
  const pageModel = usePlayground((s) => s.share.model);
  const set = lensStore.getState().setSettings;
  const models = modelOptions(builtInModels, [pageModel, settings.model, settings.compareModel]);
  const modelId = settings.model || pageModel;

  return (
    <form
      className="lens-form"
      onSubmit={(e) => {
        e.preventDefault();
        void controller.lenses.run();
      }}
    >
      {locked && (
        <p className="small" data-testid="lens-locked">
          The lesson fixed these settings: run them as they are.
        </p>
      )}
      <fieldset disabled={locked} data-testid="lens-settings">
        <legend>Run</legend>
        <label>
          Model{' '}
          <select data-testid="lens-model" value={modelId} onChange={(e) => set({ model: e.target.value })}>
            {models.map((m) => (
              <option key={m.id} value={m.id}>
                {m.name}
              </option>
            ))}
          </select>
        </label>{' '}
        <label>
          routing{' '}
          <input
            data-testid="lens-routing"
            size={14}
            value={settings.routing}
            list="lens-modes"
            onChange={(e) => set({ routing: e.target.value })}
            aria-describedby="lens-routing-help"
          />
        </label>
        <datalist id="lens-modes">
          {['native', 'topk:1', 'topk:2', 'threshold:1', 'dense'].map((m) => (
            <option key={m} value={m} />
          ))}
        </datalist>
        <span id="lens-routing-help" className="small">
          {' '}
          (native, topk:K, threshold:T, dense; interventions after |)
        </span>
        <br />
        <label className="check">
          <input
            type="checkbox"
            data-testid="lens-compare"
            checked={settings.compare}
            onChange={(e) => set({ compare: e.target.checked })}
          />{' '}
          compare with a second run
        </label>{' '}
        {settings.compare && (
          <>
            <label>
              model{' '}
              <select
                data-testid="lens-compare-model"
                value={settings.compareModel || modelId}
                onChange={(e) => set({ compareModel: e.target.value })}
              >
                {models.map((m) => (
                  <option key={m.id} value={m.id}>
                    {m.name}
                  </option>
                ))}
              </select>
            </label>{' '}
            <label>
              routing{' '}
              <input
                data-testid="lens-compare-routing"
                size={14}
                value={settings.compareRouting}
                list="lens-modes"
                onChange={(e) => set({ compareRouting: e.target.value })}
              />
            </label>
          </>
        )}
      </fieldset>
      <LensTexts locked={locked} />
      <div className="lens-run">
        <button type="submit" data-testid="lens-run" disabled={job !== null}>
          Run the lenses
        </button>{' '}
        {job && (
          <>
            <button type="button" data-testid="lens-cancel" onClick={() => controller.lenses.cancel()}>
              Cancel
            </button>{' '}
            <progress max={1} value={job.fraction} data-testid="lens-progress" aria-label="lens progress">
              {Math.round(job.fraction * 100)}%
            </progress>{' '}
            <span className="small" data-testid="lens-stage" aria-live="polite">
              {job.stage}
            </span>
          </>
        )}
      </div>
      {problem && (
        <p className={problem.cancelled ? 'notice-box' : 'problem'} role="alert" data-testid="lens-problem">
          <strong>{problem.message}</strong> {problem.hint}
        </p>
      )}
    </form>
  );
}

/** The texts a lens run reads: the built-in domains, or texts pasted or dropped (each one domain). */
function LensTexts({ locked }: { locked: boolean }) {
  const settings = useLenses((s) => s.settings);
  const set = lensStore.getState().setSettings;
  const addFiles = async (files: FileList | File[]) => {
    const added: PastedText[] = [];
    for (const file of Array.from(files)) added.push({ name: textNameOf(file.name), text: await file.text() });
    const current = lensStore.getState().settings.pasted.filter((t) => t.text.trim() !== '' || t.name.trim() !== '');
    const names = new Set(current.map((t) => t.name));
    for (const t of added) {
      let name = t.name;
      for (let i = 2; names.has(name); i++) name = `${t.name}-${i}`;
      names.add(name);
      current.push({ ...t, name });
    }
    set({ source: 'pasted', pasted: current });
  };
  const updateText = (i: number, patch: Partial<PastedText>) =>
    set({ pasted: lensStore.getState().settings.pasted.map((t, j) => (j === i ? { ...t, ...patch } : t)) });

  return (
    <fieldset disabled={locked} data-testid="lens-texts">
      <legend>Texts (each one domain)</legend>
      <label className="check">
        <input
          type="radio"
          name="lens-source"
          data-testid="lens-source-builtin"
          checked={settings.source === 'builtin'}
          onChange={() => set({ source: 'builtin' })}
        />{' '}
        built-in
      </label>{' '}
      <label className="check">
        <input
          type="radio"
          name="lens-source"
          data-testid="lens-source-pasted"
          checked={settings.source === 'pasted'}
          onChange={() =>
            set({
              source: 'pasted',
              pasted: settings.pasted.length > 0 ? settings.pasted : [{ name: 'text-1', text: '' }],
            })
          }
        />{' '}
        your own
      </label>
      {settings.source === 'builtin' ? (
        <span className="lens-builtins">
          {BUILT_IN_TEXTS.map((name) => (
            <label key={name} className="check">
              <input
                type="checkbox"
                data-testid={`lens-text-${name}`}
                checked={settings.builtin.includes(name)}
                onChange={(e) =>
                  set({
                    builtin: BUILT_IN_TEXTS.filter((n) =>
                      n === name ? e.target.checked : settings.builtin.includes(n),
                    ),
                  })
                }
              />{' '}
              {name}
            </label>
          ))}
        </span>
      ) : (
        <fieldset
          className="lens-pasted"
          aria-label="Your texts; drop text files here"
          data-testid="lens-drop"
          onDragOver={(e) => e.preventDefault()}
          onDrop={(e) => {
            e.preventDefault();
            if (e.dataTransfer.files.length > 0) void addFiles(e.dataTransfer.files);
          }}
        >
          {settings.pasted.map((t, i) => (
            <div key={i} className="lens-pasted-text">
              <input
                data-testid={`lens-pasted-name-${i}`}
                aria-label={`Name of text ${i + 1}`}
                value={t.name}
                size={16}
                onChange={(e) => updateText(i, { name: e.target.value })}
              />
              <button
                type="button"
                className="small-button"
                onClick={() => set({ pasted: settings.pasted.filter((_, j) => j !== i) })}
                aria-label={`Remove text ${t.name}`}
              >
                remove
              </button>
              <textarea
                data-testid={`lens-pasted-${i}`}
                aria-label={`Text ${t.name}`}
                rows={3}
                value={t.text}
                onChange={(e) => updateText(i, { text: e.target.value })}
              />
            </div>
          ))}
          <button
            type="button"
            className="small-button"
            data-testid="lens-add-text"
            onClick={() =>
              set({ pasted: [...settings.pasted, { name: `text-${settings.pasted.length + 1}`, text: '' }] })
            }
          >
            add a text
          </button>{' '}
          <label className="small">
            or drop text files here, or pick them:{' '}
            <input
              type="file"
              multiple
              accept=".txt,.md,.py,.js,.ts,.json,.csv,text/*"
              data-testid="lens-files"
              onChange={(e) => e.target.files && void addFiles(e.target.files)}
            />
          </label>
        </fieldset>
      )}
      <br />
      <label>
        tokens per text{' '}
        <input
          type="number"
          data-testid="lens-max-tokens"
          min={LENS_LIMITS.maxTokens[0]}
          max={LENS_LIMITS.maxTokens[1]}
          value={settings.maxTokens}
          onChange={(e) => {
            const v = Math.round(Number(e.target.value));
            if (Number.isFinite(v))
              set({ maxTokens: Math.min(LENS_LIMITS.maxTokens[1], Math.max(LENS_LIMITS.maxTokens[0], v)) });
          }}
        />
      </label>{' '}
      <label className="check">
        <input
          type="checkbox"
          data-testid="lens-sweep"
          checked={settings.tradeoff}
          onChange={(e) => set({ tradeoff: e.target.checked })}
        />{' '}
        sparsity trade-off (re-runs the texts under top-k 1…E−1, six thresholds and dense)
      </label>
    </fieldset>
  );
}

/** All the view's <svg>s stacked into one standalone SVG (a lens with two runs draws one per run). */
function cardSvg(container: HTMLElement | null, title: string): string | null {
  const svgs = Array.from(container?.querySelectorAll<SVGSVGElement>('figure svg') ?? []);
  if (svgs.length === 0) return null;
  if (svgs.length === 1) return standaloneSvg(svgs[0], title);
  let y = 0;
  let width = 0;
  const parts: string[] = [];
  for (const svg of svgs) {
    const w = svg.width.baseVal.value || svg.getBoundingClientRect().width;
    const h = svg.height.baseVal.value || svg.getBoundingClientRect().height;
    const inner = standaloneSvg(svg, title).replace(/^<\?xml[^>]*>\s*/, '');
    parts.push(inner.replace('<svg ', `<svg x="0" y="${y}" `));
    y += h + 12;
    width = Math.max(width, w);
  }
  const escaped = title.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);
  return `<?xml version="1.0" encoding="UTF-8"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${y}" viewBox="0 0 ${width} ${y}"><title>${escaped}</title><rect width="100%" height="100%" fill="#ffffff"/>${parts.join('')}</svg>`;
}

function stem(result: LensJobResult, name: LensName): string {
  const models = [result.a.modelId, ...(result.b && result.b.modelId !== result.a.modelId ? [result.b.modelId] : [])]
    .map((m) => m.replace(/[^A-Za-z0-9_-]+/g, '-').replace(/^-|-$/g, ''))
    .join('-vs-');
  return `moe-lens-${name}-${models || 'model'}`;
}

function LensCard({ name, result, children }: { name: LensName; result: LensJobResult; children: ReactNode }) {
  const ref = useRef<HTMLDivElement>(null);
  const focus = useLenses((s) => s.settings.focus);
  const [link, setLink] = useState<{ url: string; problem: string | null } | null>(null);
  const [problem, setProblem] = useState<string | null>(null);
  const title = LENS_TITLE[name];
  useEffect(() => {
    if (focus === name) ref.current?.scrollIntoView({ block: 'start' });
  }, [focus, name]);
  const svg = () => cardSvg(ref.current, `${title}: ${lensSentence(name, result)}`);
  return (
    <section
      className={`lens-card${focus === name ? ' lens-focus' : ''}`}
      data-testid={`lens-card-${name}`}
      aria-label={title}
    >
      <div className="lens-card-head">
        <h3>{title}</h3>
        <span className="export-bar">
          <SvgPngButtons
            testId={`lens-${name}`}
            title={title}
            stem={stem(result, name)}
            svgText={svg}
            onProblem={setProblem}
          />
          <SmallButton
            testId={`lens-${name}-csv`}
            label={`Export ${title} as CSV`}
            onClick={() => {
              const csv = lensCsv(name, result);
              if (csv) download(`${stem(result, name)}.csv`, csv, 'text/csv');
            }}
          >
            CSV
          </SmallButton>
          <SmallButton
            testId={`lens-${name}-json`}
            label={`Export ${title} as JSON`}
            onClick={() => {
              const json = lensJson(name, result);
              if (json) download(`${stem(result, name)}.json`, json, 'application/json');
            }}
          >
            JSON
          </SmallButton>
          <SmallButton
            testId={`lens-${name}-link`}
            label={`Share a link to ${title}`}
            onClick={() => {
              const made = controller.lenses.linkFor(name);
              if (!made) return;
              setLink(made);
              void navigator.clipboard?.writeText(made.url).catch(() => undefined);
            }}
          >
            link
          </SmallButton>
        </span>
      </div>
      {link && (
        <p className="small lens-link">
          <label>
            Link to this lens (copied):{' '}
            <input
              readOnly
              data-testid={`lens-link-${name}`}
              value={link.url}
              size={60}
              onFocus={(e) => e.target.select()}
            />
          </label>
          {link.problem && (
            <span className="problem" data-testid={`lens-link-problem-${name}`}>
              {' '}
              {link.problem}
            </span>
          )}
        </p>
      )}
      {problem && <p className="problem small">{problem}</p>}
      <div ref={ref} className="lens-card-body">
        {children}
      </div>
    </section>
  );
}

function BySide({ result, render }: { result: LensJobResult; render: (side: LensSide) => ReactNode }) {
  const sides = result.b ? [result.a, result.b] : [result.a];
  return (
    <div className={sides.length > 1 ? 'lens-sides' : undefined}>
      {sides.map((side, i) => (
        <div key={i} className="lens-side" data-testid={`lens-run-${i === 0 ? 'a' : 'b'}`}>
          {sides.length > 1 && <h4>{side.label}</h4>}
          {render(side)}
        </div>
      ))}
    </div>
  );
}

function LensResults() {
  const result = useLenses((s) => s.result);
  const layer = useLenses((s) => s.settings.layer);
  const [showTables, setShowTables] = useState(false);
  if (!result) return null;
  const moeLayers = result.a.analysis.moeLayers;
  const layerIndex = Math.min(layer, moeLayers.length - 1);
  const texts = result.a.analysis.texts;
  const singleExpert = (side: LensSide) => side.analysis.point.expertsPerLayer < 1.5;
  const curves = tradeoffCurves(result);
  return (
    <div className="lens-results" data-testid="lens-results">
      <p className="small" data-testid="lens-summary">
        {result.a.label}
        {result.b && <> and {result.b.label}</>} over{' '}
        {texts
          .map((t) => `${t.name} (${t.tokens} tokens${t.windows.length > 1 ? ` in ${t.windows.length} windows` : ''})`)
          .join(', ')}
        .
      </p>
      <div className="panel-tools">
        <label>
          MoE layer <strong data-testid="lens-layer-value">L{moeLayers[layerIndex]}</strong>{' '}
          <input
            type="range"
            data-testid="lens-layer"
            min={0}
            max={moeLayers.length - 1}
            step={1}
            value={layerIndex}
            onChange={(e) => lensStore.getState().setSettings({ layer: Number(e.target.value) })}
          />
        </label>{' '}
        <label className="check small">
          <input
            type="checkbox"
            data-testid="lens-tables"
            checked={showTables}
            onChange={(e) => setShowTables(e.target.checked)}
          />{' '}
          show the numbers as tables
        </label>
      </div>
      {LENS_NAMES.map((name) => {
        switch (name) {
          case 'domain':
            return (
              <LensCard key={name} name={name} result={result}>
                <BySide
                  result={result}
                  render={(s) => (
                    <DomainShares lens={s.analysis.domain} layerIndex={layerIndex} showTable={showTables} />
                  )}
                />
              </LensCard>
            );
          case 'vocab':
            return (
              <LensCard key={name} name={name} result={result}>
                <BySide
                  result={result}
                  render={(s) => <VocabLists lens={s.analysis.vocab} layerIndex={layerIndex} showTable={showTables} />}
                />
              </LensCard>
            );
          case 'coactivation':
            return (
              <LensCard key={name} name={name} result={result}>
                <BySide
                  result={result}
                  render={(s) => (
                    <>
                      {singleExpert(s) && (
                        <p className="small notice-box">
                          Under {s.routing} a token has about {s.analysis.point.expertsPerLayer.toFixed(2)} experts per
                          layer: co-activation needs top-k ≥ 2.
                        </p>
                      )}
                      <CoactivationHeatmap
                        lens={s.analysis.coactivation}
                        layerIndex={layerIndex}
                        showTable={showTables}
                      />
                    </>
                  )}
                />
              </LensCard>
            );
          case 'locality':
            return (
              <LensCard key={name} name={name} result={result}>
                <BySide
                  result={result}
                  render={(s) => <LocalityBars lens={s.analysis.locality} showTable={showTables} />}
                />
              </LensCard>
            );
          case 'load':
            return (
              <LensCard key={name} name={name} result={result}>
                <BySide result={result} render={(s) => <LoadBars lens={s.analysis.load} showTable={showTables} />} />
              </LensCard>
            );
          case 'tradeoff':
            return curves.length > 0 ? (
              <LensCard key={name} name={name} result={result}>
                <TradeoffPlot curves={curves} showTable={showTables} />
              </LensCard>
            ) : (
              <p key={name} className="small" data-testid="lens-no-tradeoff">
                The sparsity trade-off was not swept: tick “sparsity trade-off” and run again.
              </p>
            );
          case 'agreement':
            return result.agreement ? (
              <LensCard key={name} name={name} result={result}>
                <AgreementBars lens={result.agreement} showTable={showTables} />
              </LensCard>
            ) : (
              <p key={name} className="small" data-testid="lens-no-agreement">
                Agreement needs two runs on the same text: tick “compare with a second run” (another model, or another
                routing mode of this one).
              </p>
            );
        }
      })}
    </div>
  );
}

/** One of a lens card's export buttons: small, with a label that says what it exports. */
function SmallButton({
  testId,
  label,
  onClick,
  children,
}: {
  testId: string;
  label: string;
  onClick: () => void;
  children: ReactNode;
}) {
  return (
    <button type="button" className="small-button" data-testid={testId} aria-label={label} onClick={onClick}>
      {children}
    </button>
  );
}
